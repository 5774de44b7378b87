"""The Jira connector: against fixtures written from Jira's API reference, and the sandbox."""

from __future__ import annotations

import base64
import json
import logging
import math
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from okr_metrics.connectors.base import SourceError, SourceSettings
from okr_metrics.connectors.jira import client
from okr_metrics.connectors.jira.client import (
    BY_CREATED,
    PAGE_SIZE,
    JiraConnector,
    search_jql,
    unsliced,
    without_order_by,
)
from okr_metrics.connectors.jira.params import JiraMetric
from okr_metrics.connectors.kit import Record, SeriesRequest, parse_timestamp

FIXTURES = Path(__file__).parents[1] / "fixtures" / "jira"
SEARCH = "/rest/api/3/search/jql"
EMAIL = "okr-bot@example.com"
TOKEN = "ATATT3xFfGF0-jira-sandbox-token-42"
OCT_1, OCT_2, OCT_3 = date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3)
SUPPORT = 'project = SUP AND issuetype = "Support Ticket"'


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def created(jql: str = SUPPORT) -> JiraMetric:
    return JiraMetric(source="jira", jql=jql, count="created")


def resolved(jql: str = SUPPORT) -> JiraMetric:
    return JiraMetric(source="jira", jql=jql, count="resolved")


def within(jql: str = SUPPORT, hours: float = 2) -> JiraMetric:
    numerator, _ = JiraMetric(
        source="jira", jql=jql, measure="resolved_within", hours=hours
    ).ratio_parts()
    return numerator


def values(frame) -> list[float]:
    return frame["value"].tolist()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def jira(sandbox, sleeps) -> JiraConnector:
    """The connector, pointed at the sandbox the way the environment would point it."""
    settings = SourceSettings.from_env(
        JiraConnector.env,
        {"JIRA_BASE_URL": sandbox.url, "JIRA_EMAIL": EMAIL, "JIRA_API_TOKEN": TOKEN},
    )
    return JiraConnector.from_settings(settings, sleep=sleeps, jitter=lambda: 0.0)


# --- settings and the pieces ---------------------------------------------------------------------


def test_without_credentials_the_source_is_skipped():
    settings = SourceSettings.from_env(
        JiraConnector.env, {"JIRA_BASE_URL": "https://a.atlassian.net"}
    )
    assert JiraConnector.missing_settings(settings) == "JIRA_API_TOKEN, JIRA_EMAIL not set"


def test_the_client_sends_basic_auth_and_redacts_it():
    connector = JiraConnector.from_settings(
        SourceSettings(base_url="https://acme.atlassian.net/", token=TOKEN, user=EMAIL)
    )
    encoded = base64.b64encode(f"{EMAIL}:{TOKEN}".encode()).decode()
    headers = connector.client.session.headers
    assert headers["Authorization"] == f"Basic {encoded}"
    assert headers["Accept"] == "application/json"
    assert connector.client.base_url == "https://acme.atlassian.net"
    assert connector.client.redact(f"a {TOKEN} b {encoded} c") == "a *** b *** c"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-10-15T09:12:33.123+0530", datetime(2026, 10, 15, 3, 42, 33, 123000, timezone.utc)),
        ("2026-10-15T09:12:33.123+0000", datetime(2026, 10, 15, 9, 12, 33, 123000, timezone.utc)),
        ("2026-10-15T09:12:33.123-0700", datetime(2026, 10, 15, 16, 12, 33, 123000, timezone.utc)),
        ("2026-10-15T09:12:33+05:30", datetime(2026, 10, 15, 3, 42, 33, tzinfo=timezone.utc)),
    ],
)
def test_jira_timestamps(text, expected):
    assert parse_timestamp(text) == expected


def test_the_query_wraps_the_users_jql_and_appends_a_widened_window():
    assert search_jql(SUPPORT, "resolved", OCT_1, OCT_3) == (
        '(project = SUP AND issuetype = "Support Ticket") '
        'AND resolved >= "2026-09-29" AND resolved < "2026-10-06"'
    )
    # An ORDER BY cannot go inside the parentheses; it is dropped (the order does not matter).
    assert search_jql(
        "project = SUP or priority = High ORDER BY created DESC", "created", OCT_1, OCT_1
    ) == (
        '(project = SUP or priority = High) AND created >= "2026-09-29" AND created < "2026-10-04"'
    )


@pytest.mark.parametrize(
    ("jql", "expected"),
    [
        ("project = SUP order by key", "project = SUP"),
        ('summary ~ "order by" ORDER BY created', 'summary ~ "order by"'),
        ("labels = reorder", "labels = reorder"),
        ("ORDER BY created", ""),
    ],
)
def test_order_by_is_found_outside_quotes_only(jql, expected):
    assert without_order_by(jql) == expected


# --- (a) replaying the reference pages with pytest-httpserver --------------------------------------


def serve_pages(httpserver: HTTPServer) -> list[dict]:
    """Page 1 for a first request, page 2 for the token of page 1; returns the bodies received."""
    first, second = fixture("search-jql-page-1.json"), fixture("search-jql-page-2.json")
    received: list[dict] = []

    def respond(request: Request) -> Response:
        body = json.loads(request.data)
        received.append(body)
        page = second if body.get("nextPageToken") == "CAEaAggD" else first
        answer = page["response"]
        return Response(json.dumps(answer["body"]), answer["status"], answer["headers"])

    httpserver.expect_request(SEARCH, method="POST").respond_with_handler(respond)
    return received


