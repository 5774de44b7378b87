"""Which KR-days are alerts: transitions replayed from the stored daily scores.

Pure: `detect_transitions(history, watches, metric_keys)` reads a quarter's `kr_scores`
rows (from its first day) and returns one row per transition. The same history always
gives the same transitions, so re-running or backfilling a day finds the same ones, and
`pipelines/jobs/alerts.py` records each only once. The rules are in docs/alerts.md.

A watch follows one state per day: the status, or which side of a bound the score, the
value or `p_achieve` is on. Days without it (no data, a null `p_achieve`) are skipped. A
state is *held* once it has been the state of `dwell_days` days with it in a row; a
transition is a held state that differs from the one held before, so a flap across a
boundary that does not last `dwell_days` raises nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import numpy as np
import pandas as pd

# Statuses worth telling: entering one, or leaving one ("back" to on_track).
ALERTING_STATUSES = ("at_risk", "off_track", "achieved")
ALERT_COLUMNS = [
    "quarter",
    "kr_id",
    "kind",
    "as_of",
    "new_state",
    "old_state",
    "rule",
    "objective_id",
    "kr_title",
    "owner",
    "value",
    "target",
    "reason",
]

# The kr_scores columns detection and its reasons read.
_READ_COLUMNS = {
    "quarter", "kr_id", "objective_id", "kr_title", "owner", "as_of", "status", "score",
    "value", "target", "progress", "expected_progress", "p_achieve", "forecast_value",
    "forecast_low", "forecast_high", "last_observed", "stale",
}  # fmt: skip
# The kr_scores columns `detect_transitions` reads, for a caller that reads no others.
HISTORY_COLUMNS = sorted(_READ_COLUMNS)


@dataclass(frozen=True)
class Bound:
    """`column` below (or above) `limit`: a `threshold`, or a `forecast_miss` on p_achieve."""

    kind: Literal["threshold", "forecast_miss"]
    column: Literal["score", "value", "p_achieve"]
    direction: Literal["below", "above"]
    limit: float

    @property
    def rule(self) -> str:
        return f"{self.column}_{self.direction} {self.limit:g}"

    @property
    def breach(self) -> str:
        sign = "<" if self.direction == "below" else ">"
        return f"{self.column} {sign} {self.limit:g}"

    @property
    def clear(self) -> str:
        sign = ">=" if self.direction == "below" else "<="
        return f"{self.column} {sign} {self.limit:g}"

    def worth(self, old_state: str | None, new_state: str) -> bool:
        """Crossing into the bound, or back out of it, is worth an alert."""
        return self.breach in (old_state, new_state)

    def state(self, row: Mapping[str, Any]) -> str | None:
        number = _number(row.get(self.column))
        if number is None:
            return None
        breached = number < self.limit if self.direction == "below" else number > self.limit
        return self.breach if breached else self.clear


@dataclass(frozen=True)
class AlertWatch:
    """What one KR is watched for, from its `alerts` rules."""

    status_changes: bool = True
    bounds: tuple[Bound, ...] = ()
    dwell_days: int = 2


@dataclass(frozen=True)
class _Held:
    as_of: date
    first_day: date
    old_state: str | None
    new_state: str
    row: Mapping[str, Any]


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _status_state(row: Mapping[str, Any]) -> str | None:
    status = row.get("status")
    return None if status in (None, "no_data") else str(status)


def held_states(
    rows: Sequence[Mapping[str, Any]], state: Callable[[Mapping[str, Any]], str | None], dwell: int
) -> Iterator[_Held]:
    """Each change of the held state along `rows` (one KR, as_of ascending)."""
    held: str | None = None
    current: str | None = None
    streak: list[date] = []
    for row in rows:
        today = state(row)
        if today is None:
            continue
        if today != current:
            current, streak = today, []
        streak.append(row["as_of"])
        if len(streak) >= dwell and current != held:
            yield _Held(row["as_of"], streak[-dwell], held, current, row)
            held = current


def _days(first: date, last: date) -> str:
    count = (last - first).days + 1
    return f"{first}" if first == last else f"{first}..{last} ({count} days)"


def _fmt(value: Any) -> str:
    number = _number(value)
    return "none" if number is None else f"{number:.4g}"


def _evidence(row: Mapping[str, Any], keys: Sequence[str]) -> str:
    """The observations behind the row: its series and the newest day of them."""
    observed = row.get("last_observed")
    stale = " (stale: the source failed, the last value is carried)" if row.get("stale") else ""
    series = ", ".join(keys) if keys else "its series"
    through = f" through {observed}" if observed is not None and observed == observed else ""
    return f"from {series}{through}{stale}"


def _reason(kind: str, held: _Held, keys: Sequence[str]) -> str:
    row = held.row
    was = f"; was {held.old_state}" if held.old_state else ""
    value = f"value {_fmt(row.get('value'))} of target {_fmt(row.get('target'))}"
    if kind == "status_changed":
        pace = (
            f", progress {_fmt(row.get('progress'))} against {_fmt(row.get('expected_progress'))}"
            " expected"
        )
        head = f"{held.new_state} on {_days(held.first_day, held.as_of)}{was}: {value}{pace}"
    elif kind == "forecast_miss":
        interval = (
            f"{_fmt(row.get('forecast_low'))}..{_fmt(row.get('forecast_high'))}"
            if _number(row.get("forecast_low")) is not None
            else "no interval"
        )
        head = (
            f"p_achieve {_fmt(row.get('p_achieve'))} ({held.new_state}) on "
            f"{_days(held.first_day, held.as_of)}{was}: forecast {_fmt(row.get('forecast_value'))}"
            f" (80%: {interval}), {value}"
        )
    else:
        column = held.new_state.split(" ", 1)[0]
        head = (
            f"{column} {_fmt(row.get(column))} ({held.new_state}) on "
            f"{_days(held.first_day, held.as_of)}{was}: {value}"
        )
    return f"{head}; {_evidence(row, keys)}"


def _status_worth(old_state: str | None, new_state: str) -> bool:
    return new_state in ALERTING_STATUSES or old_state in ALERTING_STATUSES


# (kind, rule, the state of a row, whether a change of held state is worth an alert)
Watched = tuple[
    str, str, Callable[[Mapping[str, Any]], str | None], Callable[[str | None, str], bool]
]


def _alerts(watch: AlertWatch) -> Iterator[Watched]:
    """One `Watched` per thing the KR is watched for."""
    if watch.status_changes:
        yield ("status_changed", "status", _status_state, _status_worth)
    for bound in watch.bounds:
        yield (bound.kind, bound.rule, bound.state, bound.worth)


def _rows_by_kr(
    frame: pd.DataFrame, names: list[str], order: np.ndarray
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Each KR's rows as records of `names` (as `to_dict("records")` makes them), KR by KR,
    in `order` (positions of `frame`'s rows, sorted by kr_id). Only one KR's rows are
    Python values at a time, and no sorted copy of the frame is made: a quarter of
    1,000 KRs as Python objects would be 1.6 million of them, tens of megabytes."""
    columns = [_column_values(frame[name]) for name in names]
    kr_ids = [str(kr_id) for kr_id in frame["kr_id"].to_numpy()[order].tolist()]
    first = 0
    for last in range(1, len(kr_ids) + 1):
        if last == len(kr_ids) or kr_ids[last] != kr_ids[first]:
            positions = order[first:last]
            rows = [
                dict(zip(names, row, strict=True))
                for row in zip(*(column[positions].tolist() for column in columns), strict=True)
            ]
            yield kr_ids[first], rows
            first = last


