"""Data that lies, against the sandbox: HubSpot's search cap with thousands of deals on
one instant, its opaque cursor and a search without `total`, a date (not datetime)
property west of UTC, Jira in another time zone than the KR file, and GA restating its
last days between two runs (a whole pipeline run each: Dagster, SQLite).

Every expected number is counted by hand from the records the test writes.
"""

from __future__ import annotations

import shutil
import textwrap
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fault_sources import Sleeps

from okr_metrics.connectors.base import SeriesRequest, SourceSettings
from okr_metrics.connectors.hubspot.client import HubSpotConnector
from okr_metrics.connectors.hubspot.params import HubSpotMetric
from okr_metrics.connectors.jira.client import JiraConnector
from okr_metrics.connectors.jira.params import JiraMetric

UTC = timezone.utc
OCT_1, OCT_3 = date(2026, 10, 1), date(2026, 10, 3)
REPO = Path(__file__).resolve().parents[2]


def values(frame) -> list[float]:
    return frame["value"].tolist()


# --- HubSpot: the 10,000-result cap -------------------------------------------------------------

CAP, PAGE = 50, 20  # the sandbox and the connector agree on a cap 200 times smaller
CROWDED = "2-5001"
NOON = datetime(2026, 10, 2, 12, tzinfo=UTC)


@pytest.fixture
def hubspot(sandbox, monkeypatch) -> HubSpotConnector:
    monkeypatch.setattr(HubSpotConnector, "result_cap", CAP)
    monkeypatch.setattr(HubSpotConnector, "page_size", PAGE)
    settings = SourceSettings(base_url=sandbox.url, token="pat-na1-data")
    return HubSpotConnector.from_settings(settings, sleep=Sleeps(), max_attempts=2)


def crowded_deals() -> list[dict]:
    """130 won deals closed at the very same millisecond (an import), 3 on 10-01, 2 on
    10-03: 130 is 2.6 times the cap, and no split of time can part them."""
    same = [{"dealstage": "closedwon", "closedate": NOON, "amount": "10"} for _ in range(130)]
    before = [
        {"dealstage": "closedwon", "closedate": datetime(2026, 10, 1, h, tzinfo=UTC)}
        for h in (1, 2, 3)
    ]
    after = [
        {"dealstage": "closedwon", "closedate": datetime(2026, 10, 3, h, tzinfo=UTC)}
        for h in (4, 5)
    ]
    return before + same + after


def won(object_name: str, **keys) -> HubSpotMetric:
    filters = ({"property": "dealstage", "operator": "EQ", "value": "closedwon"},)
    return HubSpotMetric(source="hubspot", object=object_name, filters=filters, **keys)


def test_more_deals_on_one_instant_than_the_cap_are_split_by_id(sandbox, hubspot):
    sandbox.data.hubspot.set_records(CROWDED, crowded_deals())
    sandbox.data.hubspot.set_result_cap(CROWDED, CAP)
    series = hubspot.daily_series(SeriesRequest.of(won(CROWDED), OCT_1, OCT_3))
    assert values(series) == [3, 130, 2]

    bodies = sandbox.request_bodies()
    # Never a page at or past the cap (the sandbox, like HubSpot, would answer 400).
    assert all(int(body.get("after") or 0) < CAP for body in bodies)
    # The first search finds 135 > 50; then searches sorted by id, each after the last id
    # the one before listed: ids only grow, so no search is made twice.
    by_id = [body for body in bodies if body["sorts"][0]["propertyName"] == "hs_object_id"]
    starts = [
        next(
            (f["value"] for f in body["filterGroups"][0]["filters"] if f["operator"] == "GT"), None
        )
        for body in by_id
        if not body.get("after")
    ]
    assert starts[0] is None and len(starts) == 3  # 50 + 50 + 35
    assert [int(s) for s in starts[1:]] == sorted({int(s) for s in starts[1:]})
    assert len(bodies) == 1 + 3 + 3 + 2  # the first page, then 3 + 3 + 2 pages by id


