"""The `kr_scores` rows a run just wrote, handed in memory to the assets after it.

`kr_alerts` and `objective_scores` read a quarter's `kr_scores` rows; in a run that
scored those days itself, in the same process (the in-process executor, the default),
the rows are the frame `kr_scores` has just written, and reading them back cost more
than any other step of a 1,000-KR quarter after the fetch. The frame's columns are
kept here, for the run that wrote it only, and each reader takes them once; anything
else (another run, another process, days the run did not score) reads the warehouse.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from okr_metrics.warehouse.store import Warehouse

# The assets that read a quarter's kr_scores rows after kr_scores.
READERS = frozenset({"kr_alerts", "objective_scores"})
# As the warehouse orders a read (`Warehouse.read_kr_scores`).
_ORDER = ["as_of", "objective_id"]

_lock = threading.Lock()


@dataclass
class _Kept:
    first: date
    last: date
    columns: dict[str, np.ndarray]  # the written frame's own arrays, until a reader's take
    readers: set[str]  # those still to take the rows
    in_order: bool = False  # the arrays put in the warehouse's order (by the first take)


# (warehouse URL, run id, quarter) -> the rows kept for the readers
_kept: dict[tuple[str, str, str], _Kept] = {}


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
    them: the write replaced those days) for `READERS` to take, in the warehouse's order.

    The columns kept are the frame's own arrays, put in order by the first reader: nothing
    is copied or sorted while `kr_scores` still holds its frame, its write and its scoring
    (the run's peak of memory). The rest of the frame is let go with the step; a run's
    rows replace any other run's, so one run's at most stay alive."""
    names = dict.fromkeys([*columns, *_ORDER])  # the order's columns are always kept
    kept = _Kept(first, last, {name: rows[name].to_numpy() for name in names}, set(READERS))
    with _lock:
        for key in [key for key in _kept if key[1] != run_id]:
            del _kept[key]
        _kept[(warehouse.url, run_id, quarter)] = kept


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
    the warehouse). The rows are let go once every reader has taken them."""
    key = (warehouse.url, run_id, quarter)
    with _lock:
        found = _kept.get(key)
        if found is None or reader not in found.readers:
            return None
        if not found.first <= start <= end <= found.last or not set(columns) <= set(found.columns):
            return None
        if not found.in_order:
            # Put in order once, column by column: the step that wrote the rows has let
            # its frame go, so one column at a time is copied, never the whole frame.
            keys = pd.DataFrame({name: found.columns[name] for name in _ORDER})
            order = keys.sort_values(_ORDER, kind="stable").index.to_numpy()
            for name, values in found.columns.items():
                found.columns[name] = values[order]
            found.in_order = True
        found.readers.discard(reader)
        if not found.readers:
            del _kept[key]
    arrays = found.columns
    if (found.first, found.last) != (start, end):
        days = arrays["as_of"]
        within = (days >= start) & (days <= end)
        return pd.DataFrame({name: arrays[name][within] for name in columns})
    # The readers share these arrays: they read them, never write them.
    return pd.DataFrame({name: arrays[name] for name in columns}, copy=False)


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
