"""The check-in files as the warehouse keeps them: every valid row with its note.

Called by `compute_kr_scores` for each quarter it scores, so the `checkins` table (the
dashboard's check-in notes) follows the file: it is read whole and its rows replace the
quarter's stored ones. A file that cannot be read leaves the stored rows alone; its
problem is reported by the manual source and by `okr lint`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from okr_metrics.connectors.manual.client import read_checkins
from okr_metrics.pipelines.definitions import Definitions, OkrFile

CHECKIN_COLUMNS = ["quarter", "kr_id", "date", "value", "note", "file", "line"]


def checkins_path(definitions: Definitions, quarter: str) -> Path:
    return Path(definitions.root or "okr_defs") / "checkins" / f"{quarter}.csv"


def quarter_checkins(definitions: Definitions, okr_file: OkrFile) -> pd.DataFrame | None:
    """The quarter's valid check-in rows (None: the file exists but cannot be read)."""
    quarter = str(okr_file.quarter)
    manual_ids = tuple(
        dict.fromkeys(
            key_result.id
            for _, key_result in okr_file.key_results
            for part in key_result.series_parts
            if part.source == "manual"
        )
    )
    path = checkins_path(definitions, quarter)
    found = read_checkins(path, quarter, manual_ids)
    if found.file_problem:
        return None
    rows = [
        (quarter, row.kr_id, row.date, row.value, row.note, found.path, row.line)
        for row in found.rows
    ]
    return pd.DataFrame(rows, columns=CHECKIN_COLUMNS)
