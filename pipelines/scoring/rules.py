"""Scoring of OKR key results and objectives: pure functions over pandas frames.

The scoring asset and the CLI call `score_key_results` with a quarter's stored
daily series and the as-of days to score, then `score_objectives` on its result.
Nothing here does I/O; the rules are written down in docs/scoring.md.

Each key result is scored for all its as-of days in one pass: its daily series
becomes a numpy array indexed by day of the quarter (NaN: no observation), and
every running value is computed for every day at once. Day `i`'s entry only
ever reads entries `<= i`, so a row never sees observations after its as-of day.

Missing values in the returned frames: NaN in float columns (`value`, `start`,
`progress`, `score`, `forecast_value`, ...), None in object columns (`owner`,
`last_observed`, `forecast_method`, ...).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from okr_metrics.pipelines.scoring.forecast import (
    Spread,
    interval,
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
    UNSCORED_TYPES,
)

MEAN_WINDOW_DAYS = 7
FORECAST_WINDOW_DAYS = 28
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
    running = _running_share_held(_daily_array(daily_series, quarter), kr_type, target, low, high)
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
    spread, target, at_least, maintained = _uncertainty(key_result, daily, values, forecasts)
    low, high = interval(spread)
    p = maintained if maintained is not None else p_beyond(spread, target, at_least)
    return result._replace(
        low=_optional(low[offset]), high=_optional(high[offset]), p_achieve=_optional(p[offset])
    )


# ---------------------------------------------------------------------------
# The whole quarter at once


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
    offsets = [_offset(quarter, as_of) for as_of in days]
    series_by_key = _series_by_key(observations, quarter)
    no_series = np.full(quarter.days, np.nan)
    quarter_name = str(quarter)

    columns: dict[str, list[Any]] = {name: [] for name in KR_SCORE_COLUMNS}
    spreads: list[Spread] = []
    targets: list[np.ndarray] = []
    directions: list[np.ndarray] = []
    maintained_p: list[np.ndarray | None] = []
    for key_result in key_results:
        series = [series_by_key.get(key, no_series) for key in key_result.series_keys]
        if key_result.is_ratio:
            numerator, denominator = series
            values_as_of = _running_ratio(numerator, denominator, key_result.aggregate)
            daily_values = _daily_ratio_array(numerator, denominator)
        else:
            values_as_of = _running_aggregate(series[0], key_result.aggregate)
            daily_values = series[0]
        carried = key_result.carried or 0.0
        # For a ratio, a day is observed when both series have a row, even one
        # whose denominator is 0 (the source did answer).
        observed = np.logical_and.reduce([~np.isnan(s) for s in series])
        last_observed = np.maximum.accumulate(np.where(observed, np.arange(quarter.days), -1))
        share_held = (
            _running_share_held(
                daily_values,
                key_result.kr_type,
                key_result.target,
                key_result.low,
                key_result.high,
            )
            if key_result.kr_type in MAINTAIN_TYPES
            else None
        )
        expected_days = expected_path(
            quarter, key_result.start, key_result.target, key_result.checkpoints
        )
        method = forecast_method(key_result)
        forecasts = _forecasts(values_as_of, method)
        spread, target, at_least, maintained = _uncertainty(
            key_result, daily_values, values_as_of, forecasts
        )
        if carried:
            # The quarter's own total is forecast; the carried total only shifts it.
            values_as_of, forecasts, spread = _carry(carried, values_as_of, forecasts, spread)
        spreads.append(Spread(*(part[offsets] for part in spread)))
        targets.append(target[offsets])
        directions.append(at_least[offsets])
        maintained_p.append(maintained[offsets] if maintained is not None else None)

        for as_of, offset in zip(days, offsets, strict=True):
            expected_now = float(expected_days[offset])
            value = _optional(values_as_of[offset])
            share = _optional(share_held[offset]) if share_held is not None else None
            progress, score = progress_and_score(
                key_result.kr_type, value, key_result.start, key_result.target, share
            )
            forecast_value = _optional(forecasts[offset])
            last = int(last_observed[offset])
            columns["quarter"].append(quarter_name)
            columns["objective_id"].append(key_result.objective_id)
            columns["kr_id"].append(key_result.kr_id)
            columns["kr_title"].append(key_result.title)
            columns["owner"].append(key_result.owner)
            columns["as_of"].append(as_of)
            columns["kr_type"].append(key_result.kr_type)
            columns["value"].append(value)
            columns["start"].append(key_result.start)
            columns["target"].append(key_result.target)
            columns["progress"].append(progress)
            columns["score"].append(score)
            columns["expected_progress"].append(expected_now)
            columns["status"].append(
                _status(
                    key_result.kr_type,
                    value,
                    progress,
                    score,
                    expected_now,
                    offset + 1,
                    thresholds,
                    key_result.committed,
                )
            )
            columns["stale"].append(key_result.tracks_staleness and not bool(observed[offset]))
            columns["last_observed"].append(_day(quarter, last) if last >= 0 else None)
            columns["forecast_value"].append(forecast_value)
            columns["forecast_score"].append(_forecast_score(key_result, forecast_value, score))
            columns["forecast_method"].append(method)
            columns["definition_hash"].append(key_result.definition_hash)
            columns["commitment"].append(key_result.commitment)
            columns["low"].append(key_result.low)
            columns["high"].append(key_result.high)
            columns["carried"].append(key_result.carried)

    arrays: dict[str, Any] = {
        name: np.array(columns[name], dtype=float) for name in KR_SCORE_FLOAT_COLUMNS
    }
    arrays["stale"] = np.array(columns["stale"], dtype=bool)
    if spreads:
        # The t distribution once for every KR-day, not once per KR.
        joined = Spread(*(np.concatenate(parts) for parts in zip(*spreads, strict=True)))
        arrays["forecast_low"], arrays["forecast_high"] = interval(joined)
        p_achieve = p_beyond(joined, np.concatenate(targets), np.concatenate(directions))
        start = 0
        for maintained, target in zip(maintained_p, targets, strict=True):
            if maintained is not None:
                p_achieve[start : start + len(target)] = maintained
            start += len(target)
        arrays["p_achieve"] = p_achieve
    return pd.DataFrame({name: arrays.get(name, columns[name]) for name in KR_SCORE_COLUMNS})


def score_objectives(
    objectives: Sequence[ObjectiveInput],
    key_results: Sequence[KeyResultInput],
    kr_scores: pd.DataFrame,
) -> pd.DataFrame:
    """One row per (objective, quarter and as-of day in `kr_scores`), columns
    `OBJECTIVE_SCORE_COLUMNS`.

    An objective's KRs are those in `key_results`; one without a row for a day
    counts as having no data that day. KRs have data when their value is not null.
    """
    krs_by_objective: dict[str, list[KeyResultInput]] = {}
    for key_result in key_results:
        if key_result.kr_type in UNSCORED_TYPES:
            continue  # measured, never rolled up: not in the score nor the coverage
        krs_by_objective.setdefault(key_result.objective_id, []).append(key_result)

    # (quarter, as_of) -> kr_id -> (value, score, status), read column-wise once.
    by_day: dict[tuple[str, date], dict[str, tuple[float, float, str]]] = {}
    read = ["quarter", "as_of", "kr_id", "value", "score", "status"]
    rows = zip(*(kr_scores[name] for name in read), strict=True) if len(kr_scores) else ()
    for quarter_name, as_of, kr_id, value, score, status in rows:
        by_day.setdefault((quarter_name, as_of), {})[kr_id] = (value, score, status)

    columns: dict[str, list[Any]] = {name: [] for name in OBJECTIVE_SCORE_COLUMNS}
    for (quarter_name, as_of), by_kr in sorted(by_day.items()):
        for objective in objectives:
            score, coverage, status = _roll_up(
                [
                    (key_result.weight, by_kr.get(key_result.kr_id))
                    for key_result in krs_by_objective.get(objective.objective_id, [])
                ]
            )
            columns["quarter"].append(quarter_name)
            columns["objective_id"].append(objective.objective_id)
            columns["title"].append(objective.title)
            columns["owner"].append(objective.owner)
            columns["aligns_to"].append(objective.aligns_to)
            columns["as_of"].append(as_of)
            columns["score"].append(score)
            columns["coverage"].append(coverage)
            columns["status"].append(status)
    return pd.DataFrame(
        {
            name: np.array(values, dtype=float) if name in ("score", "coverage") else values
            for name, values in columns.items()
        },
        columns=OBJECTIVE_SCORE_COLUMNS,
    )


# ---------------------------------------------------------------------------
# Internals: running values over a quarter's days (index i = i-th day)


def _roll_up(
    weighted: Sequence[tuple[float, tuple[float, float, str] | None]],
) -> tuple[float | None, float, str]:
    """(score, coverage, status) of an objective from (weight, (value, score, status) or None)."""
    total_weight = sum(weight for weight, _ in weighted)
    with_data = [
        (weight, kr_score)
        for weight, kr_score in weighted
        if kr_score is not None and not pd.isna(kr_score[0])
    ]
    if not with_data:
        return None, 0.0, "no_data"
    data_weight = sum(weight for weight, _ in with_data)
    score = (
        sum(weight * kr_score[1] for weight, kr_score in with_data) / data_weight
        if data_weight
        else None
    )
    coverage = data_weight / total_weight if total_weight else 0.0
    status = min((kr_score[2] for _, kr_score in with_data), key=STATUS_ORDER.index)
    return score, coverage, status


def _series_by_key(observations: pd.DataFrame, quarter: Quarter) -> dict[str, np.ndarray]:
    """Each metric key's daily values over the quarter (NaN: no observation that day)."""
    if observations.empty:
        return {}
    frame = observations.loc[observations["value"].notna(), ["metric_key", "date", "value"]]
    offsets = (pd.to_datetime(frame["date"]) - pd.Timestamp(quarter.start)).dt.days.to_numpy()
    in_quarter = (offsets >= 0) & (offsets < quarter.days)
    frame = pd.DataFrame(
        {
            "metric_key": frame["metric_key"].to_numpy()[in_quarter],
            "offset": offsets[in_quarter],
            "value": frame["value"].to_numpy(dtype=float)[in_quarter],
        }
    )
    duplicated = frame.duplicated(["metric_key", "offset"])
    if duplicated.any():
        first = frame[duplicated].iloc[0]
        raise ValueError(
            f"more than one observation for {first.metric_key!r} on "
            f"{_day(quarter, int(first.offset))}: a double-counted series"
        )
    series_by_key = {}
    offsets = frame["offset"].to_numpy()
    values = frame["value"].to_numpy()
    for key, positions in frame.groupby("metric_key", sort=False).indices.items():
        daily = np.full(quarter.days, np.nan)
        daily[offsets[positions]] = values[positions]
        series_by_key[key] = daily
    return series_by_key


