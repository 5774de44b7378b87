"""Every read and write of the warehouse.

`Warehouse(url)` brings the schema up to date on first use (`warehouse.migrations`).
Writes are idempotent: the rows of a date window are deleted and inserted again in one
transaction, so a re-run replaces rows and never duplicates them. Each write transaction
holds its table's write lock (`warehouse.db.write_transaction`), so two runs writing
overlapping windows at once queue instead of colliding. Inserts are bulk: COPY on
PostgreSQL with psycopg2, one executemany elsewhere. Called by the Dagster assets and by
`okr scorecard`.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    Connection,
    Engine,
    Select,
    Table,
    and_,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.types import Float, TypeEngine

from okr_metrics.warehouse.db import create_warehouse_engine, write_transaction
from okr_metrics.warehouse.migrations import migrate
from okr_metrics.warehouse.schema import checkins as checkins_table
from okr_metrics.warehouse.schema import (
    kr_alerts,
    kr_definitions,
    kr_scores,
    metadata,
    metric_observations,
    objective_scores,
    rejected_observations,
    source_runs,
)

DEFAULT_URL = "sqlite:///.okr/warehouse.db"
# What makes an alert one transition: recorded once, however often its day is re-run.
ALERT_KEY = ("quarter", "kr_id", "kind", "as_of", "new_state")
_COPY_NULL = "\\N"


def warehouse_url(environ: Mapping[str, str] | None = None) -> str:
    """The URL `OKR_WAREHOUSE_URL` names in `environ` (default: the process environment),
    else DEFAULT_URL.

    The pipeline reads it once, through `pipelines.settings.Settings.from_env`, and hands
    the URL to `Warehouse(url)`; only a `Warehouse()` given no URL falls back to this.
    """
    environ = os.environ if environ is None else environ
    return environ.get("OKR_WAREHOUSE_URL") or DEFAULT_URL


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


# Object columns whose values the drivers take as they are (missing values aside).
_PLAIN_OBJECTS = {"string", "empty", "date", "datetime", "boolean"}


def column_values(series: pd.Series) -> list[Any]:
    """One column as Python values for the driver, None where missing; column-wise, for speed."""
    if pd.api.types.is_datetime64_any_dtype(series):
        return [None if value is pd.NaT else value.to_pydatetime() for value in series]
    if pd.api.types.is_float_dtype(series):
        return [None if value != value else value for value in series.tolist()]
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_integer_dtype(series):
        return series.tolist()
    if pd.api.types.infer_dtype(series, skipna=True) in _PLAIN_OBJECTS:
        return [
            None if value is None or value is pd.NaT or value != value else value
            for value in series.tolist()
        ]
    return [_clean(value) for value in series]


# Kinds of columns whose values repeat across a window's rows (days, ids, titles, flags).
_REPEATING = {"string", "date", "datetime", "datetime64", "boolean", "empty"}


def _converted_values(
    series: pd.Series, convert: Callable[[Any], Any], missing: Any = None
) -> list[Any]:
    """column_values(series) passed through `convert`, `missing` for None.

    Where values repeat (dates, timestamps, ids, titles), each distinct value is converted
    once: that makes a large write several times cheaper. Numbers are converted one by
    one, so that -0.0 stays -0.0.
    """
    repeating = (
        pd.api.types.is_datetime64_any_dtype(series)
        or pd.api.types.is_bool_dtype(series)
        or (series.dtype == object and pd.api.types.infer_dtype(series) in _REPEATING)
    )
    if not repeating:
        return [missing if value is None else convert(value) for value in column_values(series)]
    codes, uniques = pd.factorize(series)
    converted = [
        missing if value is None else convert(value) for value in column_values(pd.Series(uniques))
    ]
    converted.append(missing)  # code -1: a missing value
    return [converted[code] for code in codes.tolist()]


def _executemany(connection: Connection, table: Table, frame: pd.DataFrame) -> None:
    """One DBAPI executemany; values are converted column by column, not row by row."""
    dialect = connection.dialect
    compiled = table.insert().compile(dialect=dialect)
    by_name = {}
    for column in table.columns:
        # The type's own conversion (dates to text on SQLite, ...), as SQLAlchemy would.
        processor = column.type.dialect_impl(dialect).bind_processor(dialect)
        series = frame[column.name]
        if processor is None:
            by_name[column.key] = column_values(series)
        else:
            by_name[column.key] = _converted_values(series, processor)
    if compiled.positional:
        order = compiled.positiontup or []
        rows: list[Any] = list(zip(*(by_name[n] for n in order), strict=True))
    else:
        names = list(by_name)
        rows = [dict(zip(names, row, strict=True)) for row in zip(*by_name.values(), strict=True)]
    connection.exec_driver_sql(compiled.string, rows)


# COPY's text format: tab-separated, backslash escapes, \N for NULL.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: Any) -> str:
    return str(value).translate(_COPY_ESCAPES)


def _copy_float(value: float) -> str:
    # PostgreSQL spells infinity out ("inf" is accepted only by newer servers).
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def _copy_converter(series: pd.Series) -> Callable[[Any], str]:
    if not pd.api.types.is_float_dtype(series):
        return _copy_text
    return _copy_float if np.isinf(series.to_numpy()).any() else repr


def _copy_rows(connection: Connection, table: Table, frame: pd.DataFrame) -> None:
    """One COPY ... FROM STDIN (psycopg2), its text built column by column."""
    columns = [
        _converted_values(frame[column.name], _copy_converter(frame[column.name]), _COPY_NULL)
        for column in table.columns
    ]
    buffer = io.StringIO()
    buffer.writelines("\t".join(row) + "\n" for row in zip(*columns, strict=True))
    buffer.seek(0)
    preparer = connection.dialect.identifier_preparer
    names = ", ".join(preparer.quote(column.name) for column in table.columns)
    cursor = connection.connection.cursor()
    try:
        statement = f"COPY {preparer.format_table(table)} ({names}) FROM STDIN"
        cursor.copy_expert(statement, buffer, size=1 << 20)
    finally:
        cursor.close()


# Rows handed to the driver at once: a quarter of 1,000 KRs (92,000 rows) goes in 19 batches.
WRITE_BATCH_ROWS = 5_000


def insert_rows(connection: Connection, table: Table, frame: pd.DataFrame) -> int:
    """Bulk-insert `frame` (a column per table column) in the open transaction.

    COPY on PostgreSQL with psycopg2, one executemany elsewhere.
    """
    if frame.empty:
        return 0
    # Columns the frame lacks (added to the table after its writer) are written as null.
    names = [column.name for column in table.columns]
    write = _copy_rows if connection.dialect.driver == "psycopg2" else _executemany
    # In batches: the driver's rows (a Python object per value) of one batch at a time,
    # and the table's columns taken batch by batch (a copy of the whole frame at once is
    # tens of megabytes for a quarter of 1,000 KRs).
    for first in range(0, len(frame), WRITE_BATCH_ROWS):
        write(
            connection, table, frame.iloc[first : first + WRITE_BATCH_ROWS].reindex(columns=names)
        )
    return len(frame)


# Rows read into Python objects at once; each batch becomes a frame before the next.
READ_BATCH_ROWS = 10_000


def _sharing_values(frame: pd.DataFrame, shared: dict[tuple[type, Any], Any]) -> pd.DataFrame:
    """`frame` with each object column's equal values one object, the same across the
    batches of a read (`shared`): a quarter's rows repeat their ids, titles, statuses
    and days, which the driver returns as a new object for every row."""
    for name in frame.columns:
        column = frame[name]
        if column.dtype != object:
            continue
        try:
            codes, distinct = pd.factorize(column.to_numpy(), use_na_sentinel=True)
        except TypeError:  # unhashable values: left as they are
            continue
        values = np.empty(len(distinct) + 1, dtype=object)  # the last: None, for code -1
        # Keyed by type too: True and 1 are equal keys of a dict.
        values[:-1] = [shared.setdefault((type(value), value), value) for value in distinct]
        frame[name] = values[codes]
    return frame


def read_frame(
    connection: Connection, query: Select, shared: dict[tuple[type, Any], Any] | None = None
) -> pd.DataFrame:
    """The rows of `query` as a frame: what `connection.execute(query)` returns, read
    through the driver's cursor in batches and converted column by column.

    A quarter of 1,000 KRs is 91,000 rows: SQLAlchemy's rows and their conversion one value
    at a time cost more than the read itself. Here each batch's columns are converted once
    per distinct value (the types' own result conversion: SQLite's dates from text), and
    equal values are one object across the batches (`_sharing_values`), and across the
    reads given the same `shared`. The query's parameters are rendered into its text
    (dates, ids: SQLAlchemy quotes them).
    """
    dialect = connection.dialect
    sql = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    types = [column.type.dialect_impl(dialect) for column in query.selected_columns]
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql)
        names = [described[0] for described in cursor.description]
        convert = [
            kind.result_processor(dialect, described[1])
            for kind, described in zip(types, cursor.description, strict=True)
        ]
        if shared is None:
            shared = {}
        parts = []
        while rows := cursor.fetchmany(READ_BATCH_ROWS):
            columns = dict(zip(names, zip(*rows, strict=True), strict=True))
            del rows
            frame = pd.DataFrame(
                {
                    name: _read_values(columns.pop(name), kind, processor, shared)
                    for name, kind, processor in zip(names, types, convert, strict=True)
                },
                columns=names,
            )
            # Flags and timestamps get their own dtypes, as a frame of the rows infers them.
            parts.append(frame.infer_objects())
    finally:
        cursor.close()
    return _joined(parts, names)


def _read_values(
    values: tuple[Any, ...], kind: TypeEngine, convert: Callable[[Any], Any] | None, shared: dict
) -> np.ndarray | list[Any]:
    """One column of a batch as the driver gave it, as the frame of SQLAlchemy's rows
    would hold it: floats in a float array (NaN for null), any other column's distinct
    values converted by `convert` (the type's result conversion; None: none) once each,
    and shared (`_sharing_values`)."""
    if isinstance(kind, Float) and convert is None:
        if all(value is None for value in values):
            return list(values)  # an all-null column stays object, as pandas infers it
        return np.array(values, dtype=np.float64)
    codes, distinct = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
    converted = np.empty(len(distinct) + 1, dtype=object)  # the last: None, for code -1
    converted[:-1] = [
        shared.setdefault((type(value), value), value)
        for value in (distinct if convert is None else (convert(v) for v in distinct))
    ]
    return converted[codes]


def _joined(parts: list[pd.DataFrame], names: list[str]) -> pd.DataFrame:
    """The batches of one read as one frame, with the dtypes one frame of all the rows
    would have had: a batch can infer another (a column all null in it), and then that
    column is inferred again over all its values."""
    if not parts:
        return pd.DataFrame([], columns=names)
    if len(parts) == 1:
        return parts[0]
    mixed = [name for name in names if len({str(part[name].dtype) for part in parts}) > 1]
    frame = pd.concat([part.drop(columns=mixed) for part in parts], ignore_index=True)
    for name in mixed:
        values = [value for part in parts for value in part[name].tolist()]
        frame[name] = pd.DataFrame({name: values})[name]
    return frame[names]


class Warehouse:
    """The warehouse at one SQLAlchemy URL (the PostgreSQL driver named: postgresql+psycopg2)."""

    def __init__(self, url: str | None = None, *, engine: Engine | None = None):
        self.url = url or warehouse_url()
        self.engine = engine or create_warehouse_engine(self.url)
        self._ready = False

    def close(self) -> None:
        """Close the pooled connections (the object stays usable: it reconnects)."""
        self.engine.dispose()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def ensure_schema(self) -> None:
        """Apply the missing migration steps (cheap when there are none)."""
        if self._ready:
            return
        migrate(self.engine)
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
        keep_dates: Iterable[date] = (),
    ) -> int:
        """Replace the series `metric_keys` from `start` through `end` with `observations`.

        `observations` has columns metric_key, date, value. Keys not listed keep their
        rows, and so do `keep_dates` (days whose new rows failed validation: the last
        good value stays).
        """
        self.ensure_schema()
        keys = sorted(set(metric_keys))
        if not keys:
            return 0
        frame = observations.copy()
        frame["source"] = source
        frame["collected_at"] = datetime.now(UTC)
        frame["run_id"] = run_id
        table = metric_observations
        with write_transaction(self.engine, table.name) as connection:
            _delete_observations(connection, keys, start, end, keep_dates)
            return insert_rows(connection, table, frame)

    def replace_series(self, source: str, windows: Sequence[SeriesWindow], run_id: str) -> int:
        """`replace_observations` of each window's series, all in one transaction and one
        bulk insert (a source's series of a run: hundreds of them for a large company)."""
        self.ensure_schema()
        if not windows:
            return 0
        parts = [
            w.observations[["date", "value"]].assign(metric_key=w.metric_key)
            for w in windows
            if not w.observations.empty
        ]
        with write_transaction(self.engine, metric_observations.name) as connection:
            for w in windows:
                _delete_observations(connection, [w.metric_key], w.start, w.end, w.keep_dates)
            if not parts:
                return 0
            frame = pd.concat(parts, ignore_index=True)
            frame["source"] = source
            frame["collected_at"] = datetime.now(UTC)
            frame["run_id"] = run_id
            return insert_rows(connection, metric_observations, frame)

    def write_rejected(
        self,
        source: str,
        metric_key: str,
        rejected: pd.DataFrame,
        start: date,
        end: date,
        run_id: str,
        whole_series_expectation: str | None = None,
    ) -> int:
        """Replace the rejected rows of one series' fetch window with `rejected`.

        `rejected` has columns date, raw_value, expectation, reason (text). Re-running
        the window replaces its rejections, so they are never duplicated. With
        `whole_series_expectation`, `rejected` is every current rejection of that
        expectation for the series (a check-in file read whole): it replaces all the
        stored ones, whatever their dates.
        """
        self.ensure_schema()
        table = rejected_observations
        frame = rejected[["date", "raw_value", "expectation", "reason"]].astype(str).copy()
        frame["source"] = source
        frame["metric_key"] = metric_key
        frame["window_start"] = start
        frame["window_end"] = end
        frame["collected_at"] = datetime.now(UTC)
        frame["run_id"] = run_id
        with write_transaction(self.engine, table.name) as connection:
            if whole_series_expectation is not None:
                scope = table.c.expectation == whole_series_expectation
            else:
                scope = or_(
                    table.c.date.between(start.isoformat(), end.isoformat()),
                    and_(table.c.window_start >= start, table.c.window_end <= end),
                )
            connection.execute(delete(table).where(table.c.metric_key == metric_key, scope))
            return insert_rows(connection, table, frame) if len(frame) else 0

    def record_source_run(
        self,
        run_id: str,
        source: str,
        start: date,
        end: date,
        status: str,
        reason: str | None,
        rejected_rows: int,
    ) -> None:
        """Record how a source fared in a run (replacing an earlier record of that run)."""
        self.ensure_schema()
        table = source_runs
        row = {
            "run_id": run_id,
            "source": source,
            "window_start": start,
            "window_end": end,
            "status": status,
            "reason": reason,
            "rejected_rows": rejected_rows,
            "recorded_at": datetime.now(UTC),
        }
        with write_transaction(self.engine, table.name) as connection:
            connection.execute(
                delete(table).where(table.c.run_id == run_id, table.c.source == source)
            )
            connection.execute(table.insert(), [row])

    def source_runs(self, run_id: str) -> list[dict[str, Any]]:
        """The `source_runs` rows the run `run_id` recorded, one per source it asked."""
        self.ensure_schema()
        query = select(source_runs).where(source_runs.c.run_id == run_id)
        with self.engine.connect() as connection:
            return [dict(row) for row in connection.execute(query).mappings()]

    def latest_source_runs(self) -> pd.DataFrame:
        """Each source's newest record."""
        self.ensure_schema()
        table = source_runs
        newest = (
            select(table.c.source, func.max(table.c.recorded_at).label("recorded_at"))
            .group_by(table.c.source)
            .subquery()
        )
        query = (
            select(table)
            .join(
                newest,
                and_(
                    table.c.source == newest.c.source, table.c.recorded_at == newest.c.recorded_at
                ),
            )
            .order_by(table.c.source)
        )
        with self.engine.connect() as connection:
            result = connection.execute(query)
            return pd.DataFrame(result.all(), columns=list(result.keys()))

    def read_rejected(self, metric_key: str | None = None) -> pd.DataFrame:
        self.ensure_schema()
        table = rejected_observations
        query = select(table).order_by(table.c.metric_key, table.c.date)
        if metric_key is not None:
            query = query.where(table.c.metric_key == metric_key)
        with self.engine.connect() as connection:
            result = connection.execute(query)
            return pd.DataFrame(result.all(), columns=list(result.keys()))

    def keys_observed_before(
        self, metric_keys: Iterable[str], day: date, since: date = date.min
    ) -> set[str]:
        """The series among `metric_keys` with at least one stored row dated `since` or
        later and before `day`."""
        self.ensure_schema()
        table = metric_observations
        found: set[str] = set()
        with self.engine.connect() as connection:
            for chunk in _chunks(sorted(set(metric_keys)), 500):
                query = (
                    select(table.c.metric_key)
                    .where(table.c.metric_key.in_(chunk), table.c.date >= since, table.c.date < day)
                    .distinct()
                )
                found.update(connection.execute(query).scalars())
        return found

    def read_observations(self, metric_keys: Iterable[str], start: date, end: date) -> pd.DataFrame:
        self.ensure_schema()
        keys = sorted(set(metric_keys))
        table = metric_observations
        names = ["metric_key", "date", "value"]
        parts: list[pd.DataFrame] = []
        shared: dict[tuple[type, Any], Any] = {}
        # Read in batches with each key and day one object (`read_frame`): a quarter of
        # 1,000 KRs is about 100,000 rows, which as SQLAlchemy rows would be a new string
        # and date for every one of them.
        with self.engine.connect() as connection:
            for chunk in _chunks(keys, 500):
                query = (
                    select(table.c.metric_key, table.c.date, table.c.value)
                    .where(table.c.metric_key.in_(chunk), table.c.date.between(start, end))
                    .order_by(table.c.metric_key, table.c.date)
                )
                parts.append(read_frame(connection, query, shared))
        return _joined(parts, names).astype({"value": float})

    # -- scores -------------------------------------------------------------

    def replace_kr_scores(
        self,
        scores: pd.DataFrame,
        start: date,
        end: date,
        run_id: str,
        definitions: pd.DataFrame | None = None,
    ) -> int:
        """Replace every KR row with as_of from `start` through `end`.

        `definitions` (quarter, kr_id, definition_hash, metric_keys, definition) describes
        the definitions the rows were scored with; in the same transaction, `kr_definitions`
        is rebuilt for the quarters written, from the days each hash now serves in `kr_scores`.
        """
        self.ensure_schema()
        frame = scores.copy(deep=False)  # only columns are added: the values are not copied
        frame["run_id"] = run_id
        frame["computed_at"] = datetime.now(UTC)
        quarters = sorted(set(frame["quarter"])) if "quarter" in frame else []
        with write_transaction(self.engine, kr_scores.name) as connection:
            connection.execute(delete(kr_scores).where(kr_scores.c.as_of.between(start, end)))
            written = insert_rows(connection, kr_scores, frame)
            if quarters:
                _rebuild_definitions(connection, quarters, definitions, run_id)
            return written

    def replace_objective_scores(
        self, scores: pd.DataFrame, start: date, end: date, run_id: str
    ) -> int:
        """Replace every objective row with as_of from `start` through `end`."""
        return self._replace_window(objective_scores, scores, start, end, run_id)

    def _replace_window(
        self, table: Table, frame: pd.DataFrame, start: date, end: date, run_id: str
    ) -> int:
        self.ensure_schema()
        frame = frame.copy(deep=False)  # only columns are added: the values are not copied
        frame["run_id"] = run_id
        frame["computed_at"] = datetime.now(UTC)
        with write_transaction(self.engine, table.name) as connection:
            connection.execute(delete(table).where(table.c.as_of.between(start, end)))
            return insert_rows(connection, table, frame)

    def replace_checkins(self, quarter: str, checkins: pd.DataFrame, run_id: str) -> int:
        """Replace the quarter's check-in rows with `checkins` (the file, read whole)."""
        self.ensure_schema()
        frame = checkins.copy()
        frame["run_id"] = run_id
        frame["recorded_at"] = datetime.now(UTC)
        with write_transaction(self.engine, checkins_table.name) as connection:
            connection.execute(delete(checkins_table).where(checkins_table.c.quarter == quarter))
            return insert_rows(connection, checkins_table, frame)

    def read_kr_scores(
        self,
        start: date | None = None,
        end: date | None = None,
        quarter: str | None = None,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """`kr_scores` rows (only `columns`, when given: a quarter's rows are many)."""
        return self._read(kr_scores, start, end, quarter, [kr_scores.c.objective_id], columns)

    def read_objective_scores(
        self, start: date | None = None, end: date | None = None, quarter: str | None = None
    ) -> pd.DataFrame:
        return self._read(objective_scores, start, end, quarter, [])

    def _read(self, table, start, end, quarter, order, columns=None) -> pd.DataFrame:
        self.ensure_schema()
        query = select(table) if columns is None else select(*(table.c[n] for n in columns))
        if start is not None:
            query = query.where(table.c.as_of >= start)
        if end is not None:
            query = query.where(table.c.as_of <= end)
        if quarter is not None:
            query = query.where(table.c.quarter == quarter)
        query = query.order_by(table.c.quarter, table.c.as_of, *order)
        with self.engine.connect() as connection:
            return read_frame(connection, query)

    # -- alerts -------------------------------------------------------------

    def add_alerts(
        self,
        alerts: pd.DataFrame,
        run_id: str,
        select_new: Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame] | None = None,
    ) -> pd.DataFrame:
        """Record the alerts not recorded yet; returns the rows inserted.

        `alerts` has the columns of kr_alerts up to `route`. A row whose key (ALERT_KEY)
        is stored already is left out, and so is every row `select_new(stored, new)`
        drops, where `stored` holds the recorded alerts of the same KRs. Both happen under
        the table's write lock, so two runs recording the same days at once insert each
        transition once.
        """
        self.ensure_schema()
        table = kr_alerts
        if alerts.empty:
            return alerts.iloc[0:0]
        with write_transaction(self.engine, table.name) as connection:
            stored = self._stored_alerts(connection, alerts)
            known = set(stored[list(ALERT_KEY)].itertuples(index=False, name=None))
            keys = alerts[list(ALERT_KEY)].itertuples(index=False, name=None)
            new = pd.Series([key not in known for key in keys], index=alerts.index, dtype=bool)
            fresh = alerts[new].copy()
            if select_new is not None and not fresh.empty:
                fresh = select_new(stored, fresh)
            fresh = fresh.assign(
                attempts=0, run_id=run_id, created_at=datetime.now(UTC)
            ).reset_index(drop=True)
            insert_rows(connection, table, fresh)
        return fresh

    def _stored_alerts(self, connection: Connection, alerts: pd.DataFrame) -> pd.DataFrame:
        table = kr_alerts
        parts: list[Any] = []
        for quarter, group in alerts.groupby("quarter"):
            for chunk in _chunks(sorted(set(group["kr_id"])), 500):
                query = select(table).where(table.c.quarter == quarter, table.c.kr_id.in_(chunk))
                parts.extend(connection.execute(query).all())
        return pd.DataFrame([tuple(row) for row in parts], columns=[c.name for c in table.columns])

    def read_alerts(self, quarter: str | None = None) -> pd.DataFrame:
        """The recorded alerts, oldest day first."""
        self.ensure_schema()
        table = kr_alerts
        query = select(table).order_by(table.c.as_of, table.c.quarter, table.c.kr_id, table.c.kind)
        if quarter is not None:
            query = query.where(table.c.quarter == quarter)
        with self.engine.connect() as connection:
            result = connection.execute(query)
            return pd.DataFrame(result.all(), columns=list(result.keys()))

    def claim_alerts(
        self,
        run_id: str,
        start: date,
        end: date,
        max_attempts: int,
        lease: timedelta,
        routes: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Claim the alerts this run is to post, and return them.

        Those are the undelivered alerts of the days `start`..`end` never tried, and
        every earlier one whose post failed, fewer than `max_attempts` times; with
        `routes`, only those going to one of them. A claim lasts `lease`: rows another
        run claimed within it are left to that run, so no alert is posted twice at once.
        """
        self.ensure_schema()
        table = kr_alerts
        now = datetime.now(UTC)
        condition = [
            table.c.delivered_at.is_(None),
            table.c.attempts < max_attempts,
            or_(table.c.claimed_at.is_(None), table.c.claimed_at < now - lease),
            or_(table.c.attempts > 0, table.c.as_of.between(start, end)),
        ]
        if routes is not None:
            condition.append(table.c.route.in_(list(routes)))
        with write_transaction(self.engine, table.name) as connection:
            connection.execute(
                update(table).where(*condition).values(claimed_by=run_id, claimed_at=now)
            )
            query = (
                select(table)
                .where(table.c.claimed_by == run_id, table.c.delivered_at.is_(None))
                .order_by(table.c.as_of, table.c.quarter, table.c.kr_id, table.c.kind)
            )
            result = connection.execute(query)
            return pd.DataFrame(result.all(), columns=list(result.keys()))

    def finish_alert(
        self,
        alert: Mapping[str, Any],
        run_id: str,
        route: str | None,
        error: str | None,
    ) -> bool:
        """Record one post of a claimed alert: delivered (no `error`) or failed, and release it.

        Returns False when the claim was no longer this run's (it had lapsed and another
        run took the alert).
        """
        self.ensure_schema()
        table = kr_alerts
        key = [table.c[name] == alert[name] for name in ALERT_KEY]
        values: dict[str, Any] = {
            "attempts": table.c.attempts + 1,
            "last_error": error,
            "route": route,
            "claimed_by": None,
            "claimed_at": None,
        }
        if error is None:
            values["delivered_at"] = datetime.now(UTC)
        with write_transaction(self.engine, table.name) as connection:
            result = connection.execute(
                update(table).where(*key, table.c.claimed_by == run_id).values(**values)
            )
            return result.rowcount == 1

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


def _rebuild_definitions(
    connection: Connection, quarters: list[str], known: pd.DataFrame | None, run_id: str
) -> None:
    """Rewrite `kr_definitions` for `quarters` from what `kr_scores` holds now.

    One row per (KR, hash) still scored somewhere in the quarter, with the first and last
    day it served; the descriptive columns come from its newest scored day, the metric keys
    and definition text from `known` or, for a hash no longer defined, the stored row.
    """
    usage = (
        select(
            kr_scores.c.quarter,
            kr_scores.c.kr_id,
            kr_scores.c.definition_hash,
            func.min(kr_scores.c.as_of).label("first_as_of"),
            func.max(kr_scores.c.as_of).label("last_as_of"),
        )
        .where(kr_scores.c.quarter.in_(quarters))
        .group_by(kr_scores.c.quarter, kr_scores.c.kr_id, kr_scores.c.definition_hash)
        .subquery()
    )
    newest = select(
        usage,
        kr_scores.c.objective_id,
        kr_scores.c.kr_title,
        kr_scores.c.owner,
        kr_scores.c.kr_type,
        kr_scores.c.start,
        kr_scores.c.target,
    ).join(
        kr_scores,
        and_(
            kr_scores.c.quarter == usage.c.quarter,
            kr_scores.c.kr_id == usage.c.kr_id,
            kr_scores.c.as_of == usage.c.last_as_of,
        ),
    )
    rows = pd.DataFrame(connection.execute(newest).mappings().all())
    stored = connection.execute(
        select(
            kr_definitions.c.quarter,
            kr_definitions.c.kr_id,
            kr_definitions.c.definition_hash,
            kr_definitions.c.metric_keys,
            kr_definitions.c.definition,
        ).where(kr_definitions.c.quarter.in_(quarters))
    ).all()
    texts = {(q, kr, h): (keys, text) for q, kr, h, keys, text in stored}
    if known is not None:
        for row in known.itertuples(index=False):
            texts[row.quarter, row.kr_id, row.definition_hash] = (row.metric_keys, row.definition)
    connection.execute(delete(kr_definitions).where(kr_definitions.c.quarter.in_(quarters)))
    if rows.empty:
        return
    described = [
        texts.get((q, kr, h), ("[]", "{}"))
        for q, kr, h in zip(rows["quarter"], rows["kr_id"], rows["definition_hash"], strict=True)
    ]
    rows["metric_keys"] = [keys for keys, _ in described]
    rows["definition"] = [text for _, text in described]
    rows["run_id"] = run_id
    rows["computed_at"] = datetime.now(UTC)
    insert_rows(connection, kr_definitions, rows)


@dataclass(frozen=True)
class SeriesWindow:
    """One series' new rows (columns date, value) over its fetch window, for
    `Warehouse.replace_series`; `keep_dates` keep their stored rows."""

    metric_key: str
    observations: pd.DataFrame
    start: date
    end: date
    keep_dates: frozenset[date] = frozenset()


def _delete_observations(
    connection: Connection, keys: list[str], start: date, end: date, keep_dates: Iterable[date]
) -> None:
    """Delete the series `keys` from `start` through `end`, but for `keep_dates`."""
    table = metric_observations
    kept = sorted(set(keep_dates))
    for chunk in _chunks(keys, 500):
        condition = [table.c.metric_key.in_(chunk), table.c.date.between(start, end)]
        if kept:
            condition.append(table.c.date.not_in(kept))
        connection.execute(delete(table).where(*condition))


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for index in range(0, len(items), size):
        yield items[index : index + size]