@pytest.fixture
def replay(httpserver, monkeypatch) -> tuple[JiraConnector, list[dict]]:
    received = serve_pages(httpserver)
    monkeypatch.setattr(JiraConnector, "page_size", 100)  # the recording's maxResults
    connector = JiraConnector.from_settings(
        SourceSettings(base_url=httpserver.url_for("/"), token=TOKEN, user=EMAIL)
    )
    return connector, received


@pytest.mark.parametrize(
    ("zone", "resolved_days", "within_days"),
    [
        # See tests/fixtures/jira/README.md for the days of each issue.
        ("UTC", [2, 2, 2], [2, 1, 0]),
        # SUP-102, resolved at 04:00 +0530, is Oct 2 in India; SUP-106 moves out to Oct 4.
        ("Asia/Kolkata", [1, 3, 1], [1, 2, 0]),
    ],
)
def test_replay_two_pages_serve_both_resolved_series(replay, zone, resolved_days, within_days):
    connector, received = replay
    assert (
        values(connector.daily_series(SeriesRequest.of(resolved(), OCT_1, OCT_3, zone)))
        == resolved_days
    )
    # Exactly 2 hours after creation counts as within 2 hours (SUP-103); 2 h and 1 ms does not.
    assert (
        values(connector.daily_series(SeriesRequest.of(within(), OCT_1, OCT_3, zone)))
        == within_days
    )
    # One search (two pages) for both series of the KR.
    assert received == [
        fixture("search-jql-page-1.json")["request"]["body"],
        fixture("search-jql-page-2.json")["request"]["body"],
    ]


def test_replay_counts_created_issues(replay):
    connector, received = replay
    series = connector.daily_series(SeriesRequest.of(created(), OCT_1, OCT_3))
    assert series["date"].tolist() == [OCT_1, OCT_2, OCT_3]
    assert values(series) == [2, 3, 0]  # SUP-105 was created at 12:00 +0200: 10:00 UTC
    assert series["value"].dtype == float
    assert received[0]["jql"] == (
        '(project = SUP AND issuetype = "Support Ticket") '
        'AND created >= "2026-09-29" AND created < "2026-10-06" ORDER BY created ASC'
    )


def test_replay_the_whole_measure_is_the_daily_share(replay):
    connector, _ = replay
    metric = JiraMetric(source="jira", jql=SUPPORT, measure="resolved_within", hours=2)
    series = connector.daily_series(SeriesRequest.of(metric, OCT_1, OCT_3))
    assert series["date"].tolist() == [OCT_1, OCT_2, OCT_3]
    assert values(series) == [1.0, 0.5, 0.0]


def test_a_jql_error_is_a_one_line_source_error(httpserver):
    recorded = fixture("jql-error-400.json")["response"]
    httpserver.expect_request(SEARCH, method="POST").respond_with_json(
        recorded["body"], status=recorded["status"]
    )
    connector = JiraConnector.from_settings(
        SourceSettings(base_url=httpserver.url_for("/"), token=TOKEN, user=EMAIL)
    )
    with pytest.raises(SourceError) as failure:
        connector.daily_series(
            SeriesRequest.of(created("project = SUP AND resolution = "), OCT_1, OCT_3)
        )
    assert str(failure.value).startswith(
        "jira: request failed (HTTP 400) on POST /rest/api/3/search/jql (the API says: "
        "Error in the JQL Query: Expecting either a value, list or function but got ')'."
    )
    assert "\n" not in str(failure.value)


@pytest.mark.parametrize(
    "page",
    [
        {"issues": [], "nextPageToken": "CAEaAggE", "isLast": False},  # an empty page
        {
            "issues": [
                {"id": "1", "key": "SUP-1", "fields": {"created": "2026-10-01T09:00:00.000+0000"}}
            ]
        },
        {
            "issues": [
                {"id": "1", "key": "SUP-1", "fields": {"created": "2026-10-01T09:00:00.000+0000"}}
            ],
            "nextPageToken": "CAEaAggE",
            "isLast": True,
        },
    ],
    ids=["empty page", "no token", "isLast"],
)
def test_pagination_stops(httpserver, page):
    httpserver.expect_request(SEARCH, method="POST").respond_with_json(page)
    connector = JiraConnector.from_settings(
        SourceSettings(base_url=httpserver.url_for("/"), token=TOKEN, user=EMAIL)
    )
    connector.daily_series(SeriesRequest.of(created(), OCT_1, OCT_1))
    assert len(httpserver.log) == 1


# --- (b) hand-computed values against the sandbox ------------------------------------------------------

