"""Scoring of OKR key results and objectives: pure functions over numpy arrays and pandas frames.

The scoring asset and the CLI call `score_key_results` with a quarter's stored
daily series and the as-of days to score, then `score_objectives` on its result.
Nothing here does I/O; the rules are written down in docs/scoring.md.

The unit of work is the quarter's (KR x day) matrix. Every stored series becomes a
row of a `(series, days)` array indexed by day of the quarter (NaN: no observation);
the KRs are grouped by aggregate (and ratio or not), and each group's running values,
forecasts and intervals are computed as `(krs, days)` arrays, for all its KRs and
days at once; progress, score, status and staleness follow for every KR at once, and
the frame is built from those arrays once. Column `i` of every array only ever reads
columns `<= i`, so a row never sees observations after its as-of day. The per-day
functions below (`aggregate_value`, `forecast`, ...) run the same code on one KR.

Missing values in the returned frames: NaN in float columns (`value`, `start`,
`progress`, `score`, `forecast_value`, ...), None in object columns (`owner`,
`last_observed`, `forecast_method`, ...).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from okr_metrics.pipelines.scoring.forecast import (
    Spread,
    interval,
    linear_forecast,
    p_beyond,
    p_maintained,
    value_spread,
)
from okr_metrics.pipelines.vocabulary.quarters import Quarter
from okr_metrics.pipelines.vocabulary.terms import (
    AGGREGATES,
    KR_TYPES,
    MAINTAIN_TYPES,
    PROGRESS_TYPES,
    RATIO_AGGREGATES,
    STATUS_ORDER,
    STATUSES,
    UNSCORED_TYPES,
)

MEAN_WINDOW_DAYS = 7
GRACE_DAYS = 7
MAINTAIN_ON_TRACK = 0.95
MAINTAIN_AT_RISK = 0.8
MILESTONE_ON_TRACK = 0.5
MILESTONE_AT_RISK = 0.9
# A committed KR is expected to reach 1.0: on track only at or ahead of the expected line.
COMMITTED_ON_TRACK = 1.0
COMMITTED_AT_RISK = 0.8
# ... and a committed maintain KR to hold every day.
COMMITTED_MAINTAIN_ON_TRACK = 1.0
COMMITTED_MAINTAIN_AT_RISK = 0.95
# pace = progress / expected_progress goes through several roundings, so a pace
# that is exactly at a threshold on paper can land a hair below it.
_PACE_TOLERANCE = 1e-9

# The columns of a KR-day row, in order, and which of them are floats.
_KR_SCORE_TYPES = {
    "quarter": str, "objective_id": str, "kr_id": str, "kr_title": str, "owner": str,
    "as_of": date, "kr_type": str, "value": float, "start": float, "target": float,
    "progress": float, "score": float, "expected_progress": float, "status": str,
    "stale": bool, "last_observed": date, "forecast_value": float, "forecast_score": float,
    "forecast_method": str, "forecast_low": float, "forecast_high": float, "p_achieve": float,
    "definition_hash": str, "commitment": str, "low": float, "high": float, "carried": float,
}  # fmt: skip
KR_SCORE_COLUMNS = list(_KR_SCORE_TYPES)
KR_SCORE_FLOAT_COLUMNS = [name for name, kind in _KR_SCORE_TYPES.items() if kind is float]
OBJECTIVE_SCORE_COLUMNS = [
    "quarter",
    "objective_id",
    "title",
    "owner",
    "aligns_to",
    "as_of",
    "score",
    "coverage",
    "status",
]


@dataclass(frozen=True)
class KeyResultInput:
    kr_id: str
    objective_id: str
    title: str
    owner: str | None  # already falling back to the objective's owner
    kr_type: str
    start: float | None
    target: float | None  # a milestone without a target gets 1.0; None: maintain_between, baseline
    weight: float
    aggregate: str
    metric_key: str | None = None  # a single daily series
    numerator_key: str | None = None  # or a ratio of two series
    denominator_key: str | None = None
    tracks_staleness: bool = True  # False for manual check-ins: only check-in days have data
    definition_hash: str = ""
    low: float | None = None  # maintain_between's band, inclusive
    high: float | None = None
    commitment: str = "aspirational"
    # Phased targets: (day, target) pairs, ascending; the expected line runs through them.
    checkpoints: tuple[tuple[date, float], ...] = ()
    # A running total carried across quarters: the series' stored total before the
    # quarter start (None: the KR resets each quarter).
    carried: float | None = None

    @property
    def committed(self) -> bool:
        return self.commitment == "committed"

    @property
    def is_ratio(self) -> bool:
        return self.numerator_key is not None

    @property
    def series_keys(self) -> tuple[str, ...]:
        if self.is_ratio:
            return (self.numerator_key, self.denominator_key)  # type: ignore[return-value]
        return (self.metric_key,)  # type: ignore[return-value]


@dataclass(frozen=True)
class ObjectiveInput:
    objective_id: str
    title: str
    owner: str | None
    aligns_to: str | None


@dataclass(frozen=True)
class StatusThresholds:
    """The pace thresholds of increase and decrease KRs (a file may override them)."""

    on_track: float = 0.7
    at_risk: float = 0.5


class Forecast(NamedTuple):
    value: float | None
    score: float | None
    method: str
    # The 80% interval of the quarter-end value and the chance of ending achieved
    # (None: no forecast, or `forecast` was not given the daily series).
    low: float | None = None
    high: float | None = None
    p_achieve: float | None = None


# ---------------------------------------------------------------------------
# Per-day building blocks (public, each tested on its own)


def expected_progress(quarter: Quarter, as_of: date) -> float:
    """Days elapsed (quarter start to `as_of`, inclusive) over days in the quarter."""
    _check_in_quarter(quarter, as_of)
    return quarter.days_elapsed(as_of) / quarter.days


def aggregate_value(
    daily_series: Mapping[date, float], aggregate: str, quarter: Quarter, as_of: date
) -> float | None:
    """A single series' value as of `as_of` (None: no day of data up to then).

    `daily_series` maps a day to its value; a day missing from it has no data.
    Days outside the quarter and after `as_of` are ignored.
    """
    _check_aggregate(aggregate, is_ratio=False)
    _check_in_quarter(quarter, as_of)
    running = _running_aggregate(_daily_array(daily_series, quarter), aggregate)
    return _optional(running[_offset(quarter, as_of)])


def ratio_value(
    numerator: Mapping[date, float],
    denominator: Mapping[date, float],
    aggregate: str,
    quarter: Quarter,
    as_of: date,
) -> float | None:
    """sum(numerator) / sum(denominator) over the aggregate's window ending on `as_of`.

    The window is quarter start to `as_of` for `sum`, the 7 calendar days ending
    on `as_of` (clipped to the quarter start) for `mean_7d`. Only days on which
    both series have an observation count. None when the denominator sums to 0.
    """
    _check_aggregate(aggregate, is_ratio=True)
    _check_in_quarter(quarter, as_of)
    running = _running_ratio(
        _daily_array(numerator, quarter), _daily_array(denominator, quarter), aggregate
    )
    return _optional(running[_offset(quarter, as_of)])


def daily_ratio(
    numerator: Mapping[date, float], denominator: Mapping[date, float]
) -> dict[date, float]:
    """Each day's numerator over that day's denominator (no value when either is missing or it is 0)."""
    return {
        day: numerator[day] / denominator[day]
        for day in numerator
        if day in denominator and denominator[day] != 0
    }


def share_of_days_held(
    daily_series: Mapping[date, float],
    kr_type: str,
    target: float | None,
    quarter: Quarter,
    as_of: date,
    low: float | None = None,
    high: float | None = None,
) -> float | None:
    """For maintain KRs: the share of days with data (quarter start to `as_of`) on the
    right side of `target` (maintain_between: inside `[low, high]`), inclusive. None
    with no day of data."""
    _check_in_quarter(quarter, as_of)
    running = _running_share_held(
        _daily_array(daily_series, quarter),
        np.array(_HOLD_CODES[kr_type]),
        *(np.array(np.nan if bound is None else bound) for bound in (target, low, high)),
    )
    return _optional(running[_offset(quarter, as_of)])


def expected_path(
    quarter: Quarter,
    start: float | None,
    target: float | None,
    checkpoints: Sequence[tuple[date, float]] = (),
) -> np.ndarray:
    """Expected progress as of every day of the quarter (index i = i-th day).

    The straight line, days elapsed over days in the quarter; with checkpoints, the
    piecewise-linear line from 0 at the quarter start through each checkpoint's share
    of the way, `(target_i - start) / (target - start)` at the end of its day, to 1 on
    the quarter's last day.
    """
    elapsed = np.arange(1, quarter.days + 1, dtype=float)
    if not checkpoints or start is None or target is None or start == target:
        return elapsed / quarter.days
    days = [0.0] + [float(quarter.days_elapsed(day)) for day, _ in checkpoints] + [quarter.days]
    if any(later <= earlier for earlier, later in zip(days, days[1:], strict=False)):
        raise ValueError(f"checkpoints must be ascending days inside {quarter}, before its last")
    shares = [0.0] + [(value - start) / (target - start) for _, value in checkpoints] + [1.0]
    return np.interp(elapsed, days, shares)


def progress_and_score(
    kr_type: str,
    value: float | None,
    start: float | None,
    target: float | None,
    share_held: float | None = None,
) -> tuple[float | None, float | None]:
    """(progress, score) of a KR whose value is `value`.

    Maintain KRs are judged day by day, not on `value`: pass `share_held`
    (see `share_of_days_held`), which becomes both progress and score.
    """
    if value is None or math.isnan(value) or kr_type in UNSCORED_TYPES:
        return None, None
    if kr_type in PROGRESS_TYPES:
        if start is None or target is None or start == target:
            raise ValueError(f"{kr_type} KR needs a start different from its target")
        # One signed formula for both directions: never abs(), never value / target.
        progress = (value - start) / (target - start)
        return progress, _clamp(progress)
    if kr_type in MAINTAIN_TYPES:
        return share_held, share_held
    if kr_type == "milestone":
        reached = 1.0 if value >= (1.0 if target is None else target) else 0.0
        return reached, reached
    raise ValueError(f"unknown KR type {kr_type!r}")


def kr_status(
    kr_type: str,
    value: float | None,
    progress: float | None,
    score: float | None,
    quarter: Quarter,
    as_of: date,
    thresholds: StatusThresholds = StatusThresholds(),
    committed: bool = False,
    expected: float | None = None,
) -> str:
    """The KR's status as of `as_of`, by the ordered rules of docs/scoring.md.

    `expected` is the KR's expected progress (see `expected_path`); by default the
    straight line.
    """
    return _status(
        kr_type,
        value,
        progress,
        score,
        expected_progress(quarter, as_of) if expected is None else expected,
        quarter.days_elapsed(as_of),
        thresholds,
        committed,
    )


def _status(
    kr_type: str,
    value: float | None,
    progress: float | None,
    score: float | None,
    expected: float,
    days_elapsed: int,
    thresholds: StatusThresholds,
    committed: bool = False,
) -> str:
    if value is None or math.isnan(value):
        return "no_data"
    if kr_type in UNSCORED_TYPES:
        return "baseline"
    if score is None or progress is None:
        return "no_data"
    if kr_type in MAINTAIN_TYPES:
        on_track, at_risk = (
            (COMMITTED_MAINTAIN_ON_TRACK, COMMITTED_MAINTAIN_AT_RISK)
            if committed
            else (MAINTAIN_ON_TRACK, MAINTAIN_AT_RISK)
        )
        if score >= on_track - _PACE_TOLERANCE:
            return "on_track"
        return "at_risk" if score >= at_risk - _PACE_TOLERANCE else "off_track"
    if score >= 1:
        return "achieved"
    if kr_type == "milestone":
        if expected <= MILESTONE_ON_TRACK:
            return "on_track"
        return "at_risk" if expected <= MILESTONE_AT_RISK else "off_track"
    if kr_type not in PROGRESS_TYPES:
        raise ValueError(f"unknown KR type {kr_type!r}")
    # Grace period: nobody is behind on day 2, unless they are going the wrong way;
    # nor before a phased KR is expected to move at all.
    if days_elapsed <= GRACE_DAYS or expected <= 0:
        return "off_track" if progress < 0 else "on_track"
    pace = progress / expected
    on_track, at_risk = (
        (COMMITTED_ON_TRACK, COMMITTED_AT_RISK)
        if committed
        else (thresholds.on_track, thresholds.at_risk)
    )
    if pace >= on_track - _PACE_TOLERANCE:
        return "on_track"
    return "at_risk" if pace >= at_risk - _PACE_TOLERANCE else "off_track"


def forecast_method(key_result: KeyResultInput) -> str:
    """`run_rate` for the `sum` of a single series, else `linear`."""
    return "run_rate" if key_result.aggregate == "sum" and not key_result.is_ratio else "linear"


def forecast(
    key_result: KeyResultInput,
    values_as_of: Mapping[date, float | None],
    quarter: Quarter,
    as_of: date,
    score: float | None,
    daily_series: Mapping[date, float] | None = None,
) -> Forecast:
    """The KR's value forecast for the quarter's last day, from data up to `as_of` only.

    `values_as_of` maps each day to the KR's value as of that day (what
    `aggregate_value` / `ratio_value` give); days after `as_of` are ignored.
    `score` is the KR's current score, the forecast score of maintain and
    milestone KRs. The method is recorded even when there is no value.

    With `daily_series` (the KR's daily values; for a ratio, its `daily_ratio`), the
    forecast also carries its 80% interval and `p_achieve` (docs/forecasting.md).
    """
    _check_in_quarter(quarter, as_of)
    offset = _offset(quarter, as_of)
    values = _daily_array(values_as_of, quarter)
    values[offset + 1 :] = np.nan
    method = forecast_method(key_result)
    forecasts = _forecasts(values, method)
    value = _optional(forecasts[offset])
    result = Forecast(value, _forecast_score(key_result, value, score), method)
    if daily_series is None:
        return result
    daily = _daily_array(daily_series, quarter)
    daily[offset + 1 :] = np.nan
    table = _KeyResultTable.of([key_result])
    spread = _spread(
        table,
        daily[None, :],
        values[None, :],
        forecasts[None, :],
        key_result.aggregate,
        key_result.is_ratio,
    )
    low, high, p = _chances(table, spread, daily[None, :], values[None, :])
    return result._replace(
        low=_optional(low[0, offset]),
        high=_optional(high[0, offset]),
        p_achieve=_optional(p[0, offset]),
    )


# ---------------------------------------------------------------------------
# The whole quarter at once

# KRs scored together in one block of `(krs, days)` arrays: a block of 256 KRs keeps
# each array near 190 KiB, within a core's cache.
_BLOCK_KRS = 256


def score_key_results(
    key_results: Sequence[KeyResultInput],
    quarter: Quarter,
    observations: pd.DataFrame,
    as_of_days: Sequence[date],
    thresholds: StatusThresholds = StatusThresholds(),
) -> pd.DataFrame:
    """One row per (KR, as-of day), columns `KR_SCORE_COLUMNS`.

    `observations` holds the stored daily series: columns `metric_key`, `date`,
    `value`, at most one row per (metric_key, date). The row for as-of day D
    uses only observations dated from the quarter's first day through D. Rows
    come KR by KR (in input order), each with its as-of days ascending.
    """
    for key_result in key_results:
        _check_key_result(key_result)
    days = sorted(set(as_of_days))
    for as_of in days:
        _check_in_quarter(quarter, as_of)
    offsets = np.array([_offset(quarter, as_of) for as_of in days], dtype=int)
    table = _KeyResultTable.of(key_results)
    scored = _score_quarter(
        key_results, table, _series_matrix(observations, quarter), quarter, thresholds
    )
    return _kr_score_frame(key_results, table, quarter, days, offsets, scored)


def score_objectives(
    objectives: Sequence[ObjectiveInput],
    key_results: Sequence[KeyResultInput],
    kr_scores: pd.DataFrame,
) -> pd.DataFrame:
    """One row per (objective, quarter and as-of day in `kr_scores`), columns
    `OBJECTIVE_SCORE_COLUMNS`, days ascending and objectives in input order.

    An objective's KRs are those in `key_results`; one without a row for a day
    counts as having no data that day. KRs have data when their value is not null.
    The weighted sums add the KRs in definition order, as a loop over them would.
    """
    if kr_scores.empty:
        return pd.DataFrame({name: [] for name in OBJECTIVE_SCORE_COLUMNS}).astype(
            {"score": float, "coverage": float}
        )
    day_codes, day_keys = _day_codes(kr_scores)
    # day x KR: the KR's (has data, score, status rank) that day; the extra
    # last KR column stands for "no row" (an objective's unused slots point at it).
    position = {
        key_result.kr_id: index
        for index, key_result in enumerate(key_results)
        if key_result.kr_type not in UNSCORED_TYPES  # never rolled up
    }
    absent = len(key_results)
    kr_rows = kr_scores["kr_id"].map(position).to_numpy(dtype=float)
    known = ~np.isnan(kr_rows)
    kr_index = kr_rows[known].astype(int)
    day_index = day_codes[known]
    shape = (len(day_keys), absent + 1)
    has_data = np.zeros(shape, dtype=bool)
    score = np.zeros(shape)
    rank = np.zeros(shape, dtype=int)
    # A KR with two rows for one day: the later row counts (assignment order).
    has_data[day_index, kr_index] = kr_scores["value"].notna().to_numpy()[known]
    score[day_index, kr_index] = kr_scores["score"].to_numpy(dtype=float)[known]
    status_rank = {status: order for order, status in enumerate(STATUS_ORDER)}
    ranks = kr_scores["status"].map(status_rank).to_numpy(dtype=float)[known]
    rank[day_index, kr_index] = np.nan_to_num(ranks, nan=len(STATUS_ORDER))
    unranked = has_data[day_index, kr_index] & np.isnan(ranks)
    if unranked.any():
        status = kr_scores["status"].to_numpy()[known][unranked][0]
        raise ValueError(f"KR status {status!r} is not one of {STATUS_ORDER}")

    slots, weights = _objective_slots(objectives, key_results, absent)
    rolled = _roll_up(has_data[:, slots], score[:, slots], rank[:, slots], weights)
    return _objective_score_frame(objectives, day_keys, rolled)


# ---------------------------------------------------------------------------
# Internals: the quarter's KR x day matrices

# How a maintain KR's day holds (see `_held`); -1: not a maintain KR.
_HOLD_CODES = {"maintain_above": 0, "maintain_below": 1, "maintain_between": 2}


class _KeyResultTable(NamedTuple):
    """The KRs' definitions as columns: `(krs, 1)` arrays, so they broadcast over days."""

    start: np.ndarray  # NaN: no start (maintain, milestone, baseline)
    target: np.ndarray  # NaN: none (maintain_between, baseline)
    low: np.ndarray  # maintain_between's band; NaN for the others
    high: np.ndarray
    bound_size: np.ndarray  # the largest of |target|, |low|, |high| (0: none)
    carried: np.ndarray  # a running total's carried total; NaN: resets each quarter
    progresses: np.ndarray  # bool: increase or decrease
    maintains: np.ndarray  # bool: a maintain type
    hold: np.ndarray  # int: `_HOLD_CODES` of a maintain type, else -1
    milestone: np.ndarray  # bool
    unscored: np.ndarray  # bool: baseline (measured, never scored)
    committed: np.ndarray  # bool
    tracks_staleness: np.ndarray  # bool

    @classmethod
    def of(cls, key_results: Sequence[KeyResultInput]) -> _KeyResultTable:
        def column(values: list[Any], dtype: type = float) -> np.ndarray:
            return np.array(values, dtype=dtype).reshape(-1, 1)

        def bound_size(kr: KeyResultInput) -> float:
            bounds = [abs(b) for b in (kr.target, kr.low, kr.high) if b is not None]
            return max(bounds, default=0.0)

        krs = key_results
        return cls(
            start=column([kr.start for kr in krs]),
            target=column([kr.target for kr in krs]),
            low=column([kr.low for kr in krs]),
            high=column([kr.high for kr in krs]),
            bound_size=column([bound_size(kr) for kr in krs]),
            carried=column([kr.carried for kr in krs]),
            progresses=column([kr.kr_type in PROGRESS_TYPES for kr in krs], bool),
            maintains=column([kr.kr_type in MAINTAIN_TYPES for kr in krs], bool),
            hold=column([_HOLD_CODES.get(kr.kr_type, -1) for kr in krs], int),
            milestone=column([kr.kr_type == "milestone" for kr in krs], bool),
            unscored=column([kr.kr_type in UNSCORED_TYPES for kr in krs], bool),
            committed=column([kr.committed for kr in krs], bool),
            tracks_staleness=column([kr.tracks_staleness for kr in krs], bool),
        )

    def take(self, rows: np.ndarray) -> _KeyResultTable:
        return _KeyResultTable(*(part[rows] for part in self))


class _Series(NamedTuple):
    """The quarter's stored series: `matrix[row_of_key[key]]` is one series' daily
    values, `(days,)`, NaN where there is no observation. The matrix's last row is a
    series without any, for a key with no stored rows."""

    matrix: np.ndarray  # (keys + 1, days)
    row_of_key: dict[str, int]

    def rows(self, keys: Sequence[str | None]) -> np.ndarray:
        nothing = len(self.matrix) - 1
        return self.matrix[[self.row_of_key.get(key, nothing) for key in keys]]  # type: ignore[arg-type]


class _QuarterDays(NamedTuple):
    """What a group of KRs gives on every day of the quarter: `(krs, days)` arrays."""

    value: np.ndarray  # a running total's with its carried total
    share_held: np.ndarray  # maintain KRs; NaN for the others
    observed: np.ndarray  # bool: a stored observation dated that day (a ratio: both sides)
    forecast_value: np.ndarray
    forecast_low: np.ndarray
    forecast_high: np.ndarray
    p_achieve: np.ndarray


class _Scored(NamedTuple):
    """Every KR on every day of the quarter, scored: `(krs, days)` arrays."""

    days: _QuarterDays
    expected: np.ndarray  # expected progress (the straight line, or through checkpoints)
    progress: np.ndarray
    score: np.ndarray
    status: np.ndarray  # int: index into STATUSES
    last_observed: np.ndarray  # int: day index of the newest observation, -1: none yet
    forecast_score: np.ndarray


def _score_quarter(
    key_results: Sequence[KeyResultInput],
    table: _KeyResultTable,
    series: _Series,
    quarter: Quarter,
    thresholds: StatusThresholds,
) -> _Scored:
    """Score every KR on every day of `quarter`."""
    days = quarter.days
    quarter_days = _QuarterDays(
        *(
            np.full((len(key_results), days), False if name == "observed" else np.nan)
            for name in _QuarterDays._fields
        )
    )
    for (aggregate, is_ratio), rows in _groups(key_results):
        group = [key_results[row] for row in rows]
        parts = (
            [
                series.rows([kr.numerator_key for kr in group]),
                series.rows([kr.denominator_key for kr in group]),
            ]
            if is_ratio
            else [series.rows([kr.metric_key for kr in group])]
        )
        block = _group_days(table.take(rows), parts, aggregate, is_ratio)
        for whole, part in zip(quarter_days, block, strict=True):
            whole[rows] = part

    value = quarter_days.value
    progress, score = _progress_and_score(table, value, quarter_days.share_held)
    expected = _expected_progress(key_results, quarter)
    forecast_value = quarter_days.forecast_value
    forecast_score = np.where(
        table.progresses, _clamp_array(_linear_progress(table, forecast_value)), score
    )
    return _Scored(
        days=quarter_days,
        expected=expected,
        progress=progress,
        score=score,
        status=_status_codes(table, value, progress, score, expected, thresholds),
        last_observed=np.maximum.accumulate(
            np.where(quarter_days.observed, np.arange(days), -1), axis=-1
        ),
        forecast_score=np.where(np.isnan(forecast_value) | table.unscored, np.nan, forecast_score),
    )


def _groups(
    key_results: Sequence[KeyResultInput],
) -> Iterator[tuple[tuple[str, bool], np.ndarray]]:
    """Row numbers of the KRs that share an aggregate (and being a ratio or not), in
    blocks of at most `_BLOCK_KRS`."""
    groups: dict[tuple[str, bool], list[int]] = {}
    for row, key_result in enumerate(key_results):
        groups.setdefault((key_result.aggregate, key_result.is_ratio), []).append(row)
    for kind, rows in groups.items():
        for first in range(0, len(rows), _BLOCK_KRS):
            yield kind, np.array(rows[first : first + _BLOCK_KRS], dtype=int)


def _group_days(
    table: _KeyResultTable, parts: list[np.ndarray], aggregate: str, is_ratio: bool
) -> _QuarterDays:
    """Running values, share held, observed days and forecasts of KRs that share an
    aggregate. `parts`: their daily series, `(krs, days)` (a ratio: numerator and
    denominator)."""
    if is_ratio:
        numerator, denominator = parts
        values = _running_ratio(numerator, denominator, aggregate)
        daily = _daily_ratio_array(numerator, denominator)
        # A day is observed when both series have a row, even one whose denominator
        # is 0 (the source did answer).
        observed = ~np.isnan(numerator) & ~np.isnan(denominator)
    else:
        (daily,) = parts
        values = _running_aggregate(daily, aggregate)
        observed = ~np.isnan(daily)
    forecasts = _forecasts(values, _method(aggregate, is_ratio))
    share_held = np.where(
        table.maintains,
        _running_share_held(daily, table.hold, table.target, table.low, table.high),
        np.nan,
    )
    spread = _spread(table, daily, values, forecasts, aggregate, is_ratio)
    carried = np.nan_to_num(table.carried, nan=0.0)
    if carried.any():
        # The quarter's own total is forecast; the carried total only shifts it.
        values, forecasts, spread = _carry(carried, values, forecasts, spread)
    low, high, p_achieve = _chances(table, spread, daily, values)
    return _QuarterDays(values, share_held, observed, forecasts, low, high, p_achieve)


def _expected_progress(key_results: Sequence[KeyResultInput], quarter: Quarter) -> np.ndarray:
    """Each KR's expected progress on every day, `(krs, days)`: the straight line, or
    the line through its checkpoints (`expected_path`)."""
    straight = expected_path(quarter, None, None)
    expected = np.tile(straight, (len(key_results), 1))
    for row, kr in enumerate(key_results):
        if kr.checkpoints:
            expected[row] = expected_path(quarter, kr.start, kr.target, kr.checkpoints)
    return expected


def _progress_and_score(
    table: _KeyResultTable, value: np.ndarray, share_held: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(progress, score), `(krs, days)`, by the rules of `progress_and_score`."""
    with np.errstate(invalid="ignore"):
        reached = (value >= table.target).astype(float)
    progress = np.where(
        table.progresses,
        _linear_progress(table, value),
        np.where(table.maintains, share_held, reached),
    )
    progress = np.where(np.isnan(value) | table.unscored, np.nan, progress)
    return progress, np.where(table.progresses, _clamp_array(progress), progress)


def _linear_progress(table: _KeyResultTable, value: np.ndarray) -> np.ndarray:
    """(value - start) / (target - start), signed (NaN for KRs without a start)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (value - table.start) / (table.target - table.start)


def _status_codes(
    table: _KeyResultTable,
    value: np.ndarray,
    progress: np.ndarray,
    score: np.ndarray,
    expected: np.ndarray,
    thresholds: StatusThresholds,
) -> np.ndarray:
    """Each KR-day's status as an index into STATUSES, by the ordered rules of `_status`.

    `value`, `progress`, `score`, `expected`: `(krs, days)`.
    """
    no_data, achieved, on_track, at_risk, off_track, baseline = (
        STATUSES.index(status)
        for status in ("no_data", "achieved", "on_track", "at_risk", "off_track", "baseline")
    )
    elapsed = np.arange(1, value.shape[-1] + 1)
    committed = table.committed

    def banded(on: np.ndarray, at: np.ndarray) -> np.ndarray:
        return np.where(on, on_track, np.where(at, at_risk, off_track))

    with np.errstate(invalid="ignore", divide="ignore"):
        maintain_on = np.where(committed, COMMITTED_MAINTAIN_ON_TRACK, MAINTAIN_ON_TRACK)
        maintain_at = np.where(committed, COMMITTED_MAINTAIN_AT_RISK, MAINTAIN_AT_RISK)
        maintained = banded(
            score >= maintain_on - _PACE_TOLERANCE, score >= maintain_at - _PACE_TOLERANCE
        )
        milestone = banded(expected <= MILESTONE_ON_TRACK, expected <= MILESTONE_AT_RISK)
        pace = progress / expected
        pace_on = np.where(committed, COMMITTED_ON_TRACK, thresholds.on_track)
        pace_at = np.where(committed, COMMITTED_AT_RISK, thresholds.at_risk)
        paced = banded(pace >= pace_on - _PACE_TOLERANCE, pace >= pace_at - _PACE_TOLERANCE)
        # Grace period: nobody is behind on day 2, unless they are going the wrong way;
        # nor before a phased KR is expected to move at all.
        progressing = np.where(
            (elapsed <= GRACE_DAYS) | (expected <= 0),
            np.where(progress < 0, off_track, on_track),
            paced,
        )
        codes = np.where(
            table.maintains,
            maintained,
            np.where(score >= 1, achieved, np.where(table.milestone, milestone, progressing)),
        )
    codes = np.where(np.isnan(score) | np.isnan(progress), no_data, codes)
    codes = np.where(table.unscored, baseline, codes)
    return np.where(np.isnan(value), no_data, codes)


def _kr_score_frame(
    key_results: Sequence[KeyResultInput],
    table: _KeyResultTable,
    quarter: Quarter,
    as_of_days: list[date],
    offsets: np.ndarray,
    scored: _Scored,
) -> pd.DataFrame:
    """The `KR_SCORE_COLUMNS` frame: KR by KR, each with its as-of days (`offsets`)."""
    per_day = len(offsets)

    def each_kr(values: list[Any]) -> np.ndarray:
        return np.repeat(np.array(values, dtype=object), per_day)

    every_day = per_day == quarter.days  # offsets: ascending and distinct

    def each_day(matrix: np.ndarray) -> np.ndarray:
        # Every matrix is the frame's alone: a column may be a view of it.
        return matrix.reshape(-1) if every_day else matrix[:, offsets].reshape(-1)

    days = scored.days
    quarter_dates = [_day(quarter, offset) for offset in range(quarter.days)]
    # Index -1 (no observation yet) picks the None at the end.
    observed_dates = np.array([*quarter_dates, None], dtype=object)
    columns: dict[str, Any] = {
        "quarter": each_kr([str(quarter)] * len(key_results)),
        "objective_id": each_kr([kr.objective_id for kr in key_results]),
        "kr_id": each_kr([kr.kr_id for kr in key_results]),
        "kr_title": each_kr([kr.title for kr in key_results]),
        "owner": each_kr([kr.owner for kr in key_results]),
        "as_of": np.tile(np.array(as_of_days, dtype=object), len(key_results)),
        "kr_type": each_kr([kr.kr_type for kr in key_results]),
        "value": each_day(days.value),
        "start": np.repeat(table.start[:, 0], per_day),
        "target": np.repeat(table.target[:, 0], per_day),
        "progress": each_day(scored.progress),
        "score": each_day(scored.score),
        "expected_progress": each_day(scored.expected),
        "status": np.array(STATUSES, dtype=object)[each_day(scored.status)],
        "stale": each_day(table.tracks_staleness & ~days.observed),
        "last_observed": observed_dates[each_day(scored.last_observed)],
        "forecast_value": each_day(days.forecast_value),
        "forecast_score": each_day(scored.forecast_score),
        "forecast_method": each_kr([forecast_method(kr) for kr in key_results]),
        "forecast_low": each_day(days.forecast_low),
        "forecast_high": each_day(days.forecast_high),
        "p_achieve": each_day(days.p_achieve),
        "definition_hash": each_kr([kr.definition_hash for kr in key_results]),
        "commitment": each_kr([kr.commitment for kr in key_results]),
        "low": np.repeat(table.low[:, 0], per_day),
        "high": np.repeat(table.high[:, 0], per_day),
        "carried": np.repeat(table.carried[:, 0], per_day),
    }
    # The arrays are new: the frame takes them as they are (no copy, no consolidation).
    return pd.DataFrame(columns, columns=KR_SCORE_COLUMNS, copy=False)


def _day_codes(kr_scores: pd.DataFrame) -> tuple[np.ndarray, list[tuple[str, Any]]]:
    """Each row's (quarter, as_of) as an index into the sorted list of those pairs."""
    grouped = kr_scores.groupby(["quarter", "as_of"], sort=True)
    return grouped.ngroup().to_numpy(), list(grouped.size().index)


def _objective_slots(
    objectives: Sequence[ObjectiveInput], key_results: Sequence[KeyResultInput], absent: int
) -> tuple[np.ndarray, np.ndarray]:
    """(slots, weights), `(objectives, most KRs of one objective)`: each objective's
    KRs' positions in `key_results` in definition order and their weights; unused
    slots point at `absent` with weight 0."""
    positions: dict[str, list[int]] = {}
    for index, key_result in enumerate(key_results):
        if key_result.kr_type in UNSCORED_TYPES:
            continue  # measured, never rolled up: not in the score nor the coverage
        positions.setdefault(key_result.objective_id, []).append(index)
    width = max([len(rows) for rows in positions.values()] + [1])
    slots = np.full((len(objectives), width), absent)
    weights = np.zeros((len(objectives), width))
    for row, objective in enumerate(objectives):
        for slot, index in enumerate(positions.get(objective.objective_id, [])):
            slots[row, slot] = index
            weights[row, slot] = key_results[index].weight
    return slots, weights


class _RolledUp(NamedTuple):
    """Each objective's roll-up per day: `(days, objectives)` arrays."""

    score: np.ndarray
    coverage: np.ndarray
    status: np.ndarray  # str


def _roll_up(
    has_data: np.ndarray, score: np.ndarray, rank: np.ndarray, weights: np.ndarray
) -> _RolledUp:
    """Objectives' score, coverage and status from their KRs' slots.

    `has_data`, `score`, `rank` (index into STATUS_ORDER): `(days, objectives, slots)`;
    `weights`: `(objectives, slots)`. The sums run slot by slot, in definition order.
    """
    days, objectives, slots = has_data.shape
    total_weight = np.zeros(objectives)
    data_weight = np.zeros((days, objectives))
    weighted = np.zeros((days, objectives))
    for slot in range(slots):
        weight, with_data = weights[:, slot], has_data[..., slot]
        total_weight = total_weight + weight
        data_weight = data_weight + np.where(with_data, weight, 0.0)
        weighted = weighted + np.where(with_data, weight * score[..., slot], 0.0)
    any_data = has_data.any(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rolled_score = np.where(any_data & (data_weight != 0), weighted / data_weight, np.nan)
        coverage = np.where(any_data & (total_weight != 0), data_weight / total_weight, 0.0)
    worst = np.where(has_data, rank, len(STATUS_ORDER) - 1).min(axis=-1)
    status = np.where(any_data, np.array(STATUS_ORDER, dtype=object)[worst], "no_data")
    return _RolledUp(rolled_score, coverage, status.astype(object))


def _objective_score_frame(
    objectives: Sequence[ObjectiveInput], day_keys: list[tuple[str, Any]], rolled: _RolledUp
) -> pd.DataFrame:
    """The `OBJECTIVE_SCORE_COLUMNS` frame: day by day, each with every objective."""
    count = len(objectives)

    def each_day(values: list[Any]) -> np.ndarray:
        return np.repeat(np.array(values, dtype=object), count)

    def each_objective(values: list[Any]) -> np.ndarray:
        return np.tile(np.array(values, dtype=object), len(day_keys))

    columns = {
        "quarter": each_day([quarter for quarter, _ in day_keys]),
        "objective_id": each_objective([objective.objective_id for objective in objectives]),
        "title": each_objective([objective.title for objective in objectives]),
        "owner": each_objective([objective.owner for objective in objectives]),
        "aligns_to": each_objective([objective.aligns_to for objective in objectives]),
        "as_of": each_day([as_of for _, as_of in day_keys]),
        "score": rolled.score.reshape(-1),
        "coverage": rolled.coverage.reshape(-1),
        "status": rolled.status.reshape(-1),
    }
    return pd.DataFrame(columns, columns=OBJECTIVE_SCORE_COLUMNS)


# ---------------------------------------------------------------------------
# Internals: running values over a quarter's days. Arrays are `(days,)` for one
# series or `(krs, days)` for many; index `i` of the last axis is the i-th day.


def _series_matrix(observations: pd.DataFrame, quarter: Quarter) -> _Series:
    """The stored series as one `(keys + 1, days)` matrix (NaN: no observation that day)."""
    days = quarter.days
    if observations.empty:
        return _Series(np.full((1, days), np.nan), {})
    values = observations["value"].to_numpy(dtype=float)
    offsets = _day_offsets(observations["date"], quarter)
    kept = ~np.isnan(values) & (offsets >= 0) & (offsets < days)
    keys, key_codes = _key_codes(observations["metric_key"].to_numpy()[kept])
    values, offsets = values[kept], offsets[kept]
    cells = key_codes * days + offsets
    if len(cells) and np.bincount(cells).max() > 1:
        first = int(np.flatnonzero(pd.Series(cells).duplicated().to_numpy())[0])
        raise ValueError(
            f"more than one observation for {keys[key_codes[first]]!r} on "
            f"{_day(quarter, int(offsets[first]))}: a double-counted series"
        )
    matrix = np.full((len(keys) + 1, days), np.nan)
    matrix.reshape(-1)[cells] = values
    return _Series(matrix, {key: row for row, key in enumerate(keys)})


def _day_offsets(dates: pd.Series, quarter: Quarter) -> np.ndarray:
    """Each date's day index in the quarter (dates, datetimes or timestamps)."""
    if pd.api.types.is_datetime64_any_dtype(dates):
        return (dates - pd.Timestamp(quarter.start)).dt.days.to_numpy()
    first = quarter.start.toordinal()
    values = dates.to_numpy()
    # A quarter's rows hold few distinct days: each day's offset is found once. Only plain
    # dates share one: equal aware datetimes of different zones fall on different days.
    codes, distinct = pd.factorize(values)
    by_day = bool((codes >= 0).all()) and all(type(day) is date for day in distinct)
    days = distinct if by_day else values
    try:
        found = np.fromiter((day.toordinal() - first for day in days), dtype=int, count=len(days))
        return found[codes] if by_day else found
    except AttributeError:  # text dates
        return (pd.to_datetime(dates) - pd.Timestamp(quarter.start)).dt.days.to_numpy()


def _key_codes(metric_keys: np.ndarray) -> tuple[list[str], np.ndarray]:
    """(distinct keys, each row's index into them). The store returns rows sorted by
    key, so the keys are read per run of equal keys, not per row."""
    if not len(metric_keys):
        return [], np.zeros(0, dtype=int)
    run_starts = np.flatnonzero(np.concatenate([[True], metric_keys[1:] != metric_keys[:-1]]))
    row_of_key: dict[str, int] = {}
    run_codes = [row_of_key.setdefault(key, len(row_of_key)) for key in metric_keys[run_starts]]
    run_lengths = np.diff(np.append(run_starts, len(metric_keys)))
    return list(row_of_key), np.repeat(np.array(run_codes, dtype=int), run_lengths)


def _running_aggregate(daily: np.ndarray, aggregate: str) -> np.ndarray:
    """The aggregate as of every day (NaN: no day of data yet)."""
    has_data = ~np.isnan(daily)
    filled = np.where(has_data, daily, 0.0)
    if aggregate == "mean_7d":
        sums = _trailing_sum(filled, MEAN_WINDOW_DAYS)
        counts = _trailing_sum(has_data.astype(float), MEAN_WINDOW_DAYS)
        return _divide(sums, counts)
    days_with_data = np.cumsum(has_data, axis=-1)
    if aggregate == "sum":
        running = np.cumsum(filled, axis=-1)
    elif aggregate == "mean":
        running = np.cumsum(filled, axis=-1) / np.maximum(days_with_data, 1)
    elif aggregate == "latest":
        day_index = np.arange(daily.shape[-1])
        latest_day = np.maximum.accumulate(np.where(has_data, day_index, 0), axis=-1)
        running = np.take_along_axis(daily, latest_day, axis=-1)
    elif aggregate == "min":
        running = np.fmin.accumulate(daily, axis=-1)  # fmin skips NaN
    elif aggregate == "max":
        running = np.fmax.accumulate(daily, axis=-1)
    else:
        raise ValueError(f"unknown aggregate {aggregate!r}")
    return np.where(days_with_data > 0, running, np.nan)


def _running_ratio(numerator: np.ndarray, denominator: np.ndarray, aggregate: str) -> np.ndarray:
    """sum(numerator) / sum(denominator) over each day's window (NaN: denominator sum 0)."""
    # A day where one side has no row would skew the ratio: only paired days count.
    paired = ~np.isnan(numerator) & ~np.isnan(denominator)
    numerator = np.where(paired, numerator, 0.0)
    denominator = np.where(paired, denominator, 0.0)
    if aggregate == "sum":
        return _divide(np.cumsum(numerator, axis=-1), np.cumsum(denominator, axis=-1))
    if aggregate == "mean_7d":
        return _divide(
            _trailing_sum(numerator, MEAN_WINDOW_DAYS), _trailing_sum(denominator, MEAN_WINDOW_DAYS)
        )
    raise ValueError(f"aggregate {aggregate!r} is not allowed for a ratio (sum or mean_7d)")


def _daily_ratio_array(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Each day's numerator over its denominator (NaN: a row missing, or denominator 0)."""
    return _divide(numerator, denominator)


def _held(
    daily: np.ndarray, hold: np.ndarray, target: np.ndarray, low: np.ndarray, high: np.ndarray
) -> np.ndarray:
    """Whether each day's value held, inclusive bounds (NaN, no data: no). `hold` is
    the KR's `_HOLD_CODES` entry: at or above `target`, at or below it, or inside
    `[low, high]`; `hold`, `target`, `low`, `high` broadcast against `daily`: `(krs, 1)`."""
    with np.errstate(invalid="ignore"):
        return np.where(
            hold == _HOLD_CODES["maintain_above"],
            daily >= target,
            np.where(
                hold == _HOLD_CODES["maintain_below"],
                daily <= target,
                (daily >= low) & (daily <= high),
            ),
        )


def _running_share_held(
    daily: np.ndarray, hold: np.ndarray, target: np.ndarray, low: np.ndarray, high: np.ndarray
) -> np.ndarray:
    """Share of days with data so far whose value held (see `_held`)."""
    has_data = ~np.isnan(daily)
    return _divide(
        np.cumsum(_held(daily, hold, target, low, high), axis=-1).astype(float),
        np.cumsum(has_data, axis=-1).astype(float),
    )


def _method(aggregate: str, is_ratio: bool) -> str:
    return "run_rate" if aggregate == "sum" and not is_ratio else "linear"


def _carry(
    carried: np.ndarray, values_as_of: np.ndarray, forecasts: np.ndarray, spread: Spread
) -> tuple[np.ndarray, np.ndarray, Spread]:
    """Running totals' value, forecast and distribution: the quarter's own plus `carried`
    (`(krs, 1)`; the KRs whose `carried` is 0 are left as they are)."""

    def shifted(values: np.ndarray) -> np.ndarray:
        return np.where(carried != 0, values + carried, values)

    return (
        shifted(values_as_of),
        shifted(forecasts),
        spread._replace(
            centre=shifted(spread.centre),
            lower=shifted(spread.lower),
            upper=shifted(spread.upper),
        ),
    )


def _forecasts(values_as_of: np.ndarray, method: str) -> np.ndarray:
    """The forecast for the quarter's last day as of every day (NaN where there is no value).

    `linear`: the least-squares line through the trailing window's points
    (`forecast.linear_forecast`).
    """
    days = values_as_of.shape[-1]
    if method == "run_rate":
        return values_as_of / np.arange(1, days + 1) * days
    return linear_forecast(values_as_of)


def _spread(
    table: _KeyResultTable,
    daily_values: np.ndarray,
    values_as_of: np.ndarray,
    forecasts: np.ndarray,
    aggregate: str,
    is_ratio: bool,
) -> Spread:
    """The quarter-end value's distribution, `(krs, days)`, of KRs that share an aggregate."""
    with np.errstate(invalid="ignore"):
        # No baseline: the target's own size (a band's widest bound), or the value's,
        # stands for the span.
        unanchored = np.fmax(np.abs(values_as_of), table.bound_size)
        span = np.where(
            table.progresses,
            np.abs(table.target - table.start),
            np.where(unanchored > 0, unanchored, 1.0),
        )
    return value_spread(daily_values, values_as_of, forecasts, aggregate, is_ratio, span)


def _chances(
    table: _KeyResultTable, spread: Spread, daily_values: np.ndarray, values_as_of: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(forecast_low, forecast_high, p_achieve), `(krs, days)`: the 80% interval of
    `spread` and the chance of ending achieved (maintain KRs: of holding the share of
    days; baseline KRs: none)."""
    low, high = interval(spread)
    with np.errstate(invalid="ignore"):
        at_least = np.where(table.progresses, table.target > table.start, True)
    p_achieve = p_beyond(spread, table.target, at_least)
    maintains = table.maintains[:, 0]
    if maintains.any():
        daily = daily_values[maintains]
        part = table.take(maintains)
        held = _held(daily, part.hold, part.target, part.low, part.high)
        maintained = p_maintained(held, ~np.isnan(daily))
        p_achieve[maintains] = np.where(np.isnan(values_as_of[maintains]), np.nan, maintained)
    p_achieve[table.unscored[:, 0]] = np.nan  # nothing to achieve
    return low, high, p_achieve


def _forecast_score(
    key_result: KeyResultInput, forecast_value: float | None, score: float | None
) -> float | None:
    if forecast_value is None or key_result.kr_type in UNSCORED_TYPES:
        return None
    if key_result.kr_type in PROGRESS_TYPES:
        start = key_result.start
        return _clamp((forecast_value - start) / (key_result.target - start))  # type: ignore[operator]
    return score


def _trailing_sum(values: np.ndarray, width: int) -> np.ndarray:
    """Sum over the `width` days ending on each day, clipped to the quarter's first day.

    Added window day by window day, oldest first (the order of a sum over each window).
    """
    days = values.shape[-1]
    padded = np.concatenate([np.zeros((*values.shape[:-1], width - 1)), values], axis=-1)
    total = padded[..., 0:days].copy()
    for shift in range(1, width):
        total += padded[..., shift : shift + days]
    return total


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Elementwise numerator / denominator, NaN where the denominator is 0 or NaN."""
    numerator, denominator = np.broadcast_arrays(numerator, denominator)
    out = np.full(np.shape(numerator), np.nan)
    np.divide(numerator, denominator, out=out, where=(denominator != 0) & ~np.isnan(denominator))
    return out


def _clamp_array(numbers: np.ndarray) -> np.ndarray:
    """Clamped to 0..1 as `_clamp` does (NaN stays NaN, -0.0 stays -0.0)."""
    return np.where(numbers < 0, 0.0, np.where(numbers > 1, 1.0, numbers))


def _daily_array(daily_series: Mapping[date, float | None], quarter: Quarter) -> np.ndarray:
    daily = np.full(quarter.days, np.nan)
    for day, value in daily_series.items():
        offset = (pd.Timestamp(day).date() - quarter.start).days
        if 0 <= offset < quarter.days and value is not None:
            daily[offset] = value
    return daily


def _check_key_result(key_result: KeyResultInput) -> None:
    where = f"key result {key_result.kr_id!r}"
    if key_result.kr_type not in KR_TYPES:
        raise ValueError(f"{where}: unknown type {key_result.kr_type!r}")
    if key_result.kr_type in PROGRESS_TYPES and (
        key_result.start is None
        or key_result.target is None
        or key_result.start == key_result.target
    ):
        raise ValueError(f"{where}: {key_result.kr_type} needs a start different from its target")
    if key_result.kr_type == "maintain_between" and (
        key_result.low is None or key_result.high is None or key_result.low > key_result.high
    ):
        raise ValueError(f"{where}: maintain_between needs low <= high")
    if key_result.kr_type in ("maintain_above", "maintain_below", "milestone") and (
        key_result.target is None
    ):
        raise ValueError(f"{where}: {key_result.kr_type} needs a target")
    single = key_result.metric_key is not None
    ratio = key_result.numerator_key is not None and key_result.denominator_key is not None
    if single == ratio or (not ratio and (key_result.numerator_key or key_result.denominator_key)):
        raise ValueError(
            f"{where}: needs either metric_key or both numerator_key and denominator_key"
        )
    _check_aggregate(key_result.aggregate, is_ratio=ratio, where=where)


def _check_aggregate(aggregate: str, is_ratio: bool, where: str = "") -> None:
    allowed = RATIO_AGGREGATES if is_ratio else AGGREGATES
    if aggregate not in allowed:
        kind = "a ratio" if is_ratio else "a metric"
        prefix = f"{where}: " if where else ""
        raise ValueError(f"{prefix}aggregate {aggregate!r} is not one of {allowed} for {kind}")


def _check_in_quarter(quarter: Quarter, as_of: date) -> None:
    if not quarter.contains(as_of):
        raise ValueError(f"as-of day {as_of} is outside {quarter} ({quarter.start}..{quarter.end})")


def _offset(quarter: Quarter, day: date) -> int:
    return (day - quarter.start).days


def _day(quarter: Quarter, offset: int) -> date:
    return quarter.start + timedelta(days=offset)


def _optional(number: float) -> float | None:
    return None if math.isnan(number) else float(number)


def _clamp(number: float) -> float:
    return min(max(number, 0.0), 1.0)
