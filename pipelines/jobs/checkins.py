"""The check-in files as the warehouse keeps them: every valid row with its note and
confidence.

Called by `compute_kr_scores` for each quarter it scores, so the `checkins` table (the
dashboard's check-in notes and confidences) follows the file: it is read whole and its
rows replace the quarter's stored ones. A file that cannot be read leaves the stored rows
alone; its problem is reported by the manual source and by `okr lint`
(`lint_checkins`, which also checks the confidence-only rows of KRs measured by an API).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from okr_metrics.connectors.manual.client import CheckIns, read_checkins
from okr_metrics.pipelines.definitions import Definitions, OkrFile, Problem

CHECKIN_COLUMNS = ["quarter", "kr_id", "date", "value", "note", "file", "line", "confidence"]


def checkins_path(definitions: Definitions, quarter: str) -> Path:
    return Path(definitions.root or "okr_defs") / "checkins" / f"{quarter}.csv"


def manual_kr_ids(okr_file: OkrFile) -> tuple[str, ...]:
    """The KRs of the quarter whose check-ins carry values (their source is the file)."""
    return tuple(
        dict.fromkeys(
            key_result.id
            for _, key_result in okr_file.key_results
            for part in key_result.series_parts
            if part.source == "manual"
        )
    )


def read_quarter_checkins(definitions: Definitions, okr_file: OkrFile) -> CheckIns:
    """The quarter's check-in file, every row checked: values for the manual KRs,
    confidences for any KR."""
    quarter = str(okr_file.quarter)
    every_id = tuple(key_result.id for _, key_result in okr_file.key_results)
    path = checkins_path(definitions, quarter)
    return read_checkins(path, quarter, manual_kr_ids(okr_file), confidence_ids=every_id)


def quarter_checkins(definitions: Definitions, okr_file: OkrFile) -> pd.DataFrame | None:
    """The quarter's valid check-in rows (None: the file exists but cannot be read)."""
    quarter = str(okr_file.quarter)
    found = read_quarter_checkins(definitions, okr_file)
    if found.file_problem:
        return None
    frame = pd.DataFrame(
        [
            (quarter, row.kr_id, row.date, row.value, row.note, found.path, row.line, None)
            for row in found.rows
        ],
        columns=CHECKIN_COLUMNS,
    )
    # Whole numbers or None, as the integer column takes them (not 7.0 and NaN).
    frame["confidence"] = pd.Series([row.confidence for row in found.rows], dtype=object)
    return frame


def lint_checkins(definitions: Definitions) -> list[Problem]:
    """Every problem of each quarter's check-in file, for `okr lint`: the rows of the
    manual KRs and the confidence-only rows of any KR."""
    problems = []
    for quarter in sorted(definitions.files):
        found = read_quarter_checkins(definitions, definitions.files[quarter])
        for reason in [found.file_problem] if found.file_problem else found.problems:
            where, line, message = split_reason(reason, found.path)
            problems.append(Problem(where, line, message))
    return problems


def split_reason(reason: str, path: str) -> tuple[str, int, str]:
    """`file:line: message` -> (file, line, message)."""
    rest = reason.removeprefix(f"{path}:")
    line, _, message = rest.partition(": ")
    return path, int(line), message
