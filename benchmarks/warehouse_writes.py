"""Benchmark: write a year of scores for 1,000 KRs to the warehouse, on SQLite and PostgreSQL.

Not a test: it prints rows per second. For each database it writes 365 days x 1,000 KRs
(365,000 `kr_scores` rows) the way a backfill does, one window per quarter through
`Warehouse.replace_kr_scores` (bulk: COPY on PostgreSQL, executemany elsewhere), then
rewrites the same windows (the idempotent delete-then-insert of a re-run), and compares
with baselines in the same process: the same rows inserted one INSERT at a time, and
the same rows through the database's own bulk path with no layer above the driver
(`executemany` of plain tuples on sqlite3, `COPY ... FROM STDIN` of CSV on psycopg2).
`benchmarks/pipeline_runs.py` reports the latter ratio (`bulk_against_native`).

    python benchmarks/warehouse_writes.py                      # SQLite, and PostgreSQL if set
    python benchmarks/warehouse_writes.py --postgres-url postgresql+psycopg2://okr@127.0.0.1:5432/okr
    make bench                                                 # starts a scratch PostgreSQL too

PostgreSQL comes from --postgres-url, else OKR_BENCH_POSTGRES_URL or OKR_TEST_POSTGRES_URL;
the benchmark works in a schema of its own and drops it afterwards.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from okr_metrics.pipelines.scoring.rules import KR_SCORE_COLUMNS
from okr_metrics.warehouse.schema import kr_scores
from okr_metrics.warehouse.store import Warehouse, column_values

QUARTERS = [  # (quarter, first day, last day) of 2026
    ("2026-Q1", date(2026, 1, 1), date(2026, 3, 31)),
    ("2026-Q2", date(2026, 4, 1), date(2026, 6, 30)),
    ("2026-Q3", date(2026, 7, 1), date(2026, 9, 30)),
    ("2026-Q4", date(2026, 10, 1), date(2026, 12, 31)),
]


def year_of_scores(krs: int) -> dict[str, pd.DataFrame]:
    """Synthetic but realistic rows: quarter -> frame of every KR on every day of it."""
    rng = np.random.default_rng(7)
    frames = {}
    for quarter, first, last in QUARTERS:
        days = pd.date_range(first, last).date
        n_days = len(days)
        kr_ids = [f"kr-{index:04d}" for index in range(krs)]
        progress = rng.uniform(-0.1, 1.3, size=(krs, 1)) * np.arange(1, n_days + 1) / n_days
        frame = pd.DataFrame(
            {
                "quarter": quarter,
                "objective_id": np.repeat(
                    [f"objective-{index // 4:03d}" for index in range(krs)], n_days
                ),
                "kr_id": np.repeat(kr_ids, n_days),
                "kr_title": np.repeat([f"Key result {kr_id}" for kr_id in kr_ids], n_days),
                "owner": np.repeat([f"team-{index % 12}" for index in range(krs)], n_days),
                "as_of": np.tile(days, krs),
                "kr_type": "increase",
                "value": (progress * 1000).ravel(),
                "start": 0.0,
                "target": 1000.0,
                "progress": progress.ravel(),
                "score": progress.clip(0, 1).ravel(),
                "expected_progress": np.tile(np.arange(1, n_days + 1) / n_days, krs),
                "status": "on_track",
                "stale": False,
                "last_observed": np.tile(days, krs),
                "forecast_value": (progress[:, -1:] * 1000).repeat(n_days, axis=1).ravel(),
                "forecast_score": progress[:, -1:].clip(0, 1).repeat(n_days, axis=1).ravel(),
                "forecast_method": "linear",
                "definition_hash": "0123456789abcdef",
            },
            columns=KR_SCORE_COLUMNS,
        )
        frames[quarter] = frame
    return frames


def write_year(warehouse: Warehouse, frames: dict[str, pd.DataFrame], run_id: str) -> int:
    rows = 0
    for quarter, first, last in QUARTERS:
        rows += warehouse.replace_kr_scores(frames[quarter], first, last, run_id)
    return rows


def row_by_row(warehouse: Warehouse, frame: pd.DataFrame) -> int:
    """The baseline: one INSERT statement per row, all in one transaction."""
    frame = frame.assign(run_id="row-by-row", computed_at=datetime.now(UTC))
    names = [column.name for column in kr_scores.columns]
    values = [column_values(frame[name]) for name in names]
    records = [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]
    statement = kr_scores.insert()
    with warehouse.engine.begin() as connection:
        connection.execute(text("DELETE FROM kr_scores"))
        for record in records:
            connection.execute(statement, record)
    return len(records)


def native_bulk(warehouse: Warehouse, frames: dict[str, pd.DataFrame]) -> int:
    """The database's own bulk path: the driver alone, no SQLAlchemy, no window logic."""
    names = [column.name for column in kr_scores.columns]
    columns = ", ".join(names)
    postgres = warehouse.engine.dialect.driver == "psycopg2"
    rows = 0
    raw = warehouse.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if not postgres:
            cursor.execute("BEGIN")  # the warehouse's connections leave sqlite3 in autocommit
        cursor.execute("DELETE FROM kr_scores")
        computed_at = datetime.now(UTC)
        for quarter, _first, _last in QUARTERS:
            frame = frames[quarter].assign(run_id="native", computed_at=computed_at)
            records = list(zip(*(column_values(frame[name]) for name in names), strict=True))
            if postgres:
                buffer = io.StringIO()
                csv.writer(buffer).writerows(records)
                buffer.seek(0)
                cursor.copy_expert(
                    f"COPY kr_scores ({columns}) FROM STDIN WITH (FORMAT csv)", buffer
                )
            else:
                marks = ", ".join("?" for _ in names)
                cursor.executemany(f"INSERT INTO kr_scores ({columns}) VALUES ({marks})", records)
            rows += len(records)
        raw.commit()
    finally:
        raw.close()
    return rows


