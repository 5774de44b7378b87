"""The uncertainty of a key result's forecast: an 80% interval of its quarter-end value
and the probability that it ends the quarter achieved (`p_achieve`).

Called by `rules.score_key_results` (and `rules.forecast`) for every KR and every day
of its quarter at once: the arrays are `(krs, days)` (or `(days,)` for one KR), the
last axis the day of the quarter. Pure numpy, no I/O; the methods, and why each fits
its aggregate, are written down in docs/forecasting.md.

Each aggregate gets a `Spread`: a Student-t distribution of the quarter-end value
(centre, scale, degrees of freedom), cut at the bounds the aggregate cannot cross (a
sum of counts never falls below today's total, a running `max` never below today's
maximum). Entry `i` of every array's last axis only reads days `<= i`: no look-ahead.
`interval` and `p_beyond` work elementwise, on a whole group of KRs at once.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

# The interval holds 80% of the quarter-end value's distribution: 10% on each side.
INTERVAL_TAIL = 0.1
# The trailing window of the linear point forecast and of the trend's spread.
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
    """The distribution of the quarter-end value on each day (arrays of one shape)."""

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

    `daily` holds the KRs' daily values (a ratio's daily ratios; NaN: no data),
    `values_as_of` their value as of each day, `forecasts` the point forecast of each
    day, `span` the scale used when the data are too few to tell (it broadcasts
    against them: `(krs, 1)` will do). All `(krs, days)` or `(days,)`.
    """
    days = daily.shape[-1]
    remaining = days - 1 - np.arange(days, dtype=float)
    lower = np.full(daily.shape, -np.inf)
    upper = np.full(daily.shape, np.inf)
    if aggregate == "sum" and not is_ratio:
        centre, scale, df = _run_rate(daily, forecasts, remaining)
        # A sum of values never below 0 (counts, amounts) cannot fall below today's.
        never_negative = np.fmin.accumulate(np.where(np.isnan(daily), np.inf, daily), axis=-1) >= 0
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
    data_days = np.cumsum(has_data, axis=-1).astype(float)
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
    data_days = np.cumsum(has_data, axis=-1).astype(float)
    window = _window(daily)
    # A check-in series has data on some days only: as many days to come, in proportion.
    to_come = remaining * data_days / np.arange(1, daily.shape[-1] + 1)
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
    days = daily.shape[-1]
    has_data = ~np.isnan(daily)
    window = _window(daily)
    if aggregate == "mean_7d":
        data_share = np.cumsum(has_data, axis=-1) / np.arange(1, days + 1)
        days_to_come = np.minimum(7.0, remaining)
        to_come = days_to_come * data_share
        centre_day = days - 1 - (days_to_come - 1) / 2
        final_week = np.arange(days) >= days - 7
        counted = np.cumsum(has_data & final_week, axis=-1) + to_come
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

    `held` and `has_data` are boolean per day, `(krs, days)` or `(days,)`. The days to
    come hold independently with a chance drawn from Beta(held + 1/2, missed + 1/2):
    the number of them held is beta-binomial. NaN before the first day with data.
    """
    days = held.shape[-1]
    kept = np.cumsum(held & has_data, axis=-1).astype(float)
    seen = np.cumsum(has_data, axis=-1).astype(float)
    remaining = days - 1 - np.arange(days)
    to_come = np.rint(remaining * seen / np.arange(1, days + 1)).astype(int)
    # Days still to hold (of `to_come`) for held / all >= the share.
    needed = np.ceil(MAINTAIN_SUCCESS_SHARE * (seen + to_come) - kept - 1e-9)
    alpha = kept + _PRIOR_HELD
    beta = seen - kept + _PRIOR_MISSED
    to_come = np.broadcast_to(to_come, seen.shape)
    p = _beta_binomial_upper_tail(
        to_come.reshape(-1), alpha.reshape(-1), beta.reshape(-1), needed.reshape(-1)
    ).reshape(seen.shape)
    return np.where(seen > 0, p, np.nan)


def linear_forecast(values_as_of: np.ndarray) -> np.ndarray:
    """The value on the quarter's last day, as of every day, by the least-squares line
    through the trend window's values (the value itself with fewer than 2 of them;
    NaN where there is no value). `values_as_of`: `(krs, days)` or `(days,)`."""
    days = values_as_of.shape[-1]
    window = _window(values_as_of)
    with np.errstate(invalid="ignore"):
        fitted = window.mean_value + window.slope * (days - 1 - window.mean_day)
    forecasts = np.where(window.points >= 2, fitted, values_as_of)
    return np.where(np.isnan(values_as_of), np.nan, forecasts)


def t_cdf(x: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Student's t distribution function, exact for whole degrees of freedom >= 1.

    The finite series of Abramowitz and Stegun 26.7.3 and 26.7.4 in theta =
    atan(x / sqrt(df)); odd and even degrees of freedom differ. Each parity's series
    is summed term by term over its entries sorted by their number of terms, so each
    step only touches the entries that still have one (a prefix of the sorted arrays).
    """
    x, df = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(df, dtype=int))
    shape = x.shape
    x, df = x.reshape(-1), df.reshape(-1)
    theta = np.arctan(x / np.sqrt(df))
    sin, cos = np.sin(theta), np.cos(theta)
    cos2 = cos * cos
    odd = (df % 2).astype(bool)
    series = np.empty(x.shape)
    # Odd: (2/pi)(theta + sin (cos + 2/3 cos^3 + ...)); even: sin (1 + 1/2 cos^2 + ...).
    for is_odd in (True, False):
        rows = np.flatnonzero(odd == is_odd)
        terms = (df[rows] - (3 if is_odd else 2)) // 2
        # At most _MAX_DF / 2 terms: small integers sort by radix.
        order = np.argsort(-terms.astype(np.int8), kind="stable")
        rows, terms = rows[order], terms[order]
        sorted_cos2 = cos2[rows]
        if is_odd:
            term = cos[rows]
            total = np.where(df[rows] == 1, 0.0, term)
        else:
            term = np.ones(len(rows))
            total = term.copy()
        most = int(terms[0]) if len(terms) else 0
        # having[j - 1]: how many entries have a j-th term.
        having = np.searchsorted(-terms, -np.arange(1, most + 1), side="right")
        for j, count in enumerate(having, start=1):
            step = term[:count]
            step *= sorted_cos2[:count]
            step *= 2 * j / (2 * j + 1) if is_odd else (2 * j - 1) / (2 * j)
            total[:count] += step
        series[rows] = total
    signed_mass = np.where(odd, (theta + sin * series) * 2 / math.pi, sin * series)
    return (0.5 + 0.5 * signed_mass).reshape(shape)


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
    slope: np.ndarray  # of the least-squares line; NaN with fewer than 2 points


