"""The analysts' views on the sample warehouse (tests/warehouse/conftest.py), on both databases."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from sqlalchemy import text

from okr_metrics.pipelines.scoring.rules import KR_SCORE_COLUMNS
from okr_metrics.warehouse.store import Warehouse


def query(warehouse: Warehouse, sql: str) -> pd.DataFrame:
    with warehouse.engine.connect() as connection:
        result = connection.execute(text(sql))
        return pd.DataFrame(result.all(), columns=list(result.keys()))


def test_latest_views_hold_each_kr_and_objective_on_its_newest_day(sample_warehouse):
    krs = query(sample_warehouse, "SELECT quarter, kr_id, as_of FROM kr_scores_latest")
    assert len(krs) == 2 * 6
    newest = krs.groupby("quarter")["as_of"].agg(lambda days: {str(day) for day in days})
    assert newest.to_dict() == {"2026-Q3": {"2026-09-30"}, "2026-Q4": {"2026-10-20"}}
    objectives = query(
        sample_warehouse, "SELECT quarter, objective_id FROM objective_scores_latest"
    )
    assert len(objectives) == 2 * 3


def test_quarter_summary_says_how_each_objective_ended(sample_warehouse):
    summary = query(
        sample_warehouse, "SELECT * FROM quarter_summary ORDER BY quarter, objective_id"
    ).set_index(["quarter", "objective_id"])
    assert list(summary.columns) == [
        "title",
        "owner",
        "as_of",
        "final_score",
        "status",
        "coverage",
        "krs",
        "krs_with_data",
        "share_at_or_above_0_7",
        "mean_progress",
        "target_calibration",
        "committed_krs",
        "committed_success_share",
        "aspirational_krs",
        "aspirational_success_share",
        "baseline_krs",
    ]
    q3 = summary.loc["2026-Q3"]
    assert {str(day) for day in q3["as_of"]} == {"2026-09-30"}
    # grow-usage: progress 1.2 and 1.05, both scored 1: over-reached.
    assert q3.loc["grow-usage", "final_score"] == pytest.approx(1.0)
    assert q3.loc["grow-usage", "share_at_or_above_0_7"] == pytest.approx(1.0)
    assert q3.loc["grow-usage", "mean_progress"] == pytest.approx(1.125)
    assert q3.loc["grow-usage", "target_calibration"] == "too_easy"
    # reliability: uptime 0.9, p95-latency 0.3: half the KRs below 0.4.
    assert q3.loc["reliability", "final_score"] == pytest.approx(0.6)
    assert q3.loc["reliability", "share_at_or_above_0_7"] == pytest.approx(0.5)
    assert q3.loc["reliability", "target_calibration"] == "too_hard"
    # support-speed: 0.8 and 0.5.
    assert q3.loc["support-speed", "mean_progress"] == pytest.approx(0.65)
    assert q3.loc["support-speed", "target_calibration"] == "balanced"
    assert (q3["krs"] == 2).all() and (q3["krs_with_data"] == 2).all()

    q4 = summary.loc["2026-Q4"]
    assert {str(day) for day in q4["as_of"]} == {"2026-10-20"}
    # support-speed: tickets-closed has no data; first-response is stale at 0.92 * 14 / 92.
    support = q4.loc["support-speed"]
    assert (support["krs"], support["krs_with_data"]) == (2, 1)
    assert support["coverage"] == pytest.approx(0.5)
    assert support["mean_progress"] == pytest.approx(0.92 * 14 / 92)
    assert support["share_at_or_above_0_7"] == pytest.approx(0.0)
    assert support["target_calibration"] == "too_hard"


def test_quarter_summary_has_no_calibration_without_data(warehouse_url):
    row = dict.fromkeys(KR_SCORE_COLUMNS)
    row.update(
        quarter="2026-Q4",
        objective_id="o",
        kr_id="k",
        kr_title="K",
        as_of=date(2026, 10, 2),
        kr_type="increase",
        start=0.0,
        target=1.0,
        status="no_data",
        stale=True,
        definition_hash="h",
    )
    objective = {
        "quarter": "2026-Q4",
        "objective_id": "o",
        "title": "O",
        "owner": None,
        "aligns_to": None,
        "as_of": date(2026, 10, 2),
        "score": None,
        "coverage": 0.0,
        "status": "no_data",
    }
    with Warehouse(warehouse_url) as warehouse:
        day = date(2026, 10, 2)
        warehouse.replace_kr_scores(pd.DataFrame([row]), day, day, "r")
        warehouse.replace_objective_scores(pd.DataFrame([objective]), day, day, "r")
        summary = query(warehouse, "SELECT * FROM quarter_summary")
    assert len(summary) == 1
    assert summary.loc[0, "krs"] == 1 and summary.loc[0, "krs_with_data"] == 0
    assert summary.loc[0, "target_calibration"] is None
    assert pd.isna(summary.loc[0, "share_at_or_above_0_7"])
    assert pd.isna(summary.loc[0, "mean_progress"])


def test_quarter_summary_reports_committed_and_aspirational_apart(warehouse_url):
    day = date(2026, 12, 31)

    def kr(kr_id, kr_type, value, progress, commitment):
        row = dict.fromkeys(KR_SCORE_COLUMNS)
        row.update(
            quarter="2026-Q4",
            objective_id="o",
            kr_id=kr_id,
            kr_title=kr_id,
            as_of=day,
            kr_type=kr_type,
            value=value,
            progress=progress,
            score=None if progress is None else min(max(progress, 0.0), 1.0),
            status="baseline" if kr_type == "baseline" else "on_track",
            stale=False,
            definition_hash="h",
            commitment=commitment,
        )
        return row

    krs = [
        kr("c-met", "increase", 10.0, 1.0, "committed"),  # committed, reached 1.0
        kr("c-met-too", "decrease", 2.0, 1.1, "committed"),
        kr("c-missed", "increase", 9.0, 0.9, "committed"),  # committed, 0.9: missed
        kr("a-met", "increase", 7.0, 0.75, "aspirational"),  # aspirational 0.75: a success
        kr("a-old", "increase", 5.0, 1.2, None),  # scored before step 7: aspirational
        kr("a-missed", "increase", 3.0, 0.3, "aspirational"),
        kr("base", "baseline", 42.0, None, "aspirational"),  # measured, never counted
    ]
    objective = {
        "quarter": "2026-Q4",
        "objective_id": "o",
        "title": "O",
        "owner": None,
        "aligns_to": None,
        "as_of": day,
        "score": 0.63,
        "coverage": 1.0,
        "status": "on_track",
    }
    with Warehouse(warehouse_url) as warehouse:
        warehouse.replace_kr_scores(pd.DataFrame(krs), day, day, "r")
        warehouse.replace_objective_scores(pd.DataFrame([objective]), day, day, "r")
        (row,) = query(warehouse, "SELECT * FROM quarter_summary").to_dict("records")
    assert (row["krs"], row["krs_with_data"], row["baseline_krs"]) == (6, 6, 1)
    assert (row["committed_krs"], row["aspirational_krs"]) == (3, 3)
    assert row["committed_success_share"] == pytest.approx(2 / 3)  # c-met, c-met-too
    assert row["aspirational_success_share"] == pytest.approx(2 / 3)  # a-met, a-old
    assert row["share_at_or_above_0_7"] == pytest.approx(5 / 6)  # all but a-missed
    assert row["mean_progress"] == pytest.approx((1.0 + 1.1 + 0.9 + 0.75 + 1.2 + 0.3) / 6)
    # too_easy counts aspirational KRs only: 1 of 3 reached 1.0 (a-old). Counting the
    # committed ones would make it 3 of 6, too_easy.
    assert row["target_calibration"] == "balanced"
