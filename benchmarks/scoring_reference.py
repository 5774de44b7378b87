"""The scoring of key results as it was before it was vectorised: the baseline of
benchmarks/scoring.py, kept verbatim (rules.py, with the KR kinds, and forecast.py of
that time, in one module).

It scores KR by KR and then KR-day by KR-day in Python. The benchmark times it beside
`okr_metrics.pipelines.scoring.rules.score_key_results` on the same inputs and checks
that both give the same rows. Not used by the project itself.
"""

from __future__ import annotations

# ruff: noqa

import math
from typing import NamedTuple

import numpy as np

# The interval holds 80% of the quarter-end value's distribution: 10% on each side.
INTERVAL_TAIL = 0.1
# The same window as the linear point forecast (`rules.FORECAST_WINDOW_DAYS`).
TREND_WINDOW_DAYS = 28
# Maintain KRs: the share of days held that makes the quarter a success (on track).
MAINTAIN_SUCCESS_SHARE = 0.95
# Jeffreys' prior on the daily chance of holding a maintain KR's target.
_PRIOR_HELD, _PRIOR_MISSED = 0.5, 0.5
# Degrees of freedom are capped here: the t's 90% point is then 1.310, against 1.282
# for the normal (a 2% wider interval at most), and its distribution function is a
# series of at most 15 terms.
_MAX_DF = 30
# With too little data, the quarter-end value is a t with 1 degree of freedom (heavy
# tails) whose scale is the KR's whole span (target - start): anything is possible.
_WIDE_DF = 1


class Spread(NamedTuple):
    """The distribution of the quarter-end value on each day (arrays of one length)."""

    centre: np.ndarray
    scale: np.ndarray  # 0: the value is known (the quarter's last day); NaN: no forecast
    df: np.ndarray  # degrees of freedom, whole numbers >= 1
    lower: np.ndarray  # the value cannot end below this (-inf: no bound)
    upper: np.ndarray  # ... nor above this (+inf: no bound)


def value_spread(
    daily: np.ndarray,
    values_as_of: np.ndarray,
    forecasts: np.ndarray,
    aggregate: str,
    is_ratio: bool,
    span: np.ndarray,
) -> Spread:
    """The quarter-end value's distribution as of every day of the quarter.

    `daily` holds the KR's daily values (a ratio's daily ratios; NaN: no data),
    `values_as_of` its value as of each day, `forecasts` the point forecast of each
    day, `span` the scale used when the data are too few to tell.
    """
    days = len(daily)
    remaining = days - 1 - np.arange(days, dtype=float)
    lower = np.full(days, -np.inf)
    upper = np.full(days, np.inf)
    if aggregate == "sum" and not is_ratio:
        centre, scale, df = _run_rate(daily, forecasts, remaining)
        # A sum of values never below 0 (counts, amounts) cannot fall below today's.
        never_negative = np.fmin.accumulate(np.where(np.isnan(daily), np.inf, daily)) >= 0
        lower = np.where(never_negative, values_as_of, -np.inf)
    elif aggregate in ("mean", "sum"):
        centre, scale, df = _running_mean(daily, values_as_of, forecasts, remaining)
    else:
        centre, scale, df = _trend_end(daily, forecasts, remaining, aggregate)
        if aggregate == "max":
            lower = values_as_of.copy()
        elif aggregate == "min":
            upper = values_as_of.copy()

    # Too few points, or no variation seen yet: a wide interval, not a confident one.
    too_few = (df < 1) | ~(scale > 0) | ~np.isfinite(scale)
    scale = np.where(too_few, span, scale)
    df = np.where(too_few, _WIDE_DF, df)
    # On the quarter's last day the value is known.
    last_day = remaining == 0
    centre = np.where(last_day, values_as_of, centre)
    scale = np.where(last_day, 0.0, scale)
    no_value = np.isnan(values_as_of) | np.isnan(centre)
    scale = np.where(no_value, np.nan, scale)
    return Spread(centre, scale, np.clip(df, 1, _MAX_DF).astype(int), lower, upper)


