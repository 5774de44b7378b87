"""The request planner: a source's series merged into the fewest queries its API needs.

(a) `Plan` itself: which requests share a query, and over which days. (b) The batch entry
point `daily_series_many` of a connector that plans nothing (a third-party one): one call
per request, each error its own. (c) Each built-in connector's plan, inspected. (d) The
sample definitions against a sandbox frozen in time: every series of every source is the
same frame with planning on as with planning off, from fewer requests; and a whole
collect run stores the same rows both ways. (e) Errors stay per series.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest

from okr_metrics.connectors.base import Connector, SourceEnv, SourceError, SourceSettings
from okr_metrics.connectors.github.client import GitHubConnector
from okr_metrics.connectors.github.params import GitHubMetric
from okr_metrics.connectors.google_analytics.client import GoogleAnalyticsConnector
from okr_metrics.connectors.google_analytics.params import GoogleAnalyticsMetric
from okr_metrics.connectors.hubspot.client import HubSpotConnector
from okr_metrics.connectors.hubspot.params import HubSpotMetric
from okr_metrics.connectors.jira.client import JiraConnector
from okr_metrics.connectors.jira.params import JiraMetric
from okr_metrics.connectors.kit import Plan, SeriesRequest, daily_counts
from okr_metrics.connectors.params import MetricParams
from okr_metrics.connectors.registry import connected_sources
from okr_metrics.connectors.salesforce.client import SalesforceConnector, comparisons
from okr_metrics.connectors.salesforce.params import SalesforceMetric
from okr_metrics.connectors.sandbox import Sandbox
from okr_metrics.connectors.sandbox.data import SandboxData
from okr_metrics.pipelines.definitions import load_definitions
from okr_metrics.pipelines.jobs.collect import collect_source, series_requests
from okr_metrics.warehouse.store import Warehouse

REPO = Path(__file__).resolve().parents[2]
OCT_1, OCT_3, OCT_10 = date(2026, 10, 1), date(2026, 10, 3), date(2026, 10, 10)
# The golden backfill's window and horizon (tests/pipelines/test_golden.py).
FIRST, LAST = date(2026, 9, 20), date(2026, 11, 15)
HORIZON = datetime(2026, 11, 16, 6, 0, tzinfo=UTC)
API_SOURCES = ("github", "google_analytics", "hubspot", "jira", "salesforce")


def request(metric: MetricParams, first: date = OCT_1, last: date = OCT_3, zone: str = "UTC"):
    return SeriesRequest.of(metric, first, last, zone)


def github(repo: str, count: str, *labels: str) -> GitHubMetric:
    return GitHubMetric(source="github", repo=repo, count=count, labels=labels)


def ga(metric: str, property_id: str = "123456789", **options) -> GoogleAnalyticsMetric:
    return GoogleAnalyticsMetric(
        source="google_analytics", property=property_id, metric=metric, **options
    )


def connect(connector_class: type[Connector], url: str) -> Connector:
    settings = SourceSettings(base_url=url, token="sandbox-token", user="okr@example.com")
    return connector_class.from_settings(settings, sleep=lambda seconds: None)


# --- (a) the plan --------------------------------------------------------------------------


def test_requests_of_one_shape_share_a_query_over_the_days_of_all():
    first = request(github("acme/a", "merged_pull_requests"), OCT_1, OCT_3)
    second = request(github("acme/a", "merged_pull_requests", "bug"), date(2026, 10, 2), OCT_10)
    other = request(github("acme/b", "merged_pull_requests"))
    plan = Plan.grouped([first, other, second], lambda r: r.metric.repo)
    assert plan.sharing() == [(first.metric_key, second.metric_key), (other.metric_key,)]
    shared = plan.queries[0]
    assert shared.shape == "acme/a"
    assert (shared.window.first, shared.window.last) == (OCT_1, OCT_10)


def test_windows_apart_get_queries_of_their_own_unless_across_gaps():
    early = request(github("acme/a", "releases"), OCT_1, OCT_3)
    touching = request(github("acme/a", "closed_issues"), date(2026, 10, 4), date(2026, 10, 5))
    late = request(github("acme/a", "opened_issues"), OCT_10, OCT_10)
    requests = [late, early, touching]
    apart = Plan.grouped(requests, lambda r: r.metric.repo)
    assert apart.sharing() == [(late.metric_key,), (early.metric_key, touching.metric_key)]
    spanned = Plan.grouped(requests, lambda r: r.metric.repo, across_gaps=True)
    assert spanned.sharing() == [(late.metric_key, early.metric_key, touching.metric_key)]


def test_no_shape_a_time_zone_apart_or_past_the_most_means_another_query():
    metrics = [github("acme/a", count) for count in ("releases", "opened_issues", "closed_issues")]
    utc = [request(m) for m in metrics]
    oslo = request(metrics[0], zone="Europe/Oslo")
    plan = Plan.grouped([*utc, oslo], lambda r: "one", most=2)
    assert plan.sharing() == [
        (utc[0].metric_key, utc[1].metric_key),
        (utc[2].metric_key,),
        (oslo.metric_key,),
    ]
    alone = Plan.grouped(utc, lambda r: None if r.metric.count == "releases" else "issues")
    assert alone.sharing() == [(utc[0].metric_key,), (utc[1].metric_key, utc[2].metric_key)]
    assert len(Plan.separate(utc)) == 3


# --- (b) the batch entry point of a connector that plans nothing ---------------------------


class _CountMetric(MetricParams):
    source: str = "counting"
    name: str


class _CountingConnector(Connector):
    """A third-party connector: `fetch` only; fails for the metric named `broken`."""

    source = "counting"
    params_model = _CountMetric
    env = SourceEnv()

    def __init__(self) -> None:
        self.fetched: list[str] = []

    @classmethod
    def from_settings(cls, settings: SourceSettings) -> _CountingConnector:
        return cls()

    def fetch(self, request: SeriesRequest) -> pd.DataFrame:
        self.fetched.append(request.metric.name)
        if request.metric.name == "broken":
            raise SourceError(self.source, "the broken metric is broken")
        return daily_counts(request.window, [request.start])


def test_a_connector_that_plans_nothing_answers_each_request_on_its_own():
    connector = _CountingConnector()
    asked = [request(_CountMetric(name=name)) for name in ("a", "broken", "c")]
    answers = connector.daily_series_many(asked)
    assert connector.fetched == ["a", "broken", "c"]
    assert list(answers) == [r.metric_key for r in asked]
    assert answers[asked[0].metric_key]["value"].tolist() == [1.0, 0.0, 0.0]
    assert str(answers[asked[1].metric_key]) == "counting: the broken metric is broken"
    assert answers[asked[2].metric_key]["value"].tolist() == [1.0, 0.0, 0.0]


def test_a_batch_refuses_a_key_twice_and_a_metric_of_another_source():
    connector = _CountingConnector()
    twice = [request(_CountMetric(name="a")), request(_CountMetric(name="a"), OCT_1, OCT_10)]
    with pytest.raises(ValueError, match="series requested twice: counting:name=a"):
        connector.daily_series_many(twice)
    with pytest.raises(TypeError, match="needs a _CountMetric, not GitHubMetric"):
        connector.daily_series_many([request(github("acme/a", "releases"))])
    assert connector.fetched == []


class _SideBySideConnector(_CountingConnector):
    """Says its queries may run at once, two at a time; each waits for a partner."""

    concurrent_queries = True

    def __init__(self) -> None:
        super().__init__()
        self.partner = threading.Barrier(2, timeout=5)
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()

    def query_concurrency(self) -> int:
        return 2

    def fetch(self, request: SeriesRequest) -> pd.DataFrame:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            self.partner.wait()  # only two queries at once get past this together
            return super().fetch(request)
        finally:
            with self.lock:
                self.in_flight -= 1


def test_queries_run_side_by_side_only_when_the_connector_says_so():
    connector = _SideBySideConnector()
    asked = [request(_CountMetric(name=name)) for name in ("a", "broken", "c", "d")]
    answers = connector.daily_series_many(asked)
    # Two at a time (the barrier would time out one after another), never more.
    assert connector.most_in_flight == 2
    assert sorted(connector.fetched) == ["a", "broken", "c", "d"]
    assert list(answers) == [r.metric_key for r in asked]
    assert str(answers[asked[1].metric_key]) == "counting: the broken metric is broken"
    for kept in (0, 2, 3):
        assert answers[asked[kept].metric_key]["value"].tolist() == [1.0, 0.0, 0.0]
    # A connector that does not say so: one query after another, in order.
    sequential = _CountingConnector()
    sequential.daily_series_many(asked)
    assert sequential.fetched == ["a", "broken", "c", "d"]


# --- (c) each connector's plan ---------------------------------------------------------------


def keys(*requests: SeriesRequest) -> tuple[str, ...]:
    return tuple(r.metric_key for r in requests)


def test_github_one_listing_per_repository_and_endpoint():
    connector = GitHubConnector(client=None)  # planning sends nothing
    pulls = [
        request(github("acme/a", "merged_pull_requests", *labels))
        for labels in ((), ("bug",), ("bug", "performance"))
    ]
    releases = request(github("acme/a", "releases"))
    labelled_releases = request(github("acme/a", "releases", "bug"))  # fails alone
    other_repo = request(github("acme/b", "merged_pull_requests", "bug"))
    # Issues filtered by label server-side: one listing per label set (opened and closed
    # alike) ...
    opened_bug = request(github("acme/b", "opened_issues", "bug"))
    closed_bug = request(github("acme/b", "closed_issues", "bug"))
    closed_docs = request(github("acme/b", "closed_issues", "documentation"))
    # ... unless the repository's issues are listed unfiltered anyway.
    opened_all = request(github("acme/a", "opened_issues"))
    closed_perf = request(github("acme/a", "closed_issues", "performance"))
    asked = [*pulls, releases, labelled_releases, other_repo, opened_bug, closed_bug]
    asked += [closed_docs, opened_all, closed_perf]
    assert connector.plan(asked).sharing() == [
        keys(*pulls),
        keys(releases),
        keys(labelled_releases),
        keys(other_repo),
        keys(opened_bug, closed_bug),
        keys(closed_docs),
        keys(opened_all, closed_perf),
    ]


def test_google_analytics_one_report_per_filter_or_broken_down_dimension():
    connector = GoogleAnalyticsConnector()
    mobile = {"filter": {"platform": ["iOS", "Android"]}}
    users = request(ga("activeUsers", **mobile))
    duration = request(ga("averageSessionDuration", **mobile))
    events = [request(ga("eventCount", filter={"eventName": [name]})) for name in ("a", "b", "c")]
    exact = request(ga("activeUsers", filter={"eventName": {"exact": "d"}}))
    # Not one exact, case-sensitive value: a report per filter.
    loose = request(ga("eventCount", filter={"eventName": {"in": ["a"], "case_sensitive": False}}))
    having = request(
        ga("eventCount", filter={"eventName": ["a"]}, metric_filter={"eventCount": {"gte": 5}})
    )
    elsewhere = request(ga("activeUsers", "987654321", **mobile))
    asked = [users, *events, duration, exact, loose, having, elsewhere]
    assert connector.plan(asked).sharing() == [
        keys(users, duration),
        keys(*events, exact),
        keys(loose),
        keys(having),
        keys(elsewhere),
    ]


def test_google_analytics_at_most_ten_metrics_a_report():
    names = [
        "activeUsers", "totalUsers", "newUsers", "sessions", "screenPageViews",
        "averageSessionDuration", "engagementRate", "eventCount", "conversions",
        "bounceRate", "userEngagementDuration",
    ]  # fmt: skip
    asked = [request(ga(name)) for name in names]
    users = request(ga("activeUsers", filter={"platform": ["iOS"]}))  # another filter
    mobile = request(ga("eventCount", filter={"platform": ["iOS"]}), OCT_1, OCT_10)
    plan = GoogleAnalyticsConnector().plan([*asked, users, mobile])
    # The eleventh metric starts a second report.
    assert plan.sharing() == [keys(*asked[:10]), keys(asked[10]), keys(users, mobile)]


def test_jira_one_search_per_jql():
    sup = 'project = SUP AND issuetype = "Support Ticket"'
    created = request(JiraMetric(source="jira", jql=sup, count="created"))
    resolved = request(JiraMetric(source="jira", jql=sup + " ORDER BY created", count="resolved"))
    share = request(JiraMetric(source="jira", jql=sup, measure="resolved_within", hours=2))
    ops = request(JiraMetric(source="jira", jql="project = OPS", count="created"))
    plan = JiraConnector(client=None).plan([created, ops, resolved, share])
    assert plan.sharing() == [keys(created, resolved, share), keys(ops)]


def test_salesforce_one_query_per_object_and_date_field_when_the_wheres_are_text_comparisons():
    def sf(where: str | None, **options) -> SeriesRequest:
        return request(SalesforceMetric(source="salesforce", where=where, **options))

    won = sf("StageName = 'Closed Won' AND Product__c = 'Analytics Dashboard'")
    smb = sf("StageName = 'Closed Won' AND Segment__c = 'SMB'", measure="sum", field="Amount")
    every = sf(None, object="opportunity")
    created = sf("StageName = 'Closed Won'", date_field="CreatedDate")
    big = sf("Amount > 1000")
    big_sum = sf("Amount > 1000", measure="sum", field="Amount")
    leads = sf("Status != 'Closed'", object="Lead", date_field="CreatedDate")
    plan = SalesforceConnector(client=None).plan([won, smb, every, created, big, big_sum, leads])
    assert plan.sharing() == [
        keys(won, smb, every),
        keys(created),
        keys(big, big_sum),
        keys(leads),
    ]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("StageName = 'Closed Won'", [("StageName", "=", "Closed Won")]),
        (
            "StageName='Closed Won' and Segment__c <> 'O\\'Brien \\\\ Co'",
            [("StageName", "=", "Closed Won"), ("Segment__c", "!=", "O'Brien \\ Co")],
        ),
        (None, []),
        ("Amount > 1000", None),
        ("StageName = 'A' OR StageName = 'B'", None),
        ("Name LIKE 'Acme%'", None),
        ("(StageName = 'Closed Won')", None),
        ("StageName = 'Closed Won' AND", None),
        ("IsWon = true", None),
    ],
)
def test_salesforce_reads_text_comparisons_joined_by_and(where, expected):
    found = comparisons(where)
    assert (None if found is None else [(c.field, c.op, c.value) for c in found]) == expected


def test_hubspot_one_search_per_object_date_property_and_filters():
    def hs(*filters: dict, **options) -> SeriesRequest:
        return request(HubSpotMetric(source="hubspot", filters=list(filters), **options))

    won = {"property": "dealstage", "operator": "EQ", "value": "closedwon"}
    count = hs(won)
    total = hs(won, measure="sum", field="amount")
    open_deals = hs({"property": "dealstage", "operator": "NEQ", "value": "closedwon"})
    by_create = hs(won, date_property="createdate")
    plan = HubSpotConnector(client=None).plan([count, open_deals, total, by_create])
    assert plan.sharing() == [keys(count, total), keys(open_deals), keys(by_create)]


# --- (d) the sample definitions: the same numbers from fewer requests -----------------------


@pytest.fixture(scope="module")
def frozen() -> Sandbox:
    """A sandbox of its own, frozen at the golden backfill's horizon."""
    with Sandbox(data=SandboxData(now=HORIZON)) as server:
        yield server


