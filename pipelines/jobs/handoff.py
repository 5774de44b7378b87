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
    warehouse: Warehouse, run_id: str, quarter: str, first: date, last: date, rows: pd.DataFrame
) -> None:
    """Keep the rows a run wrote for the quarter's days first..last (all of them: the
    write replaced those days), for `READERS` to take. A run's rows replace any other
    run's, so one run's frames at most stay alive."""
    with _lock:
        for key in [key for key in _kept if key[1] != run_id]:
            del _kept[key]
        _kept[(warehouse.url, run_id, quarter)] = (first, last, rows, set(READERS))


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
        if not first <= start <= end <= last:
            return None
        readers.discard(reader)
        if not readers:
            del _kept[key]
    days = rows["as_of"]
    chosen = rows if (first, last) == (start, end) else rows[(days >= start) & (days <= end)]
    chosen = chosen.sort_values(_ORDER, kind="stable")
    return chosen[list(columns)].reset_index(drop=True)


def forget() -> None:
    """Let every kept frame go."""
    with _lock:
        _kept.clear()