TINY = [
    # Resolved exactly 2 hours after creation: within 2 hours.
    {"created": "2026-10-01T09:00:00.000+0000", "resolutiondate": "2026-10-01T11:00:00.000+0000"},
    # Resolved at 03:30 +0530 (22:00 UTC on Oct 1), exactly 2 hours after creation: Oct 1 in
    # UTC, Oct 2 in India (created at 01:30 there).
    {"created": "2026-10-01T20:00:00.000+0000", "resolutiondate": "2026-10-02T03:30:00.000+0530"},
    # Two hours and a second: not within.
    {"created": "2026-10-02T10:00:00.000+0000", "resolutiondate": "2026-10-02T12:00:01.000+0000"},
    {"created": "2026-10-02T23:00:00.000+0000"},  # unresolved; Oct 3 in India
    # Another type: out of the support JQL.
    {
        "created": "2026-10-03T05:00:00.000+0000",
        "resolutiondate": "2026-10-03T06:00:00.000+0000",
        "issuetype": "Bug",
    },
    # Created before the window (Oct 1 in India), resolved 4 hours later on Oct 1.
    {"created": "2026-09-30T21:00:00.000+0000", "resolutiondate": "2026-10-01T01:00:00.000+0000"},
]
TINY_JQL = 'project = TINY AND issuetype = "Support Ticket"'


@pytest.fixture
def tiny(sandbox) -> str:
    sandbox.data.jira.set_issues("TINY", TINY)
    return TINY_JQL


@pytest.mark.parametrize(
    ("metric", "zone", "expected"),
    [
        (created(TINY_JQL), "UTC", [2, 2, 0]),
        (created(TINY_JQL), "Asia/Kolkata", [2, 2, 1]),
        (created("project = TINY"), "UTC", [2, 2, 1]),  # the bug too
        (resolved(TINY_JQL), "UTC", [3, 1, 0]),
        (resolved(TINY_JQL), "Asia/Kolkata", [2, 2, 0]),
        (within(TINY_JQL), "UTC", [2, 0, 0]),
        (within(TINY_JQL), "Asia/Kolkata", [1, 1, 0]),
        (within(TINY_JQL, hours=4), "UTC", [3, 1, 0]),  # 4 h exactly counts too
    ],
)
def test_tiny_project(jira, tiny, metric, zone, expected):
    series = jira.daily_series(SeriesRequest.of(metric, OCT_1, OCT_3, zone))
    assert series["date"].tolist() == [OCT_1, OCT_2, OCT_3]
    assert values(series) == expected


def test_the_sandbox_received_the_exact_query(sandbox, jira, tiny):
    jira.daily_series(SeriesRequest.of(resolved(tiny), OCT_1, OCT_3, "Asia/Kolkata"))
    assert sandbox.request_bodies(SEARCH) == [
        {
            "jql": '(project = TINY AND issuetype = "Support Ticket") '
            'AND resolved >= "2026-09-29" AND resolved < "2026-10-06" ORDER BY created ASC',
            "fields": ["created", "resolutiondate"],
            "maxResults": PAGE_SIZE,
        }
    ]


def test_one_search_serves_both_series_of_a_resolved_within_kr(sandbox, jira, tiny, monkeypatch):
    monkeypatch.setattr(JiraConnector, "page_size", 2)
    numerator, denominator = JiraMetric(
        source="jira", jql=tiny, measure="resolved_within", hours=2
    ).ratio_parts()
    assert values(jira.daily_series(SeriesRequest.of(numerator, OCT_1, OCT_3))) == [2, 0, 0]
    assert values(jira.daily_series(SeriesRequest.of(denominator, OCT_1, OCT_3))) == [3, 1, 0]
    # Four resolved support tickets in the widened window, two a page: one search of 2 pages.
    bodies = sandbox.request_bodies(SEARCH)
    assert len(bodies) == 2
    assert "nextPageToken" not in bodies[0] and bodies[1]["nextPageToken"]
    assert {body["jql"] for body in bodies} == {
        search_jql(tiny, "resolved", OCT_1, OCT_3) + BY_CREATED
    }
    # The created count is another search: five support tickets, three pages.
    jira.daily_series(SeriesRequest.of(created(tiny), OCT_1, OCT_3))
    assert sandbox.request_count(SEARCH) == 2 + 3


def test_jql_dates_in_any_user_time_zone_give_the_same_days(sandbox, jira, tiny):
    # Jira reads the query's dates in the API user's time zone, which may be far from the
    # definitions' one: the widened window still holds every issue of the days asked for.
    jira_data = sandbox.data.jira
    try:
        for user_zone in ("Pacific/Kiritimati", "Etc/GMT+12", "Asia/Kolkata"):
            jira_data.user_timezone = user_zone
            connector = JiraConnector.from_settings(
                SourceSettings(base_url=sandbox.url, token=TOKEN, user=EMAIL)
            )
            assert values(
                connector.daily_series(SeriesRequest.of(resolved(tiny), OCT_1, OCT_3))
            ) == [3, 1, 0]
            assert values(
                connector.daily_series(
                    SeriesRequest.of(created(tiny), OCT_1, OCT_3, "Asia/Kolkata")
                )
            ) == [
                2,
                2,
                1,
            ]
    finally:
        jira_data.user_timezone = "UTC"


def test_the_sandbox_writes_timestamps_in_the_users_time_zone(sandbox, tiny):
    sandbox.data.jira.set_issues(
        "ZONE", [{"created": datetime(2026, 10, 1, 22, 0, tzinfo=timezone.utc)}]
    )
    sandbox.data.jira.user_timezone = "Asia/Kolkata"
    try:
        answer = search(sandbox, {"jql": "project = ZONE", "fields": ["created", "resolutiondate"]})
    finally:
        sandbox.data.jira.user_timezone = "UTC"
    (issue,) = answer.json()["issues"]
    assert issue["fields"] == {"created": "2026-10-02T03:30:00.000+0530", "resolutiondate": None}