def sample_requests(source: str) -> list:
    return series_requests(load_definitions(REPO / "okr_defs"), source, FIRST, LAST)


def answered(frozen: Sandbox, source: str, planning: bool) -> tuple[dict, int]:
    """Every sample series of the source (a fresh connector), and the requests it sent."""
    connector = connect(connected_sources()[source].connector_class(), frozen.url)
    connector.plans_queries = planning
    before = frozen.request_count()
    answers = connector.daily_series_many(sample_requests(source))
    return answers, frozen.request_count() - before


# Requests per source for the sample series over 2026-09-20..2026-11-15: planning off,
# planning on. GA: 10 reports, or one for the mobile platforms (activeUsers and
# averageSessionDuration), one for web (the same two metrics) and one broken down by
# eventName (the 6 eventCount series).
# Salesforce: the describe call and 2 queries, or 1 (`StageName = 'Closed Won'`).
# Jira: the created and the resolved search, or one search for both (fewer pages). GitHub
# and HubSpot: nothing to share in the sample (5 listings, 1 search).
EXPECTED_REQUESTS = {
    "google_analytics": (10, 3),
    "salesforce": (3, 2),
    "hubspot": (2, 2),
}


@pytest.mark.parametrize("source", API_SOURCES)
def test_the_sample_series_are_the_same_with_planning_on_and_off(frozen, source):
    separate, sent_separate = answered(frozen, source, planning=False)
    planned, sent_planned = answered(frozen, source, planning=True)
    assert list(planned) == list(separate) and planned
    for key, frame in separate.items():
        assert isinstance(frame, pd.DataFrame), f"{key}: {frame}"
        pd.testing.assert_frame_equal(planned[key], frame, check_exact=True, obj=key)
    # Real series, not rows of zeros.
    assert sum(frame["value"].sum() > 0 for frame in separate.values()) >= len(separate) - 1
    if source in EXPECTED_REQUESTS:
        assert (sent_separate, sent_planned) == EXPECTED_REQUESTS[source]
    else:
        assert sent_planned <= sent_separate