def _run_rate(
    daily: np.ndarray, forecasts: np.ndarray, remaining: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A sum: the days to come are draws like the days so far (the run rate's own
    assumption), so they add R draws around a mean estimated from k days:
    variance s^2 (R + R^2 / k), t with k - 1 degrees of freedom."""
    has_data = ~np.isnan(daily)
    data_days = np.cumsum(has_data).astype(float)
    variance = _quarter_variance(daily, has_data, data_days)
    scale = np.sqrt(variance * (remaining + remaining**2 / np.maximum(data_days, 1)))
    return forecasts, scale, data_days - 1


def _running_mean(
    daily: np.ndarray, values_as_of: np.ndarray, forecasts: np.ndarray, remaining: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`mean`, and a ratio of sums (a mean of the daily ratios weighted by the
    denominators): the r days to come are drawn like the trend window's k days (their
    mean m and spread s), so the quarter's mean ends at (K value + r m) / (K + r) with
    scale s sqrt(r + r^2 / k) / (K + r), t with k - 1 degrees of freedom."""
    has_data = ~np.isnan(daily)
    data_days = np.cumsum(has_data).astype(float)
    window = _window(daily)
    # A check-in series has data on some days only: as many days to come, in proportion.
    to_come = remaining * data_days / np.arange(1, len(daily) + 1)
    all_days = data_days + to_come
    centre = np.where(
        np.isnan(window.mean_value),
        forecasts,
        (data_days * values_as_of + to_come * window.mean_value) / np.maximum(all_days, 1),
    )
    future_variance = window.spread_variance * (to_come + to_come**2 / np.maximum(window.points, 1))
    scale = np.sqrt(future_variance) / np.maximum(all_days, 1)
    return centre, scale, window.points - 1


def _trend_end(
    daily: np.ndarray, forecasts: np.ndarray, remaining: np.ndarray, aggregate: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`latest`, `min`, `max` and `mean_7d` (of a series or a ratio): what the quarter's
    last days will read, so the trend matters. Centred on the linear forecast, with
    the least-squares prediction variance of the trend window's line for the mean of
    the r days still to count (centred on day c):
    s^2 (r + r^2 / k + r^2 (c - mean day)^2 / Sxx) / w^2, t with k - 2 degrees of
    freedom. `latest`, `min`, `max`: r = w = 1, the last day (the textbook prediction
    interval); `mean_7d`: the last 7 days' mean, w the days with data among them."""
    days = len(daily)
    has_data = ~np.isnan(daily)
    window = _window(daily)
    if aggregate == "mean_7d":
        data_share = np.cumsum(has_data) / np.arange(1, days + 1)
        days_to_come = np.minimum(7.0, remaining)
        to_come = days_to_come * data_share
        centre_day = days - 1 - (days_to_come - 1) / 2
        final_week = np.arange(days) >= days - 7
        counted = np.cumsum(has_data & final_week) + to_come
    else:
        to_come, centre_day, counted = np.ones(days), np.full(days, days - 1.0), np.ones(days)
    future_variance = window.variance * (
        to_come
        + to_come**2 / np.maximum(window.points, 1)
        + (to_come * (centre_day - window.mean_day)) ** 2 / window.spread_of_days
    )
    scale = np.sqrt(future_variance) / np.where(counted > 0, counted, np.nan)
    return forecasts, scale, window.points - 2


def interval(spread: Spread) -> tuple[np.ndarray, np.ndarray]:
    """The 80% interval (low, high) of the quarter-end value; NaN where no forecast."""
    half_width = _T_QUANTILE[spread.df] * spread.scale
    low = np.clip(spread.centre - half_width, spread.lower, spread.upper)
    high = np.clip(spread.centre + half_width, spread.lower, spread.upper)
    return low, high


def p_beyond(spread: Spread, target: np.ndarray, at_least: np.ndarray) -> np.ndarray:
    """P(quarter-end value >= target) where `at_least`, else P(value <= target).

    The bounds are part of the distribution: a sum of counts already at its target
    is achieved with probability 1.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        below = np.where(
            spread.scale > 0,
            t_cdf((target - spread.centre) / spread.scale, spread.df),
            (spread.centre < target).astype(float),
        )
    # The distribution is cut at the bounds: no mass beyond them.
    p_high = np.where(
        spread.lower >= target, 1.0, np.where(spread.upper < target, 0.0, 1.0 - below)
    )
    at_target = np.where(spread.scale > 0, 0.0, (spread.centre == target).astype(float))
    p_low = np.where(
        spread.upper <= target,
        1.0,
        np.where(spread.lower > target, 0.0, np.minimum(below + at_target, 1.0)),
    )
    p = np.where(at_least, p_high, p_low)
    return np.where(np.isnan(spread.scale), np.nan, p)


def p_maintained(held: np.ndarray, has_data: np.ndarray) -> np.ndarray:
    """P(the share of days held ends the quarter >= `MAINTAIN_SUCCESS_SHARE`), each day.

    `held` and `has_data` are boolean per day. The days to come hold independently
    with a chance drawn from Beta(held + 1/2, missed + 1/2): the number of them held is
    beta-binomial. NaN before the first day with data.
    """
    days = len(held)
    kept = np.cumsum(held & has_data).astype(float)
    seen = np.cumsum(has_data).astype(float)
    remaining = days - 1 - np.arange(days)
    to_come = np.rint(remaining * seen / np.arange(1, days + 1)).astype(int)
    # Days still to hold (of `to_come`) for held / all >= the share.
    needed = np.ceil(MAINTAIN_SUCCESS_SHARE * (seen + to_come) - kept - 1e-9)
    alpha = kept + _PRIOR_HELD
    beta = seen - kept + _PRIOR_MISSED
    p = _beta_binomial_upper_tail(to_come, alpha, beta, needed)
    return np.where(seen > 0, p, np.nan)


def t_cdf(x: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Student's t distribution function, exact for whole degrees of freedom >= 1.

    The finite series of Abramowitz and Stegun 26.7.3 and 26.7.4 in theta =
    atan(x / sqrt(df)); odd and even degrees of freedom differ.
    """
    x, df = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(df, dtype=int))
    theta = np.arctan(x / np.sqrt(df))
    sin, cos = np.sin(theta), np.cos(theta)
    cos2 = cos * cos
    odd = df % 2 == 1
    # Odd: (2/pi)(theta + sin (cos + 2/3 cos^3 + ...)); even: sin (1 + 1/2 cos^2 + ...).
    term = np.where(odd, cos, 1.0)
    total = np.where(odd & (df == 1), 0.0, term)
    terms = np.where(odd, (df - 3) // 2, (df - 2) // 2)
    for j in range(1, int(terms.max(initial=0)) + 1):
        term = term * cos2 * np.where(odd, 2 * j / (2 * j + 1), (2 * j - 1) / (2 * j))
        total = total + np.where(j <= terms, term, 0.0)
    signed_mass = np.where(odd, (theta + sin * total) * 2 / math.pi, sin * total)
    return 0.5 + 0.5 * signed_mass


def t_quantile(probability: float, df: np.ndarray) -> np.ndarray:
    """The t distribution's `probability` quantile for each of `df`, by bisection."""
    df = np.asarray(df, dtype=int)
    low, high = np.full(df.shape, -1e3), np.full(df.shape, 1e3)
    for _ in range(80):
        middle = (low + high) / 2
        below = t_cdf(middle, df) < probability
        low, high = np.where(below, middle, low), np.where(below, high, middle)
    return (low + high) / 2


# _T_QUANTILE[df]: the upper end of the central 80% of a t with `df` degrees of freedom.
_T_QUANTILE = np.concatenate([[np.nan], t_quantile(1 - INTERVAL_TAIL, np.arange(1, _MAX_DF + 1))])


# ---------------------------------------------------------------------------
# Internals


class _Window(NamedTuple):
    """The daily values of the trailing window, per day: their mean, spread and line."""

    points: np.ndarray  # days with data in the window
    mean_day: np.ndarray
    spread_of_days: np.ndarray  # sum of (day - mean_day)^2; NaN with fewer than 2 points
    variance: np.ndarray  # of the residuals around the line; NaN with fewer than 3 points
    spread_variance: np.ndarray  # of the values around their mean; NaN with fewer than 2
    mean_value: np.ndarray  # NaN with no point


def _window(daily: np.ndarray) -> _Window:
    """Running sums over the window (cumulative sums, not a days x window array)."""
    days = len(daily)
    has_data = ~np.isnan(daily)
    # Days relative to the first, values relative to the first value: small numbers,
    # so the sums of squares do not cancel (revenue in the millions).
    x = np.arange(days, dtype=float)
    reference = daily[np.argmax(has_data)] if has_data.any() else 0.0
    y = np.where(has_data, daily - reference, 0.0)
    weight = has_data.astype(float)
    points = _window_sum(weight)
    sum_x, sum_y = _window_sum(x * weight), _window_sum(y)
    sum_xx, sum_xy, sum_yy = _window_sum(x * x * weight), _window_sum(x * y), _window_sum(y * y)
    safe = np.maximum(points, 1)
    mean_x = sum_x / safe
    sxx = np.maximum(sum_xx - sum_x * mean_x, 0.0)
    sxy = sum_xy - sum_x * sum_y / safe
    syy = np.maximum(sum_yy - sum_y * sum_y / safe, 0.0)
    spread_of_days = np.where(sxx > 0.5, sxx, np.nan)  # whole days: 0 or >= 0.5
    residual = np.maximum(syy - sxy * sxy / spread_of_days, 0.0)
    variance = np.where(points >= 3, residual / np.maximum(points - 2, 1), np.nan)
    mean_value = np.where(points > 0, sum_y / safe + reference, np.nan)
    spread_variance = np.where(points >= 2, syy / np.maximum(points - 1, 1), np.nan)
    return _Window(points, mean_x, spread_of_days, variance, spread_variance, mean_value)


def _window_sum(values: np.ndarray) -> np.ndarray:
    """Sum over the trend window's days ending on each day (clipped to the quarter start)."""
    total = np.cumsum(values)
    total[TREND_WINDOW_DAYS:] = total[TREND_WINDOW_DAYS:] - total[:-TREND_WINDOW_DAYS].copy()
    return total


def _quarter_variance(daily: np.ndarray, has_data: np.ndarray, data_days: np.ndarray) -> np.ndarray:
    """Sample variance of the daily values so far (NaN before 2 days with data)."""
    first = daily[np.argmax(has_data)] if has_data.any() else 0.0
    # Shifted by the first value: no cancellation with large values (revenue).
    shifted = np.where(has_data, daily - first, 0.0)
    total = np.cumsum(shifted)
    squares = np.cumsum(shifted * shifted)
    safe = np.maximum(data_days, 1)
    variance = np.maximum(squares - total * total / safe, 0.0) / np.maximum(data_days - 1, 1)
    return np.where(data_days >= 2, variance, np.nan)


def _beta_binomial_upper_tail(
    trials: np.ndarray, alpha: np.ndarray, beta: np.ndarray, needed: np.ndarray
) -> np.ndarray:
    """P(X >= needed) for X ~ BetaBinomial(trials, alpha, beta), elementwise.

    Summed from the top: P(X = n) = prod over j < n of (alpha + j) / (alpha + beta + j),
    then P(X = k - 1) = P(X = k) * k / (n - k + 1) * (beta + n - k) / (alpha + k - 1),
    down to `needed`. Only the rows where the answer is neither 0 nor 1 are computed.
    """
    tail = np.where(needed <= 0, 1.0, 0.0)
    rows = np.flatnonzero((needed > 0) & (needed <= trials))
    if not len(rows):
        return tail
    n = trials[rows].astype(float)[:, None]
    a, b = alpha[rows][:, None], beta[rows][:, None]
    j = np.arange(int(n.max()), dtype=float)[None, :]
    top = np.where(j < n, (a + j) / (a + b + j), 1.0).prod(axis=1, keepdims=True)
    # Column i: X = n - i, for i up to the widest tail needed.
    width = int((n[:, 0] - needed[rows]).max()) + 1
    k = n - np.arange(width, dtype=float)[None, :]
    step = np.ones_like(k)
    step[:, 1:] = (k[:, :-1] / (n - k[:, :-1] + 1)) * (b + n - k[:, :-1]) / (a + k[:, :-1] - 1)
    pmf = top * np.cumprod(np.where(k >= needed[rows][:, None], step, 0.0), axis=1)
    tail[rows] = np.minimum(pmf.sum(axis=1), 1.0)
    return tail


# ---- rules.py


import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

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