# --- (c) generated data: a quarter is one search ---------------------------------------------------


def expected_days(issues, attribute, start, end, zone="UTC", keep=lambda issue: True):
    found = Counter(
        getattr(issue, attribute).astimezone(ZoneInfo(zone)).date()
        for issue in issues
        if getattr(issue, attribute) and keep(issue)
    )
    return [float(found[start + timedelta(days=i)]) for i in range((end - start).days + 1)]


def test_a_quarter_is_one_search_of_a_few_pages(sandbox, jira):
    start, end = date(2026, 7, 1), date(2026, 9, 30)
    day = datetime(2026, 6, 25, tzinfo=timezone.utc)
    issues = []
    while day < datetime(2026, 10, 8, tzinfo=timezone.utc):
        issues += [
            {
                "created": day + timedelta(hours=h),
                "resolutiondate": day + timedelta(hours=h, minutes=20 * h),
            }
            for h in (1, 5, 9, 13, 17)
        ]
        day += timedelta(days=1)
    sandbox.data.jira.set_issues("QTR", issues)
    numerator, denominator = JiraMetric(
        source="jira", jql="project = QTR", measure="resolved_within", hours=2
    ).ratio_parts()

    assert values(jira.daily_series(SeriesRequest.of(denominator, start, end))) == [5.0] * 92
    assert (
        values(jira.daily_series(SeriesRequest.of(numerator, start, end))) == [2.0] * 92
    )  # 20 and 100 minutes

    # The search reaches 2 days beyond each end: 96 days of 5 issues, 100 a page.
    assert sandbox.request_count(SEARCH) == math.ceil(96 * 5 / 100)


def test_generated_support_tickets_look_like_a_busy_help_desk(sandbox, jira):
    start, end = date(2026, 8, 1), date(2026, 8, 21)
    tickets = sandbox.data.jira.issues("SUP")
    support = [i for i in tickets if i.issuetype == "Support Ticket"]
    per_day = expected_days(support, "created", start, end)
    assert all(20 <= count <= 50 for count in per_day)
    assert any(i.issuetype != "Support Ticket" for i in tickets)  # filtered out by the KR's JQL

    numerator, denominator = JiraMetric(
        source="jira", jql=SUPPORT, measure="resolved_within", hours=2
    ).ratio_parts()
    resolved_days = values(jira.daily_series(SeriesRequest.of(denominator, start, end)))
    within_days = values(jira.daily_series(SeriesRequest.of(numerator, start, end)))

    def quick(issue):
        return issue.issuetype == "Support Ticket" and issue.resolved - issue.created <= timedelta(
            hours=2
        )

    support_only = lambda issue: issue.issuetype == "Support Ticket"  # noqa: E731
    assert resolved_days == expected_days(tickets, "resolved", start, end, keep=support_only)
    assert within_days == expected_days(tickets, "resolved", start, end, keep=quick)
    assert 0.8 <= sum(within_days) / sum(resolved_days) <= 0.95


def test_two_sandboxes_generate_the_same_issues():
    from okr_metrics.connectors.sandbox.data import SandboxData
    from okr_metrics.connectors.sandbox.jira import JiraSandboxData

    now = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)
    first = JiraSandboxData(SandboxData(now)).issues("SUP")
    second = JiraSandboxData(SandboxData(now)).issues("SUP")
    assert [(i.key, i.created, i.resolved) for i in first] == [
        (i.key, i.created, i.resolved) for i in second
    ]
    assert max(i.created for i in first) <= now
    assert all(i.resolved is None or i.resolved <= now for i in first)


# --- (d) the sandbox's wire format ------------------------------------------------------------------


def search(sandbox, body: dict, auth: tuple[str, str] | None = (EMAIL, TOKEN), path: str = SEARCH):
    return requests.post(f"{sandbox.url}{path}", json=body, auth=auth, timeout=5)


def test_sandbox_pages_carry_a_token_until_the_last(sandbox, tiny):
    body = {"jql": "project = TINY", "fields": ["created"], "maxResults": 4}
    first = search(sandbox, body).json()
    assert first["isLast"] is False and len(first["issues"]) == 4
    assert set(first["issues"][0]) == {"expand", "id", "self", "key", "fields"}
    assert (
        first["issues"][0]["self"] == f"{sandbox.url}/rest/api/3/issue/{first['issues'][0]['id']}"
    )
    assert first["issues"][0]["fields"] == {"created": TINY[0]["created"]}
    last = search(sandbox, {**body, "nextPageToken": first["nextPageToken"]}).json()
    assert last["isLast"] is True and "nextPageToken" not in last and len(last["issues"]) == 2
    # Without fields, Jira returns ids only.
    bare = search(sandbox, {"jql": "project = TINY"}).json()
    assert bare["issues"][0] == {"id": first["issues"][0]["id"]}
    # A token of another query is refused.
    refused = search(sandbox, {"jql": "project = SUP", "nextPageToken": first["nextPageToken"]})
    assert refused.status_code == 400


