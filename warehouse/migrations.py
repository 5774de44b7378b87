"""Forward-only migrations of the warehouse schema, applied on first use.

`STEPS` is the ordered list of steps: step N brings a warehouse from version N - 1 to N,
and the `schema_version` table records each step applied. `migrate(engine)` (called by
`Warehouse.ensure_schema`) applies the missing steps in one transaction, all or none,
holding the "schema" write lock so two processes opening a new warehouse at once do not
both migrate it. No step drops data.

A warehouse made before migrations existed (tables present, no `schema_version`) is
version 0 and upgrades in place: step 1 creates only what is missing.

Steps are frozen once released: a released step is never edited, since warehouses
already past it would not see the change. To change the schema, append a step (a
function of the open connection; plain SQL goes in warehouse/sql/NNN_name.sql), make
warehouse/schema.py match (a test compares a migrated database with it), and update
docs/warehouse.md. A step that changes a table a view selects `*` from drops and
recreates that view (PostgreSQL fixes a view's columns when it is created).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    func,
    inspect,
    select,
)
from sqlalchemy.schema import SetColumnComment, SetTableComment

from okr_metrics.warehouse import schema
from okr_metrics.warehouse.db import write_transaction

SCHEMA_LOCK = "schema"


class SchemaTooNewError(RuntimeError):
    """The warehouse was migrated by a newer okr-metrics than this one."""


@dataclass(frozen=True)
class Step:
    version: int
    description: str
    upgrade: Callable[[Connection], None]


def sql_statements(filename: str) -> list[str]:
    """The statements of warehouse/sql/`filename`, `--` comment lines dropped."""
    text = files(__package__).joinpath("sql", filename).read_text(encoding="utf-8")
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return [statement.strip() for statement in body.split(";") if statement.strip()]


def _create_views(connection: Connection, filename: str) -> None:
    """Run the `CREATE VIEW` statements of `filename`, skipping views that already exist."""
    existing = set(inspect(connection).get_view_names())
    for statement in sql_statements(filename):
        match = re.match(r"CREATE\s+VIEW\s+(\w+)", statement, re.IGNORECASE)
        if match and match.group(1) in existing:
            continue
        connection.exec_driver_sql(statement)


# -- step 1: the schema okr-metrics started with -------------------------------------------


def _v1_initial(connection: Connection) -> None:
    """kr_scores, objective_scores, metric_observations, their indexes, the *_latest views."""
    v1 = MetaData()
    kr_scores = Table(
        "kr_scores",
        v1,
        Column("quarter", String(7), nullable=False),
        Column("objective_id", String(200), nullable=False),
        Column("kr_id", String(200), nullable=False),
        Column("kr_title", Text, nullable=False),
        Column("owner", String(200)),
        Column("as_of", Date, nullable=False),
        Column("kr_type", String(20), nullable=False),
        Column("value", Float),
        Column("start", Float),
        Column("target", Float),
        Column("progress", Float),
        Column("score", Float),
        Column("expected_progress", Float),
        Column("status", String(20), nullable=False),
        Column("stale", Boolean, nullable=False),
        Column("last_observed", Date),
        Column("forecast_value", Float),
        Column("forecast_score", Float),
        Column("forecast_method", String(20)),
        Column("definition_hash", String(64), nullable=False),
        Column("run_id", String(64), nullable=False),
        Column("computed_at", DateTime(timezone=True), nullable=False),
        PrimaryKeyConstraint("quarter", "kr_id", "as_of", name="kr_scores_pk"),
    )
    Index("kr_scores_as_of", kr_scores.c.as_of)
    Index("kr_scores_objective", kr_scores.c.quarter, kr_scores.c.objective_id, kr_scores.c.as_of)
    objective_scores = Table(
        "objective_scores",
        v1,
        Column("quarter", String(7), nullable=False),
        Column("objective_id", String(200), nullable=False),
        Column("title", Text, nullable=False),
        Column("owner", String(200)),
        Column("aligns_to", String(200)),
        Column("as_of", Date, nullable=False),
        Column("score", Float),
        Column("coverage", Float),
        Column("status", String(20), nullable=False),
        Column("run_id", String(64), nullable=False),
        Column("computed_at", DateTime(timezone=True), nullable=False),
        PrimaryKeyConstraint("quarter", "objective_id", "as_of", name="objective_scores_pk"),
    )
    Index("objective_scores_as_of", objective_scores.c.as_of)
    metric_observations = Table(
        "metric_observations",
        v1,
        Column("source", String(50), nullable=False),
        Column("metric_key", String(1000), nullable=False),
        Column("date", Date, nullable=False),
        Column("value", Float, nullable=False),
        Column("collected_at", DateTime(timezone=True), nullable=False),
        Column("run_id", String(64), nullable=False),
        PrimaryKeyConstraint("metric_key", "date", name="metric_observations_pk"),
    )
    Index(
        "metric_observations_source_date",
        metric_observations.c.source,
        metric_observations.c.date,
    )
    v1.create_all(connection, checkfirst=True)
    _create_views(connection, "001_latest_views.sql")


# -- step 2: for analysts -----------------------------------------------------------------


def _v2_analysts(connection: Connection) -> None:
    """Indexes by quarter and as-of and by KR / objective, comments, quarter_summary."""
    for name, table, columns in (
        ("kr_scores_quarter_as_of", "kr_scores", "quarter, as_of"),
        ("kr_scores_kr", "kr_scores", "kr_id, as_of"),
        ("objective_scores_quarter_as_of", "objective_scores", "quarter, as_of"),
        ("objective_scores_objective", "objective_scores", "objective_id, as_of"),
    ):
        connection.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns})")
    apply_comments(connection)
    _create_views(connection, "002_quarter_summary.sql")


# -- step 3: quarantine ------------------------------------------------------------------


def _v3_rejected_observations(connection: Connection) -> None:
    """rejected_observations: rows that failed validation, with the expectation and reason."""
    v3 = MetaData()
    rejected = Table(
        "rejected_observations",
        v3,
        Column("source", String(50), nullable=False),
        Column("metric_key", String(1000), nullable=False),
        Column("date", Text, nullable=False),
        Column("raw_value", Text, nullable=False),
        Column("expectation", String(200), nullable=False),
        Column("reason", Text, nullable=False),
        Column("window_start", Date, nullable=False),
        Column("window_end", Date, nullable=False),
        Column("collected_at", DateTime(timezone=True), nullable=False),
        Column("run_id", String(64), nullable=False),
    )
    Index("rejected_observations_key_date", rejected.c.metric_key, rejected.c.date)
    v3.create_all(connection, checkfirst=True)
    apply_comments(connection)


# -- step 4: source runs -----------------------------------------------------------------


def _v4_source_runs(connection: Connection) -> None:
    """source_runs: each source's outcome in each run (ok, skipped, failed, and why)."""
    v4 = MetaData()
    source_runs = Table(
        "source_runs",
        v4,
        Column("run_id", String(64), nullable=False),
        Column("source", String(50), nullable=False),
        Column("window_start", Date, nullable=False),
        Column("window_end", Date, nullable=False),
        Column("status", String(20), nullable=False),
        Column("reason", Text),
        Column("rejected_rows", Integer, nullable=False),
        Column("recorded_at", DateTime(timezone=True), nullable=False),
        PrimaryKeyConstraint("run_id", "source", name="source_runs_pk"),
    )
    Index("source_runs_source_recorded", source_runs.c.source, source_runs.c.recorded_at)
    v4.create_all(connection, checkfirst=True)
    apply_comments(connection)


