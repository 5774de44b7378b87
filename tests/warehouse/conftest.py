"""A small sample warehouse, the same on SQLite and PostgreSQL, for the views and the docs' SQL.

Two quarters of three objectives with two KRs each, written through `Warehouse` like a
real run: 2026-Q3 scored every day (one backfill run), 2026-Q4 scored 10-01..10-20 (one
nightly run a day). Each KR's progress grows in a straight line at a fixed pace
(`progress = pace * day / 92`), so every number a test expects follows from the table
below by hand:

| KR | objective (owner) | team | Q3 pace | Q4 pace |
| --- | --- | --- | --- | --- |
| signups (increase 0 -> 1000 / 1500, then 1200 from 10-10) | grow-usage (product) | growth | 1.2 | 1.38 |
| activation (increase 20 -> 40) | grow-usage | growth | 1.05 | 0.6 |
| uptime (maintain_above 99.9; score, not pace) | reliability (platform) | platform | 0.9 | 0.97 |
| p95-latency (decrease 800 -> 400, committed) | reliability | platform | 0.3 | 0.23 |
| first-response (decrease 24 -> 4) | support-speed (support) | support | 0.8 | 0.92, stale from 10-15 |
| tickets-closed (increase 0 -> 500) | support-speed | support | 0.5 | no data at all |

Objectives grow-usage and support-speed align to `company-growth`.

`kr_alerts` holds the Q4 status changes, held two days (the default dwell): activation
turns at_risk and p95-latency off_track on day 8 (pace 0.6 and 0.23), held on 10-09;
first-response turns at_risk on day 19 (pace 0.92 * 14 / 19 = 0.678), held on 10-20.
The 10-09 run posted activation's and failed on p95-latency's; the 10-20 run had no
webhook, so first-response's is recorded only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd
import pytest

from okr_metrics.pipelines.scoring.alerts import AlertWatch, detect_transitions
from okr_metrics.pipelines.scoring.rules import KR_SCORE_COLUMNS, OBJECTIVE_SCORE_COLUMNS
from okr_metrics.warehouse.store import Warehouse

DAYS_IN_QUARTER = 92
Q3, Q4 = "2026-Q3", "2026-Q4"
Q3_START, Q4_START = date(2026, 7, 1), date(2026, 10, 1)
Q4_LAST = date(2026, 10, 20)  # the newest scored day
STALE_FROM = date(2026, 10, 15)  # first-response's source fails from this day on


@dataclass(frozen=True)
class SampleKR:
    kr_id: str
    objective_id: str
    owner: str
    kr_type: str
    start: float | None
    target: float
    pace: dict[str, float | None]  # quarter -> pace (maintain KRs: their score)
    method: str = "linear"
    commitment: str = "aspirational"


KRS = [
    SampleKR(
        "signups", "grow-usage", "growth", "increase", 0, 1000, {Q3: 1.2, Q4: 1.38}, "run_rate"
    ),
    SampleKR("activation", "grow-usage", "growth", "increase", 20, 40, {Q3: 1.05, Q4: 0.6}),
    SampleKR(
        "uptime", "reliability", "platform", "maintain_above", None, 99.9, {Q3: 0.9, Q4: 0.97}
    ),
    # Committed: off track after the grace period either way (pace under 0.5).
    SampleKR(
        "p95-latency",
        "reliability",
        "platform",
        "decrease",
        800,
        400,
        {Q3: 0.3, Q4: 0.23},
        commitment="committed",
    ),
    SampleKR("first-response", "support-speed", "support", "decrease", 24, 4, {Q3: 0.8, Q4: 0.92}),
    SampleKR(
        "tickets-closed",
        "support-speed",
        "support",
        "increase",
        0,
        500,
        {Q3: 0.5, Q4: None},
        "run_rate",
    ),
]
OBJECTIVES = {
    "grow-usage": ("Grow usage", "product", "company-growth"),
    "reliability": ("Be reliable", "platform", None),
    "support-speed": ("Answer fast", "support", "company-growth"),
}
RANK = {"off_track": 0, "at_risk": 1, "on_track": 2, "achieved": 3}


def signups_target(quarter: str, as_of: date) -> tuple[float, str]:
    """signups' target and definition: Q4 starts at 1500 and is cut to 1200 on 10-10."""
    if quarter == Q3:
        return 1000, "signups-q3"
    return (1500, "signups-q4-v1") if as_of < date(2026, 10, 10) else (1200, "signups-q4-v2")