def test_the_sample_jira_series_share_one_search(frozen):
    searches = frozen.data.jira.searches
    searches.clear()
    answered(frozen, "jira", planning=False)
    separate = {search["jql"] for search in searches}
    searches.clear()
    _, sent = answered(frozen, "jira", planning=True)
    (merged,) = {search["jql"] for search in searches}
    assert len(separate) == 2 and len(searches) == sent
    assert merged == (
        '(project = SUP AND issuetype = "Support Ticket") AND '
        '((created >= "2026-09-18" AND created < "2026-10-03") OR '
        '(resolved >= "2026-09-29" AND resolved < "2026-11-18"))'
    )


def test_the_sample_salesforce_series_share_one_query(frozen):
    queries = frozen.data.salesforce.queries
    queries.clear()
    answered(frozen, "salesforce", planning=True)
    assert queries == [
        "SELECT CloseDate, Amount, Segment__c, Product__c FROM Opportunity "
        "WHERE (StageName = 'Closed Won') AND CloseDate >= 2026-10-01 AND CloseDate <= 2026-11-15"
    ]


def test_a_collect_run_stores_the_same_rows_with_planning_on_and_off(frozen, tmp_path):
    definitions = load_definitions(REPO / "okr_defs")
    stored = []
    for planning in (False, True):
        warehouse = Warehouse(f"sqlite:///{tmp_path / f'planning-{planning}.db'}")
        sent = 0
        for source in API_SOURCES:
            connector = connect(connected_sources()[source].connector_class(), frozen.url)
            connector.plans_queries = planning
            before = frozen.request_count()
            result = collect_source(
                source, connector, None, definitions, FIRST, LAST, warehouse, "run-1",
                progress=lambda line: None,
            )  # fmt: skip
            sent += frozen.request_count() - before
            assert result.ok and result.rows > 0, (source, result.failures)
        keys_ = [r.metric_key for source in API_SOURCES for r in sample_requests(source)]
        rows = warehouse.read_observations(keys_, date(2026, 7, 1), LAST)
        stored.append((rows.sort_values(["metric_key", "date"]).reset_index(drop=True), sent))
    (off, sent_off), (on, sent_on) = stored
    assert len(off) > 500
    pd.testing.assert_frame_equal(on, off, check_exact=True)
    assert sent_on < sent_off