def _running_aggregate(daily: np.ndarray, aggregate: str) -> np.ndarray:
    """The aggregate as of every day (NaN: no day of data yet)."""
    has_data = ~np.isnan(daily)
    filled = np.where(has_data, daily, 0.0)
    if aggregate == "mean_7d":
        sums = _trailing_sum(filled, MEAN_WINDOW_DAYS)
        counts = _trailing_sum(has_data.astype(float), MEAN_WINDOW_DAYS)
        return _divide(sums, counts)
    days_with_data = np.cumsum(has_data)
    if aggregate == "sum":
        running = np.cumsum(filled)
    elif aggregate == "mean":
        running = np.cumsum(filled) / np.maximum(days_with_data, 1)
    elif aggregate == "latest":
        latest_day = np.maximum.accumulate(np.where(has_data, np.arange(len(daily)), 0))
        running = daily[latest_day]
    elif aggregate == "min":
        running = np.fmin.accumulate(daily)  # fmin skips NaN
    elif aggregate == "max":
        running = np.fmax.accumulate(daily)
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
        return _divide(np.cumsum(numerator), np.cumsum(denominator))
    if aggregate == "mean_7d":
        return _divide(
            _trailing_sum(numerator, MEAN_WINDOW_DAYS), _trailing_sum(denominator, MEAN_WINDOW_DAYS)
        )
    raise ValueError(f"aggregate {aggregate!r} is not allowed for a ratio (sum or mean_7d)")


