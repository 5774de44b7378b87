"""Closing a quarter: freeze each KR's final grade, and apply the owners' overrides.

Called by the `kr_scores` asset after each write (`close_quarters`) and by `okr lint`
(`lint_grades`). The rules (docs/scoring.md, "Final grades"):

- A quarter closes on its closing day, the last day plus `close_offset_days` (default 7)
  from its definitions file. A run whose window ends on the closing day or later copies
  each KR's stored score of the quarter's last day into `kr_final_scores`, once: later
  runs (backfills, re-runs) never change a frozen row, and only freeze what is not
  frozen yet (a KR the last day had no row for, once it has one).
- `okr_defs/grades/<quarter>.csv` is read on every such run: the overrides follow the
  file (added, changed, removed), the computed grade never moves. A file that cannot be
  read as a whole leaves the stored overrides as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from okr_metrics.connectors.manual.grades import Grades, grades_path, read_grades
from okr_metrics.pipelines.definitions import Definitions, OkrFile, Problem
from okr_metrics.pipelines.jobs.checkins import lint_checkins, split_reason
from okr_metrics.warehouse.final_scores import (
    Override,
    apply_overrides,
    freeze_quarter,
    frozen_kr_ids,
)
from okr_metrics.warehouse.store import Warehouse

log = logging.getLogger("okr_metrics")


@dataclass
class GradesResult:
    frozen: dict[str, int] = field(default_factory=dict)  # quarter -> KRs frozen by this run
    overrides_changed: int = 0
    problems: list[str] = field(default_factory=list)  # file:line: ...


def quarter_grades(definitions: Definitions, okr_file: OkrFile) -> Grades:
    """The quarter's grades file, read and checked against its KRs."""
    quarter = str(okr_file.quarter)
    known = tuple(key_result.id for _, key_result in okr_file.key_results)
    return read_grades(grades_path(definitions.root or "okr_defs", quarter), quarter, known)


def close_quarters(
    definitions: Definitions,
    warehouse: Warehouse,
    end: date,
    run_id: str,
    progress: Callable[[str], None] = log.info,
) -> GradesResult:
    """Freeze the grades of every defined quarter closed by `end`, then apply overrides."""
    result = GradesResult()
    for quarter, okr_file in sorted(definitions.files.items()):
        if okr_file.closing_day > end:
            continue
        name = str(quarter)
        frozen = freeze_quarter(warehouse, name, quarter.end, okr_file.closing_day, run_id)
        if frozen:
            result.frozen[name] = frozen
            progress(f"kr_final_scores: {name} closed on {okr_file.closing_day}: {frozen} frozen")
        grades = quarter_grades(definitions, okr_file)
        if grades.file_problem:
            result.problems.append(grades.file_problem)
            continue
        result.problems += grades.problems
        stored = frozen_kr_ids(warehouse, name)
        if not stored:
            if not grades.missing:
                result.problems.append(
                    f"{grades.path}:1: {name} has no frozen grade yet: its last day "
                    f"({quarter.end}) has no scores (run `okr backfill {name}`)"
                )
            continue
        overrides = {}
        for kr_id, row in grades.overrides.items():
            if kr_id not in stored:
                result.problems.append(
                    f"{grades.source(row)}: {kr_id} has no frozen grade in {name} "
                    f"(no score on {quarter.end})"
                )
                continue
            overrides[kr_id] = Override(row.grade, row.note, row.graded_by, grades.source(row))
        result.overrides_changed += apply_overrides(warehouse, name, overrides)
    for problem in result.problems:
        log.warning(problem)
    return result


def lint_grades(definitions: Definitions) -> list[Problem]:
    """Every problem of the quarters' grades files, for `okr lint`."""
    problems = []
    for okr_file in (definitions.files[q] for q in sorted(definitions.files)):
        grades = quarter_grades(definitions, okr_file)
        for reason in [grades.file_problem] if grades.file_problem else grades.problems:
            problems.append(Problem(*split_reason(reason, grades.path)))
    return problems


def with_checkin_and_grade_problems(definitions: Definitions) -> list[Problem]:
    """`definitions.problems` with the check-in files' problems as read for every KR (the
    confidences too) in place of the manual source's own, and the grades files' problems."""
    checkins = lint_checkins(definitions)
    linted = {problem.path for problem in checkins}
    kept = [problem for problem in definitions.problems if problem.path not in linted]
    found = kept + checkins + lint_grades(definitions)
    return sorted(found, key=lambda problem: (problem.path, problem.line))
