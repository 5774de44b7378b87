"""The warehouse tables and views, as SQLAlchemy Core.

Analysts query these; their names and columns are a contract (see SPEC.md and
README.md). `warehouse.store.Warehouse` creates them on first use.
"""

from __future__ import annotations

from importlib.resources import files

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

metadata = MetaData()

kr_scores = Table(
    "kr_scores",
    metadata,
    Column("quarter", String(7), nullable=False, comment="e.g. 2026-Q4"),
    Column("objective_id", String(200), nullable=False),
    Column("kr_id", String(200), nullable=False),
    Column("kr_title", Text, nullable=False),
    Column("owner", String(200), comment="team owning the KR (falls back to the objective owner)"),
    Column("as_of", Date, nullable=False, comment="the day the score is computed as of"),
    Column("kr_type", String(20), nullable=False),
    Column("value", Float, comment="the KR's aggregate value as of as_of; null when no data"),
    Column("start", Float),
    Column("target", Float),
    Column("progress", Float, comment="(value - start) / (target - start), uncapped"),
    Column("score", Float, comment="progress clamped to 0..1"),
    Column("expected_progress", Float, comment="days elapsed / days in the quarter"),
    Column("status", String(20), nullable=False),
    Column("stale", Boolean, nullable=False, comment="the source failed or was skipped for as_of"),
    Column("last_observed", Date, comment="date of the newest real observation"),
    Column("forecast_value", Float),
    Column("forecast_score", Float),
    Column("forecast_method", String(20)),
    Column("definition_hash", String(64), nullable=False),
    Column("run_id", String(64), nullable=False, comment="the Dagster run that wrote the row"),
    Column("computed_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("quarter", "kr_id", "as_of", name="kr_scores_pk"),
    comment="One row per key result per as-of day.",
)
Index("kr_scores_as_of", kr_scores.c.as_of)
Index("kr_scores_objective", kr_scores.c.quarter, kr_scores.c.objective_id, kr_scores.c.as_of)

objective_scores = Table(
    "objective_scores",
    metadata,
    Column("quarter", String(7), nullable=False),
    Column("objective_id", String(200), nullable=False),
    Column("title", Text, nullable=False),
    Column("owner", String(200)),
    Column("aligns_to", String(200)),
    Column("as_of", Date, nullable=False),
    Column("score", Float, comment="weight-averaged score of the KRs with data"),
    Column("coverage", Float, comment="weight share of the KRs with data"),
    Column("status", String(20), nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("computed_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("quarter", "objective_id", "as_of", name="objective_scores_pk"),
    comment="One row per objective per as-of day.",
)
Index("objective_scores_as_of", objective_scores.c.as_of)

metric_observations = Table(
    "metric_observations",
    metadata,
    Column("source", String(50), nullable=False),
    Column(
        "metric_key",
        String(1000),
        nullable=False,
        comment="the query, e.g. github:count=releases;repo=acme/app",
    ),
    Column("date", Date, nullable=False),
    Column("value", Float, nullable=False),
    Column("collected_at", DateTime(timezone=True), nullable=False),
    Column("run_id", String(64), nullable=False),
    PrimaryKeyConstraint("metric_key", "date", name="metric_observations_pk"),
    comment="The validated daily series behind every KR.",
)
Index("metric_observations_source_date", metric_observations.c.source, metric_observations.c.date)

VIEW_NAMES = ("kr_scores_latest", "objective_scores_latest")


def view_statements() -> list[str]:
    """`CREATE VIEW` statements from views.sql, one per view, in file order."""
    text = files("warehouse").joinpath("views.sql").read_text(encoding="utf-8")
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return [statement.strip() for statement in body.split(";") if statement.strip()]
