"""The grades files: an owner's override of a KR's frozen end-of-quarter grade.

One CSV file per quarter beside the definitions, `okr_defs/grades/<quarter>.csv`:

    kr_id,grade,note,graded_by
    uptime,0.9,two incidents outside our control (provider outage 2026-08-10),sre-lead

`grade` is a number from 0 to 1 (the grading convention), `note` says why and is
required, `graded_by` is optional. Every row is checked like a check-in row: an unknown
`kr_id`, a grade that is not a number from 0 to 1, a missing note, a second override of
the same KR, a line too long or not UTF-8 is rejected with a one-line `file:line`
reason, and costs that row only. A file that cannot be read as a whole (a bad header,
one too large) is one problem at line 1.

Read on every run by `pipelines/jobs/grades.py` (which applies the overrides to
`kr_final_scores`) and by `okr lint`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from okr_metrics.connectors.manual.client import _owner, _unreadable, read_table

GRADE_COLUMNS = ("kr_id", "grade", "note", "graded_by")
REQUIRED_GRADE_COLUMNS = ("kr_id", "grade", "note")


@dataclass(frozen=True)
class GradeOverride:
    """A valid override row."""

    kr_id: str
    grade: float
    note: str
    graded_by: str | None
    line: int


@dataclass
class Grades:
    """One grades file, read and checked."""

    path: str
    overrides: dict[str, GradeOverride] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # "file:line: ...", in file order
    file_problem: str | None = None
    missing: bool = False

    def source(self, override: GradeOverride) -> str:
        return f"{self.path}:{override.line}"


def grades_path(definitions_root: str | Path, quarter: str) -> Path:
    return Path(definitions_root) / "grades" / f"{quarter}.csv"


def read_grades(path: Path, quarter: str, known_ids: tuple[str, ...] | None = None) -> Grades:
    """Read and check a grades file; `known_ids` are the KRs of the quarter."""
    shown = str(path)
    found = Grades(shown)
    table = read_table(path, found, "grades", REQUIRED_GRADE_COLUMNS, GRADE_COLUMNS)
    if table is None:
        return found
    header, column, rows = table
    for line, text, cells, raw in rows:
        kr_id, grade_text, note = (raw[column[name]] for name in REQUIRED_GRADE_COLUMNS)
        graded_by = raw[column["graded_by"]] if "graded_by" in column else ""
        problem = _unreadable(text)
        if problem is None and len(cells) > len(header):
            problem = f"{len(cells)} fields, expected {len(header)}"
        if problem is None and known_ids is not None and kr_id not in known_ids:
            problem = f"unknown kr_id {kr_id!r} (not one of the KRs of {quarter})"
            close = _owner(kr_id, known_ids)
            problem += f"; did you mean {close!r}?" if close else ""
        grade = _grade(grade_text)
        if problem is None and grade is None:
            problem = f"grade {grade_text!r} is not a number from 0 to 1"
        if problem is None and not note:
            problem = f"the override of {kr_id} needs a note saying why"
        if problem is None and kr_id in found.overrides:
            first = found.overrides[kr_id].line
            problem = f"a second override of {kr_id} (the first, at line {first}, is kept)"
        if problem is not None or grade is None:
            found.problems.append(f"{shown}:{line}: {problem}")
            continue
        found.overrides[kr_id] = GradeOverride(kr_id, grade, note, graded_by or None, line)
    return found


def _grade(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) and 0 <= number <= 1 else None
