"""The GitHub connector: against recorded API responses and against the sandbox."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from okr_metrics.connectors.base import SourceError, SourceSettings
from okr_metrics.connectors.github.client import GitHubConnector
from okr_metrics.connectors.github.params import GitHubMetric
from okr_metrics.connectors.kit import SeriesRequest
from okr_metrics.connectors.sandbox import Sandbox, SandboxData
from okr_metrics.connectors.sandbox.github import repository_id

FIXTURES = Path(__file__).parents[1] / "fixtures"
OCT_1, OCT_3 = date(2026, 10, 1), date(2026, 10, 3)


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def metric(repo: str, count: str, labels: tuple[str, ...] = ()) -> GitHubMetric:
    return GitHubMetric(source="github", repo=repo, count=count, labels=labels)


def values(frame) -> list[float]:
    return frame["value"].tolist()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def github(sandbox, sleeps) -> GitHubConnector:
    """The connector, pointed at the sandbox the way GITHUB_API_URL would point it."""
    settings = SourceSettings.from_env(
        GitHubConnector.env, {"GITHUB_API_URL": sandbox.url, "GITHUB_TOKEN": "sandbox-token"}
    )
    return GitHubConnector.from_settings(settings, sleep=sleeps)


# --- settings ----------------------------------------------------------------------------------


def test_without_a_token_the_source_is_skipped():
    settings = SourceSettings.from_env(GitHubConnector.env, {})
    assert settings.base_url == "https://api.github.com"
    assert GitHubConnector.missing_settings(settings) == "GITHUB_TOKEN not set"


def test_the_client_sends_githubs_headers():
    connector = GitHubConnector.from_settings(
        SourceSettings(base_url="https://ghe.example.com/api/v3/", token="t0ken-value")
    )
    headers = connector.client.session.headers
    assert headers["Accept"] == "application/vnd.github+json"
    assert headers["X-GitHub-Api-Version"] == "2022-11-28"
    assert headers["Authorization"] == "Bearer t0ken-value"
    assert headers["User-Agent"].startswith("okr-metrics/")
    assert connector.client.base_url == "https://ghe.example.com/api/v3"
    assert connector.client.redact("x t0ken-value y") == "x *** y"


# --- (a) replaying GitHub's recorded pagination --------------------------------------------------


def recorded_issue_pages() -> list[dict]:
    interactions = json.loads((FIXTURES / "github" / "paginate-issues.json").read_text())
    return [i for i in interactions if i["method"] == "get" and "/issues" in i["path"]]


def serve_recording(httpserver: HTTPServer, pages: list[dict]) -> str:
    """Serve the recorded pages at their paths; returns the recorded repository name."""
    recorded_origin = "https://api.github.com"

    def respond(interaction: dict) -> Response:
        raw = interaction["rawHeaders"]
        headers = [
            (name, value.replace(recorded_origin, httpserver.url_for("/").rstrip("/")))
            for name, value in zip(raw[::2], raw[1::2], strict=True)
            if name.lower() not in ("content-length", "connection")
        ]
        return Response(json.dumps(interaction["response"]), interaction["status"], headers)

    first = urlsplit(pages[0]["path"])
    httpserver.expect_request(first.path).respond_with_response(respond(pages[0]))
    by_page = {dict(_query(urlsplit(p["path"]).query)).get("page"): p for p in pages[1:]}

    def later_page(request: Request) -> Response:
        return respond(by_page[request.args.get("page")])

    httpserver.expect_request(urlsplit(pages[1]["path"]).path).respond_with_handler(later_page)
    return first.path.split("/")[2] + "/" + first.path.split("/")[3]


def _query(text: str) -> list[tuple[str, str]]:
    return [tuple(part.split("=", 1)) for part in text.split("&") if part]


def test_replay_follows_githubs_link_headers_as_given(httpserver):
    pages = recorded_issue_pages()
    assert len(pages) == 5
    repo = serve_recording(httpserver, pages)
    connector = GitHubConnector.from_settings(
        SourceSettings(base_url=httpserver.url_for("/"), token="recorded-token")
    )

    series = connector.daily_series(
        SeriesRequest.of(metric(repo, "opened_issues"), date(2022, 7, 18), date(2022, 7, 20))
    )

    # Expected counts, computed from the recording independently of the connector.
    items = [item for page in pages for item in page["response"]]
    expected = Counter(
        datetime.fromisoformat(item["created_at"].replace("Z", "+00:00")).date()
        for item in items
        if "pull_request" not in item
    )
    assert series["date"].tolist() == [date(2022, 7, 18), date(2022, 7, 19), date(2022, 7, 20)]
    assert values(series) == [float(expected[day]) for day in series["date"]]
    assert values(series) == [0.0, 13.0, 0.0]  # the 13 issues of the recording, all on July 19
    assert series["value"].dtype == float

    requested = [(request.path, request.query_string.decode()) for request, _ in httpserver.log]
    assert requested[0][0] == f"/repos/{repo}/issues"
    assert "state=all" in requested[0][1] and "since=2022-07-18T00%3A00%3A00Z" in requested[0][1]
    # Pages 2 to 5 exactly as the Link headers gave them: GitHub's /repositories/{id} form,
    # with the recorded parameters and nothing added (fetched side by side: in any order).
    assert sorted(requested[1:]) == [
        ("/repositories/515435940/issues", f"per_page=3&page={page}") for page in range(2, 6)
    ]


def test_replay_buckets_days_in_the_timezone(httpserver):
    repo = serve_recording(httpserver, recorded_issue_pages())
    connector = GitHubConnector.from_settings(
        SourceSettings(base_url=httpserver.url_for("/"), token="recorded-token")
    )
    # 04:38Z on July 19 is 21:38 on July 18 in Los Angeles.
    series = connector.daily_series(
        SeriesRequest.of(
            metric(repo, "opened_issues"),
            date(2022, 7, 18),
            date(2022, 7, 19),
            "America/Los_Angeles",
        )
    )
    assert values(series) == [13.0, 0.0]
    first = httpserver.log[0][0]
    assert first.args["since"] == "2022-07-18T07:00:00Z"  # local midnight, in UTC


def test_an_api_error_body_becomes_a_one_line_source_error(httpserver):
    errors = json.loads((FIXTURES / "github" / "errors.json").read_text())
    recorded = next(i for i in errors if i["status"] == 422)
    httpserver.expect_request("/repos/acme/web/issues").respond_with_json(
        recorded["response"], status=422
    )
    connector = GitHubConnector.from_settings(
        SourceSettings(base_url=httpserver.url_for("/"), token="ghp_0123456789")
    )
    with pytest.raises(SourceError) as failure:
        connector.daily_series(SeriesRequest.of(metric("acme/web", "closed_issues"), OCT_1, OCT_3))
    assert failure.value.source == "github"
    assert "HTTP 422" in str(failure.value) and "Validation Failed" in str(failure.value)
    assert "\n" not in str(failure.value)


# --- (b) hand-computed values against the sandbox --------------------------------------------------

TINY_PULLS = [
    {"created_at": "2026-10-01T09:00:00Z", "merged_at": "2026-10-02T10:00:00Z", "labels": ["bug"]},
    {
        "created_at": "2026-10-01T12:00:00Z",
        "merged_at": "2026-10-02T15:30:00Z",
        "labels": ["bug", "customer-reported"],
    },
    {
        "created_at": "2026-10-02T08:00:00Z",
        "merged_at": "2026-10-03T11:00:00Z",
        "labels": ["enhancement"],
    },
    # Closed without merging, then still open: never counted.
    {"created_at": "2026-10-02T09:00:00Z", "closed_at": "2026-10-03T12:00:00Z"},
    {"created_at": "2026-10-03T09:00:00Z", "draft": True},
    # Merged at 01:00Z on Oct 4: Oct 3 in Los Angeles, outside the window in UTC.
    {"created_at": "2026-10-03T20:00:00Z", "merged_at": "2026-10-04T01:00:00Z"},
]
TINY_ISSUES = [
    # 23:30Z on Oct 1 is 01:30 on Oct 2 in Oslo (UTC+2 until Oct 25).
    {
        "created_at": "2026-10-01T23:30:00Z",
        "closed_at": "2026-10-03T08:00:00Z",
        "state_reason": "completed",
        "labels": ["bug"],
    },
    {
        "created_at": "2026-10-02T10:00:00Z",
        "closed_at": "2026-10-03T09:00:00Z",
        "state_reason": "not_planned",
        "labels": ["performance", "customer-reported"],
    },
    {"created_at": "2026-10-03T14:00:00Z", "labels": ["performance"]},
    # Before the window: neither its opening nor anything else counts.
    {"created_at": "2026-09-20T10:00:00Z", "closed_at": "2026-09-21T10:00:00Z"},
]
TINY_RELEASES = [
    {"created_at": "2026-10-01T10:00:00Z", "published_at": "2026-10-01T12:00:00Z"},
    {"created_at": "2026-10-02T10:00:00Z", "published_at": None},  # a draft
    # Drafted before the window, published in it: counted on its publication day.
    {"created_at": "2026-09-29T10:00:00Z", "published_at": "2026-10-03T09:00:00Z"},
]


@pytest.fixture
def tiny(sandbox) -> str:
    sandbox.data.github.set_repo(
        "acme/tiny", pulls=TINY_PULLS, issues=TINY_ISSUES, releases=TINY_RELEASES
    )
    return "acme/tiny"


@pytest.mark.parametrize(
    ("count", "labels", "timezone_name", "expected"),
    [
        ("merged_pull_requests", (), "UTC", [0, 2, 1]),
        ("merged_pull_requests", ("bug",), "UTC", [0, 2, 0]),
        ("merged_pull_requests", ("bug", "customer-reported"), "UTC", [0, 1, 0]),
        ("merged_pull_requests", ("BUG",), "UTC", [0, 2, 0]),  # GitHub labels ignore case
        ("merged_pull_requests", (), "America/Los_Angeles", [0, 2, 2]),
        # Pull requests are listed by the issues endpoint too, and never counted as issues.
        ("opened_issues", (), "UTC", [1, 1, 1]),
        ("opened_issues", (), "Europe/Oslo", [0, 2, 1]),
        ("opened_issues", ("performance",), "UTC", [0, 1, 1]),
        ("opened_issues", ("performance", "customer-reported"), "UTC", [0, 1, 0]),
        ("closed_issues", (), "UTC", [0, 0, 2]),  # completed and not_planned alike
        ("closed_issues", ("bug",), "UTC", [0, 0, 1]),
        ("releases", (), "UTC", [1, 0, 1]),  # never the draft
    ],
)
def test_tiny_repository(github, tiny, count, labels, timezone_name, expected):
    series = github.daily_series(
        SeriesRequest.of(metric(tiny, count, labels), OCT_1, OCT_3, timezone_name)
    )
    assert series["date"].tolist() == [OCT_1, date(2026, 10, 2), OCT_3]
    assert values(series) == expected


def test_the_issues_endpoint_does_list_pull_requests(sandbox, github, tiny):
    listed = sandbox.data.github.issues(tiny, include_pulls=True)
    assert sum("pull_request" in item for item in listed) == len(TINY_PULLS)
    github.daily_series(
        SeriesRequest.of(
            metric(tiny, "opened_issues", ("performance",)), OCT_1, OCT_3, "Europe/Oslo"
        )
    )
    (request,) = sandbox.requests
    assert request.path == "/repos/acme/tiny/issues"
    assert request.query == {
        "state": "all",
        "sort": "updated",
        "direction": "desc",
        "per_page": "100",
        "since": "2026-09-30T22:00:00Z",
        "labels": "performance",
    }


def test_a_window_of_one_day_has_one_row(github, tiny):
    series = github.daily_series(
        SeriesRequest.of(metric(tiny, "merged_pull_requests"), OCT_3, OCT_3)
    )
    assert series.to_dict("records") == [{"date": OCT_3, "value": 1.0}]


def test_labels_do_not_apply_to_releases(github, tiny):
    with pytest.raises(SourceError, match="labels"):
        github.daily_series(SeriesRequest.of(metric(tiny, "releases", ("bug",)), OCT_1, OCT_3))


def test_a_missing_repository_is_not_found(sandbox, github):
    sandbox.data.github.remove_repo("acme/gone")
    with pytest.raises(SourceError) as failure:
        github.daily_series(
            SeriesRequest.of(metric("acme/gone", "merged_pull_requests"), OCT_1, OCT_3)
        )
    assert str(failure.value).startswith("github: not found (HTTP 404): /repos/acme/gone/pulls")


def test_a_bad_token_is_an_authentication_error(sandbox, tiny):
    connector = GitHubConnector.from_settings(SourceSettings(base_url=sandbox.url, token="invalid"))
    with pytest.raises(SourceError) as failure:
        connector.daily_series(SeriesRequest.of(metric(tiny, "releases"), OCT_1, OCT_3))
    assert str(failure.value) == (
        "github: authentication failed (HTTP 401): check GITHUB_TOKEN "
        "(the API says: Bad credentials)"
    )
    assert "invalid" not in str(failure.value)


# --- (c) generated data: many pages, and the early stop ---------------------------------------------


def expected_counts(items, stamp_field, start, end, zone="UTC", keep=lambda item: True):
    found = Counter(
        datetime.fromisoformat(item[stamp_field].replace("Z", "+00:00"))
        .astimezone(ZoneInfo(zone))
        .date()
        for item in items
        if item.get(stamp_field) and keep(item)
    )
    return [float(found[start + timedelta(days=i)]) for i in range((end - start).days + 1)]


def pages_requested(sandbox, repo: str, kind: str) -> int:
    by_id = f"/repositories/{repository_id(repo)}/{kind}"
    return sandbox.request_count(f"/repos/{repo}/{kind}") + sandbox.request_count(by_id)


def pages_down_to(items: list[dict], field: str, start: date) -> int:
    """The pages of 100 a newest-first reading by `field` needs: through the page of the
    first item older than `start` (its last item is older still)."""
    listed = sorted(items, key=lambda item: (item[field], item["number"]), reverse=True)
    moment = f"{start.isoformat()}T00:00:00Z"
    first_older = next((i for i, item in enumerate(listed) if item[field] < moment), None)
    return -(-len(listed) // 100) if first_older is None else first_older // 100 + 1


def test_recent_window_reads_only_the_first_pages(sandbox, github):
    repo = "acme/long-lived"
    yesterday = datetime.now(timezone.utc).date() - timedelta(days=1)
    start = yesterday - timedelta(days=2)
    pulls = sandbox.data.github.pulls(repo)
    closed = [p for p in pulls if p["state"] == "closed"]
    assert len(closed) > 1000  # more than ten pages of 100

    series = github.daily_series(
        SeriesRequest.of(metric(repo, "merged_pull_requests"), start, yesterday)
    )

    assert values(series) == expected_counts(pulls, "merged_at", start, yesterday)
    assert sum(values(series)) > 0
    needed = pages_down_to(closed, "updated_at", start)
    assert needed <= 2
    assert pages_requested(sandbox, repo, "pulls") == needed


def test_a_quarter_of_pull_requests_is_read_side_by_side_down_to_its_start_and_no_further():
    data = SandboxData(
        now=datetime(2026, 10, 1, 1, tzinfo=timezone.utc),
        volume={"github": 6},
        first_day=date(2026, 5, 1),
    )
    repo, start, end = "acme/busy", date(2026, 7, 1), date(2026, 9, 30)
    with Sandbox(data=data, sources=["okr_metrics.connectors.sandbox.github:register"]) as server:
        server.latency_seconds = 0.02  # so that pages asked at once overlap
        connector = GitHubConnector.from_settings(
            SourceSettings(base_url=server.url, token="sandbox-token")
        )
        series = connector.daily_series(
            SeriesRequest.of(metric(repo, "merged_pull_requests"), start, end)
        )
        asked = pages_requested(server, repo, "pulls")
    pulls = data.github.pulls(repo)
    assert values(series) == expected_counts(pulls, "merged_at", start, end)
    needed = pages_down_to([p for p in pulls if p["state"] == "closed"], "updated_at", start)
    assert needed > 10
    assert asked == needed
    # GitHub's own limit wherever its API is served, the sandbox's host included.
    limiter = connector.client.limiter
    assert limiter.limits.max_in_flight == 8
    assert 1 < limiter.most_in_flight <= 8


@pytest.mark.parametrize(
    ("count", "labels"),
    [
        ("merged_pull_requests", ("performance",)),
        ("opened_issues", ("performance", "customer-reported")),
        ("closed_issues", ()),
        ("releases", ()),
    ],
)
def test_a_quarter_of_generated_data_over_several_pages(sandbox, github, count, labels):
    repo = "acme/web"
    start, end = date(2026, 7, 1), date(2026, 9, 30)
    data = sandbox.data.github

    def labelled(item):
        names = {label["name"] for label in item["labels"]}
        return set(labels) <= names

    expected = {
        "merged_pull_requests": lambda: expected_counts(
            data.pulls(repo), "merged_at", start, end, keep=labelled
        ),
        "opened_issues": lambda: expected_counts(
            data.issues(repo), "created_at", start, end, keep=labelled
        ),
        "closed_issues": lambda: expected_counts(data.issues(repo), "closed_at", start, end),
        "releases": lambda: expected_counts(
            data.releases(repo), "published_at", start, end, keep=lambda r: not r["draft"]
        ),
    }[count]()

    series = github.daily_series(SeriesRequest.of(metric(repo, count, labels), start, end))

    assert len(series) == 92
    assert values(series) == expected
    assert sum(expected) > 0
    if count in ("merged_pull_requests", "closed_issues"):
        assert (
            pages_requested(sandbox, repo, "pulls" if count.startswith("merged") else "issues") > 2
        )


# --- (d) faults ---------------------------------------------------------------------------------


def test_two_server_errors_then_the_right_values(sandbox, github, tiny, sleeps):
    sandbox.add_fault(path_prefix="/repos/acme/tiny/pulls", status=500, times=2)
    series = github.daily_series(
        SeriesRequest.of(metric(tiny, "merged_pull_requests"), OCT_1, OCT_3)
    )
    assert values(series) == [0, 2, 1]
    assert len(sleeps) == 2
    assert sandbox.request_count("/repos/acme/tiny/pulls") == 3


def test_rate_limits_wait_as_told(sandbox, github, tiny, sleeps):
    sandbox.add_fault(path_prefix="/repos/acme/tiny/releases", status=429, retry_after=3, times=1)
    sandbox.add_fault(
        path_prefix="/repos/acme/tiny/releases", status=403, ratelimit_reset_in=60, times=1
    )
    series = github.daily_series(SeriesRequest.of(metric(tiny, "releases"), OCT_1, OCT_3))
    assert values(series) == [1, 0, 1]
    assert sleeps[0] == 3
    assert 55 <= sleeps[1] <= 61


def test_a_malformed_body_fails_the_source(sandbox, github, tiny):
    sandbox.add_fault(path_prefix="/repos/acme/tiny/issues", malformed=True, times=1)
    with pytest.raises(SourceError) as failure:
        github.daily_series(SeriesRequest.of(metric(tiny, "opened_issues"), OCT_1, OCT_3))
    assert str(failure.value) == (
        "github: malformed response body from /repos/acme/tiny/issues (HTTP 200, not JSON: "
        """application/json; charset=utf-8, 22 bytes: '{"message": "truncated')"""
    )


def test_persistent_errors_give_up(sandbox, github, tiny, sleeps):
    sandbox.add_fault(path_prefix="/repos/acme/tiny/", status=502)
    with pytest.raises(
        SourceError, match=r"gave up after 5 attempts .* last server error \(HTTP 502\)"
    ):
        github.daily_series(SeriesRequest.of(metric(tiny, "releases"), OCT_1, OCT_3))
    assert len(sleeps) == 4


# --- records the mapping cannot read -------------------------------------------------------------


@pytest.mark.parametrize(
    ("created_at", "message"),
    [
        (None, "github: issue 2: created_at is missing"),
        ("last tuesday", "github: issue 2: created_at 'last tuesday' is not a timestamp"),
        (1760519553, "github: issue 2: created_at 1760519553 is not a timestamp"),
    ],
)
def test_an_issue_without_a_readable_created_at_is_one_line(sandbox, github, created_at, message):
    repo = sandbox.data.github.set_repo(
        "acme/undated",
        issues=[{"created_at": "2026-10-02T10:00:00Z"}, {"created_at": "2026-10-02T11:00:00Z"}],
    )
    # The second issue as a broken API would list it.
    if created_at is None:
        del repo.issues[1]["created_at"]
    else:
        repo.issues[1]["created_at"] = created_at
    with pytest.raises(SourceError) as failure:
        github.daily_series(SeriesRequest.of(metric("acme/undated", "opened_issues"), OCT_1, OCT_3))
    assert str(failure.value) == message


def test_a_secondary_rate_limit_is_waited_out(sandbox, github, tiny, sleeps):
    # GitHub's secondary rate limit: a 403 whose message says so, with no rate headers.
    sandbox.add_fault(
        path_prefix="/repos/acme/tiny/releases",
        status=403,
        body={"message": "You have exceeded a secondary rate limit."},
        times=1,
    )
    series = github.daily_series(SeriesRequest.of(metric(tiny, "releases"), OCT_1, OCT_3))
    assert sum(values(series)) > 0
    assert len(sleeps) == 1