# --- (e) errors stay per series --------------------------------------------------------------


def test_a_salesforce_series_that_cannot_share_fails_alone(sandbox):
    sandbox.data.salesforce.set_records(
        "Planned__c",
        [
            {"Day__c": "2026-10-01", "Stage__c": "Won", "Kind__c": "a", "Amount__c": 5},
            {"Day__c": "2026-10-01", "Stage__c": "won", "Kind__c": "b", "Amount__c": 7},
            {"Day__c": "2026-10-02", "Stage__c": "Lost", "Kind__c": None, "Amount__c": 11},
        ],
        fields={
            "Day__c": "date",
            "Stage__c": "picklist",
            "Kind__c": "string",
            "Amount__c": "currency",
        },
    )

    def sf(where: str, **options) -> SeriesRequest:
        return request(
            SalesforceMetric(
                source="salesforce",
                object="Planned__c",
                date_field="Day__c",
                where=where,
                **options,
            )
        )

    won_a = sf("Stage__c = 'WON' AND Kind__c = 'A'")
    won_sum = sf("Stage__c = 'won'", measure="sum", field="Amount__c")
    not_a = sf("Kind__c != 'a'")  # null is not 'a', as in SOQL
    text_sum = sf("Stage__c = 'Won'", measure="sum", field="Kind__c")  # not a number
    unknown = sf("Nope__c = 'x'")  # its own query, which Salesforce refuses
    connector = connect(SalesforceConnector, sandbox.url)
    queries = sandbox.data.salesforce.queries
    queries.clear()
    answers = connector.daily_series_many([won_a, won_sum, not_a, text_sum, unknown])
    assert answers[won_a.metric_key]["value"].tolist() == [1.0, 0.0, 0.0]
    assert answers[won_sum.metric_key]["value"].tolist() == [12.0, 0.0, 0.0]
    assert answers[not_a.metric_key]["value"].tolist() == [1.0, 1.0, 0.0]
    assert str(answers[text_sum.metric_key]) == (
        "salesforce: field Kind__c of Planned__c is a string field: `measure: sum` needs a number"
    )
    assert isinstance(answers[unknown.metric_key], SourceError)
    assert "Nope__c" in str(answers[unknown.metric_key])
    # The three that share: one query, with nothing in common to send but the days.
    assert queries[0] == (
        "SELECT Day__c, Amount__c, Stage__c, Kind__c FROM Planned__c "
        "WHERE Day__c >= 2026-10-01 AND Day__c <= 2026-10-03"
    )
    assert len(queries) == 2