# -- step 5: for the dashboard and check-ins -----------------------------------------------

_WEEK_START = {
    "sqlite": "date(as_of, 'weekday 0', '-6 days')",
    "postgresql": "CAST(date_trunc('week', as_of) AS DATE)",
}


def _v5_dashboard(connection: Connection) -> None:
    """Forecast interval columns, kr_definitions, checkins, the kr_weekly view."""
    existing = {column["name"] for column in inspect(connection).get_columns("kr_scores")}
    float_type = Float().compile(dialect=connection.dialect)
    for name in ("forecast_low", "forecast_high", "p_achieve"):
        if name not in existing:
            connection.exec_driver_sql(f"ALTER TABLE kr_scores ADD COLUMN {name} {float_type}")
    # PostgreSQL fixed kr_scores_latest's columns when step 1 created it.
    connection.exec_driver_sql("DROP VIEW IF EXISTS kr_scores_latest")
    _create_views(connection, "001_latest_views.sql")
    v5 = MetaData()
    Table(
        "kr_definitions",
        v5,
        Column("quarter", String(7), nullable=False),
        Column("kr_id", String(200), nullable=False),
        Column("definition_hash", String(64), nullable=False),
        Column("objective_id", String(200), nullable=False),
        Column("kr_title", Text, nullable=False),
        Column("owner", String(200)),
        Column("kr_type", String(20), nullable=False),
        Column("start", Float),
        Column("target", Float),
        Column("metric_keys", Text, nullable=False),
        Column("definition", Text, nullable=False),
        Column("first_as_of", Date, nullable=False),
        Column("last_as_of", Date, nullable=False),
        Column("run_id", String(64), nullable=False),
        Column("computed_at", DateTime(timezone=True), nullable=False),
        PrimaryKeyConstraint("quarter", "kr_id", "definition_hash", name="kr_definitions_pk"),
    )
    Table(
        "checkins",
        v5,
        Column("quarter", String(7), nullable=False),
        Column("kr_id", String(200), nullable=False),
        Column("date", Date, nullable=False),
        Column("value", Float, nullable=False),
        Column("note", Text),
        Column("file", Text, nullable=False),
        Column("line", Integer, nullable=False),
        Column("run_id", String(64), nullable=False),
        Column("recorded_at", DateTime(timezone=True), nullable=False),
        PrimaryKeyConstraint("quarter", "kr_id", "date", name="checkins_pk"),
    )
    v5.create_all(connection, checkfirst=True)
    week_start = _WEEK_START[connection.dialect.name]
    for statement in sql_statements("005_kr_weekly.sql"):
        connection.exec_driver_sql(statement.replace("{week_start}", week_start))
    apply_comments(connection)