def _window(daily: np.ndarray) -> _Window:
    """Running sums over the window (cumulative sums, not a days x window array)."""
    days = daily.shape[-1]
    has_data = ~np.isnan(daily)
    # Days relative to the first, values relative to the first value: small numbers,
    # so the sums of squares do not cancel (revenue in the millions).
    x = np.arange(days, dtype=float)
    reference = _first_value(daily, has_data)
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
    spread_of_days = np.where(sxx > 0.25, sxx, np.nan)  # whole days: 0, or 0.5 and up
    residual = np.maximum(syy - sxy * sxy / spread_of_days, 0.0)
    variance = np.where(points >= 3, residual / np.maximum(points - 2, 1), np.nan)
    mean_value = np.where(points > 0, sum_y / safe + reference, np.nan)
    spread_variance = np.where(points >= 2, syy / np.maximum(points - 1, 1), np.nan)
    slope = sxy / spread_of_days
    return _Window(points, mean_x, spread_of_days, variance, spread_variance, mean_value, slope)


def _window_sum(values: np.ndarray) -> np.ndarray:
    """Sum over the trend window's days ending on each day (clipped to the quarter start)."""
    total = np.cumsum(values, axis=-1)
    total[..., TREND_WINDOW_DAYS:] = (
        total[..., TREND_WINDOW_DAYS:] - total[..., :-TREND_WINDOW_DAYS].copy()
    )
    return total


def _first_value(daily: np.ndarray, has_data: np.ndarray) -> np.ndarray:
    """Each series' first value with data (0 without any), shaped to broadcast over days."""
    first_day = np.argmax(has_data, axis=-1)[..., None]
    first = np.take_along_axis(daily, first_day, axis=-1)
    return np.where(has_data.any(axis=-1, keepdims=True), first, 0.0)


def _quarter_variance(daily: np.ndarray, has_data: np.ndarray, data_days: np.ndarray) -> np.ndarray:
    """Sample variance of the daily values so far (NaN before 2 days with data)."""
    first = _first_value(daily, has_data)
    # Shifted by the first value: no cancellation with large values (revenue).
    shifted = np.where(has_data, daily - first, 0.0)
    total = np.cumsum(shifted, axis=-1)
    squares = np.cumsum(shifted * shifted, axis=-1)
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