def _daily_ratio_array(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Each day's numerator over its denominator (NaN: a row missing, or denominator 0)."""
    return _divide(numerator, denominator)


def _held(
    daily: np.ndarray,
    kr_type: str,
    target: float | None,
    low: float | None = None,
    high: float | None = None,
) -> np.ndarray:
    """Whether each day's value held (NaN, no data: False), inclusive bounds."""
    if kr_type == "maintain_above":
        return daily >= target
    if kr_type == "maintain_below":
        return daily <= target
    if kr_type == "maintain_between":
        return (daily >= low) & (daily <= high)
    raise ValueError(f"{kr_type!r} is not a maintain KR")


def _running_share_held(
    daily: np.ndarray,
    kr_type: str,
    target: float | None,
    low: float | None = None,
    high: float | None = None,
) -> np.ndarray:
    """Share of days with data so far whose value held on the right side of `target`
    (maintain_between: inside `[low, high]`)."""
    held = _held(daily, kr_type, target, low, high)
    has_data = ~np.isnan(daily)
    return _divide(np.cumsum(held).astype(float), np.cumsum(has_data).astype(float))


def _carry(
    carried: float, values_as_of: np.ndarray, forecasts: np.ndarray, spread: Spread
) -> tuple[np.ndarray, np.ndarray, Spread]:
    """A running total's value, forecast and distribution: the quarter's own plus `carried`."""
    return (
        values_as_of + carried,
        forecasts + carried,
        spread._replace(
            centre=spread.centre + carried,
            lower=spread.lower + carried,
            upper=spread.upper + carried,
        ),
    )


def _forecasts(values_as_of: np.ndarray, method: str) -> np.ndarray:
    """The forecast for the quarter's last day as of every day (NaN where there is no value)."""
    days = len(values_as_of)
    if method == "run_rate":
        return values_as_of / np.arange(1, days + 1) * days
    points_y = _trailing_windows(values_as_of, FORECAST_WINDOW_DAYS)
    points_x = _trailing_windows(np.arange(days, dtype=float), FORECAST_WINDOW_DAYS)
    has_point = ~np.isnan(points_y)
    points = has_point.sum(axis=1)
    safe_points = np.maximum(points, 1)
    mean_x = np.where(has_point, points_x, 0.0).sum(axis=1) / safe_points
    mean_y = np.where(has_point, points_y, 0.0).sum(axis=1) / safe_points
    # Centred sums: no cancellation with large values (revenue in the millions).
    dx = np.where(has_point, points_x - mean_x[:, None], 0.0)
    dy = np.where(has_point, points_y - mean_y[:, None], 0.0)
    slope = _divide((dx * dy).sum(axis=1), (dx * dx).sum(axis=1))
    fitted = mean_y + slope * (days - 1 - mean_x)
    forecasts = np.where(points >= 2, fitted, values_as_of)
    return np.where(np.isnan(values_as_of), np.nan, forecasts)


def _uncertainty(
    key_result: KeyResultInput,
    daily_values: np.ndarray,
    values_as_of: np.ndarray,
    forecasts: np.ndarray,
) -> tuple[Spread, np.ndarray, np.ndarray, np.ndarray | None]:
    """The quarter-end value's distribution each day, the target, whether achieving
    means ending at or above it, and (maintain KRs) the chance of holding the share."""
    days = len(values_as_of)
    target_value = np.nan if key_result.target is None else key_result.target
    target = np.full(days, target_value, dtype=float)
    if key_result.kr_type in PROGRESS_TYPES:
        start = float(key_result.start)  # type: ignore[arg-type]
        span = np.full(days, abs(target_value - start))
        at_least = np.full(days, target_value > start)
    else:
        # No baseline: the target's own size (a band's widest bound), or the value's,
        # stands for the span.
        bounds = [b for b in (key_result.target, key_result.low, key_result.high) if b is not None]
        span = np.fmax(np.abs(values_as_of), max(map(abs, bounds), default=0.0))
        span = np.where(span > 0, span, 1.0)
        at_least = np.ones(days, dtype=bool)
    spread = value_spread(
        daily_values,
        values_as_of,
        forecasts,
        key_result.aggregate,
        key_result.is_ratio,
        span,
    )
    maintained = None
    if key_result.kr_type in MAINTAIN_TYPES:
        held = _held(
            daily_values, key_result.kr_type, key_result.target, key_result.low, key_result.high
        )
        maintained = p_maintained(held, ~np.isnan(daily_values))
        maintained = np.where(np.isnan(values_as_of), np.nan, maintained)
    elif key_result.kr_type in UNSCORED_TYPES:
        maintained = np.full(days, np.nan)  # nothing to achieve: no p_achieve
    return spread, target, at_least, maintained


def _forecast_score(
    key_result: KeyResultInput, forecast_value: float | None, score: float | None
) -> float | None:
    if forecast_value is None or key_result.kr_type in UNSCORED_TYPES:
        return None
    if key_result.kr_type in PROGRESS_TYPES:
        start = key_result.start
        return _clamp((forecast_value - start) / (key_result.target - start))  # type: ignore[operator]
    return score


def _trailing_windows(values: np.ndarray, width: int) -> np.ndarray:
    """Row i: the `width` days ending on day i, NaN before the quarter's first day."""
    padded = np.concatenate([np.full(width - 1, np.nan), values])
    return sliding_window_view(padded, width)


def _trailing_sum(values: np.ndarray, width: int) -> np.ndarray:
    """Sum over the `width` days ending on each day, clipped to the quarter's first day."""
    padded = np.concatenate([np.zeros(width - 1), values])
    return sliding_window_view(padded, width).sum(axis=1)


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Elementwise numerator / denominator, NaN where the denominator is 0 or NaN."""
    out = np.full(np.shape(numerator), np.nan)
    np.divide(numerator, denominator, out=out, where=(denominator != 0) & ~np.isnan(denominator))
    return out


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