def test_sandbox_sorts_by_created_when_asked(sandbox):
    # Ids out of `created` order: without ORDER BY the sandbox sorts by id.
    sandbox.data.jira.set_issues(
        "ORD",
        [
            {"id": 3, "created": "2026-10-01T09:00:00.000+0000"},
            {
                "id": 1,
                "created": "2026-10-03T09:00:00.000+0000",
                "resolutiondate": "2026-10-04T09:00:00.000+0000",
            },
            {
                "id": 2,
                "created": "2026-10-02T09:00:00.000+0000",
                "resolutiondate": "2026-10-02T10:00:00.000+0000",
            },
        ],
    )

    def ids(jql: str, size: int = 2) -> list[str]:
        body = {"jql": jql, "fields": ["created"], "maxResults": size}
        answer = search(sandbox, body).json()
        found = [issue["id"] for issue in answer["issues"]]
        while answer.get("nextPageToken"):
            answer = search(sandbox, {**body, "nextPageToken": answer["nextPageToken"]}).json()
            found += [issue["id"] for issue in answer["issues"]]
        return found

    assert ids("project = ORD") == ["1", "2", "3"]
    assert ids("project = ORD ORDER BY created ASC") == ["3", "2", "1"]
    assert ids("project = ORD ORDER BY created") == ["3", "2", "1"]
    assert ids("project = ORD ORDER BY created DESC") == ["1", "2", "3"]
    assert ids("project = ORD ORDER BY resolved ASC, id DESC") == ["2", "1", "3"]
    # A slice of a search (its JQL in parentheses, AND `created` bounds) is its issues
    # in those bounds.
    assert ids('(project = ORD) AND created >= "2026-10-02 09:00"') == ["1", "2"]
    assert ids(
        '(project = ORD) AND created >= "2026-10-01 09:00" AND created < "2026-10-02 09:00"'
    ) == ["3"]
    assert ids('(project = ORD) AND created > "2026-10-02 09:00" ORDER BY created DESC') == ["1"]
    assert ids('(project = ORD) AND created <= "2026-10-02 09:00" OR project = ORD') == [
        "1",
        "2",
        "3",
    ]


def test_the_removed_search_endpoint_is_gone(sandbox):
    recorded = fixture("search-removed-410.json")["response"]
    for method, path in (("POST", "/rest/api/3/search"), ("GET", "/rest/api/3/search")):
        answer = requests.request(method, f"{sandbox.url}{path}", auth=(EMAIL, TOKEN), timeout=5)
        assert answer.status_code == 410
        assert answer.json() == recorded["body"]
    old = requests.get(f"{sandbox.url}/rest/api/2/search?jql=project=SUP", timeout=5)
    assert old.status_code == 410 and "CHANGE-2046" in old.json()["errorMessages"][0]


@pytest.mark.parametrize(
    "auth", [None, (EMAIL, "invalid"), ("", TOKEN)], ids=["none", "bad", "no email"]
)
def test_sandbox_refuses_missing_or_bad_credentials(sandbox, auth):
    answer = search(sandbox, {"jql": "project = SUP"}, auth=auth)
    assert answer.status_code == 401
    assert answer.text == "Client must be authenticated to access this resource."


@pytest.mark.parametrize(
    ("jql", "said"),
    [
        ("project = SUP AND NOT status = Done", "does not support 'NOT'"),
        ("priority = High", "Field 'priority' does not exist"),
        ('created >= "-5d"', "Date value '-5d' for field 'created' is invalid"),
        ("ORDER BY created", "Unbounded JQL queries are not allowed here"),
        ("project IN (SUP, OPS)", "does not support 'IN'"),
        ("project = SUP ORDER BY priority", "does not support 'ORDER BY priority'"),
    ],
)
def test_sandbox_answers_400_to_jql_it_cannot_run(sandbox, jql, said):
    answer = search(sandbox, {"jql": jql})
    assert answer.status_code == 400
    body = answer.json()
    assert set(body) == {"errorMessages", "errors"} and said in body["errorMessages"][0]


def test_the_connector_reports_what_the_sandbox_cannot_run(jira):
    with pytest.raises(SourceError) as failure:
        jira.daily_series(
            SeriesRequest.of(created("project = SUP AND NOT status = Done"), OCT_1, OCT_3)
        )
    assert "(HTTP 400)" in str(failure.value) and "does not support 'NOT'" in str(failure.value)


# --- (e) faults --------------------------------------------------------------------------------------


def test_429_with_retry_after_then_the_right_values(sandbox, jira, tiny, sleeps):
    sandbox.add_fault(path_prefix=SEARCH, status=429, retry_after=3, times=1)
    assert values(jira.daily_series(SeriesRequest.of(resolved(tiny), OCT_1, OCT_3))) == [3, 1, 0]
    assert sleeps == [3.0]
    assert sandbox.request_count(SEARCH) == 2


def test_429_without_retry_after_backs_off(sandbox, jira, tiny, sleeps):
    sandbox.add_fault(path_prefix=SEARCH, status=429, times=2)
    assert values(jira.daily_series(SeriesRequest.of(created(tiny), OCT_1, OCT_3))) == [2, 2, 0]
    assert sleeps == [0.5, 1.0]  # 1 s then 2 s, scaled by the (injected) jitter