def test_an_opaque_cursor_and_a_search_without_total_still_split(sandbox, hubspot):
    sandbox.data.hubspot.set_records(CROWDED, crowded_deals())
    sandbox.data.hubspot.set_result_cap(CROWDED, CAP)
    sandbox.data.hubspot.set_paging(CROWDED, opaque_cursor=True, without_total=True)
    try:
        series = hubspot.daily_series(SeriesRequest.of(won(CROWDED), OCT_1, OCT_3))
    finally:
        sandbox.data.hubspot.set_paging(CROWDED)
    assert values(series) == [3, 130, 2]
    cursors = {body["after"] for body in sandbox.request_bodies() if body.get("after")}
    # Sent back exactly as given: `MjAK` is base64 of "20\n", URL-quoted padding and all.
    assert "MjAK" in cursors and "NDAK" in cursors
    assert all(not cursor.isdigit() for cursor in cursors)


def test_a_date_property_keeps_its_first_day_west_of_utc(sandbox, hubspot):
    """A date property holds midnight UTC of its day; in Los Angeles (UTC-7) the window's
    first local midnight is 07:00Z, after the 10-01 deals."""
    days = {"2026-09-30": 1, "2026-10-01": 2, "2026-10-02": 3, "2026-10-03": 4, "2026-10-04": 5}
    deals = [
        {"dealstage": "closedwon", "contract_start": day, "closedate": NOON}
        for day, count in days.items()
        for _ in range(count)
    ]
    sandbox.data.hubspot.set_records("2-5002", deals)
    for zone in ("America/Los_Angeles", "UTC", "Asia/Tokyo"):
        metric = won("2-5002", date_property="contract_start")
        series = hubspot.daily_series(SeriesRequest.of(metric, OCT_1, OCT_3, zone))
        assert values(series) == [2, 3, 4], zone


# --- Jira: the account's time zone is not the KR file's -------------------------------------------


def test_jira_in_another_time_zone_counts_each_issue_once(sandbox):
    """The API user's profile is in Los Angeles, the KR file in Berlin; issues sit minutes
    on either side of Berlin's midnights. Two windows back to back count each issue once,
    on its Berlin day, and agree with one window over both."""
    berlin = ZoneInfo("Europe/Berlin")
    created = []
    for day in range(1, 7):
        midnight = datetime(2026, 10, day, tzinfo=berlin)
        created += [midnight - timedelta(minutes=1), midnight + timedelta(minutes=1)]
    issues = [{"created": moment.astimezone(UTC)} for moment in created]
    expected = Counter(moment.astimezone(berlin).date() for moment in created)
    sandbox.data.jira.set_issues("TZ", issues)
    sandbox.data.jira.user_timezone = "America/Los_Angeles"
    try:
        settings = SourceSettings(base_url=sandbox.url, token="jt", user="ops@example.com")
        metric = JiraMetric(source="jira", jql="project = TZ", count="created")

        def counts(first: date, last: date) -> dict[date, float]:
            connector = JiraConnector.from_settings(settings, sleep=Sleeps())
            frame = connector.daily_series(SeriesRequest.of(metric, first, last, "Europe/Berlin"))
            return dict(zip(frame["date"], frame["value"], strict=True))

        first_half, second_half = counts(OCT_1, OCT_3), counts(date(2026, 10, 4), date(2026, 10, 6))
        whole = counts(OCT_1, date(2026, 10, 6))
    finally:
        sandbox.data.jira.user_timezone = "UTC"
    assert {**first_half, **second_half} == whole
    # Each day has the minute after its midnight and the minute before the next one, but
    # 10-06 (no issue at 10-07 00:00 - 1 min); 09-30 23:59 is September's.
    assert whole == {day: float(expected.get(day, 0)) for day in whole}
    assert list(whole.values()) == [2, 2, 2, 2, 2, 1]
    assert sum(whole.values()) == len(issues) - 1  # the minute before 10-01 is September's


