"""The warehouse tables as they are now, as SQLAlchemy Core: what reads and writes use.

Analysts query these; their names and columns are a contract (docs/warehouse.md).
The database gets them through `warehouse.migrations`, whose steps are frozen: a change
here needs a new migration step, and a test compares a migrated database with this file.
Comments reach PostgreSQL as `COMMENT ON`; SQLite keeps none.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

metadata = MetaData()


def _written_by() -> tuple[Column, Column]:
    """The run that wrote a score row, and when (fresh objects: a Column has one table)."""
    return (
        Column("run_id", String(64), nullable=False, comment="the Dagster run that wrote the row"),
        Column(
            "computed_at",
            DateTime(timezone=True),
            nullable=False,
            comment="when the row was written (UTC)",
        ),
    )


kr_scores = Table(
    "kr_scores",
    metadata,
    Column("quarter", String(7), nullable=False, comment="the quarter, e.g. 2026-Q4"),
    Column("objective_id", String(200), nullable=False, comment="the objective the KR belongs to"),
    Column("kr_id", String(200), nullable=False, comment="the key result, unique in its quarter"),
    Column("kr_title", Text, nullable=False, comment="the key result's title"),
    Column("owner", String(200), comment="team owning the KR (falls back to the objective owner)"),
    Column("as_of", Date, nullable=False, comment="the day the score is computed as of"),
    Column(
        "kr_type",
        String(20),
        nullable=False,
        comment=(
            "increase, decrease, maintain_above, maintain_below, maintain_between, milestone "
            "or baseline"
        ),
    ),
    Column("value", Float, comment="the KR's aggregate value as of as_of; null when no data"),
    Column("start", Float, comment="the starting value (increase and decrease KRs)"),
    Column("target", Float, comment="the target value (null: maintain_between, baseline)"),
    Column(
        "progress",
        Float,
        comment="(value - start) / (target - start), uncapped and signed; null when no data",
    ),
    Column("score", Float, comment="progress clamped to 0..1; null when no data"),
    Column(
        "expected_progress",
        Float,
        comment="days elapsed / days in the quarter, or the line through the KR's checkpoints",
    ),
    Column(
        "status",
        String(20),
        nullable=False,
        comment="no_data, achieved, on_track, at_risk, off_track or baseline (never scored)",
    ),
    Column(
        "stale",
        Boolean,
        nullable=False,
        comment="the source failed or was skipped for as_of: the last good value is carried",
    ),
    Column("last_observed", Date, comment="date of the newest real observation"),
    Column("forecast_value", Float, comment="forecast of the value on the quarter's last day"),
    Column("forecast_score", Float, comment="the forecast value, scored like the KR"),
    Column("forecast_method", String(20), comment="run_rate or linear"),
    Column(
        "definition_hash",
        String(64),
        nullable=False,
        comment="hash of the KR definition the row was scored with",
    ),
    *_written_by(),
    # Added by migration step 5, so after the columns step 1 made.
    Column(
        "forecast_low",
        Float,
        comment="lower end of the 80% interval of the quarter-end value, from data up to as_of",
    ),
    Column(
        "forecast_high",
        Float,
        comment="upper end of the 80% interval of the quarter-end value, from data up to as_of",
    ),
    Column(
        "p_achieve",
        Float,
        comment="probability that the KR ends the quarter achieved, from data up to as_of",
    ),
    # Added by migration step 7.
    Column(
        "commitment",
        String(20),
        comment="committed (expected to reach 1.0) or aspirational (0.7 is a success)",
    ),
    Column("low", Float, comment="maintain_between: the band's lower bound, inclusive"),
    Column("high", Float, comment="maintain_between: the band's upper bound, inclusive"),
    Column(
        "carried",
        Float,
        comment="reset_each_quarter false: the series' stored total before the quarter, in value",
    ),
    PrimaryKeyConstraint("quarter", "kr_id", "as_of", name="kr_scores_pk"),
    comment="One row per key result per as-of day.",
)
# The primary key serves "one KR in a quarter"; these serve the other usual queries.
Index("kr_scores_as_of", kr_scores.c.as_of)
Index("kr_scores_objective", kr_scores.c.quarter, kr_scores.c.objective_id, kr_scores.c.as_of)
Index("kr_scores_quarter_as_of", kr_scores.c.quarter, kr_scores.c.as_of)
Index("kr_scores_kr", kr_scores.c.kr_id, kr_scores.c.as_of)

objective_scores = Table(
    "objective_scores",
    metadata,
    Column("quarter", String(7), nullable=False, comment="the quarter, e.g. 2026-Q4"),
    Column(
        "objective_id", String(200), nullable=False, comment="the objective, unique in its quarter"
    ),
    Column("title", Text, nullable=False, comment="the objective's title"),
    Column("owner", String(200), comment="team owning the objective"),
    Column("aligns_to", String(200), comment="id of the parent objective, if any"),
    Column("as_of", Date, nullable=False, comment="the day the score is computed as of"),
    Column("score", Float, comment="weight-averaged score of the KRs with data"),
    Column("coverage", Float, comment="weight share of the KRs with data"),
    Column(
        "status",
        String(20),
        nullable=False,
        comment="worst status among the KRs with data; no_data when none has data",
    ),
    *_written_by(),
    PrimaryKeyConstraint("quarter", "objective_id", "as_of", name="objective_scores_pk"),
    comment="One row per objective per as-of day.",
)
Index("objective_scores_as_of", objective_scores.c.as_of)
Index("objective_scores_quarter_as_of", objective_scores.c.quarter, objective_scores.c.as_of)
Index("objective_scores_objective", objective_scores.c.objective_id, objective_scores.c.as_of)

metric_observations = Table(
    "metric_observations",
    metadata,
    Column("source", String(50), nullable=False, comment="the source, e.g. github"),
    Column(
        "metric_key",
        String(1000),
        nullable=False,
        comment="the query, e.g. github:count=releases;repo=acme/app",
    ),
    Column("date", Date, nullable=False, comment="the day the value belongs to"),
    Column("value", Float, nullable=False, comment="the metric's value that day"),
    Column(
        "collected_at",
        DateTime(timezone=True),
        nullable=False,
        comment="when the value was fetched (UTC)",
    ),
    Column("run_id", String(64), nullable=False, comment="the Dagster run that fetched it"),
    PrimaryKeyConstraint("metric_key", "date", name="metric_observations_pk"),
    comment="The validated daily series behind every KR.",
)
Index("metric_observations_source_date", metric_observations.c.source, metric_observations.c.date)

rejected_observations = Table(
    "rejected_observations",
    metadata,
    Column("source", String(50), nullable=False),
    Column("metric_key", String(1000), nullable=False),
    Column(
        "date", Text, nullable=False, comment="the date as the source gave it (may be malformed)"
    ),
    Column("raw_value", Text, nullable=False, comment="the value as the source gave it"),
    Column(
        "expectation", String(200), nullable=False, comment="the Great Expectations expectation"
    ),
    Column("reason", Text, nullable=False, comment="what was expected, and what came instead"),
    Column("window_start", Date, nullable=False, comment="first day of the fetch"),
    Column("window_end", Date, nullable=False, comment="last day of the fetch"),
    Column("collected_at", DateTime(timezone=True), nullable=False),
    Column("run_id", String(64), nullable=False),
    comment="Rows that failed validation: kept out of the scores, never thrown away.",
)
Index(
    "rejected_observations_key_date",
    rejected_observations.c.metric_key,
    rejected_observations.c.date,
)

source_runs = Table(
    "source_runs",
    metadata,
    Column("run_id", String(64), nullable=False, comment="the Dagster run"),
    Column("source", String(50), nullable=False),
    Column("window_start", Date, nullable=False, comment="first day the run fetched"),
    Column("window_end", Date, nullable=False, comment="last day the run fetched"),
    Column("status", String(20), nullable=False, comment="ok, skipped or failed"),
    Column("reason", Text, comment="why it was skipped or failed (one line per series)"),
    Column("rejected_rows", Integer, nullable=False, comment="rows that failed validation"),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("run_id", "source", name="source_runs_pk"),
    comment="How each source fared in each run, for the scorecard and for monitoring.",
)
Index("source_runs_source_recorded", source_runs.c.source, source_runs.c.recorded_at)

kr_definitions = Table(
    "kr_definitions",
    metadata,
    Column("quarter", String(7), nullable=False, comment="the quarter, e.g. 2026-Q4"),
    Column("kr_id", String(200), nullable=False, comment="the key result"),
    Column("definition_hash", String(64), nullable=False, comment="as in kr_scores"),
    Column("objective_id", String(200), nullable=False, comment="the objective the KR belongs to"),
    Column("kr_title", Text, nullable=False, comment="the key result's title"),
    Column("owner", String(200), comment="team owning the KR (falls back to the objective owner)"),
    Column("kr_type", String(20), nullable=False, comment="as in kr_scores"),
    Column("start", Float, comment="the starting value"),
    Column("target", Float, comment="the target value (null: maintain_between, baseline)"),
    Column(
        "metric_keys",
        Text,
        nullable=False,
        comment="JSON list of the metric_observations keys the KR reads (two for a ratio)",
    ),
    Column("definition", Text, nullable=False, comment="the KR's definition as JSON"),
    Column(
        "first_as_of",
        Date,
        nullable=False,
        comment="the first as-of day scored with this definition",
    ),
    Column(
        "last_as_of", Date, nullable=False, comment="the last as-of day scored with this definition"
    ),
    *_written_by(),
    PrimaryKeyConstraint("quarter", "kr_id", "definition_hash", name="kr_definitions_pk"),
    comment="Each definition a KR was scored with, and the days it was used for.",
)

checkins = Table(
    "checkins",
    metadata,
    Column("quarter", String(7), nullable=False, comment="the quarter of the check-in file"),
    Column("kr_id", String(200), nullable=False, comment="the key result checked in"),
    Column("date", Date, nullable=False, comment="the day the check-in is for"),
    Column("value", Float, comment="the value checked in; null for a confidence-only check-in"),
    Column("note", Text, comment="what the owner wrote beside it"),
    Column("file", Text, nullable=False, comment="the check-in file"),
    Column("line", Integer, nullable=False, comment="the line of the file"),
    Column("run_id", String(64), nullable=False, comment="the Dagster run that read it"),
    Column(
        "recorded_at", DateTime(timezone=True), nullable=False, comment="when it was read (UTC)"
    ),
    # Added by migration step 8 (which also let `value` be null), so last.
    Column(
        "confidence",
        Integer,
        comment="the owner's confidence that the KR will be met, 0 to 10; null when not given",
    ),
    PrimaryKeyConstraint("quarter", "kr_id", "date", name="checkins_pk"),
    comment="The valid rows of the check-in files with their notes, replaced whole each run.",
)

kr_alerts = Table(
    "kr_alerts",
    metadata,
    Column("quarter", String(7), nullable=False, comment="the quarter, e.g. 2026-Q4"),
    Column("kr_id", String(200), nullable=False, comment="the key result"),
    Column(
        "kind",
        String(20),
        nullable=False,
        comment="status_changed, threshold or forecast_miss",
    ),
    Column("as_of", Date, nullable=False, comment="the day the new state had held for dwell_days"),
    Column(
        "new_state",
        String(100),
        nullable=False,
        comment="the state entered: a status, or a bound such as score < 0.4",
    ),
    Column("old_state", String(100), comment="the state before; null for the KR's first state"),
    Column(
        "rule",
        String(100),
        nullable=False,
        comment="what was watched: status, or the bound, e.g. score_below 0.4",
    ),
    Column("objective_id", String(200), nullable=False, comment="the objective the KR belongs to"),
    Column("objective_title", Text, nullable=False, comment="the objective's title"),
    Column("kr_title", Text, nullable=False, comment="the key result's title"),
    Column("owner", String(200), comment="team owning the KR (falls back to the objective owner)"),
    Column("value", Float, comment="the KR's value on as_of"),
    Column("target", Float, comment="the KR's target on as_of"),
    Column("reason", Text, nullable=False, comment="one line: the days and observations behind it"),
    Column(
        "route",
        String(200),
        comment="the environment variable naming the webhook it goes to (never the URL)",
    ),
    Column("delivered_at", DateTime(timezone=True), comment="when the webhook accepted it (UTC)"),
    Column("attempts", Integer, nullable=False, comment="posts tried so far"),
    Column("last_error", Text, comment="why the last post failed, the URL redacted"),
    Column("claimed_by", String(64), comment="the run posting it now, if any"),
    Column("claimed_at", DateTime(timezone=True), comment="when that run claimed it (UTC)"),
    Column("run_id", String(64), nullable=False, comment="the Dagster run that recorded it"),
    Column("created_at", DateTime(timezone=True), nullable=False, comment="when it was recorded"),
    PrimaryKeyConstraint("quarter", "kr_id", "kind", "as_of", "new_state", name="kr_alerts_pk"),
    comment="One row per transition per key result: the alert, and how its delivery went.",
)
Index("kr_alerts_as_of", kr_alerts.c.as_of)
Index("kr_alerts_undelivered", kr_alerts.c.delivered_at, kr_alerts.c.attempts)

kr_final_scores = Table(
    "kr_final_scores",
    metadata,
    Column("quarter", String(7), nullable=False, comment="the quarter, e.g. 2026-Q3"),
    Column("kr_id", String(200), nullable=False, comment="the key result"),
    Column("objective_id", String(200), nullable=False, comment="the objective the KR belongs to"),
    Column("kr_title", Text, nullable=False, comment="the key result's title"),
    Column("owner", String(200), comment="team owning the KR (falls back to the objective owner)"),
    Column("kr_type", String(20), nullable=False, comment="as in kr_scores"),
    Column("commitment", String(20), comment="as in kr_scores"),
    Column("as_of", Date, nullable=False, comment="the quarter's last day: the row frozen"),
    Column("value", Float, comment="the KR's value on the quarter's last day"),
    Column("start", Float, comment="the baseline"),
    Column("target", Float, comment="the target value"),
    Column("progress", Float, comment="as in kr_scores, frozen"),
    Column("score", Float, comment="the computed grade: the last day's score, frozen"),
    Column("status", String(20), nullable=False, comment="the last day's status, frozen"),
    Column("definition_hash", String(64), nullable=False, comment="as in kr_scores"),
    Column(
        "closed_on",
        Date,
        nullable=False,
        comment="the closing day: the quarter's last day plus close_offset_days",
    ),
    Column(
        "frozen_at", DateTime(timezone=True), nullable=False, comment="when it was frozen (UTC)"
    ),
    Column("run_id", String(64), nullable=False, comment="the Dagster run that froze it"),
    Column(
        "override_grade",
        Float,
        comment="the owner's grade from okr_defs/grades/<quarter>.csv, 0 to 1; null when none",
    ),
    Column("override_note", Text, comment="why the owner graded it so"),
    Column("graded_by", String(200), comment="who recorded the override"),
    Column("override_source", Text, comment="file:line of the override"),
    Column(
        "override_recorded_at",
        DateTime(timezone=True),
        comment="when the override as it stands was first read (UTC)",
    ),
    Column("grade", Float, comment="the grade that counts: override_grade, else score"),
    PrimaryKeyConstraint("quarter", "kr_id", name="kr_final_scores_pk"),
    comment="The frozen grade of each key result once its quarter has closed, "
    "with the owner's override beside it.",
)

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False, comment="the step number"),
    Column("description", String(200), nullable=False, comment="what the step did"),
    Column(
        "applied_at",
        DateTime(timezone=True),
        nullable=False,
        comment="when the step was applied (UTC)",
    ),
    comment="One row per migration step applied to this warehouse (warehouse.migrations).",
)

# The tables the pipeline writes, and the views over them (warehouse/sql/).
DATA_TABLES = ("kr_scores", "objective_scores", "metric_observations")
VIEW_NAMES = (
    "kr_scores_latest",
    "objective_scores_latest",
    "quarter_summary",
    "kr_weekly",
    "kr_confidence",
)