def test_a_github_item_without_a_field_costs_only_the_series_counting_it(sandbox):
    repo = "acme/planner-undated"
    stored = sandbox.data.github.set_repo(
        repo,
        issues=[
            {"created_at": "2026-10-01T10:00:00Z", "closed_at": "2026-10-02T10:00:00Z"},
            {"created_at": "2026-10-02T10:00:00Z", "closed_at": "2026-10-02T12:00:00Z"},
        ],
    )
    stored.issues[1]["created_at"] = "last tuesday"  # as a broken API would list it
    opened, closed = request(github(repo, "opened_issues")), request(github(repo, "closed_issues"))
    connector = connect(GitHubConnector, sandbox.url)
    answers = connector.daily_series_many([opened, closed])
    assert sandbox.request_count() == 1
    assert str(answers[opened.metric_key]) == (
        "github: issue 2: created_at 'last tuesday' is not a timestamp"
    )
    assert answers[closed.metric_key]["value"].tolist() == [0.0, 2.0, 0.0]


def test_a_failed_jira_search_costs_only_its_jqls_series(sandbox):
    connector = connect(JiraConnector, sandbox.url)
    good = request(JiraMetric(source="jira", jql="project = SUP", count="created"))
    bad = request(
        JiraMetric(source="jira", jql="project = SUP AND NOT status = Done", count="created")
    )
    bad_too = request(
        JiraMetric(source="jira", jql="project = SUP AND NOT status = Done", count="resolved")
    )
    answers = connector.daily_series_many([good, bad, bad_too])
    assert isinstance(answers[good.metric_key], pd.DataFrame)
    assert answers[good.metric_key]["value"].sum() > 0
    for key in keys(bad, bad_too):
        assert isinstance(answers[key], SourceError) and "does not support 'NOT'" in str(
            answers[key]
        )