def test_a_bad_token_is_an_authentication_error_without_the_token(sandbox, tiny, caplog):
    caplog.set_level(logging.DEBUG)
    connector = JiraConnector.from_settings(
        SourceSettings(base_url=sandbox.url, token="invalid", user=EMAIL)
    )
    with pytest.raises(SourceError) as failure:
        connector.daily_series(SeriesRequest.of(created(tiny), OCT_1, OCT_3))
    assert str(failure.value) == (
        "jira: authentication failed (HTTP 401): check JIRA_EMAIL and JIRA_API_TOKEN"
    )


def test_the_token_never_leaks(sandbox, tiny, sleeps, caplog):
    caplog.set_level(logging.DEBUG)
    encoded = base64.b64encode(f"{EMAIL}:{TOKEN}".encode()).decode()
    connector = JiraConnector.from_settings(
        SourceSettings(base_url=sandbox.url, token=TOKEN, user=EMAIL), sleep=sleeps, max_attempts=2
    )
    sandbox.add_fault(path_prefix=SEARCH, status=503, headers={"X-Echo": TOKEN})
    with pytest.raises(SourceError) as failure:
        connector.daily_series(SeriesRequest.of(created(tiny), OCT_1, OCT_3))
    assert "gave up after 2 attempts" in str(failure.value)
    for secret in (TOKEN, encoded):
        assert secret not in str(failure.value) and secret not in repr(failure.value)
        assert secret not in caplog.text
        assert all(secret not in record.getMessage() for record in caplog.records)


# --- records the mapping cannot read -------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"resolutiondate": None}, "jira: issue SUP-9: fields.created is missing"),
        (
            {"created": "2026-10-01"},
            "jira: issue SUP-9: fields.created '2026-10-01' is not a timestamp with a time of day",
        ),
        (
            {"created": "2026-10-01T09:00:00.000+0000", "resolutiondate": "soon"},
            "jira: issue SUP-9: fields.resolutiondate 'soon' is not a timestamp",
        ),
    ],
)
def test_an_issue_without_a_readable_date_is_one_line(sandbox, jira, fields, message):
    # The sandbox answers the search with a hand-written page of one broken issue.
    page = {"issues": [{"id": "10009", "key": "SUP-9", "fields": fields}], "isLast": True}
    sandbox.add_fault(path_prefix=SEARCH, status=200, body=page)
    with pytest.raises(SourceError) as failure:
        jira.daily_series(SeriesRequest.of(resolved(), OCT_1, OCT_3))
    assert str(failure.value) == message


# --- a search of many pages, fetched in slices by `created` ----------------------------------------

SLICED = "project = SLC"
SLICE_WINDOW = (date(2026, 10, 1), date(2026, 10, 8))


def every_hour(first: datetime, last: datetime) -> list[dict]:
    issues, moment = [], first
    while moment <= last:
        issues.append({"created": moment})
        moment += timedelta(hours=1)
    return issues


def slicing(monkeypatch, on: bool) -> None:
    """Pages of 10 and, when `on`, slices worth 2 pages (the production sizes need
    thousands of issues); off, every search is one chain."""
    monkeypatch.setattr(JiraConnector, "page_size", 10)
    monkeypatch.setattr(client, "MIN_SLICE_PAGES", 2 if on else 10**9)


def connector(sandbox) -> JiraConnector:
    return JiraConnector.from_settings(
        SourceSettings(base_url=sandbox.url, token=TOKEN, user=EMAIL),
        sleep=lambda seconds: None,
        max_attempts=1,
    )


def test_a_long_search_is_fetched_in_slices_of_hand_counted_pages(sandbox, monkeypatch):
    # An issue every hour at :30 from Oct 1 to Oct 10 (240); the created window Oct 1-8
    # reaches Sep 29 to Oct 11, so all of them, in pages of 10.
    sandbox.data.jira.set_issues(
        "SLC",
        every_hour(
            datetime(2026, 10, 1, 0, 30, tzinfo=UTC), datetime(2026, 10, 10, 23, 30, tzinfo=UTC)
        ),
    )
    slicing(monkeypatch, on=True)
    series = connector(sandbox).daily_series(SeriesRequest.of(created(SLICED), *SLICE_WINDOW))
    assert values(series) == [24.0] * 8
    sent = search_jql(SLICED, "created", *SLICE_WINDOW)
    bodies = sandbox.request_bodies(SEARCH)
    # The first page (00:30 to 09:30 on Oct 1) covers 9 hours of the 242.5 from the
    # window's start to Oct 11: about 256 issues, 25 pages, are left; 4 slices (the
    # host's 4 requests in flight), the first from 12 hours before the page's last issue.
    assert bodies[0]["jql"] == sent + BY_CREATED
    slices = sorted({body["jql"] for body in bodies[1:]})
    assert slices == sorted(
        f'({sent}) AND created >= "{low}"' + (f' AND created < "{high}"' if high else "")
        for low, high in [
            ("2026-09-30 21:30", "2026-10-03 10:07"),  # 58 issues: 6 pages
            ("2026-10-03 10:07", "2026-10-05 22:45"),  # 61: 7 pages
            ("2026-10-05 22:45", "2026-10-08 11:22"),  # 60: 6 pages
            ("2026-10-08 11:22", None),  # 61: 7 pages
        ]
    )
    # 1 + 6 + 7 + 6 + 7, where one chain takes 24 pages.
    assert sandbox.request_count(SEARCH) == 27
    assert all(unsliced(jql) == sent for jql in slices)