def bulk_against_native(
    database: str, url: str | None, frames: dict[str, pd.DataFrame]
) -> tuple[float, float]:
    """Rows a second of `Warehouse.replace_kr_scores` and of the database's own bulk path,
    over the same year of rows (on a fresh SQLite file when `url` is None)."""
    with tempfile.TemporaryDirectory() as folder:
        if url is None:
            return _rates(f"sqlite:///{Path(folder) / 'warehouse.db'}", frames)
        with postgres_schema(url) as scratch:
            return _rates(scratch, frames)


def _rates(url: str, frames: dict[str, pd.DataFrame]) -> tuple[float, float]:
    with Warehouse(url) as warehouse:
        warehouse.ensure_schema()
        native_rows, native_seconds = timed(native_bulk, warehouse, frames)
        rows, seconds = timed(write_year, warehouse, frames, "ours")
    return rows / seconds, native_rows / native_seconds


def timed(function, *args) -> tuple[int, float]:
    started = time.perf_counter()
    rows = function(*args)
    return rows, time.perf_counter() - started


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield (
            make_url(url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def report(database: str, method: str, rows: int, seconds: float) -> float:
    rate = rows / seconds
    print(f"{database:<11} {method:<34} {rows:>9,} {seconds:>9.2f} {rate:>12,.0f}", flush=True)
    return rate


def bench(database: str, url: str, frames: dict[str, pd.DataFrame], baseline_rows: int) -> None:
    with Warehouse(url) as warehouse:
        warehouse.ensure_schema()
        bulk = "COPY" if warehouse.engine.dialect.driver == "psycopg2" else "executemany"
        rows, seconds = timed(write_year, warehouse, frames, "first")
        first = report(database, f"a year, bulk ({bulk})", rows, seconds)
        rows, seconds = timed(write_year, warehouse, frames, "again")
        report(database, "the same year again (delete+insert)", rows, seconds)
        sample = frames[QUARTERS[0][0]].head(baseline_rows)
        rows, seconds = timed(row_by_row, warehouse, sample)
        baseline = report(database, "baseline: one INSERT per row", rows, seconds)
        print(f"{database:<11} {'bulk / baseline':<34} {first / baseline:>32.1f}x", flush=True)
        rows, seconds = timed(native_bulk, warehouse, frames)
        native = report(database, "the driver's own bulk path", rows, seconds)
        print(
            f"{database:<11} {'bulk / driver bulk path':<34} {first / native:>32.2f}x", flush=True
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--krs", type=int, default=1000, help="key results (default 1000)")
    parser.add_argument(
        "--baseline-rows",
        type=int,
        default=20_000,
        help="rows the baseline inserts (default 20000)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("OKR_BENCH_POSTGRES_URL") or os.environ.get("OKR_TEST_POSTGRES_URL"),
        help="PostgreSQL database (postgresql+psycopg2://...); default $OKR_BENCH_POSTGRES_URL",
    )
    args = parser.parse_args()
    frames = year_of_scores(args.krs)
    total = sum(len(frame) for frame in frames.values())
    print(
        f"warehouse writes: a year of scores for {args.krs:,} KRs ({total:,} kr_scores rows), "
        f"one window per quarter"
    )
    print(f"{'database':<11} {'write':<34} {'rows':>9} {'seconds':>9} {'rows/s':>12}")
    with tempfile.TemporaryDirectory() as folder:
        bench("sqlite", f"sqlite:///{Path(folder) / 'warehouse.db'}", frames, args.baseline_rows)
    if not args.postgres_url:
        print("postgresql  skipped: give --postgres-url or set OKR_BENCH_POSTGRES_URL")
        return 0
    with postgres_schema(args.postgres_url) as url:
        bench("postgresql", url, frames, args.baseline_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