def test_github_pull_requests_of_every_label_set_come_from_one_listing(sandbox, monkeypatch):
    repo = "acme/planner-pulls"
    merged = ["2026-10-01T09:00:00Z", "2026-10-02T09:00:00Z", "2026-10-03T09:00:00Z"]
    labels = [["bug"], ["bug", "performance"], []]
    sandbox.data.github.set_repo(
        repo,
        pulls=[
            {
                "created_at": "2026-09-30T09:00:00Z",
                "merged_at": at,
                "closed_at": at,
                "updated_at": at,
                "labels": names,
            }
            for at, names in zip(merged * 2, labels * 2, strict=True)
        ],
    )
    monkeypatch.setattr(GitHubConnector, "page_size", 2)  # 6 pull requests: 3 pages
    asked = [
        request(github(repo, "merged_pull_requests", *names))
        for names in ((), ("bug",), ("bug", "performance"))
    ]
    counts = []
    for planning in (False, True):
        connector = connect(GitHubConnector, sandbox.url)
        connector.plans_queries = planning
        sandbox.reset()
        answers = connector.daily_series_many(asked)
        counts.append(sandbox.request_count())  # later pages follow /repositories/<id>/...
        assert [answers[r.metric_key]["value"].tolist() for r in asked] == [
            [2.0, 2.0, 2.0],
            [2.0, 2.0, 0.0],
            [0.0, 2.0, 0.0],
        ]
    # Three listings of 3 pages each, or one.
    assert counts == [9, 3]


