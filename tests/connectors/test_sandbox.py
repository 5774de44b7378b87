"""The sandbox server itself: GitHub's wire format, faults, the request log, determinism,
and which APIs it serves (its own modules, and entry points)."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest
import requests

from okr_metrics.connectors.registry import Source
from okr_metrics.connectors.sandbox import (
    Sandbox,
    SandboxData,
    SandboxRequest,
    SandboxResponse,
    registry,
)
from okr_metrics.connectors.sandbox import api as sandbox_api
from okr_metrics.connectors.sandbox.github import repository_id
from okr_metrics.connectors.sandbox.google_analytics import Fact, GaProperty

AUTH = {"Authorization": "Bearer sandbox-token"}
NOW = datetime(2026, 10, 15, 12, 0, tzinfo=timezone.utc)


def get(sandbox, path: str, headers=AUTH, **params) -> requests.Response:
    return requests.get(f"{sandbox.url}{path}", params=params, headers=headers, timeout=5)


def control(sandbox, method: str, name: str, body=None) -> requests.Response:
    return requests.request(method, f"{sandbox.url}/_sandbox/{name}", json=body, timeout=5)


# --- GitHub's wire format ----------------------------------------------------------------------


def test_no_token_is_githubs_401(sandbox):
    response = get(sandbox, "/repos/acme/web/pulls", headers={})
    assert response.status_code == 401
    assert response.json() == {
        "message": "Requires authentication",
        "documentation_url": "https://docs.github.com/rest",
        "status": "401",
    }


def test_a_bad_token_is_bad_credentials(sandbox):
    response = get(sandbox, "/repos/acme/web/pulls", headers={"Authorization": "token invalid"})
    assert response.status_code == 401
    assert response.json()["message"] == "Bad credentials"


def test_unknown_paths_are_githubs_404(sandbox):
    for path in (
        "/nope",
        "/repos/acme/web/commits",
        f"/repositories/{repository_id('x/never')}/issues",
    ):
        response = get(sandbox, path)
        assert response.status_code == 404, path
        assert response.json()["message"] == "Not Found"
        assert response.json()["documentation_url"].startswith("https://docs.github.com/")


def test_github_headers(sandbox):
    response = get(sandbox, "/repos/acme/web/releases", per_page=5)
    headers = response.headers
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["x-github-api-version-selected"] == "2022-11-28"
    assert headers["x-ratelimit-limit"] == "5000"
    assert int(headers["x-ratelimit-remaining"]) < 5000
    assert int(headers["x-ratelimit-reset"]) > time.time()
    assert headers["x-ratelimit-resource"] == "core"
    assert int(headers["x-ratelimit-used"]) >= 1


def test_link_header_shape_and_following_it_to_the_end(sandbox):
    repo = "acme/linked"
    sandbox.data.github.set_repo(
        repo,
        issues=[
            {"created_at": f"2026-10-{day:02d}T10:00:00Z", "labels": ["bug"]} for day in range(1, 8)
        ],
    )
    first = get(sandbox, f"/repos/{repo}/issues", state="all", per_page=3, labels="bug")
    origin = f"{sandbox.url}/repositories/{repository_id(repo)}/issues"
    assert first.headers["Link"] == (
        f'<{origin}?state=all&per_page=3&labels=bug&page=2>; rel="next", '
        f'<{origin}?state=all&per_page=3&labels=bug&page=3>; rel="last"'
    )
    middle = requests.get(first.links["next"]["url"], headers=AUTH, timeout=5)
    assert [part.split("; ")[1] for part in middle.headers["Link"].split(", ")] == [
        'rel="prev"',
        'rel="next"',
        'rel="last"',
        'rel="first"',
    ]
    last = requests.get(middle.links["next"]["url"], headers=AUTH, timeout=5)
    assert set(last.links) == {"prev", "first"}
    numbers = [i["number"] for page in (first, middle, last) for i in page.json()]
    assert numbers == [7, 6, 5, 4, 3, 2, 1]  # newest first


def test_a_single_page_has_no_link_header(sandbox):
    sandbox.data.github.set_repo("acme/one-page", releases=[{"created_at": "2026-10-01T00:00:00Z"}])
    response = get(sandbox, "/repos/acme/one-page/releases")
    assert "Link" not in response.headers
    assert len(response.json()) == 1


def test_set_repo_fills_in_githubs_fields(sandbox):
    sandbox.data.github.set_repo(
        "acme/fields",
        pulls=[
            {
                "created_at": "2026-10-01T09:00:00Z",
                "merged_at": "2026-10-02T10:00:00Z",
                "labels": ["bug"],
            }
        ],
        issues=[
            {
                "created_at": "2026-10-01T08:00:00Z",
                "closed_at": "2026-10-03T08:00:00Z",
                "state_reason": "not_planned",
            }
        ],
        releases=[{"created_at": "2026-10-01T10:00:00Z", "published_at": None}],
    )
    (pull,) = get(sandbox, "/repos/acme/fields/pulls", state="all").json()
    assert pull["number"] == 2 and pull["state"] == "closed" and pull["draft"] is False
    assert pull["merged_at"] == pull["closed_at"] == pull["updated_at"] == "2026-10-02T10:00:00Z"
    assert pull["labels"][0]["name"] == "bug" and pull["user"]["login"]
    assert pull["html_url"] == "https://github.com/acme/fields/pull/2"
    assert pull["url"] == f"{sandbox.url}/repos/acme/fields/pulls/2"

    listed = get(sandbox, "/repos/acme/fields/issues", state="all").json()
    issue, pull_as_issue = sorted(listed, key=lambda item: item["number"])
    assert issue["state_reason"] == "not_planned" and "pull_request" not in issue
    assert pull_as_issue["pull_request"]["merged_at"] == "2026-10-02T10:00:00Z"

    (release,) = get(sandbox, "/repos/acme/fields/releases").json()
    assert release["draft"] is True and release["published_at"] is None
    assert {"id", "tag_name", "name", "prerelease", "created_at"} <= set(release)


def test_an_answers_api_urls_are_served_with_the_servers_own_root():
    root, served = "https://api.github.com", "http://127.0.0.1:8765"
    body = [
        {
            "url": f"{root}/repos/acme/web/pulls/1",
            "exactly": root,
            "within": f"see {root}/x",
            "quoted": f'say "{root}/y"',
            "list": [f"{root}/z", "other"],
        }
    ]
    response = SandboxResponse(200, body, served_root=(root, served))
    assert json.loads(response.encoded()) == [
        {
            "url": f"{served}/repos/acme/web/pulls/1",
            "exactly": served,
            "within": f"see {root}/x",  # only values that start with the root
            "quoted": f'say "{root}/y"',
            "list": [f"{served}/z", "other"],
        }
    ]
    assert body[0]["url"] == f"{root}/repos/acme/web/pulls/1"  # the body keeps its own


def test_issue_filters(sandbox):
    sandbox.data.github.set_repo(
        "acme/filters",
        issues=[
            {"created_at": "2026-10-01T10:00:00Z", "labels": ["performance", "customer-reported"]},
            {"created_at": "2026-10-02T10:00:00Z", "labels": ["performance"]},
            {"created_at": "2026-10-03T10:00:00Z", "closed_at": "2026-10-04T10:00:00Z"},
        ],
    )

    def numbers(**params):
        return [i["number"] for i in get(sandbox, "/repos/acme/filters/issues", **params).json()]

    assert numbers() == [2, 1]  # state=open by default, newest first
    assert numbers(state="closed") == [3]
    assert numbers(state="all", direction="asc") == [1, 2, 3]
    assert numbers(state="all", labels="performance,customer-reported") == [1]
    assert numbers(state="all", since="2026-10-02T00:00:00Z", sort="updated") == [3, 2]
    assert get(sandbox, "/repos/acme/filters/issues", state="bogus").status_code == 422


def test_per_page_is_capped_at_100(sandbox):
    response = get(sandbox, "/repos/acme/web/pulls", state="all", per_page=500)
    assert len(response.json()) == 100


# --- faults and latency --------------------------------------------------------------------------


def test_faults_through_the_control_endpoint(sandbox):
    body = {
        "faults": [
            {"path_prefix": "/repos/acme/web/pulls", "status": 503, "times": 1},
            {"path_prefix": "/repos/acme/web/pulls", "status": 429, "retry_after": 7, "times": 1},
            {
                "path_prefix": "/repos/acme/web/pulls",
                "status": 403,
                "ratelimit_reset_in": 30,
                "times": 1,
            },
            {"path_prefix": "/repos/acme/web/pulls", "malformed": True, "times": 1},
        ]
    }
    assert control(sandbox, "POST", "faults", body).json()["added"] == 4
    assert len(control(sandbox, "GET", "faults").json()["faults"]) == 4

    unavailable = get(sandbox, "/repos/acme/web/pulls")
    assert unavailable.status_code == 503 and "message" in unavailable.json()
    limited = get(sandbox, "/repos/acme/web/pulls")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    exhausted = get(sandbox, "/repos/acme/web/pulls")
    assert exhausted.status_code == 403
    assert exhausted.headers["x-ratelimit-remaining"] == "0"
    assert 0 < int(exhausted.headers["x-ratelimit-reset"]) - time.time() <= 31
    assert exhausted.json()["message"].startswith("API rate limit exceeded")
    malformed = get(sandbox, "/repos/acme/web/pulls")
    assert malformed.status_code == 200
    with pytest.raises(ValueError):
        malformed.json()
    assert get(sandbox, "/repos/acme/web/pulls").status_code == 200  # every fault used up


def test_faults_without_times_stay_until_cleared(sandbox):
    sandbox.add_fault(path_prefix="/repos/acme/web/releases", status=500)
    assert [get(sandbox, "/repos/acme/web/releases").status_code for _ in range(3)] == [500] * 3
    assert get(sandbox, "/repos/acme/web/pulls").status_code == 200  # other paths unaffected
    control(sandbox, "DELETE", "faults")
    assert get(sandbox, "/repos/acme/web/releases").status_code == 200


def test_a_bad_fault_is_refused(sandbox):
    response = control(sandbox, "POST", "faults", {"faults": [{"path_prefix": "/", "statuz": 500}]})
    assert response.status_code == 400 and "statuz" in response.json()["message"]


def test_delay_and_latency(sandbox):
    sandbox.add_fault(path_prefix="/repos/acme/web/releases", delay_seconds=0.2, times=1)
    started = time.perf_counter()
    assert get(sandbox, "/repos/acme/web/releases").status_code == 200
    assert time.perf_counter() - started >= 0.2

    control(sandbox, "POST", "faults", {"latency_seconds": 0.1})
    started = time.perf_counter()
    get(sandbox, "/repos/acme/web/releases")
    assert time.perf_counter() - started >= 0.1


# --- the request log -----------------------------------------------------------------------------


def test_request_counter(sandbox):
    get(sandbox, "/repos/acme/web/pulls", state="closed")
    get(sandbox, "/repos/acme/web/issues")
    get(sandbox, "/nope")
    assert sandbox.request_count() == 3
    assert sandbox.request_count("/repos/acme/web/") == 2
    assert sandbox.requests[0] == ("GET", "/repos/acme/web/pulls", {"state": "closed"})

    log = control(sandbox, "GET", "requests").json()  # control requests are not counted
    assert log["count"] == 3
    assert log["requests"][1] == {"method": "GET", "path": "/repos/acme/web/issues", "query": {}}

    control(sandbox, "POST", "reset")
    assert sandbox.request_count() == 0


# --- determinism and the plug-in design ------------------------------------------------------------


def test_two_sandboxes_serve_identical_data():
    bodies = []
    for _ in range(2):
        with Sandbox(data=SandboxData(now=NOW)) as server:
            responses = [
                get(server, "/repos/acme/same/issues", state="all", per_page=100, page=page)
                for page in (1, 5)
            ]
            responses.append(get(server, "/repos/acme/same/releases"))
            # The URLs name the server's own port; every other byte must match.
            bodies.append([r.text.replace(server.url, "SANDBOX") for r in responses])
            generated = server.data.github.pulls("acme/same")
    assert bodies[0] == bodies[1]
    assert all(len(body) > 1000 for body in bodies[0])
    other = Sandbox(
        data=SandboxData(now=NOW), sources=["okr_metrics.connectors.sandbox.github:register"]
    )
    try:
        assert other.data.github.pulls("acme/other") != generated
    finally:
        other.stop()


def test_generated_data_looks_like_a_busy_repository():
    data = Sandbox(
        data=SandboxData(now=NOW), sources=["okr_metrics.connectors.sandbox.github:register"]
    )
    try:
        github = data.data.github
        pulls, issues, releases = (
            github.pulls("acme/busy"),
            github.issues("acme/busy"),
            github.releases("acme/busy"),
        )
    finally:
        data.stop()
    stamps = [
        item[name]
        for item in pulls + issues + releases
        for name in ("created_at", "updated_at", "closed_at", "merged_at", "published_at")
        if item.get(name)
    ]
    assert min(stamps).startswith("2025-01-01") and max(stamps) <= "2026-10-15T12:00:00Z"
    in_q3 = [p for p in pulls if "2026-07-01" <= (p["merged_at"] or "") < "2026-10-01"]
    assert 150 < len(in_q3) < 400  # a few hundred a quarter: several pages of 100
    pairs = [
        i
        for i in issues
        if {lb["name"] for lb in i["labels"]} == {"performance", "customer-reported"}
    ]
    assert 0.2 < len(pairs) / len(issues) < 0.4
    assert {i["state_reason"] for i in issues} == {"completed", "not_planned", None}
    assert any(r["draft"] and r["published_at"] is None for r in releases)
    published = [r for r in releases if not r["draft"]]
    assert 40 < len(published) < 80  # about one every ten days over 21 months


def test_a_source_plugs_in_with_its_own_routes():
    def search(request: SandboxRequest) -> SandboxResponse:
        return SandboxResponse(
            201,
            {
                "object": request.path_params["object"],
                "limit": request.body["limit"],
                "q": request.query.get("q"),
                "token": request.token,
            },
            {"X-Sandbox": "yes"},
        )

    with Sandbox(sources=[]) as server:
        server.router.add("POST", "/crm/v3/objects/{object}/search", search)
        response = requests.post(
            f"{server.url}/crm/v3/objects/deals/search?q=x",
            json={"limit": 5},
            headers={"Authorization": "Bearer abc"},
            timeout=5,
        )
        assert response.status_code == 201 and response.headers["X-Sandbox"] == "yes"
        assert response.json() == {"object": "deals", "limit": 5, "q": "x", "token": "abc"}
        assert server.request_count("/crm/") == 1


# --- which APIs it serves: its own list, and entry points -------------------------------------


class FakeEntryPoint:
    """What `importlib.metadata.entry_points` yields, with a `load` of our choosing."""

    group = registry.ENTRY_POINT_GROUP

    def __init__(self, name: str, load) -> None:
        self.name, self.value, self._load = name, f"okr_{name}.sandbox:register", load

    def load(self):
        return self._load()


def with_entry_points(monkeypatch, *found: FakeEntryPoint) -> None:
    def entry_points(group: str):
        return [e for e in found if e.group == group]

    monkeypatch.setattr(registry, "entry_points", entry_points)


def test_the_production_registry_never_names_a_test_double():
    assert "sandbox" not in {f.name for f in dataclasses.fields(Source)}
    assert registry.BUILTIN_APIS == ("google_analytics", "jira", "github", "salesforce", "hubspot")


def test_by_default_every_builtin_api_is_served():
    with Sandbox(data=SandboxData(now=NOW)) as server:
        for name in registry.BUILTIN_APIS:
            assert getattr(server.data, name) is not None, name
        assert get(server, "/rest/api/3/search/jql").status_code == 401  # Jira's basic auth


def test_sources_may_be_registrars_or_their_names():
    def pings(router, data) -> None:
        router.add("GET", "/ping", lambda request: SandboxResponse(200, {"pong": True}))

    with Sandbox(sources=[pings, "okr_metrics.connectors.sandbox.github:register"]) as server:
        assert get(server, "/ping").json() == {"pong": True}
        assert get(server, "/repos/acme/web/releases").status_code == 200
        with pytest.raises(AttributeError, match="hubspot"):
            server.data.hubspot  # noqa: B018 - not registered


def test_an_entry_point_adds_an_api(monkeypatch):
    def register(router, data) -> None:
        incidents = data.source("pagerduty", lambda data: {"incidents": [{"id": "P1"}]})
        router.add("GET", "/incidents", lambda request: SandboxResponse(200, incidents))

    with_entry_points(monkeypatch, FakeEntryPoint("pagerduty", lambda: register))
    with Sandbox() as server:
        assert get(server, "/incidents").json() == {"incidents": [{"id": "P1"}]}
        assert server.data.pagerduty == {"incidents": [{"id": "P1"}]}
        assert get(server, "/repos/acme/web/releases").status_code == 200  # the built-ins too


def test_a_broken_entry_point_names_itself(monkeypatch):
    def broken():
        raise ImportError("No module named 'okr_pagerduty'")

    with_entry_points(monkeypatch, FakeEntryPoint("pagerduty", broken))
    with pytest.raises(registry.SandboxPluginError) as raised:
        Sandbox()
    message = str(raised.value)
    assert "'pagerduty'" in message and "okr_metrics.sandboxes" in message
    assert "No module named 'okr_pagerduty'" in message

    with_entry_points(monkeypatch, FakeEntryPoint("pagerduty", lambda: "not a function"))
    with pytest.raises(registry.SandboxPluginError, match="register\\(router, data\\)"):
        Sandbox()


def test_an_entry_point_cannot_replace_a_builtin_api(monkeypatch):
    with_entry_points(monkeypatch, FakeEntryPoint("github", lambda: lambda router, data: None))
    with pytest.raises(registry.SandboxPluginError, match="'github'"):
        Sandbox()


@pytest.mark.parametrize(
    ("moment", "zone", "options", "expected"),
    [
        (NOW, "UTC", {}, "2026-10-15T12:00:00Z"),
        (NOW, "Asia/Kolkata", {"millis": True, "z": False}, "2026-10-15T17:30:00.000+0530"),
        (NOW, "America/St_Johns", {"z": False}, "2026-10-15T09:30:00-0230"),
        (NOW, "Asia/Kolkata", {"millis": True}, "2026-10-15T17:30:00.000Z"),
        # Amsterdam's mean time of 1850, 19 minutes 32 seconds ahead of UTC.
        (
            datetime(1850, 1, 1, tzinfo=timezone.utc),
            "Europe/Amsterdam",
            {"z": False},
            "1850-01-01T00:19:32+001932",
        ),
        (datetime(1850, 1, 1, tzinfo=timezone.utc), "Europe/Amsterdam", {}, "1850-01-01T00:19:32Z"),
    ],
)
def test_sandbox_timestamps_are_written_in_the_zone_with_a_basic_offset(
    moment, zone, options, expected
):
    assert sandbox_api.timestamp(moment, zone=ZoneInfo(zone), **options) == expected


def _ga_facts(*days: int) -> list[Fact]:
    return [
        Fact(date(2026, 10, day), {"n": str(i)}, {"activeUsers": 1.0}) for i, day in enumerate(days)
    ]


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        ((1, 2, 2, 3, 5, 8), ["1", "2", "3", "4"]),  # in day order: bisected
        ((5, 1, 8, 2, 3, 2), ["0", "3", "4", "5"]),  # set out of order: each looked at
    ],
)
def test_a_report_reads_the_facts_of_its_days_in_their_order(days, expected):
    prop = GaProperty("1", _ga_facts(*days))
    found = prop.facts_between(date(2026, 10, 2), date(2026, 10, 5))
    assert [fact.dimensions["n"] for fact in found] == expected


def test_facts_changed_after_a_report_are_read_again():
    prop = GaProperty("1", _ga_facts(1, 2, 3))
    assert len(prop.facts_between(date(2026, 10, 2), date(2026, 10, 3))) == 2
    prop.facts.append(Fact(date(2026, 10, 2), {"n": "late"}, {"activeUsers": 1.0}))
    found = prop.facts_between(date(2026, 10, 2), date(2026, 10, 3))
    assert [fact.dimensions["n"] for fact in found] == ["1", "2", "late"]
    prop.facts = _ga_facts(3, 4)
    assert [
        f.dimensions["n"] for f in prop.facts_between(date(2026, 10, 1), date(2026, 10, 3))
    ] == ["0"]