def _column_values(column: pd.Series) -> np.ndarray:
    """A NumPy array whose slices' `.tolist()` gives what `column.tolist()` gives: the
    column's own array for numbers, flags and objects, else an array of those values."""
    if isinstance(column.dtype, np.dtype) and column.dtype.kind in "biufO":
        return column.to_numpy()
    values = np.empty(len(column), dtype=object)
    values[:] = column.tolist()
    return values


def detect_transitions(
    history: pd.DataFrame,
    watches: Mapping[str, AlertWatch],
    metric_keys: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """One row per transition (columns ALERT_COLUMNS) in `history`, a quarter's kr_scores rows.

    `history` must start on the quarter's first scored day: a held state depends on every
    day before it. `watches` says what each KR (by kr_id) is watched for; KRs without one
    are not watched. `metric_keys` names each KR's series, for the reason.
    """
    rows_out: list[dict[str, Any]] = []
    if history.empty:
        return pd.DataFrame(columns=ALERT_COLUMNS)
    used = [name for name in history.columns if name in _READ_COLUMNS]
    keys = pd.DataFrame(
        {"kr_id": history["kr_id"].to_numpy(), "as_of": history["as_of"].to_numpy()}
    )
    order = keys.sort_values(["kr_id", "as_of"], kind="stable").index.to_numpy()
    watched = history["kr_id"].isin(list(watches)).to_numpy()
    order = order[watched[order]]  # the watched KRs' rows only, still in order
    for kr_id, rows in _rows_by_kr(history, used, order):
        watch = watches.get(kr_id)
        if watch is None:
            continue
        keys = (metric_keys or {}).get(kr_id, ())
        for kind, rule, state, worth in _alerts(watch):
            for held in held_states(rows, state, watch.dwell_days):
                if not worth(held.old_state, held.new_state):
                    continue
                row = held.row
                rows_out.append(
                    {
                        "quarter": row["quarter"],
                        "kr_id": row["kr_id"],
                        "kind": kind,
                        "as_of": held.as_of,
                        "new_state": held.new_state,
                        "old_state": held.old_state,
                        "rule": rule,
                        "objective_id": row["objective_id"],
                        "kr_title": row["kr_title"],
                        "owner": row.get("owner"),
                        "value": _number(row.get("value")),
                        "target": _number(row.get("target")),
                        "reason": _reason(kind, held, keys),
                    }
                )
    frame = pd.DataFrame(rows_out, columns=ALERT_COLUMNS)
    return frame.sort_values(["as_of", "kr_id", "kind", "rule"], kind="stable").reset_index(
        drop=True
    )
