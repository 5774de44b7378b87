"""The forecast's 80% interval and p_achieve (docs/forecasting.md) on hand-computed cases.

The quarter is 2026-Q4: 92 days, `day(n)` its n-th day, x = n - 1 in the formulas, so
the quarter's last day is x = 91. The cases use 1 or 2 degrees of freedom, where the t
distribution has closed forms: with 1, F(x) = 1/2 + atan(x)/pi and its 90% point is
tan(0.4 pi) = 3.0777; with 2, F(x) = 1/2 + x / (2 sqrt(2 + x^2)) and its 90% point is
0.8 / sqrt(0.18) = 1.8856.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from okr_metrics.pipelines.scoring.forecast import (
    linear_forecast,
    p_maintained,
    t_cdf,
    t_quantile,
)
from okr_metrics.pipelines.scoring.rules import (
    KeyResultInput,
    daily_ratio,
    forecast,
    score_key_results,
)
from okr_metrics.pipelines.vocabulary.quarters import Quarter

Q4 = Quarter(2026, 4)
FORECAST_COLUMNS = ["forecast_value", "forecast_low", "forecast_high", "p_achieve"]
T1_90 = math.tan(0.4 * math.pi)  # 3.0777
T2_90 = 0.8 / math.sqrt(0.18)  # 1.8856


def t1_cdf(x: float) -> float:
    return 0.5 + math.atan(x) / math.pi


def t2_cdf(x: float) -> float:
    return 0.5 + x / (2 * math.sqrt(2 + x * x))


def day(n: int) -> date:
    return Q4.start + timedelta(days=n - 1)


def daily(*values: float | None, first: int = 1) -> dict[date, float]:
    return {day(first + i): v for i, v in enumerate(values) if v is not None}


def key_result(**fields) -> KeyResultInput:
    defaults = dict(
        kr_id="kr",
        objective_id="obj",
        title="A key result",
        owner="growth",
        kr_type="increase",
        start=0.0,
        target=100.0,
        weight=1.0,
        aggregate="latest",
        metric_key="m",
    )
    defaults.update(fields)
    return KeyResultInput(**defaults)


def ratio_key_result(**fields) -> KeyResultInput:
    return key_result(
        **{"metric_key": None, "numerator_key": "num", "denominator_key": "den"} | fields
    )


def observations(series: dict[str, dict[date, float]]) -> pd.DataFrame:
    rows = [(key, d, v) for key, days in series.items() for d, v in days.items()]
    return pd.DataFrame(rows, columns=["metric_key", "date", "value"])


def row(kr: KeyResultInput, series: dict[str, dict[date, float]], as_of: date) -> dict:
    frame = score_key_results([kr], Q4, observations(series), [as_of])
    return frame.iloc[0].to_dict()


def assert_interval(result: dict, low: float, high: float) -> None:
    assert result["forecast_low"] == pytest.approx(low, rel=1e-6)
    assert result["forecast_high"] == pytest.approx(high, rel=1e-6)


# ---------------------------------------------------------------------------
# The linear point forecast


class TestLinearForecast:
    def test_two_days_give_the_line_through_them(self):
        values = np.full(92, np.nan)
        values[:2] = [1.0, 3.0]
        # Day 1: one point, the value itself. Day 2: slope 2 from x = 0.5, y = 2.
        expected = [1.0, 2.0 + 2.0 * (91 - 0.5)] + [np.nan] * 90
        np.testing.assert_array_equal(linear_forecast(values), expected)

    def test_a_flat_series_forecasts_its_value_exactly(self):
        values = np.full(92, 0.05)
        assert (linear_forecast(values) == 0.05).all()

    def test_each_day_is_the_least_squares_line_of_its_28_days(self):
        # Revenue in the millions with a small trend, and weeks without data: the
        # running sums must not cancel against the values' size.
        rng = np.random.default_rng(7)
        days = np.arange(92, dtype=float)
        values = 4.2e6 + 35.0 * days + rng.normal(0, 900, 92)
        values[rng.random(92) < 0.35] = np.nan
        values[40:52] = np.nan
        forecasts = linear_forecast(np.stack([values, values * 1e-6]))
        for d in range(92):
            window = slice(max(0, d - 27), d + 1)
            x, y = days[window], values[window]
            x, y = x[~np.isnan(y)], y[~np.isnan(y)]
            if np.isnan(values[d]):
                assert np.isnan(forecasts[:, d]).all()
                continue
            if len(x) < 2:
                expected = values[d]
            else:
                slope, intercept = np.polyfit(x, y, 1)
                expected = intercept + slope * 91
            assert forecasts[0, d] == pytest.approx(expected, rel=1e-12)
            assert forecasts[1, d] == pytest.approx(expected * 1e-6, rel=1e-12)


# ---------------------------------------------------------------------------
# The t distribution


class TestStudentT:
    def test_closed_forms_for_1_and_2_degrees_of_freedom(self):
        x = np.array([-5.0, -1.0, 0.0, 0.3, 2.0, 40.0])
        assert t_cdf(x, np.ones(6, dtype=int)) == pytest.approx([t1_cdf(v) for v in x])
        assert t_cdf(x, np.full(6, 2)) == pytest.approx([t2_cdf(v) for v in x])
        assert t_quantile(0.9, np.array([1, 2])) == pytest.approx([T1_90, T2_90])

    def test_printed_table_values(self):
        # Student's t tables: the 90% points for 5, 10 and 30 degrees of freedom.
        assert t_quantile(0.9, np.array([5, 10, 30])) == pytest.approx(
            [1.475884, 1.372184, 1.310415], abs=1e-6
        )
        # 3 degrees of freedom: F(x) = 1/2 + (theta + sin(theta) cos(theta)) / pi,
        # theta = atan(x / sqrt(3)); at x = 3, theta = pi/3: 1/2 + 1/3 + sqrt(3)/(4 pi).
        expected = 0.5 + 1 / 3 + math.sqrt(3) / (4 * math.pi)
        assert t_cdf(np.array([3.0]), np.array([3]))[0] == pytest.approx(expected)


# ---------------------------------------------------------------------------
# Sums: the run rate


class TestRunRate:
    # 3, 5, 4 on days 1..3: k = 3, mean 4, s^2 = (1 + 1 + 0) / 2 = 1; R = 89 days to come.
    series = {"m": daily(3.0, 5.0, 4.0)}
    scale = math.sqrt(1.0 * (89 + 89**2 / 3))  # 52.243

    def test_interval_is_the_run_rate_plus_minus_the_remaining_sums_spread(self):
        result = row(key_result(aggregate="sum", target=400.0), self.series, day(3))
        assert result["forecast_value"] == pytest.approx(368.0)  # 12 / 3 * 92
        assert_interval(result, 368 - T2_90 * self.scale, 368 + T2_90 * self.scale)

    def test_p_achieve_is_the_chance_the_remaining_sum_reaches_the_target(self):
        result = row(key_result(aggregate="sum", target=400.0), self.series, day(3))
        assert result["p_achieve"] == pytest.approx(1 - t2_cdf((400 - 368) / self.scale))  # 0.301

    def test_a_sum_of_counts_never_ends_below_todays_total(self):
        # Target 10 reached already: achieved whatever comes, and the interval stays >= 12.
        result = row(key_result(aggregate="sum", target=10.0), self.series, day(3))
        assert result["p_achieve"] == 1.0
        # On day 92 the value is known: the interval is that value.
        done = row(key_result(aggregate="sum", target=10.0), {"m": daily(*[0.5] * 92)}, day(92))
        assert (done["forecast_low"], done["forecast_high"], done["p_achieve"]) == (46, 46, 1.0)

    def test_negative_days_lift_the_bound(self):
        # -3, 5, 4: mean 2, s^2 = (25 + 9 + 4) / 2 = 19; no bound at the value 6.
        result = row(
            key_result(aggregate="sum", target=400.0), {"m": daily(-3.0, 5.0, 4.0)}, day(3)
        )
        scale = math.sqrt(19 * (89 + 89**2 / 3))
        assert result["forecast_value"] == pytest.approx(184.0)  # 6 / 3 * 92
        assert result["forecast_low"] == pytest.approx(184 - T2_90 * scale)
        assert result["forecast_low"] < 6

    def test_decrease_kr_on_a_sum(self):
        kr = key_result(aggregate="sum", kr_type="decrease", start=500.0, target=350.0)
        result = row(kr, self.series, day(3))
        assert result["p_achieve"] == pytest.approx(t2_cdf((350 - 368) / self.scale))
        # Already above 350 with counts that cannot fall: no chance.
        over = row(kr, {"m": daily(200.0, 200.0, 1.0)}, day(3))
        assert over["p_achieve"] == 0.0


# ---------------------------------------------------------------------------
# Levels: latest, min, max, mean_7d (the trend), mean and ratios (the mean so far)

# 1, 3, 2, 4 on days 1..4: mean x 1.5, mean y 2.5, Sxx = 5, Sxy = 4, slope 0.8,
# residuals -0.3, 0.9, -0.9, 0.3: SSR 1.8, s^2 = 1.8 / (4 - 2) = 0.9, 2 degrees of freedom.
LEVELS = {"m": daily(1.0, 3.0, 2.0, 4.0)}
LATEST_SCALE = math.sqrt(0.9 * (1 + 1 / 4 + (91 - 1.5) ** 2 / 5))  # 37.99


class TestLevels:
    def test_latest_is_the_trends_prediction_interval_at_quarter_end(self):
        result = row(key_result(aggregate="latest", target=100.0), LEVELS, day(4))
        centre = 2.5 + 0.8 * (91 - 1.5)  # 74.1
        assert result["forecast_value"] == pytest.approx(centre)
        assert_interval(result, centre - T2_90 * LATEST_SCALE, centre + T2_90 * LATEST_SCALE)
        assert result["p_achieve"] == pytest.approx(1 - t2_cdf((100 - centre) / LATEST_SCALE))

    def test_decrease_on_latest(self):
        kr = key_result(aggregate="latest", kr_type="decrease", start=10.0, target=0.0)
        result = row(kr, LEVELS, day(4))
        assert result["p_achieve"] == pytest.approx(t2_cdf((0 - 74.1) / LATEST_SCALE))  # 0.04

    def test_max_cannot_end_below_todays_maximum(self):
        # Running max 1, 3, 3, 4: mean 2.75, Sxy 4.5, slope 0.9: 2.75 + 0.9 * 89.5 = 83.3.
        result = row(key_result(aggregate="max", target=100.0), LEVELS, day(4))
        assert result["forecast_value"] == pytest.approx(83.3)
        assert_interval(result, 83.3 - T2_90 * LATEST_SCALE, 83.3 + T2_90 * LATEST_SCALE)
        reached = row(key_result(aggregate="max", start=0.0, target=3.0), LEVELS, day(4))
        assert reached["p_achieve"] == 1.0  # 4 >= 3 already

    def test_min_cannot_end_above_todays_minimum(self):
        # 4, 2, 3, 1: the same spread as LEVELS mirrored; the running min is 1 on day 4.
        series = {"m": daily(4.0, 2.0, 3.0, 1.0)}
        decrease = key_result(aggregate="min", kr_type="decrease", start=5.0, target=2.0)
        result = row(decrease, series, day(4))
        assert result["p_achieve"] == 1.0  # 1 <= 2 already, and a min never rises
        assert result["forecast_high"] <= 1.0
        increase = key_result(aggregate="min", start=0.0, target=2.0)
        assert row(increase, series, day(4))["p_achieve"] == 0.0

    def test_mean_7d_is_the_trend_over_the_last_7_days(self):
        # 7 days to come, centred on x = 88: s^2 (7 + 49/4 + 49 (88 - 1.5)^2 / 5) / 7^2.
        scale = math.sqrt(0.9 * (7 + 49 / 4 + 49 * (88 - 1.5) ** 2 / 5)) / 7  # 36.70
        # 7-day means 1, 2, 2, 2.5: mean 1.875, slope 2.25 / 5 = 0.45: 1.875 + 0.45 * 89.5.
        centre = 1.875 + 0.45 * 89.5  # 42.15
        result = row(key_result(aggregate="mean_7d", target=50.0), LEVELS, day(4))
        assert result["forecast_value"] == pytest.approx(centre)
        assert_interval(result, centre - T2_90 * scale, centre + T2_90 * scale)
        assert result["p_achieve"] == pytest.approx(1 - t2_cdf((50 - centre) / scale))

    def test_mean_the_days_to_come_are_drawn_like_the_last_28(self):
        # 2, 4, 6: mean 4, spread s^2 = (4 + 0 + 4) / 2 = 4 (2 degrees of freedom); the
        # 89 days to come average 4 too: the quarter ends at (3 * 4 + 89 * 4) / 92 = 4.
        result = row(key_result(aggregate="mean", target=4.5), {"m": daily(2.0, 4.0, 6.0)}, day(3))
        scale = math.sqrt(4 * (89 + 89**2 / 3)) / 92  # 1.136
        assert_interval(result, 4 - T2_90 * scale, 4 + T2_90 * scale)
        assert result["p_achieve"] == pytest.approx(1 - t2_cdf(0.5 / scale))
        # The linear forecast of the running mean (2, 3, 4) is a different, steeper line.
        assert result["forecast_value"] == pytest.approx(3 + 1 * 90)

    def test_ratio_of_sums_is_a_mean_of_the_daily_ratios(self):
        # 1/2, 3/4, 2/4: value 6/10 = 0.6; daily ratios 0.5, 0.75, 0.5: mean 7/12,
        # s^2 = (1/144 + 4/144 + 1/144) / 2 = 1/48.
        series = {"num": daily(1.0, 3.0, 2.0), "den": daily(2.0, 4.0, 4.0)}
        kr = ratio_key_result(aggregate="sum", start=0.5, target=0.6)
        result = row(kr, series, day(3))
        centre = (3 * 0.6 + 89 * 7 / 12) / 92
        scale = math.sqrt((1 / 48) * (89 + 89**2 / 3)) / 92
        assert result["value"] == pytest.approx(0.6)
        assert_interval(result, centre - T2_90 * scale, centre + T2_90 * scale)
        assert result["p_achieve"] == pytest.approx(1 - t2_cdf((0.6 - centre) / scale))

    def test_the_forecast_function_gives_the_same(self):
        kr = key_result(aggregate="latest", target=100.0)
        values_as_of = {day(n): v for n, v in zip(range(1, 5), [1.0, 3.0, 2.0, 4.0], strict=True)}
        # Values after the as-of day are ignored.
        later = {**LEVELS["m"], day(5): 500.0}
        result = forecast(kr, values_as_of, Q4, day(4), score=0.04, daily_series=later)
        expected = row(kr, LEVELS, day(4))
        assert (result.low, result.high, result.p_achieve) == pytest.approx(
            (expected["forecast_low"], expected["forecast_high"], expected["p_achieve"])
        )
        ratio = ratio_key_result(aggregate="sum")
        numerator, denominator = daily(1.0, 3.0, 2.0), daily(2.0, 4.0, 4.0)
        ratios = daily_ratio(numerator, denominator)
        values = {day(1): 0.5, day(2): 4 / 6, day(3): 0.6}
        result = forecast(ratio, values, Q4, day(3), score=None, daily_series=ratios)
        expected = row(ratio, {"num": numerator, "den": denominator}, day(3))
        assert result.p_achieve == pytest.approx(expected["p_achieve"])
        # Without the daily series there is no interval.
        assert forecast(kr, values_as_of, Q4, day(4), score=None).low is None


# ---------------------------------------------------------------------------
# Maintain and milestone KRs


class TestMaintain:
    def series(self, held: int, days: int = 90) -> dict:
        return {"m": daily(*([12.0] * held + [8.0] * (days - held)))}

    def test_beta_binomial_over_the_days_to_come(self):
        kr = key_result(kr_type="maintain_above", start=None, target=10.0, aggregate="min")
        # Day 90: 2 days to come. 86 of 90 held: ceil(0.95 * 92 - 86) = 2 must hold,
        # each with a chance from Beta(86.5, 4.5): P = 86.5 * 87.5 / (91 * 92) = 0.904.
        assert row(kr, self.series(86), day(90))["p_achieve"] == pytest.approx(
            86.5 * 87.5 / (91 * 92)
        )
        # 87 held: 1 of 2 must hold: 1 - P(none) = 1 - 3.5 * 4.5 / (91 * 92).
        assert row(kr, self.series(87), day(90))["p_achieve"] == pytest.approx(
            1 - 3.5 * 4.5 / (91 * 92)
        )
        # 85 held: 3 would have to hold of the 2 to come.
        assert row(kr, self.series(85), day(90))["p_achieve"] == 0.0
        # 88 held: already 88 of 92 >= 0.95 whatever comes.
        assert row(kr, self.series(88), day(90))["p_achieve"] == 1.0

    def test_maintain_below_counts_days_at_or_under_the_target(self):
        kr = key_result(kr_type="maintain_below", start=None, target=10.0)
        series = {"m": daily(*([8.0] * 86 + [12.0] * 4))}
        assert row(kr, series, day(90))["p_achieve"] == pytest.approx(86.5 * 87.5 / (91 * 92))

    def test_check_ins_count_the_days_to_come_in_proportion(self):
        # 2 check-ins in 2 days, both held: 90 days to come at that rate, Beta(2.5, 0.5).
        held, has_data = np.zeros(92, dtype=bool), np.zeros(92, dtype=bool)
        held[:2] = has_data[:2] = True
        p = p_maintained(held, has_data)[1]
        # needed = ceil(0.95 * 92 - 2) = 86 of 90; P(X >= 86), X ~ BetaBinomial(90, 2.5, 0.5)
        assert 0.2 < p < 0.6  # few days: not confident either way
        assert np.isnan(p_maintained(held & False, has_data & False)[5])

    def test_the_interval_is_of_the_value(self):
        kr = key_result(kr_type="maintain_above", start=None, target=0.0, aggregate="latest")
        result = row(kr, LEVELS, day(4))
        assert_interval(result, 74.1 - T2_90 * LATEST_SCALE, 74.1 + T2_90 * LATEST_SCALE)


class TestMilestone:
    def test_reached_is_certain_for_a_count(self):
        kr = key_result(kr_type="milestone", start=None, target=1.0, aggregate="sum")
        assert row(kr, {"m": daily(0.0, 1.0, 0.0)}, day(3))["p_achieve"] == 1.0

    def test_no_movement_yet_is_the_wide_prior(self):
        # All 0: no variation to learn from. The value's own scale (the target, 1) with
        # 1 degree of freedom: P(T1 >= (1 - 0) / 1) = 1/4; a count cannot fall below 0.
        kr = key_result(kr_type="milestone", start=None, target=1.0, aggregate="sum")
        result = row(kr, {"m": daily(0.0, 0.0, 0.0)}, day(3))
        assert result["p_achieve"] == pytest.approx(0.25)
        assert_interval(result, 0.0, T1_90)

    def test_a_milestone_counted_by_releases_uses_the_run_rate(self):
        kr = key_result(kr_type="milestone", start=None, target=4.0, aggregate="sum")
        result = row(kr, {"m": daily(1.0, 0.0, 0.0, 1.0)}, day(4))
        # mean 0.5, s^2 = 1/3, run rate 2 / 4 * 92 = 46; 88 days to come, 3 d.o.f.
        scale = math.sqrt((1 / 3) * (88 + 88**2 / 4))
        expected = 1 - t_cdf(np.array([(4 - 46) / scale]), np.array([3]))[0]
        assert result["p_achieve"] == pytest.approx(expected)


# ---------------------------------------------------------------------------
# Too few points; the quarter's last day


class TestTooFewPoints:
    def test_one_day_of_a_sum_is_wide_and_not_confident(self):
        result = row(key_result(aggregate="sum", target=400.0), {"m": daily(3.0)}, day(1))
        # The span (400) as scale, 1 degree of freedom, around the run rate 3 * 92 = 276.
        assert result["forecast_low"] == 3.0  # a count does not fall below today's 3
        assert result["forecast_high"] == pytest.approx(276 + T1_90 * 400)  # 1507
        assert result["p_achieve"] == pytest.approx(1 - t1_cdf((400 - 276) / 400))  # 0.40

    def test_two_points_cannot_give_a_trend_spread(self):
        kr = key_result(aggregate="latest", start=10.0, target=300.0)
        result = row(kr, {"m": daily(10.0, 12.0)}, day(2))
        centre = 10 + 2 * 91  # 192
        assert_interval(result, centre - T1_90 * 290, centre + T1_90 * 290)
        assert 0.25 < result["p_achieve"] < 0.75

    def test_wide_early_narrow_late(self):
        series = {"m": daily(*[float(4 + (n * 7) % 5) for n in range(92)])}
        kr = key_result(aggregate="sum", target=500.0)
        frame = score_key_results([kr], Q4, observations(series), [day(n) for n in range(1, 93)])
        width = (frame["forecast_high"] - frame["forecast_low"]).to_numpy()
        assert width[0] > width[9] > width[44] > width[89] > width[91] == 0
        assert frame["p_achieve"].iloc[-1] in (0.0, 1.0)

    def test_no_value_no_interval(self):
        result = row(key_result(aggregate="sum"), {}, day(10))
        assert all(math.isnan(result[column]) for column in FORECAST_COLUMNS)


# ---------------------------------------------------------------------------
# No look-ahead


def every_kind() -> list[KeyResultInput]:
    return [
        key_result(kr_id="sum", aggregate="sum", target=150.0),
        key_result(kr_id="latest", aggregate="latest", target=6.0),
        key_result(kr_id="mean", aggregate="mean", kr_type="decrease", start=5.0, target=2.0),
        key_result(kr_id="mean7", aggregate="mean_7d", target=5.0),
        key_result(kr_id="min", aggregate="min", kr_type="decrease", start=5.0, target=0.0),
        key_result(kr_id="max", aggregate="max", target=7.0),
        key_result(kr_id="keep", kr_type="maintain_below", start=None, target=5.0),
        key_result(kr_id="ship", kr_type="milestone", start=None, target=20.0, aggregate="sum"),
        ratio_key_result(kr_id="ratio", aggregate="sum", start=0.2, target=0.5),
        ratio_key_result(kr_id="ratio7", aggregate="mean_7d", start=0.2, target=0.5),
    ]


def test_day_d_is_the_same_in_a_backfill_stopped_at_d_and_in_a_longer_one():
    series = {
        "m": daily(*[float((n * 5) % 7) for n in range(1, 61)]),
        "num": daily(*[float(n % 3) for n in range(1, 61)]),
        "den": daily(*[float(2 + n % 4) for n in range(1, 61)]),
    }
    everything = observations(series)
    long = score_key_results(every_kind(), Q4, everything, [day(n) for n in range(1, 61)])
    for stop in (1, 2, 9, 30):
        known = everything[everything["date"] <= day(stop)]
        short = score_key_results(every_kind(), Q4, known, [day(n) for n in range(1, stop + 1)])
        same_days = long[long["as_of"] <= day(stop)].reset_index(drop=True)
        pd.testing.assert_frame_equal(short, same_days)
        # Not vacuous: the forecast columns are filled in.
        assert short[FORECAST_COLUMNS].notna().all().all()
