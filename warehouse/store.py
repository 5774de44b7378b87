"""Every read and write of the warehouse.

`Warehouse(url)` creates the tables and views on first use. Writes are idempotent:
the rows of a date window are deleted and inserted again in one transaction, with
bound parameters, so a re-run replaces rows and never duplicates them. Called by
the Dagster assets and by `okr scorecard`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, create_engine, delete, event, func, inspect, select, text
from sqlalchemy.engine import make_url

from warehouse.schema import (
    VIEW_NAMES,
    kr_scores,
    metadata,
    metric_observations,
    objective_scores,
    view_statements,
)

DEFAULT_URL = "sqlite:///.okr/warehouse.db"


def warehouse_url() -> str:
    return os.environ.get("OKR_WAREHOUSE_URL") or DEFAULT_URL


def _clean(value: Any) -> Any:
    """pandas' missing values become SQL NULL; numpy scalars become Python ones."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NaT:
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
        if isinstance(value, float) and math.isnan(value):
            return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def _records(frame: pd.DataFrame, columns: Sequence[str]) -> list[dict[str, Any]]:
    return [
        {column: _clean(value) for column, value in zip(columns, row, strict=True)}
        for row in frame[list(columns)].itertuples(index=False, name=None)
    ]


class Warehouse:
    """The warehouse at one SQLAlchemy URL."""

    def __init__(self, url: str | None = None, *, engine: Engine | None = None):
        self.url = url or warehouse_url()
        self.engine = engine or self._create_engine(self.url)
        self._ready = False

    @staticmethod
    def _create_engine(url: str) -> Engine:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": 60})

            @event.listens_for(engine, "connect")
            def _sqlite_pragmas(connection, _record):  # pragma: no cover - trivial
                cursor = connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA busy_timeout=60000")
                cursor.close()

            return engine
        return create_engine(url, pool_pre_ping=True)

    def ensure_schema(self) -> None:
        """Create missing tables, indexes and views (safe to call every time)."""
        if self._ready:
            return
        with self.engine.begin() as connection:
            metadata.create_all(connection)
            existing = set(inspect(connection).get_view_names())
            for name, statement in zip(VIEW_NAMES, view_statements(), strict=True):
                if name not in existing:
                    connection.execute(text(statement))
        self._ready = True

    # -- observations -------------------------------------------------------

    def replace_observations(
        self,
        source: str,
        observations: pd.DataFrame,
        metric_keys: Iterable[str],
        start: date,
        end: date,
        run_id: str,
    ) -> int:
        """Replace the series `metric_keys` from `start` through `end` with `observations`.

        `observations` has columns metric_key, date, value. Keys not listed keep their rows.
        """
        self.ensure_schema()
        keys = sorted(set(metric_keys))
        if not keys:
            return 0
        frame = observations.copy()
        frame["source"] = source
        frame["collected_at"] = datetime.now(UTC)
        frame["run_id"] = run_id
        rows = _records(frame, ["source", "metric_key", "date", "value", "collected_at", "run_id"])
        table = metric_observations
        with self.engine.begin() as connection:
            for chunk in _chunks(keys, 500):
                connection.execute(
                    delete(table).where(
                        table.c.metric_key.in_(chunk), table.c.date.between(start, end)
                    )
                )
            if rows:
                connection.execute(table.insert(), rows)
        return len(rows)

    def read_observations(self, metric_keys: Iterable[str], start: date, end: date) -> pd.DataFrame:
        self.ensure_schema()
        keys = sorted(set(metric_keys))
        table = metric_observations
        parts = []
        with self.engine.connect() as connection:
            for chunk in _chunks(keys, 500):
                query = (
                    select(table.c.metric_key, table.c.date, table.c.value)
                    .where(table.c.metric_key.in_(chunk), table.c.date.between(start, end))
                    .order_by(table.c.metric_key, table.c.date)
                )
                parts.extend(connection.execute(query).all())
        return pd.DataFrame(
            [tuple(row) for row in parts], columns=["metric_key", "date", "value"]
        ).astype({"value": float})

    # -- scores -------------------------------------------------------------

    def replace_kr_scores(self, scores: pd.DataFrame, start: date, end: date, run_id: str) -> int:
        """Replace every KR row with as_of from `start` through `end`."""
        return self._replace_window(kr_scores, scores, start, end, run_id)

    def replace_objective_scores(
        self, scores: pd.DataFrame, start: date, end: date, run_id: str
    ) -> int:
        """Replace every objective row with as_of from `start` through `end`."""
        return self._replace_window(objective_scores, scores, start, end, run_id)

    def _replace_window(
        self, table, frame: pd.DataFrame, start: date, end: date, run_id: str
    ) -> int:
        self.ensure_schema()
        frame = frame.copy()
        frame["run_id"] = run_id
        frame["computed_at"] = datetime.now(UTC)
        rows = _records(frame, [column.name for column in table.columns])
        with self.engine.begin() as connection:
            connection.execute(delete(table).where(table.c.as_of.between(start, end)))
            if rows:
                connection.execute(table.insert(), rows)
        return len(rows)

    def read_kr_scores(
        self, start: date | None = None, end: date | None = None, quarter: str | None = None
    ) -> pd.DataFrame:
        return self._read(kr_scores, start, end, quarter, [kr_scores.c.objective_id])

    def read_objective_scores(
        self, start: date | None = None, end: date | None = None, quarter: str | None = None
    ) -> pd.DataFrame:
        return self._read(objective_scores, start, end, quarter, [])

    def _read(self, table, start, end, quarter, order) -> pd.DataFrame:
        self.ensure_schema()
        query = select(table)
        if start is not None:
            query = query.where(table.c.as_of >= start)
        if end is not None:
            query = query.where(table.c.as_of <= end)
        if quarter is not None:
            query = query.where(table.c.quarter == quarter)
        query = query.order_by(table.c.quarter, table.c.as_of, *order)
        with self.engine.connect() as connection:
            result = connection.execute(query)
            return pd.DataFrame(result.all(), columns=list(result.keys()))

    def latest_as_of(self, quarter: str | None = None) -> tuple[str, date] | None:
        """The newest (quarter, as_of) with scores, optionally within one quarter."""
        self.ensure_schema()
        query = select(kr_scores.c.quarter, kr_scores.c.as_of).order_by(kr_scores.c.as_of.desc())
        if quarter is not None:
            query = query.where(kr_scores.c.quarter == quarter)
        with self.engine.connect() as connection:
            row = connection.execute(query.limit(1)).first()
        return (row[0], row[1]) if row else None

    def count_rows(self, table_name: str) -> int:
        self.ensure_schema()
        table = metadata.tables[table_name]
        with self.engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(table)).scalar_one()


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for index in range(0, len(items), size):
        yield items[index : index + size]