def pace_status(progress: float, score: float, day: int) -> str:
    if day <= 7:  # the grace period
        return "on_track" if progress >= 0 else "off_track"
    if score >= 1:
        return "achieved"
    pace = progress / (day / DAYS_IN_QUARTER)
    return "on_track" if pace >= 0.7 else "at_risk" if pace >= 0.5 else "off_track"


def maintain_status(score: float) -> str:
    return "on_track" if score >= 0.95 else "at_risk" if score >= 0.8 else "off_track"


def kr_row(kr: SampleKR, quarter: str, day: int) -> dict:
    quarter_start = Q3_START if quarter == Q3 else Q4_START
    as_of = quarter_start + timedelta(days=day - 1)
    target, definition = (
        signups_target(quarter, as_of) if kr.kr_id == "signups" else (kr.target, f"{kr.kr_id}-def")
    )
    row = dict.fromkeys(KR_SCORE_COLUMNS)
    row.update(
        quarter=quarter,
        objective_id=kr.objective_id,
        kr_id=kr.kr_id,
        kr_title=f"KR {kr.kr_id}",
        owner=kr.owner,
        as_of=as_of,
        kr_type=kr.kr_type,
        start=kr.start,
        target=target,
        expected_progress=day / DAYS_IN_QUARTER,
        definition_hash=definition,
        forecast_method=kr.method,
        stale=False,
        commitment=kr.commitment,
    )
    pace = kr.pace[quarter]
    if pace is None:
        row.update(status="no_data", stale=True, forecast_method=None)
        return row
    if kr.kr_type == "maintain_above":
        row.update(value=99.95, progress=pace, score=pace, status=maintain_status(pace))
        row.update(forecast_value=99.95, forecast_score=pace, last_observed=as_of)
        return row
    observed_day = day
    if kr.kr_id == "first-response" and as_of >= STALE_FROM:
        observed_day = (STALE_FROM - quarter_start).days  # the last good day, carried
        row["stale"] = True
    progress = pace * observed_day / DAYS_IN_QUARTER
    score = min(max(progress, 0.0), 1.0)
    row.update(
        value=kr.start + progress * (target - kr.start),
        progress=progress,
        score=score,
        status=pace_status(progress, score, day),
        last_observed=quarter_start + timedelta(days=observed_day - 1),
        forecast_value=kr.start + pace * (target - kr.start),
        forecast_score=min(max(pace, 0.0), 1.0),
    )
    return row