# --- Google Analytics: the last days restated, a whole pipeline run each ----------------------------

GA_DEFINITIONS = """\
quarter: 2026-Q4
objectives:
  - id: growth
    title: Grow the audience
    owner: web
    key_results:
      - id: visitors
        title: 2,000 active users this quarter
        type: increase
        start: 0
        target: 2000
        metric: {source: google_analytics, property: "880088", metric: activeUsers}
"""


def ga_rows(values_by_day: dict[int, int]) -> list[dict]:
    return [{"date": date(2026, 10, day), "activeUsers": n} for day, n in values_by_day.items()]


@pytest.fixture
def ga_pipeline(tmp_path, sandbox, monkeypatch):
    from okr_metrics.warehouse.store import Warehouse

    defs = tmp_path / "okr_defs"
    defs.mkdir()
    (defs / "2026-Q4.yaml").write_text(textwrap.dedent(GA_DEFINITIONS), encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    monkeypatch.setenv("OKR_DEFS", str(defs))
    monkeypatch.setenv("OKR_WAREHOUSE_URL", url)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.setenv("GA_API_URL", sandbox.url)
    monkeypatch.setenv("GA_ACCESS_TOKEN", "ya29.restated")
    monkeypatch.setenv("OKR_HTTP_BACKOFF_SECONDS", "0.01")
    (tmp_path / "dagster").mkdir()
    shutil.copyfile(REPO / "dagster.yaml", tmp_path / "dagster" / "dagster.yaml")
    return Warehouse(url)


def scores(warehouse) -> dict[date, dict]:
    frame = warehouse.read_kr_scores()
    return {row["as_of"]: row for row in frame.to_dict("records") if row["kr_id"] == "visitors"}


def observations(warehouse) -> dict[date, float]:
    from sqlalchemy import select

    from okr_metrics.warehouse.schema import metric_observations

    with warehouse.engine.connect() as connection:
        rows = connection.execute(
            select(metric_observations.c.date, metric_observations.c.value)
        ).all()
    return {date.fromisoformat(str(day)): value for day, value in rows}


def test_ga_restating_its_last_days_changes_only_what_changed(ga_pipeline, sandbox):
    from okr_metrics.pipelines.cli.main import EXIT_OK, run_window

    first = {1: 100, 2: 110, 3: 120, 4: 130, 5: 140, 6: 80}  # 10-06 still coming in
    sandbox.data.google_analytics.set_rows("880088", ga_rows(first))
    backfill = run_window(OCT_1, date(2026, 10, 6))
    assert backfill.exit_code == EXIT_OK and backfill.sources["google_analytics"] == "ok"
    before = scores(ga_pipeline)
    assert [before[date(2026, 10, d)]["value"] for d in range(1, 7)] == [
        100, 210, 330, 460, 600, 680
    ]  # fmt: skip

    # GA restates 10-06 (late hits: 80 -> 150) and 10-05 comes back the same; 10-07 arrives.
    second = {**first, 6: 150, 7: 90}
    sandbox.data.google_analytics.set_rows("880088", ga_rows(second))
    nightly = run_window(date(2026, 10, 5), date(2026, 10, 7))  # the 3 trailing days
    assert nightly.exit_code == EXIT_OK
    after = scores(ga_pipeline)

    assert observations(ga_pipeline) == {date(2026, 10, d): float(n) for d, n in second.items()}
    for day in range(1, 6):  # nothing changed up to 10-05: the rows say what they said
        as_of = date(2026, 10, day)
        for column in ("value", "progress", "score", "status", "stale"):
            assert after[as_of][column] == before[as_of][column], (as_of, column)
    assert after[date(2026, 10, 6)]["value"] == 750  # 600 + the restated 150
    assert after[date(2026, 10, 7)]["value"] == 840
    assert after[date(2026, 10, 6)]["run_id"] == nightly.run_id
    assert after[date(2026, 10, 4)]["run_id"] == backfill.run_id
