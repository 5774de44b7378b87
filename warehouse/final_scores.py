"""The frozen end-of-quarter grades (`kr_final_scores`): freezing them, and the overrides.

Called by `pipelines/jobs/grades.py` after each `kr_scores` write, and read by the
scorecard, the dashboard and `okr plan`. A frozen row's computed columns are written
once and never updated; only its override columns follow the grades file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pandas as pd
from sqlalchemy import and_, exists, literal, select, update

from okr_metrics.warehouse.db import write_transaction
from okr_metrics.warehouse.schema import kr_final_scores, kr_scores
from okr_metrics.warehouse.store import Warehouse

# The kr_scores columns a frozen row copies from the quarter's last day.
FROZEN_COLUMNS = (
    "quarter",
    "kr_id",
    "objective_id",
    "kr_title",
    "owner",
    "kr_type",
    "commitment",
    "as_of",
    "value",
    "start",
    "target",
    "progress",
    "score",
    "status",
    "definition_hash",
)


@dataclass(frozen=True)
class Override:
    """An owner's grade for a frozen KR, as the grades file gives it."""

    grade: float
    note: str
    graded_by: str | None
    source: str  # file:line


def freeze_quarter(
    warehouse: Warehouse, quarter: str, last_day: date, closed_on: date, run_id: str
) -> int:
    """Freeze the quarter's KRs scored on `last_day` that are not frozen yet; returns how many.

    One INSERT ... SELECT under the table's write lock, so two runs closing the quarter
    at once freeze each KR once; rows frozen before are never touched.
    """
    warehouse.ensure_schema()
    frozen = kr_final_scores
    already = exists().where(
        and_(frozen.c.quarter == kr_scores.c.quarter, frozen.c.kr_id == kr_scores.c.kr_id)
    )
    source = select(
        *(kr_scores.c[name] for name in FROZEN_COLUMNS),
        literal(closed_on, frozen.c.closed_on.type),
        literal(datetime.now(UTC), frozen.c.frozen_at.type),
        literal(run_id, frozen.c.run_id.type),
        kr_scores.c.score,
    ).where(kr_scores.c.quarter == quarter, kr_scores.c.as_of == last_day, ~already)
    columns = [*FROZEN_COLUMNS, "closed_on", "frozen_at", "run_id", "grade"]
    with write_transaction(warehouse.engine, frozen.name) as connection:
        result = connection.execute(frozen.insert().from_select(columns, source))
        return int(result.rowcount or 0)


def apply_overrides(warehouse: Warehouse, quarter: str, overrides: Mapping[str, Override]) -> int:
    """Make the quarter's frozen rows carry `overrides` (KR id -> override), and no other.

    A row whose override is unchanged is left alone (its `override_recorded_at` says
    since when it stands); `grade` is the override, else the frozen `score`. Returns how
    many rows changed.
    """
    warehouse.ensure_schema()
    frozen = kr_final_scores
    changed = 0
    with write_transaction(warehouse.engine, frozen.name) as connection:
        stored = connection.execute(
            select(
                frozen.c.kr_id,
                frozen.c.score,
                frozen.c.override_grade,
                frozen.c.override_note,
                frozen.c.graded_by,
                frozen.c.override_source,
            ).where(frozen.c.quarter == quarter)
        ).all()
        now = datetime.now(UTC)
        for kr_id, score, grade, note, graded_by, source in stored:
            override = overrides.get(kr_id)
            wanted = (
                (override.grade, override.note, override.graded_by, override.source)
                if override
                else (None, None, None, None)
            )
            if wanted == (grade, note, graded_by, source):
                continue
            connection.execute(
                update(frozen)
                .where(frozen.c.quarter == quarter, frozen.c.kr_id == kr_id)
                .values(
                    override_grade=wanted[0],
                    override_note=wanted[1],
                    graded_by=wanted[2],
                    override_source=wanted[3],
                    override_recorded_at=now if override else None,
                    grade=override.grade if override else score,
                )
            )
            changed += 1
    return changed


def frozen_kr_ids(warehouse: Warehouse, quarter: str) -> set[str]:
    warehouse.ensure_schema()
    with warehouse.engine.connect() as connection:
        rows = connection.execute(
            select(kr_final_scores.c.kr_id).where(kr_final_scores.c.quarter == quarter)
        )
        return {row[0] for row in rows}


def read_final_scores(warehouse: Warehouse, quarter: str | None = None) -> pd.DataFrame:
    """The frozen rows (of `quarter`, else every quarter), by quarter and KR."""
    warehouse.ensure_schema()
    query = select(kr_final_scores)
    if quarter is not None:
        query = query.where(kr_final_scores.c.quarter == quarter)
    query = query.order_by(kr_final_scores.c.quarter, kr_final_scores.c.kr_id)
    with warehouse.engine.connect() as connection:
        result = connection.execute(query)
        return pd.DataFrame(result.all(), columns=list(result.keys()))