# -- step 6: alerts ------------------------------------------------------------------------


def _v6_kr_alerts(connection: Connection) -> None:
    """kr_alerts: one row per transition per KR, with its delivery (an outbox)."""
    v6 = MetaData()
    kr_alerts = Table(
        "kr_alerts",
        v6,
        Column("quarter", String(7), nullable=False),
        Column("kr_id", String(200), nullable=False),
        Column("kind", String(20), nullable=False),
        Column("as_of", Date, nullable=False),
        Column("new_state", String(100), nullable=False),
        Column("old_state", String(100)),
        Column("rule", String(100), nullable=False),
        Column("objective_id", String(200), nullable=False),
        Column("objective_title", Text, nullable=False),
        Column("kr_title", Text, nullable=False),
        Column("owner", String(200)),
        Column("value", Float),
        Column("target", Float),
        Column("reason", Text, nullable=False),
        Column("route", String(200)),
        Column("delivered_at", DateTime(timezone=True)),
        Column("attempts", Integer, nullable=False),
        Column("last_error", Text),
        Column("claimed_by", String(64)),
        Column("claimed_at", DateTime(timezone=True)),
        Column("run_id", String(64), nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        PrimaryKeyConstraint("quarter", "kr_id", "kind", "as_of", "new_state", name="kr_alerts_pk"),
    )
    Index("kr_alerts_as_of", kr_alerts.c.as_of)
    Index("kr_alerts_undelivered", kr_alerts.c.delivered_at, kr_alerts.c.attempts)
    v6.create_all(connection, checkfirst=True)
    apply_comments(connection)


# -- step 7: KR kinds ----------------------------------------------------------------------


def _v7_kr_kinds(connection: Connection) -> None:
    """kr_scores' commitment, maintain_between band and carried total; quarter_summary by
    commitment."""
    existing = {column["name"] for column in inspect(connection).get_columns("kr_scores")}
    float_type = Float().compile(dialect=connection.dialect)
    text_type = String(20).compile(dialect=connection.dialect)
    for name, kind in (
        ("commitment", text_type),
        ("low", float_type),
        ("high", float_type),
        ("carried", float_type),
    ):
        if name not in existing:
            connection.exec_driver_sql(f"ALTER TABLE kr_scores ADD COLUMN {name} {kind}")
    # PostgreSQL fixed kr_scores_latest's columns when it was created.
    connection.exec_driver_sql("DROP VIEW IF EXISTS kr_scores_latest")
    _create_views(connection, "001_latest_views.sql")
    connection.exec_driver_sql("DROP VIEW IF EXISTS quarter_summary")
    _create_views(connection, "007_quarter_summary.sql")
    apply_comments(connection)


# -- step 8: the end-of-quarter ritual ------------------------------------------------------


def _v8_final_scores_and_confidence(connection: Connection) -> None:
    """kr_final_scores, checkins.confidence (value nullable), the kr_confidence view."""
    v8 = MetaData()
    Table(
        "kr_final_scores",
        v8,
        Column("quarter", String(7), nullable=False),
        Column("kr_id", String(200), nullable=False),
        Column("objective_id", String(200), nullable=False),
        Column("kr_title", Text, nullable=False),
        Column("owner", String(200)),
        Column("kr_type", String(20), nullable=False),
        Column("commitment", String(20)),
        Column("as_of", Date, nullable=False),
        Column("value", Float),
        Column("start", Float),
        Column("target", Float),
        Column("progress", Float),
        Column("score", Float),
        Column("status", String(20), nullable=False),
        Column("definition_hash", String(64), nullable=False),
        Column("closed_on", Date, nullable=False),
        Column("frozen_at", DateTime(timezone=True), nullable=False),
        Column("run_id", String(64), nullable=False),
        Column("override_grade", Float),
        Column("override_note", Text),
        Column("graded_by", String(200)),
        Column("override_source", Text),
        Column("override_recorded_at", DateTime(timezone=True)),
        Column("grade", Float),
        PrimaryKeyConstraint("quarter", "kr_id", name="kr_final_scores_pk"),
    )
    v8.create_all(connection, checkfirst=True)
    existing = {column["name"] for column in inspect(connection).get_columns("checkins")}
    if connection.dialect.name == "sqlite":
        # SQLite cannot drop a NOT NULL: the table is rebuilt, its rows copied.
        columns = ", ".join(sorted(existing, key=_CHECKINS_V5_ORDER.index))
        connection.exec_driver_sql("DROP VIEW IF EXISTS kr_confidence")
        connection.exec_driver_sql("ALTER TABLE checkins RENAME TO checkins_v5")
        checkins = MetaData()
        Table(
            "checkins",
            checkins,
            Column("quarter", String(7), nullable=False),
            Column("kr_id", String(200), nullable=False),
            Column("date", Date, nullable=False),
            Column("value", Float),
            Column("note", Text),
            Column("file", Text, nullable=False),
            Column("line", Integer, nullable=False),
            Column("run_id", String(64), nullable=False),
            Column("recorded_at", DateTime(timezone=True), nullable=False),
            Column("confidence", Integer),
            PrimaryKeyConstraint("quarter", "kr_id", "date", name="checkins_pk"),
        ).create(connection)
        connection.exec_driver_sql(
            f"INSERT INTO checkins ({columns}) SELECT {columns} FROM checkins_v5"
        )
        connection.exec_driver_sql("DROP TABLE checkins_v5")
    else:
        connection.exec_driver_sql("ALTER TABLE checkins ALTER COLUMN value DROP NOT NULL")
        if "confidence" not in existing:
            integer = Integer().compile(dialect=connection.dialect)
            connection.exec_driver_sql(f"ALTER TABLE checkins ADD COLUMN confidence {integer}")
    _create_views(connection, "008_kr_confidence.sql")
    apply_comments(connection)


_CHECKINS_V5_ORDER = (
    "quarter",
    "kr_id",
    "date",
    "value",
    "note",
    "file",
    "line",
    "run_id",
    "recorded_at",
    "confidence",
)


def apply_comments(connection: Connection) -> None:
    """Table and column comments from warehouse/schema.py, where the database keeps them.

    Comments describe, they do not shape: so a step may take them from the current
    schema.py, for the tables and columns that exist at that step.
    """
    if not connection.dialect.supports_comments:
        return
    inspector = inspect(connection)
    existing = set(inspector.get_table_names())
    for table in schema.metadata.sorted_tables:
        if table.name not in existing:
            continue
        if table.comment:
            connection.execute(SetTableComment(table))
        columns = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.comment and column.name in columns:
                connection.execute(SetColumnComment(column))


STEPS: tuple[Step, ...] = (
    Step(1, "initial schema: scores, observations, *_latest views", _v1_initial),
    Step(2, "indexes for analysts, column comments, quarter_summary view", _v2_analysts),
    Step(3, "rejected_observations: rows that failed validation", _v3_rejected_observations),
    Step(4, "source_runs: each source's outcome in each run", _v4_source_runs),
    Step(5, "forecast interval, kr_definitions, checkins, kr_weekly view", _v5_dashboard),
    Step(6, "kr_alerts: transitions per KR and their delivery", _v6_kr_alerts),
    Step(
        7, "KR kinds: commitment, band, carried total; quarter_summary by commitment", _v7_kr_kinds
    ),
    Step(
        8,
        "kr_final_scores, check-in confidence, kr_confidence view",
        _v8_final_scores_and_confidence,
    ),
)
LATEST = STEPS[-1].version


def _read_version(connection: Connection) -> int:
    if not inspect(connection).has_table(schema.schema_version.name):
        return 0
    version = connection.execute(select(func.max(schema.schema_version.c.version))).scalar()
    return int(version or 0)


def _check_not_newer(version: int) -> None:
    if version > LATEST:
        raise SchemaTooNewError(
            f"the warehouse is at schema version {version}, newer than this okr-metrics "
            f"knows ({LATEST}): upgrade okr-metrics"
        )


def current_version(engine: Engine) -> int:
    """The warehouse's schema version: 0 before any step (an empty or pre-migration database)."""
    with engine.connect() as connection:
        return _read_version(connection)


def migrate(engine: Engine) -> list[int]:
    """Apply the missing steps in one transaction; returns the versions applied."""
    version = current_version(engine)
    _check_not_newer(version)
    if version == LATEST:
        return []
    applied = []
    with write_transaction(engine, SCHEMA_LOCK) as connection:
        schema.schema_version.create(connection, checkfirst=True)
        # Another process may have migrated while this one waited for the lock.
        version = _read_version(connection)
        _check_not_newer(version)
        for step in STEPS[version:]:
            step.upgrade(connection)
            connection.execute(
                schema.schema_version.insert().values(
                    version=step.version,
                    description=step.description,
                    applied_at=datetime.now(UTC),
                )
            )
            applied.append(step.version)
    return applied
