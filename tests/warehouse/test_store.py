"""The warehouse: tables and views created on first use, idempotent window writes."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from sqlalchemy import text

from pipelines.scoring import KR_SCORE_COLUMNS
from warehouse.store import Warehouse


@pytest.fixture
def warehouse(tmp_path) -> Warehouse:
    return Warehouse(f"sqlite:///{tmp_path / 'nested' / 'warehouse.db'}")


def kr_rows(days: list[date], kr_ids=("a", "b"), value: float | None = 1.0) -> pd.DataFrame:
    rows = []
    for day in days:
        for kr_id in kr_ids:
            row = dict.fromkeys(KR_SCORE_COLUMNS)
            row.update(
                quarter="2026-Q4",
                objective_id="o",
                kr_id=kr_id,
                kr_title=f"KR {kr_id}",
                owner="team",
                as_of=day,
                kr_type="increase",
                value=value if value is None else value + day.day,
                start=0.0,
                target=10.0,
                status="on_track",
                stale=False,
                definition_hash="h",
            )
            rows.append(row)
    return pd.DataFrame(rows, columns=KR_SCORE_COLUMNS)


def days(first: int, last: int) -> list[date]:
    return [date(2026, 10, d) for d in range(first, last + 1)]


def test_rewriting_a_window_replaces_rows(warehouse):
    warehouse.replace_kr_scores(kr_rows(days(1, 5)), date(2026, 10, 1), date(2026, 10, 5), "run-1")
    assert warehouse.count_rows("kr_scores") == 10
    # Same window again: same count, new run id.
    warehouse.replace_kr_scores(kr_rows(days(1, 5)), date(2026, 10, 1), date(2026, 10, 5), "run-2")
    assert warehouse.count_rows("kr_scores") == 10
    # An overlapping window replaces only its own days.
    warehouse.replace_kr_scores(
        kr_rows(days(4, 6), value=100.0), date(2026, 10, 4), date(2026, 10, 6), "run-3"
    )
    frame = warehouse.read_kr_scores()
    assert len(frame) == 12
    by_day = frame[frame["kr_id"] == "a"].set_index("as_of")
    assert by_day.loc[date(2026, 10, 3), "run_id"] == "run-2"
    assert by_day.loc[date(2026, 10, 3), "value"] == 4.0  # 1 + day 3
    assert by_day.loc[date(2026, 10, 5), "value"] == 105.0  # 100 + day 5
    assert by_day.loc[date(2026, 10, 6), "run_id"] == "run-3"


def test_missing_values_become_null(warehouse):
    warehouse.replace_kr_scores(
        kr_rows(days(1, 1), value=None), date(2026, 10, 1), date(2026, 10, 1), "r"
    )
    with warehouse.engine.connect() as connection:
        nulls = connection.execute(
            text("SELECT COUNT(*) FROM kr_scores WHERE value IS NULL")
        ).scalar()
    assert nulls == 2


def test_latest_views_pick_the_newest_day(warehouse):
    warehouse.replace_kr_scores(kr_rows(days(1, 3)), date(2026, 10, 1), date(2026, 10, 3), "r")
    with warehouse.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT kr_id, as_of, value FROM kr_scores_latest ORDER BY kr_id")
        ).all()
    assert [(row[0], str(row[1]), row[2]) for row in rows] == [
        ("a", "2026-10-03", 4.0),
        ("b", "2026-10-03", 4.0),
    ]
    assert warehouse.latest_as_of() == ("2026-Q4", date(2026, 10, 3))


def test_observations_replace_only_their_keys_and_days(warehouse):
    def series(key: str, first: int, last: int, value: float) -> pd.DataFrame:
        return pd.DataFrame({"metric_key": key, "date": days(first, last), "value": value})

    warehouse.replace_observations(
        "github", series("k1", 1, 5, 1.0), ["k1"], date(2026, 10, 1), date(2026, 10, 5), "r1"
    )
    warehouse.replace_observations(
        "github", series("k2", 1, 5, 2.0), ["k2"], date(2026, 10, 1), date(2026, 10, 5), "r1"
    )
    warehouse.replace_observations(
        "github", series("k1", 4, 5, 9.0), ["k1"], date(2026, 10, 4), date(2026, 10, 5), "r2"
    )
    frame = warehouse.read_observations(["k1", "k2"], date(2026, 10, 1), date(2026, 10, 5))
    assert len(frame) == 10
    k1 = frame[frame["metric_key"] == "k1"]["value"].tolist()
    assert k1 == [1.0, 1.0, 1.0, 9.0, 9.0]
    assert frame[frame["metric_key"] == "k2"]["value"].tolist() == [2.0] * 5
    # Reading is bounded by the window: nothing after the end day comes back.
    assert len(warehouse.read_observations(["k1"], date(2026, 10, 1), date(2026, 10, 3))) == 3


def test_schema_is_created_once_and_reopened(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    Warehouse(url).replace_kr_scores(kr_rows(days(1, 1)), date(2026, 10, 1), date(2026, 10, 1), "r")
    again = Warehouse(url)
    assert again.count_rows("kr_scores") == 2
    assert again.count_rows("objective_scores") == 0