def test_a_search_of_a_few_pages_is_one_chain(sandbox, monkeypatch):
    # An issue every hour from Sep 29 to Oct 3 (120), pages of 10: the first page covers
    # 9 hours, about 12 pages are left, fewer than 2 slices of MIN_SLICE_PAGES (20).
    sandbox.data.jira.set_issues(
        "SLC",
        every_hour(
            datetime(2026, 9, 29, 0, 30, tzinfo=UTC), datetime(2026, 10, 3, 23, 30, tzinfo=UTC)
        ),
    )
    monkeypatch.setattr(JiraConnector, "page_size", 10)
    window = (date(2026, 10, 1), date(2026, 10, 1))  # the search reaches Sep 29 to Oct 4
    series = connector(sandbox).daily_series(SeriesRequest.of(created(SLICED), *window))
    assert values(series) == [24.0]
    bodies = sandbox.request_bodies(SEARCH)
    assert {body["jql"] for body in bodies} == {search_jql(SLICED, "created", *window) + BY_CREATED}
    assert len(bodies) == 12  # 120 issues, 10 a page
    # A search of one page: one request.
    sandbox.reset()
    sandbox.data.jira.set_issues(
        "SLC",
        every_hour(
            datetime(2026, 10, 1, 0, 30, tzinfo=UTC), datetime(2026, 10, 1, 9, 30, tzinfo=UTC)
        ),
    )
    series = connector(sandbox).daily_series(SeriesRequest.of(created(SLICED), *window))
    assert values(series) == [10.0]
    assert sandbox.request_count(SEARCH) == 1


def busy_project() -> list[dict]:
    """Oct 1-10, an issue every 50 minutes: most resolved 20 minutes to 3 days later,
    some never, some bugs; and issues created in September, resolved in the window."""
    issues = []
    moment, number = datetime(2026, 9, 28, 0, 10, tzinfo=UTC), 0
    while moment < datetime(2026, 10, 11, tzinfo=UTC):
        number += 1
        spec: dict = {"created": moment}
        if number % 7:
            spec["resolutiondate"] = moment + timedelta(minutes=20 + 97 * (number % 45))
        if number % 5 == 0:
            spec["issuetype"] = "Bug"
        issues.append(spec)
        moment += timedelta(minutes=50)
    for day in (2, 10, 20, 29):
        created_at = datetime(2026, 9, day, 8, tzinfo=UTC)
        issues.append(
            {"created": created_at, "resolutiondate": datetime(2026, 10, 2, 9, 30, tzinfo=UTC)}
        )
    return sorted(issues, key=lambda spec: spec["created"])


def slice_lows(sandbox) -> list[str]:
    """The lower bounds of the slices the sandbox was asked for."""
    found = (
        re.search(r'\) AND created >= "([^"]+)"', b["jql"]) for b in sandbox.request_bodies(SEARCH)
    )
    return sorted({match.group(1) for match in found if match})


def series_of(sandbox, requests: list) -> dict:
    return connector(sandbox).daily_series_many(requests)


def sliced_and_chained(sandbox, monkeypatch, requests: list, user_zone: str) -> tuple:
    """The series of one search, sliced, then with issues on its slices' boundaries
    (as Jira reads them, in the user's time zone) and a millisecond before; then as one
    chain. Returns both answers and both request counts."""
    jira_data = sandbox.data.jira
    jira_data.set_issues("SLC", busy_project())
    slicing(monkeypatch, on=True)
    series_of(sandbox, requests)
    lows = slice_lows(sandbox)
    assert len(lows) >= 3  # sliced
    extra = []
    for low in lows[1:]:  # the first slice starts among the pages already read
        moment = datetime.strptime(low, "%Y-%m-%d %H:%M").replace(tzinfo=ZoneInfo(user_zone))
        for before in (timedelta(0), timedelta(milliseconds=1)):
            extra.append(
                {"created": moment - before, "resolutiondate": moment + timedelta(hours=1)}
            )
    jira_data.set_issues("SLC", sorted(busy_project() + extra, key=lambda spec: spec["created"]))
    sandbox.reset()
    sliced = series_of(sandbox, requests)
    assert slice_lows(sandbox) == lows  # the same slices, with issues on their bounds
    sliced_requests = sandbox.request_count(SEARCH)
    sandbox.reset()
    slicing(monkeypatch, on=False)
    chain = series_of(sandbox, requests)
    bodies = sandbox.request_bodies(SEARCH)
    assert all(body["jql"] == unsliced(body["jql"]) + BY_CREATED for body in bodies)
    return sliced, chain, sliced_requests, len(bodies)


