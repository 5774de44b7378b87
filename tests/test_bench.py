"""The pure parts of `make bench` (benchmarks/requests_floor.py), on small hand-worked cases:
the fewest requests of a run's distinct queries, the floor latency sets, and the
sandbox's volume and first-day options the benchmarks generate their data with."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from requests_floor import (  # noqa: E402
    Exchange,
    exchange_of,
    latency_floor,
    minimum_requests,
    requests_made,
)

from okr_metrics.connectors.sandbox import SandboxRequest, SandboxResponse  # noqa: E402
from okr_metrics.connectors.sandbox.github import repository_id  # noqa: E402

PULLS = "/repos/acme/app/pulls"


def page(api: str, query: str, key: str, order: int, items: int, needed: int, **extra):
    return Exchange(api, query, key, order, items, needed, **extra)


def test_a_newest_first_list_needs_the_pages_down_to_its_oldest_needed_item():
    # 100 + 30 needed items: 2 pages of 100; the third page (nothing needed) and the
    # retried second page are requests above the minimum.
    exchanges = [
        page("github", PULLS, "1", 1, 100, 100),
        page("github", PULLS, "2", 2, 100, 30),
        page("github", PULLS, "2", 2, 100, 30),
        page("github", PULLS, "3", 3, 100, 0),
    ]
    assert minimum_requests(exchanges) == {"github": 2}
    assert requests_made(exchanges) == {"github": 4}


def test_small_pages_count_at_the_largest_page_size_and_an_empty_query_costs_one():
    exchanges = [
        page("jira", "project = A", "", 0, 50, 50),
        page("jira", "project = A", "t1", 1, 50, 50),
        page("jira", "project = A", "t2", 2, 20, 20),  # 120 issues: 2 pages of 100
        page("jira", "project = B", "", 0, 0, 0),  # nothing found: still 1 request
    ]
    assert minimum_requests(exchanges) == {"jira": 3}
    assert minimum_requests(exchanges, {"jira": 50}) == {"jira": 4}


def test_ga4_reports_differing_only_in_their_metrics_are_one_query():
    one = page("google_analytics", "p1", "0", 0, 92, 92, metrics=frozenset({"sessions"}))
    two = page("google_analytics", "p1", "0", 0, 92, 92, metrics=frozenset({"activeUsers"}))
    other = page("google_analytics", "p2", "0", 0, 92, 92, metrics=frozenset({"sessions"}))
    assert minimum_requests([one, two, other]) == {"google_analytics": 2}
    eleven = [
        page("google_analytics", "p1", "0", 0, 92, 92, metrics=frozenset({f"m{i}"}))
        for i in range(11)
    ]
    assert minimum_requests(eleven) == {"google_analytics": 2}  # 10 metrics a report


def test_the_floor_is_the_slowest_api_over_its_requests_in_flight():
    assert latency_floor({"github": 2, "jira": 3}, 0.05, 1) == pytest.approx(0.15)
    assert latency_floor({"github": 2, "jira": 3}, 0.05, {"jira": 3}) == pytest.approx(0.10)
    assert latency_floor({}, 0.05, 1) == 0.0


def _request(path: str, query: dict[str, str], body=None) -> SandboxRequest:
    return SandboxRequest("GET", path, query, list(query.items()), {}, body, "http://x")


def test_a_github_page_needs_its_items_through_the_last_one_in_the_window():
    served = [
        {"number": 3, "merged_at": "2026-07-03T10:00:00Z"},
        {"number": 2, "merged_at": None},
        {"number": 1, "merged_at": "2026-06-30T10:00:00Z"},
    ]
    request = _request(PULLS, {"state": "closed", "page": "2", "per_page": "100"})
    exchange = exchange_of(request, SandboxResponse(200, served), "2026-07-01T00:00:00Z", {})
    assert exchange == Exchange("github", exchange.query, "2", 2, 3, 1)
    assert "page" not in exchange.query and "state" in exchange.query
    # The first page is asked by name, the next ones by the Link header's repository id.
    following = _request(
        f"/repositories/{repository_id('acme/app')}/pulls",
        {"state": "closed", "page": "3", "per_page": "100"},
    )
    later = exchange_of(following, SandboxResponse(200, served), "2026-07-01T00:00:00Z", {})
    assert later.query == exchange.query and later.order == 3


def test_salesforce_follow_up_pages_belong_to_the_query_that_named_them():
    continuations: dict[str, tuple[str, int]] = {}
    first = exchange_of(
        _request("/services/data/v62.0/query", {"q": "SELECT Id FROM Opportunity"}),
        SandboxResponse(
            200,
            {"records": [{}] * 2000, "nextRecordsUrl": "/services/data/v62.0/query/01g-2000"},
        ),
        None,
        continuations,
    )
    second = exchange_of(
        _request("/services/data/v62.0/query/01g-2000", {}),
        SandboxResponse(200, {"records": [{}] * 10, "done": True}),
        None,
        continuations,
    )
    assert second.query == first.query and second.order == 1
    assert minimum_requests([first, second]) == {"salesforce": 2}  # 2,010 records
    refused = exchange_of(
        _request("/services/data/v62.0/query", {"q": "x"}), SandboxResponse(400, {}), None, {}
    )
    assert refused is None


def test_the_sandbox_volume_scales_each_days_items_and_first_day_starts_the_data():
    from collections import Counter
    from datetime import date, datetime, timezone

    from okr_metrics.connectors.sandbox import Sandbox, SandboxData

    horizon = datetime(2026, 8, 1, tzinfo=timezone.utc)  # July complete, nothing after
    first = date(2026, 7, 1)
    busy = Sandbox(data=SandboxData(now=horizon, first_day=first, volume={"jira": 2}))
    plain = Sandbox(data=SandboxData(now=horizon, first_day=first))
    try:
        # A day holds 20-50 support tickets and 2-8 other issues; twice that at volume 2.
        for sandbox, low, high in ((plain, 22, 58), (busy, 44, 116)):
            issues = sandbox.data.jira.issues("OPS")
            per_day = Counter(issue.created.date() for issue in issues)
            assert min(per_day) == first and len(per_day) == 31
            assert all(low <= count <= high for count in per_day.values()), per_day
        # Only the API named gets busier.
        assert len(busy.data.github.pulls("acme/app")) == len(plain.data.github.pulls("acme/app"))
    finally:
        busy.stop()
        plain.stop()


def test_the_slices_of_a_jira_search_are_one_query_of_its_distinct_issues():
    from datetime import UTC, date, datetime

    from okr_metrics.connectors.jira.client import BY_CREATED, search_jql, slice_jql

    sent = search_jql("project = A", "created", date(2026, 7, 1), date(2026, 9, 30))
    t1, t2 = datetime(2026, 7, 2, 3, 4, tzinfo=UTC), datetime(2026, 8, 15, tzinfo=UTC)

    def answered(jql: str, ids: range, token: str | None = None) -> Exchange | None:
        body = {"jql": jql, "fields": ["created"], "maxResults": 5000}
        if token:
            body["nextPageToken"] = token
        served = {"issues": [{"id": str(i), "key": f"A-{i}"} for i in ids]}
        return exchange_of(
            _request("/rest/api/3/search/jql", {}, body), SandboxResponse(200, served), None, {}
        )

    exchanges = [
        answered(sent + BY_CREATED, range(1, 101)),  # the first page, in created order
        # The first slice starts before the first page's last issue: 90-100 come twice.
        answered(slice_jql(sent, t1, t2), range(90, 190)),
        answered(slice_jql(sent, t1, t2), range(190, 200), token="p2"),
        answered(slice_jql(sent, t2, None), range(200, 250)),
    ]
    assert len({exchange.query for exchange in exchanges}) == 1
    # 249 distinct issues: 3 pages of 100, where 4 requests were made.
    assert minimum_requests(exchanges) == {"jira": 3}
    assert requests_made(exchanges) == {"jira": 4}
    # Another search is another query.
    other = answered(
        search_jql("project = B", "created", date(2026, 7, 1), date(2026, 9, 30)), range(0)
    )
    assert minimum_requests([*exchanges, other]) == {"jira": 4}
