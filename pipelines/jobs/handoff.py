"""The `kr_scores` rows a run just wrote, handed in memory to the assets after it.

`kr_alerts` and `objective_scores` read a quarter's `kr_scores` rows; in a run that
scored those days itself, in the same process (the in-process executor, the default),
the rows are the frame `kr_scores` has just written, and reading them back cost more
than any other step of a 1,000-KR quarter after the fetch. The frame is kept here, for
the run that wrote it only, and each reader takes it once; anything else (another run,
another process, days the run did not score) reads the warehouse.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import date

import pandas as pd

from okr_metrics.warehouse.store import Warehouse

# The assets that read a quarter's kr_scores rows after kr_scores.
READERS = frozenset({"kr_alerts", "objective_scores"})
# As the warehouse orders a read (`Warehouse.read_kr_scores`).
_ORDER = ["as_of", "objective_id"]

_lock = threading.Lock()
# (warehouse URL, run id, quarter) -> (first day, last day, rows, readers still to take them)
_kept: dict[tuple[str, str, str], tuple[date, date, pd.DataFrame, set[str]]] = {}


def keep(
    warehouse: Warehouse,
    run_id: str,
    quarter: str,
    first: date,
    last: date,
    rows: pd.DataFrame,
    columns: Sequence[str],
) -> None:
    """Keep `columns` of the rows a run wrote for the quarter's days first..last (all of
    them: the write replaced those days), in the warehouse's order, for `READERS` to
    take. Only the columns the readers read are kept, so the rest of the frame is let go
    with the step; a run's rows replace any other run's, so one run's at most stay alive."""
    kept = rows[list(columns)].sort_values(_ORDER, kind="stable", ignore_index=True)
    with _lock:
        for key in [key for key in _kept if key[1] != run_id]:
            del _kept[key]
        _kept[(warehouse.url, run_id, quarter)] = (first, last, kept, set(READERS))


def take(
    warehouse: Warehouse,
    run_id: str,
    reader: str,
    quarter: str,
    start: date,
    end: date,
    columns: Sequence[str],
) -> pd.DataFrame | None:
    """The quarter's rows from `start` through `end`, only `columns`, in the warehouse's
    order, when this run wrote every one of those days in this process; else None (read
    the warehouse). The frame is let go once every reader has taken it."""
    key = (warehouse.url, run_id, quarter)
    with _lock:
        found = _kept.get(key)
        if found is None or reader not in found[3]:
            return None
        first, last, rows, readers = found
        if not first <= start <= end <= last or not set(columns) <= set(rows.columns):
            return None
        readers.discard(reader)
        if not readers:
            del _kept[key]
    if (first, last) != (start, end):
        days = rows["as_of"]
        rows = rows[(days >= start) & (days <= end)].reset_index(drop=True)
    return rows[list(columns)]


def read_kr_scores(
    warehouse: Warehouse,
    run_id: str,
    reader: str,
    quarter: str,
    start: date,
    end: date,
    columns: Sequence[str],
) -> pd.DataFrame:
    """The quarter's kr_scores rows from `start` through `end` (only `columns`): those
    the run handed on (`take`), else the warehouse's."""
    rows = take(warehouse, run_id, reader, quarter, start, end, columns)
    if rows is None:
        rows = warehouse.read_kr_scores(start, end, quarter=quarter, columns=columns)
    return rows
