"""The warehouse: idempotent window writes, bulk inserts, concurrent writers.

Every test runs on SQLite and on PostgreSQL (`warehouse_url`, tests/conftest.py).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from datetime import date

import pandas as pd
import pytest
from sqlalchemy import text

from okr_metrics.pipelines.scoring.rules import KR_SCORE_COLUMNS
from okr_metrics.warehouse import store
from okr_metrics.warehouse.db import WarehouseUrlError
from okr_metrics.warehouse.store import Warehouse


@pytest.fixture
def warehouse(warehouse_url) -> Iterator[Warehouse]:
    with Warehouse(warehouse_url) as warehouse:
        yield warehouse


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


def test_observations_of_many_keys_come_back_sorted_one_object_per_key_and_day(warehouse):
    # 1,200 keys: three reads of 500 keys at most; one key holds a quote.
    keys = [f"k{index:04d}" for index in range(1_199)] + ["it's.quoted"]
    frame = pd.DataFrame(
        {
            "metric_key": [key for key in keys for _ in range(3)],
            "date": days(1, 3) * len(keys),
            "value": [float(index) for index in range(3 * len(keys))],
        }
    )
    warehouse.replace_observations(
        "github", frame, keys, date(2026, 10, 1), date(2026, 10, 3), "r1"
    )
    read = warehouse.read_observations(reversed(keys), date(2026, 10, 2), date(2026, 10, 3))
    expected = frame[frame["date"] >= date(2026, 10, 2)].sort_values(["metric_key", "date"])
    assert read["metric_key"].tolist() == expected["metric_key"].tolist()
    assert read["date"].tolist() == expected["date"].tolist()
    assert read["value"].tolist() == expected["value"].tolist()
    assert read["value"].dtype == float and read["date"].map(type).eq(date).all()
    # Each key and day is one object, however many rows repeat it.
    assert len({id(key) for key in read["metric_key"]}) == len(keys)
    assert len({id(day) for day in read["date"]}) == 2


def test_series_replaced_together_keep_their_windows_and_kept_days(warehouse):
    def series(first: int, last: int, value: float) -> pd.DataFrame:
        return pd.DataFrame({"date": days(first, last), "value": value})

    oct_ = [date(2026, 10, day) for day in range(1, 6)]
    warehouse.replace_series(
        "jira",
        [
            store.SeriesWindow("k1", series(1, 5, 1.0), oct_[0], oct_[4]),
            store.SeriesWindow("k2", series(1, 5, 2.0), oct_[0], oct_[4]),
            store.SeriesWindow("k3", series(1, 5, 3.0), oct_[0], oct_[4]),
        ],
        "r1",
    )
    written = warehouse.replace_series(
        "jira",
        [
            # Days 2..5 again, day 3 failed its validation: its stored row stays.
            store.SeriesWindow(
                "k1", series(2, 5, 9.0).drop(index=1), oct_[1], oct_[4], frozenset({oct_[2]})
            ),
            store.SeriesWindow("k2", series(1, 1, 0.0).iloc[0:0], oct_[0], oct_[4]),  # no rows
        ],
        "r2",
    )
    assert written == 3
    frame = warehouse.read_observations(["k1", "k2", "k3"], oct_[0], oct_[4])
    values = {key: group["value"].tolist() for key, group in frame.groupby("metric_key")}
    assert values == {"k1": [1.0, 9.0, 1.0, 9.0, 9.0], "k3": [3.0] * 5}


def test_schema_is_created_once_and_reopened(warehouse_url):
    url = warehouse_url
    Warehouse(url).replace_kr_scores(kr_rows(days(1, 1)), date(2026, 10, 1), date(2026, 10, 1), "r")
    again = Warehouse(url)
    assert again.count_rows("kr_scores") == 2
    assert again.count_rows("objective_scores") == 0


def test_a_sqlite_warehouse_gets_its_folder(tmp_path):
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'nested' / 'deeper' / 'warehouse.db'}")
    assert warehouse.count_rows("kr_scores") == 0
    assert (tmp_path / "nested" / "deeper" / "warehouse.db").is_file()


def test_a_bare_postgresql_url_is_refused_with_the_fix():
    with pytest.raises(WarehouseUrlError, match=r"postgresql\+psycopg2://okr@db/okr"):
        Warehouse("postgresql://okr@db/okr")


def test_bulk_inserts_keep_awkward_values_exactly(warehouse, monkeypatch):
    """Quotes, commas, newlines, empty strings, NULLs and float bits survive (COPY on PostgreSQL)."""
    copies = []
    monkeypatch.setattr(store, "_copy_rows", _spy(store._copy_rows, copies))
    frame = kr_rows(days(1, 1), kr_ids=("quote", "empty", "null-spelling"))
    frame["kr_title"] = ['Say "hi",\tthen\nleave\r', "Ünïcode ✓", "back\\slash"]
    frame["owner"] = ["", None, "\\N"]  # an empty string is not NULL; \N spells NULL in COPY
    frame["value"] = [0.1 + 0.2, float("inf"), None]
    frame["progress"] = [-0.0, 1e-300, -1.5]
    frame["forecast_method"] = [None, "linear", ""]
    warehouse.replace_kr_scores(frame, date(2026, 10, 1), date(2026, 10, 1), "r")
    rows = warehouse.read_kr_scores().set_index("kr_id")
    assert rows.loc["quote", "kr_title"] == 'Say "hi",\tthen\nleave\r'
    assert rows.loc["empty", "kr_title"] == "Ünïcode ✓"
    assert rows.loc["null-spelling", "kr_title"] == "back\\slash"
    assert rows.loc["quote", "owner"] == ""
    assert rows.loc["empty", "owner"] is None
    assert rows.loc["null-spelling", "owner"] == "\\N"
    assert rows.loc["quote", "value"] == 0.1 + 0.2
    assert rows.loc["empty", "value"] == float("inf")
    assert pd.isna(rows.loc["null-spelling", "value"])
    if warehouse.engine.dialect.name == "postgresql":  # SQLite stores -0.0 as 0
        assert math.copysign(1, rows.loc["quote", "progress"]) == -1
    assert rows.loc["empty", "progress"] == 1e-300
    assert rows.loc["quote", "forecast_method"] is None
    assert rows.loc["null-spelling", "forecast_method"] == ""
    assert not rows["stale"].any()
    # PostgreSQL took them through COPY, escapes and all.
    into_scores = [call for call in copies if call[1].name == "kr_scores"]
    assert len(into_scores) == (1 if warehouse.engine.dialect.name == "postgresql" else 0)


def _spy(function, calls: list):
    def wrapper(*args, **kwargs):
        calls.append(args)
        return function(*args, **kwargs)

    return wrapper


def test_writers_of_overlapping_windows_at_once_leave_one_row_per_key(warehouse_url):
    """Two runs replacing overlapping windows at the same moment, again and again.

    Without the per-table write lock, PostgreSQL fails this with a duplicate key: the second
    transaction's DELETE does not see the rows the first one inserted.
    """
    warehouse_a, warehouse_b = Warehouse(warehouse_url), Warehouse(warehouse_url)
    warehouse_a.ensure_schema()
    rounds = 8
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def writer(warehouse: Warehouse, first: int, last: int, name: str) -> None:
        try:
            for round_number in range(rounds):
                barrier.wait(timeout=60)
                run_id = f"{name}-{round_number}"
                window = (date(2026, 10, first), date(2026, 10, last))
                frame = kr_rows(days(first, last), kr_ids=("a", "b", "c"))
                warehouse.replace_kr_scores(frame, *window, run_id)
                objectives = frame.drop_duplicates("as_of")[["quarter", "objective_id", "as_of"]]
                objectives = objectives.assign(
                    title="O",
                    owner=None,
                    aligns_to=None,
                    score=0.5,
                    coverage=1.0,
                    status="on_track",
                )
                warehouse.replace_objective_scores(objectives, *window, run_id)
                observations = pd.DataFrame(
                    {"metric_key": "k", "date": days(first, last), "value": float(round_number)}
                )
                warehouse.replace_observations("github", observations, ["k"], *window, run_id)
        except BaseException as error:  # reported by the main thread
            errors.append(error)
            barrier.abort()

    threads = [
        threading.Thread(target=writer, args=(warehouse_a, 1, 6, "a")),
        threading.Thread(target=writer, args=(warehouse_b, 4, 9, "b")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    warehouse_a.close()
    warehouse_b.close()
    assert not errors, errors[0]

    check = Warehouse(warehouse_url)
    scores = check.read_kr_scores()
    assert len(scores) == 9 * 3
    assert not scores.duplicated(["quarter", "kr_id", "as_of"]).any()
    assert sorted(scores["as_of"].unique()) == days(1, 9)
    # Each day's rows come from one run: a window is replaced whole, never mixed.
    assert (scores.groupby("as_of")["run_id"].nunique() == 1).all()
    assert check.count_rows("objective_scores") == 9
    assert check.count_rows("metric_observations") == 9
    check.close()