def objective_rows(kr_frame: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (quarter, objective_id, as_of), group in kr_frame.groupby(
        ["quarter", "objective_id", "as_of"], sort=True
    ):
        with_data = group[group["value"].notna()]
        title, owner, aligns_to = OBJECTIVES[objective_id]
        status = min(with_data["status"], key=RANK.__getitem__) if len(with_data) else "no_data"
        rows.append(
            {
                "quarter": quarter,
                "objective_id": objective_id,
                "title": title,
                "owner": owner,
                "aligns_to": aligns_to,
                "as_of": as_of,
                "score": with_data["score"].mean() if len(with_data) else None,
                "coverage": len(with_data) / len(group),
                "status": status,
            }
        )
    return pd.DataFrame(rows, columns=OBJECTIVE_SCORE_COLUMNS)


def quarter_frame(quarter: str, days: range) -> pd.DataFrame:
    return pd.DataFrame(
        [kr_row(kr, quarter, day) for kr in KRS for day in days], columns=KR_SCORE_COLUMNS
    )


def observations(key: str, first: date, last: date, value: float) -> pd.DataFrame:
    days = pd.date_range(first, last).date
    return pd.DataFrame({"metric_key": key, "date": days, "value": value})


def fill(warehouse: Warehouse) -> None:
    q3 = quarter_frame(Q3, range(1, DAYS_IN_QUARTER + 1))
    q3_end = Q3_START + timedelta(days=DAYS_IN_QUARTER - 1)
    warehouse.replace_kr_scores(q3, Q3_START, q3_end, "backfill-2026-Q3")
    warehouse.replace_objective_scores(objective_rows(q3), Q3_START, q3_end, "backfill-2026-Q3")
    for day in range(1, (Q4_LAST - Q4_START).days + 2):
        as_of = Q4_START + timedelta(days=day - 1)
        frame = quarter_frame(Q4, range(day, day + 1))
        run_id = f"nightly-{as_of}"
        warehouse.replace_kr_scores(frame, as_of, as_of, run_id)
        warehouse.replace_objective_scores(objective_rows(frame), as_of, as_of, run_id)
    releases = "github:count=releases;repo=acme/app"
    tickets = "jira:count=created;jql=project = SUP"
    warehouse.replace_observations(
        "github", observations(releases, Q3_START, Q4_LAST, 1.0), [releases], Q3_START, Q4_LAST, "r"
    )
    last_jira = STALE_FROM - timedelta(days=1)
    warehouse.replace_observations(
        "jira", observations(tickets, Q3_START, last_jira, 3.0), [tickets], Q3_START, last_jira, "r"
    )
    fill_alerts(warehouse)
    fill_final_grades_and_confidence(warehouse)


def fill_final_grades_and_confidence(warehouse: Warehouse) -> None:
    """Q3 frozen on its closing day (10-07) with one override; Q4 confidence check-ins."""
    from okr_metrics.warehouse.final_scores import Override, apply_overrides, freeze_quarter

    q3_end = Q3_START + timedelta(days=DAYS_IN_QUARTER - 1)
    freeze_quarter(warehouse, Q3, q3_end, date(2026, 10, 7), "nightly-2026-10-07")
    override = Override(0.5, "the latency budget moved to the new CDN", "platform-lead", "g:2")
    apply_overrides(warehouse, Q3, {"p95-latency": override})
    checkins = pd.DataFrame(
        [
            (Q4, "signups", date(2026, 10, 16), None, "the campaign ends next week", "f", 2, 3),
            (Q4, "activation", date(2026, 10, 19), None, None, "f", 3, 6),
            (Q4, "p95-latency", date(2026, 10, 18), None, "the CDN lands in November", "f", 4, 8),
        ],
        columns=["quarter", "kr_id", "date", "value", "note", "file", "line", "confidence"],
    ).astype({"confidence": object})
    warehouse.replace_checkins(Q4, checkins, "nightly-2026-10-20")


def fill_alerts(warehouse: Warehouse) -> None:
    """Q4's status changes, recorded and posted as two nightly runs would (see the top)."""
    history = warehouse.read_kr_scores(quarter=Q4)
    alerts = detect_transitions(history, {kr.kr_id: AlertWatch() for kr in KRS})
    alerts["objective_title"] = [OBJECTIVES[o][0] for o in alerts["objective_id"]]
    alerts["route"] = "OKR_ALERT_WEBHOOK_URL"
    day_9 = date(2026, 10, 9)
    for as_of, recorded in alerts.groupby("as_of"):
        warehouse.add_alerts(recorded, f"nightly-{as_of}")
    posted = warehouse.claim_alerts(
        "nightly-2026-10-09", day_9, day_9, max_attempts=10, lease=timedelta(minutes=15)
    )
    for alert in posted.to_dict("records"):
        error = "gave up after 1 attempts on POST ***: last server error (HTTP 503)"
        failed = alert["kr_id"] == "p95-latency"
        warehouse.finish_alert(
            alert, "nightly-2026-10-09", "OKR_ALERT_WEBHOOK_URL", error if failed else None
        )


@pytest.fixture(scope="module", params=("sqlite", "postgresql"))
def sample_warehouse(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[Warehouse]:
    """The sample data, written once per test module and database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sample') / 'warehouse.db'}"
        with Warehouse(url) as warehouse:
            fill(warehouse)
            yield warehouse
        return
    with request.getfixturevalue("postgres_schemas")() as url, Warehouse(url) as warehouse:
        fill(warehouse)
        yield warehouse