def test_google_analytics_one_value_filters_read_their_rows_of_one_breakdown(sandbox):
    property_id = "100000091"
    sandbox.data.google_analytics.set_rows(
        property_id,
        [
            {"date": "2026-10-01", "eventName": "a", "platform": "iOS", "eventCount": 3},
            {"date": "2026-10-01", "eventName": "a", "platform": "web", "eventCount": 4},
            {"date": "2026-10-01", "eventName": "b", "platform": "iOS", "eventCount": 5},
            {"date": "2026-10-02", "eventName": "b", "platform": "iOS", "eventCount": 6},
            {"date": "2026-10-02", "eventName": "A", "platform": "iOS", "eventCount": 100},
            {"date": "2026-10-03", "eventName": "c", "platform": "iOS", "eventCount": 7},
        ],
    )
    a, b = (request(ga("eventCount", property_id, filter={"eventName": [name]})) for name in "ab")
    connector = connect(GoogleAnalyticsConnector, sandbox.url)
    answers = connector.daily_series_many([a, b])
    assert answers[a.metric_key]["value"].tolist() == [7.0, 0.0, 0.0]  # `A` is another event
    assert answers[b.metric_key]["value"].tolist() == [5.0, 6.0, 0.0]
    (body,) = sandbox.request_bodies("/v1beta")
    assert body["dimensions"] == [{"name": "date"}, {"name": "eventName"}]
    assert body["metrics"] == [{"name": "eventCount"}]
    assert body["dimensionFilter"] == {
        "filter": {
            "fieldName": "eventName",
            "inListFilter": {"values": ["a", "b"], "caseSensitive": True},
        }
    }