@pytest.mark.parametrize(
    ("user_zone", "zone"),
    [("UTC", "UTC"), ("Asia/Kolkata", "America/New_York"), ("Etc/GMT+12", "Pacific/Kiritimati")],
)
@pytest.mark.parametrize("counts", ["all", "resolved"])
def test_slices_give_the_series_of_the_one_chain(sandbox, monkeypatch, user_zone, zone, counts):
    jql = 'project = SLC AND issuetype = "Support Ticket"'
    numerator, denominator = JiraMetric(
        source="jira", jql=jql, measure="resolved_within", hours=2
    ).ratio_parts()
    share = JiraMetric(source="jira", jql=jql, measure="resolved_within", hours=2)
    # Every count shares one search by `created` or `resolved`; resolutions alone are a
    # search by `resolved`, sliced by `created` all the same.
    metrics = [created(jql), numerator, denominator, share] if counts == "all" else [resolved(jql)]
    requests = [SeriesRequest.of(metric, *SLICE_WINDOW, zone) for metric in metrics]
    sandbox.data.jira.user_timezone = user_zone
    try:
        sliced, chain, sliced_requests, chain_requests = sliced_and_chained(
            sandbox, monkeypatch, requests, user_zone
        )
    finally:
        sandbox.data.jira.user_timezone = "UTC"
    assert list(sliced) == list(chain) == [request.metric_key for request in requests]
    for key, frame in chain.items():
        assert isinstance(frame, pd.DataFrame), frame
        pd.testing.assert_frame_equal(sliced[key], frame, check_exact=True, obj=key)
        assert frame["value"].sum() > 0
    assert chain_requests < sliced_requests <= chain_requests + 4  # a partial page a slice


def test_a_failing_slice_fails_the_search_in_one_line(sandbox, monkeypatch):
    sandbox.data.jira.set_issues(
        "SLC",
        every_hour(
            datetime(2026, 10, 1, 0, 30, tzinfo=UTC), datetime(2026, 10, 10, 23, 30, tzinfo=UTC)
        ),
    )
    slicing(monkeypatch, on=True)
    message = "A value with ID '2026-10-05 22:45' does not exist for the field 'created'."
    sandbox.data.jira.refuse('created >= "2026-10-05 22:45"', message)
    try:
        jira = connector(sandbox)
        request = SeriesRequest.of(created(SLICED), *SLICE_WINDOW)
        other = SeriesRequest.of(created("project = TINY"), OCT_1, OCT_3)
        sandbox.data.jira.set_issues("TINY", TINY)
        answers = jira.daily_series_many([request, other])
    finally:
        sandbox.data.jira.stop_refusing()
    failure = answers[request.metric_key]
    assert isinstance(failure, SourceError)
    assert str(failure) == (
        f"jira: request failed (HTTP 400) on POST /rest/api/3/search/jql (the API says: {message})"
    )
    assert values(answers[other.metric_key]) == [2, 2, 1]  # another search is not touched
    # The same words as a page of one chain refused alike.
    slicing(monkeypatch, on=False)
    sandbox.data.jira.refuse(SLICED, message)
    try:
        with pytest.raises(SourceError) as chained:
            connector(sandbox).daily_series(request)
    finally:
        sandbox.data.jira.stop_refusing()
    assert str(chained.value) == str(failure)


_JIRA_TIME = st.one_of(
    st.datetimes(
        min_value=datetime(1990, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
    ).map(lambda moment: moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"),
    st.sampled_from(
        [
            "2026-10-15T09:12:33.000+0530",
            "2026-10-15T09:12:33Z",
            "2026-10-15 09:12",
            "2026-10-15",
            "2026-02-30T09:12:33.000+0000",
            "2026-10-15T09:12:33.000+2500",
            "20261015",
            "",
            "yesterday",
        ]
    ),
    st.none(),
    st.integers(0, 2**40),
)
_ISSUE_FIELDS = st.one_of(
    st.fixed_dictionaries({"created": _JIRA_TIME, "resolutiondate": _JIRA_TIME}),
    st.fixed_dictionaries({"created": _JIRA_TIME}),
    st.fixed_dictionaries({"resolutiondate": _JIRA_TIME}),
    st.just("not fields"),
)


def _read_field_by_field(item, windows):
    record = Record("jira", item, "issue", id_fields=client.ID_FIELDS)
    try:
        created, resolved, missing = JiraConnector._instants(record, windows)
    except SourceError as error:
        return str(error)
    return created, resolved, None if missing is None else str(missing)


@settings(max_examples=500, deadline=None, database=None)
@given(
    st.fixed_dictionaries({"key": st.just("SUP-7"), "fields": _ISSUE_FIELDS}),
    st.sampled_from([{"created"}, {"resolved"}, {"created", "resolved"}]),
)
def test_an_issue_read_the_quick_way_is_read_as_field_by_field(item, names):
    windows = dict.fromkeys(names, (date(2026, 7, 1), date(2026, 9, 30)))
    quick = client._quick_instants(item)
    if quick is not None and not (quick[1] is None and names == {"resolved"}):
        assert _read_field_by_field(item, windows) == (*quick, None)


def test_issues_as_jira_sends_them_are_read_the_quick_way():
    item = {"key": "SUP-7", "fields": {"created": "2026-10-15T09:12:33.000+0530"}}
    assert client._quick_instants(item) is None  # no resolutiondate: field by field
    item["fields"]["resolutiondate"] = None
    assert client._quick_instants(item) == (datetime(2026, 10, 15, 3, 42, 33, tzinfo=UTC), None)
    item["fields"]["resolutiondate"] = "2026-10-16T10:00:00.000+0000"
    assert client._quick_instants(item)[1] == datetime(2026, 10, 16, 10, tzinfo=UTC)
