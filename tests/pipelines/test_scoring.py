"""Scoring rules (docs/scoring.md) on small hand-computed cases.

Unless a test says otherwise the quarter is 2026-Q4: 1 Oct to 31 Dec, 92 days,
and `day(n)` is its n-th day (day(1) = 1 Oct, day(92) = 31 Dec). In forecasts,
x is the day's index from 0, so the quarter's last day is x = 91.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pytest

from okr_metrics.pipelines.scoring.rules import (
    KR_SCORE_COLUMNS,
    OBJECTIVE_SCORE_COLUMNS,
    KeyResultInput,
    ObjectiveInput,
    StatusThresholds,
    aggregate_value,
    daily_ratio,
    expected_progress,
    forecast,
    kr_status,
    progress_and_score,
    ratio_value,
    score_key_results,
    score_objectives,
    share_of_days_held,
)
from okr_metrics.pipelines.vocabulary.quarters import Quarter

Q4 = Quarter(2026, 4)
Q1_2026 = Quarter(2026, 1)  # 90 days
Q1_2028 = Quarter(2028, 1)  # leap year: 91 days
DEFAULT = StatusThresholds()  # on_track 0.7, at_risk 0.5


def day(n: int, quarter: Quarter = Q4) -> date:
    """The quarter's n-th day, from 1."""
    return quarter.start + timedelta(days=n - 1)


def daily(*values: float | None, first: int = 1) -> dict[date, float]:
    """A daily series from day `first` on; None leaves a day without data."""
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
        definition_hash="abc123",
    )
    defaults.update(fields)
    return KeyResultInput(**defaults)


def ratio_key_result(**fields) -> KeyResultInput:
    fields = {"metric_key": None, "numerator_key": "num", "denominator_key": "den", **fields}
    fields.setdefault("aggregate", "sum")
    return key_result(**fields)


def observations(series: dict[str, dict[date, float]]) -> pd.DataFrame:
    rows = [(key, d, v) for key, days in series.items() for d, v in days.items()]
    return pd.DataFrame(rows, columns=["metric_key", "date", "value"])


def score_row(
    kr: KeyResultInput,
    series: dict[str, dict[date, float]],
    as_of: date,
    quarter: Quarter = Q4,
    thresholds: StatusThresholds = DEFAULT,
) -> dict:
    frame = score_key_results([kr], quarter, observations(series), [as_of], thresholds)
    assert len(frame) == 1
    return frame.iloc[0].to_dict()


def missing(number) -> bool:
    return number is None or (isinstance(number, float) and math.isnan(number))


# ---------------------------------------------------------------------------
# Aggregates of a single series


class TestAggregateValue:
    # A count series: a row every fetched day, 0 included.
    counts = daily(4.0, 0.0, 6.0)

    @pytest.mark.parametrize(
        ("aggregate", "expected"),
        [
            ("sum", 10.0),  # 4 + 0 + 6
            ("latest", 6.0),
            ("mean", 10.0 / 3),  # (4 + 0 + 6) / 3, the 0 day counts
            ("mean_7d", 10.0 / 3),  # window 25 Sep..3 Oct clipped to 1..3 Oct
            ("min", 0.0),
            ("max", 6.0),
        ],
    )
    def test_each_aggregate(self, aggregate, expected):
        assert aggregate_value(self.counts, aggregate, Q4, day(3)) == pytest.approx(expected)

    @pytest.mark.parametrize("aggregate", ["sum", "latest", "mean", "mean_7d", "min", "max"])
    def test_no_day_of_data_up_to_the_as_of_day_is_null(self, aggregate):
        assert aggregate_value(daily(3.0, first=5), aggregate, Q4, day(4)) is None
        assert aggregate_value({}, aggregate, Q4, day(4)) is None

    def test_latest_skips_days_without_data(self):
        check_ins = daily(5.0, None, None, 7.0)  # days 1 and 4 only
        assert aggregate_value(check_ins, "latest", Q4, day(3)) == 5.0
        assert aggregate_value(check_ins, "latest", Q4, day(6)) == 7.0

    def test_mean_counts_only_days_with_data(self):
        # (2 + 4) / 2 = 3, not (2 + 4) / 5 days
        assert aggregate_value(daily(2.0, None, 4.0), "mean", Q4, day(5)) == pytest.approx(3.0)

    def test_mean_7d_is_clipped_at_the_quarter_start(self):
        series = {Q4.start - timedelta(days=1): 100.0, **daily(3.0, 6.0, 9.0)}
        # 30 Sep belongs to Q3: (3 + 6 + 9) / 3 = 6
        assert aggregate_value(series, "mean_7d", Q4, day(3)) == pytest.approx(6.0)

    def test_mean_7d_takes_the_7_calendar_days_ending_on_the_as_of_day(self):
        series = daily(*[float(n) for n in range(1, 11)])  # day n has value n
        # days 4..10: (4 + 5 + 6 + 7 + 8 + 9 + 10) / 7 = 49 / 7 = 7
        assert aggregate_value(series, "mean_7d", Q4, day(10)) == pytest.approx(7.0)

    def test_mean_7d_averages_the_days_with_data_in_the_window(self):
        series = {day(1): 10.0, day(9): 4.0, day(10): 6.0}
        # window days 4..10 holds days 9 and 10: (4 + 6) / 2 = 5; day 1 is outside
        assert aggregate_value(series, "mean_7d", Q4, day(10)) == pytest.approx(5.0)
        # window days 2..8 has no data
        assert aggregate_value(series, "mean_7d", Q4, day(8)) is None

    def test_min_and_max_over_days_with_data(self):
        series = daily(5.0, -1.0, None, 3.0)
        assert aggregate_value(series, "min", Q4, day(4)) == -1.0
        assert aggregate_value(series, "max", Q4, day(4)) == 5.0
        assert aggregate_value(series, "min", Q4, day(1)) == 5.0
        assert aggregate_value(series, "max", Q4, day(1)) == 5.0

    def test_sum_ignores_days_before_the_quarter_and_after_the_as_of_day(self):
        series = {Q4.start - timedelta(days=1): 50.0, **daily(1.0, 2.0, 40.0)}
        assert aggregate_value(series, "sum", Q4, day(2)) == pytest.approx(3.0)  # 1 + 2

    def test_unknown_aggregate_is_an_error(self):
        with pytest.raises(ValueError, match="median"):
            aggregate_value(daily(1.0), "median", Q4, day(1))


# ---------------------------------------------------------------------------
# Ratios


class TestRatioValue:
    def test_sum_is_the_ratio_of_the_sums_not_the_mean_of_daily_ratios(self):
        numerator = daily(1.0, 3.0, 0.0)
        denominator = daily(2.0, 4.0, 0.0)
        # (1 + 3 + 0) / (2 + 4 + 0) = 4 / 6; the mean of daily ratios would be 0.625
        assert ratio_value(numerator, denominator, "sum", Q4, day(3)) == pytest.approx(4 / 6)

    def test_zero_denominator_sum_or_no_data_is_null(self):
        assert ratio_value(daily(0.0), daily(0.0), "sum", Q4, day(1)) is None
        assert ratio_value({}, {}, "sum", Q4, day(1)) is None
        assert ratio_value({}, {}, "mean_7d", Q4, day(1)) is None

    def test_mean_7d_is_the_ratio_of_the_sums_over_the_7_days_ending_on_d(self):
        numerator = daily(*[1.0] * 8)
        denominator = daily(100.0, *[2.0] * 7)
        # as of day 8, days 2..8: 7 * 1 / (7 * 2) = 0.5
        assert ratio_value(numerator, denominator, "mean_7d", Q4, day(8)) == pytest.approx(0.5)
        # as of day 7, days 1..7 (clipped at the quarter start): 7 / (100 + 6 * 2) = 7 / 112
        assert ratio_value(numerator, denominator, "mean_7d", Q4, day(7)) == pytest.approx(0.0625)

    def test_mean_7d_with_a_zero_denominator_window_is_null(self):
        numerator = {day(1): 5.0, day(9): 0.0, day(10): 0.0}
        denominator = {day(1): 10.0, day(9): 0.0, day(10): 0.0}
        # window days 4..10: 0 / 0
        assert ratio_value(numerator, denominator, "mean_7d", Q4, day(10)) is None
        # the whole quarter so far: (5 + 0 + 0) / (10 + 0 + 0) = 0.5
        assert ratio_value(numerator, denominator, "sum", Q4, day(10)) == pytest.approx(0.5)

    def test_a_day_with_only_one_side_observed_does_not_count(self):
        numerator = daily(1.0, 5.0)
        denominator = daily(2.0)  # the denominator's source failed on day 2
        # 1 / 2, not (1 + 5) / 2
        assert ratio_value(numerator, denominator, "sum", Q4, day(2)) == pytest.approx(0.5)

    @pytest.mark.parametrize("aggregate", ["latest", "mean", "min", "max"])
    def test_other_aggregates_are_errors(self, aggregate):
        with pytest.raises(ValueError, match="ratio"):
            ratio_value(daily(1.0), daily(2.0), aggregate, Q4, day(1))

    def test_daily_ratio_has_no_value_on_zero_denominator_days(self):
        assert daily_ratio(daily(1.0, 0.0, 3.0), daily(4.0, 0.0)) == {day(1): 0.25}


# ---------------------------------------------------------------------------
# Progress and score


class TestProgressAndScore:
    @pytest.mark.parametrize(
        ("value", "progress", "score"),
        [
            (150.0, 0.5, 0.5),  # (150 - 100) / (200 - 100)
            (250.0, 1.5, 1.0),  # (250 - 100) / 100, uncapped progress, clamped score
            (50.0, -0.5, 0.0),  # (50 - 100) / 100: the wrong way
            (100.0, 0.0, 0.0),
        ],
    )
    def test_increase(self, value, progress, score):
        assert progress_and_score("increase", value, 100.0, 200.0) == pytest.approx(
            (progress, score)
        )

    @pytest.mark.parametrize(
        ("value", "progress", "score"),
        [
            (14.0, 0.5, 0.5),  # (14 - 20) / (8 - 20) = -6 / -12
            (23.0, -0.25, 0.0),  # (23 - 20) / -12 = 3 / -12: worse than the start
            (5.0, 1.25, 1.0),  # (5 - 20) / -12 = -15 / -12
            (8.0, 1.0, 1.0),  # (8 - 20) / -12
            (20.0, 0.0, 0.0),
        ],
    )
    def test_decrease_uses_the_same_signed_formula(self, value, progress, score):
        # value / target would say 14 / 8 = 1.75; abs() would score 23 as 0.25
        assert progress_and_score("decrease", value, 20.0, 8.0) == pytest.approx((progress, score))

    @pytest.mark.parametrize(
        ("value", "target", "expected"),
        [
            (0.0, 1.0, 0.0),
            (0.5, 1.0, 0.0),
            (1.0, 1.0, 1.0),  # at least the target
            (2.0, 1.0, 1.0),
            (2.0, 3.0, 0.0),
            (3.0, 3.0, 1.0),
        ],
    )
    def test_milestone(self, value, target, expected):
        assert progress_and_score("milestone", value, None, target) == (expected, expected)

    def test_maintain_takes_the_share_of_days_held_not_the_value(self):
        assert progress_and_score("maintain_above", 42.0, None, 50.0, share_held=0.75) == (
            0.75,
            0.75,
        )

    @pytest.mark.parametrize(
        "kr_type", ["increase", "decrease", "maintain_above", "maintain_below", "milestone"]
    )
    def test_null_value_gives_null_progress_and_score(self, kr_type):
        assert progress_and_score(kr_type, None, 0.0, 10.0, share_held=0.5) == (None, None)

    def test_increase_without_a_start_is_an_error(self):
        with pytest.raises(ValueError, match="start"):
            progress_and_score("increase", 5.0, None, 10.0)


class TestShareOfDaysHeld:
    def test_maintain_above_is_inclusive(self):
        # held: day 1 (99.5 >= 99.5), day 3, day 5; not day 2; day 4 has no data -> 3 / 4
        series = daily(99.5, 99.4, 100.0, None, 99.6)
        assert share_of_days_held(series, "maintain_above", 99.5, Q4, day(5)) == 0.75

    def test_maintain_below_is_inclusive(self):
        # held: day 1 (200 <= 200), day 3; not day 2 -> 2 / 3
        series = daily(200.0, 201.0, 150.0)
        assert share_of_days_held(series, "maintain_below", 200.0, Q4, day(3)) == pytest.approx(
            2 / 3
        )

    def test_no_data_is_null(self):
        assert share_of_days_held({}, "maintain_above", 1.0, Q4, day(3)) is None

    def test_maintain_score_judges_each_day_while_value_shows_the_aggregate(self):
        kr = key_result(kr_type="maintain_above", start=None, target=10.0, aggregate="mean")
        row = score_row(kr, {"m": daily(30.0, 9.0, 9.0, 9.0)}, day(4))
        assert row["value"] == pytest.approx(14.25)  # (30 + 9 + 9 + 9) / 4, above 10
        assert row["score"] == pytest.approx(0.25)  # only day 1 held: 1 / 4
        assert row["progress"] == pytest.approx(0.25)
        assert row["status"] == "off_track"

    def test_maintain_ratio_judges_the_daily_ratio(self):
        kr = ratio_key_result(kr_type="maintain_above", start=None, target=0.8)
        series = {"num": daily(9.0, 1.0, 0.0), "den": daily(10.0, 10.0, 0.0)}
        row = score_row(kr, series, day(3))
        assert row["value"] == pytest.approx(0.5)  # (9 + 1 + 0) / (10 + 10 + 0)
        # daily 0.9 held, 0.1 not; day 3 is 0 / 0, no data: 1 / 2
        assert row["score"] == pytest.approx(0.5)


# ---------------------------------------------------------------------------
# Expected progress and the quarter's edges


class TestExpectedProgress:
    def test_first_and_last_day_of_q4(self):
        assert Q4.days == 92  # 31 + 30 + 31
        assert expected_progress(Q4, date(2026, 10, 1)) == pytest.approx(1 / 92)
        assert expected_progress(Q4, date(2026, 12, 31)) == 1.0

    def test_q1_of_a_leap_year_has_91_days(self):
        assert Q1_2028.days == 91  # 31 + 29 + 31
        assert expected_progress(Q1_2028, date(2028, 2, 29)) == pytest.approx(60 / 91)
        assert expected_progress(Q1_2028, date(2028, 3, 31)) == 1.0

    def test_q1_2026_has_90_days(self):
        assert Q1_2026.days == 90  # 31 + 28 + 31
        assert expected_progress(Q1_2026, date(2026, 1, 1)) == pytest.approx(1 / 90)
        assert expected_progress(Q1_2026, date(2026, 2, 14)) == 0.5  # day 45 / 90
        assert expected_progress(Q1_2026, date(2026, 3, 31)) == 1.0

    def test_a_day_outside_the_quarter_is_an_error(self):
        with pytest.raises(ValueError, match="outside"):
            expected_progress(Q4, date(2027, 1, 1))
        with pytest.raises(ValueError, match="outside"):
            expected_progress(Q4, date(2026, 9, 30))

    def test_rows_on_the_first_and_last_day(self):
        kr = key_result(aggregate="sum", target=92.0)
        series = {"m": daily(*[1.0] * 92)}
        frame = score_key_results([kr], Q4, observations(series), [day(1), day(92)])
        first, last = frame.to_dict("records")
        assert first["expected_progress"] == pytest.approx(1 / 92)
        assert first["value"] == 1.0
        assert first["status"] == "on_track"  # grace period
        assert last["expected_progress"] == 1.0
        assert last["value"] == 92.0  # 92 days * 1
        assert last["status"] == "achieved"


# ---------------------------------------------------------------------------
# Status


def status(kr_type, progress, as_of, quarter=Q4, thresholds=DEFAULT, value=1.0):
    score = None if progress is None else min(max(progress, 0.0), 1.0)
    return kr_status(kr_type, value, progress, score, quarter, as_of, thresholds)


class TestKrStatus:
    def test_no_data_comes_first(self):
        assert kr_status("increase", None, None, None, Q4, day(50)) == "no_data"
        assert kr_status("maintain_above", None, None, None, Q4, day(50)) == "no_data"

    @pytest.mark.parametrize("kr_type", ["increase", "decrease", "milestone"])
    def test_achieved_at_score_1(self, kr_type):
        assert status(kr_type, 1.0, day(3)) == "achieved"
        assert status(kr_type, 1.25, day(92)) == "achieved"

    @pytest.mark.parametrize(
        ("score", "expected"),
        [
            (1.0, "on_track"),  # never achieved
            (19 / 20, "on_track"),  # exactly 0.95
            (18 / 20, "at_risk"),
            (16 / 20, "at_risk"),  # exactly 0.8
            (15 / 20, "off_track"),
        ],
    )
    @pytest.mark.parametrize("kr_type", ["maintain_above", "maintain_below"])
    def test_maintain(self, kr_type, score, expected):
        assert kr_status(kr_type, 5.0, score, score, Q4, day(20)) == expected

    @pytest.mark.parametrize(
        ("as_of", "quarter", "expected"),
        [
            (day(1), Q4, "on_track"),
            (day(46), Q4, "on_track"),  # 46 / 92 = 0.5
            (day(47), Q4, "at_risk"),  # 47 / 92 > 0.5
            (day(81, Q1_2026), Q1_2026, "at_risk"),  # 81 / 90 = 0.9
            (day(82, Q1_2026), Q1_2026, "off_track"),  # 82 / 90 > 0.9
            (day(92), Q4, "off_track"),
        ],
    )
    def test_milestone_not_reached(self, as_of, quarter, expected):
        assert status("milestone", 0.0, as_of, quarter) == expected

    def test_grace_period_is_the_first_7_days(self):
        assert status("increase", 0.0, day(1)) == "on_track"
        assert status("increase", 0.0, day(7)) == "on_track"  # pace 0, still in grace
        assert status("increase", 0.0, day(8)) == "off_track"  # pace 0 / (8 / 92) = 0
        assert status("decrease", -0.01, day(7)) == "off_track"  # going the wrong way

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (7.0, "on_track"),  # progress 7 / 92, expected 10 / 92: pace 0.7
            (6.99, "at_risk"),  # pace 0.699
            (5.0, "at_risk"),  # pace 5 / 10 = 0.5
            (4.99, "off_track"),  # pace 0.499
        ],
    )
    def test_increase_pace_thresholds_are_inclusive(self, value, expected):
        kr = key_result(start=0.0, target=92.0)
        assert score_row(kr, {"m": daily(value, first=10)}, day(10))["status"] == expected

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            # day 46: expected progress 46 / 92 = 0.5
            (15.8, "on_track"),  # progress (15.8 - 20) / (8 - 20) = 0.35, pace 0.7
            (16.0, "at_risk"),  # progress -4 / -12 = 1/3, pace 2/3
            (17.0, "at_risk"),  # progress -3 / -12 = 0.25, pace 0.5
            (17.1, "off_track"),  # progress -2.9 / -12 = 0.2417, pace 0.483
        ],
    )
    def test_decrease_pace_thresholds_are_inclusive(self, value, expected):
        kr = key_result(kr_type="decrease", start=20.0, target=8.0)
        assert score_row(kr, {"m": daily(value, first=46)}, day(46))["status"] == expected

    @pytest.mark.parametrize(
        ("progress", "expected"),
        [
            (0.45, "on_track"),  # pace 0.45 / 0.5 = 0.9
            (0.4, "at_risk"),  # pace 0.8: on_track with the default 0.7
            (0.3, "at_risk"),  # pace 0.6
            (0.29, "off_track"),  # pace 0.58
        ],
    )
    def test_custom_thresholds(self, progress, expected):
        custom = StatusThresholds(on_track=0.9, at_risk=0.6)
        assert status("increase", progress, day(46), thresholds=custom) == expected

    def test_custom_thresholds_through_score_key_results(self):
        kr = key_result(start=0.0, target=100.0)
        custom = StatusThresholds(on_track=0.9, at_risk=0.6)
        # day 46: progress 40 / 100 = 0.4, pace 0.4 / 0.5 = 0.8
        series = {"m": daily(40.0, first=46)}
        assert score_row(kr, series, day(46))["status"] == "on_track"
        assert score_row(kr, series, day(46), thresholds=custom)["status"] == "at_risk"

    def test_last_day_of_the_quarter(self):
        # expected progress 1: pace = progress
        assert status("increase", 0.7, day(92)) == "on_track"
        assert status("increase", 0.69, day(92)) == "at_risk"
        assert status("increase", 0.49, day(92)) == "off_track"


# ---------------------------------------------------------------------------
# Forecast


class TestForecast:
    def test_run_rate_for_the_sum_of_a_series(self):
        kr = key_result(aggregate="sum", start=0.0, target=400.0)
        row = score_row(kr, {"m": daily(3.0, 5.0, 4.0)}, day(3))
        assert row["value"] == 12.0  # 3 + 5 + 4
        assert row["forecast_method"] == "run_rate"
        assert row["forecast_value"] == pytest.approx(368.0)  # 12 / 3 days * 92 days
        assert row["forecast_score"] == pytest.approx(0.92)  # (368 - 0) / (400 - 0)

    def test_linear_through_the_values_as_of_each_day(self):
        kr = key_result(aggregate="latest", start=10.0, target=300.0)
        row = score_row(kr, {"m": daily(10.0, 12.0, 14.0)}, day(3))
        assert row["forecast_method"] == "linear"
        # points (0, 10), (1, 12), (2, 14): y = 10 + 2x; at x = 91: 192
        assert row["forecast_value"] == pytest.approx(192.0)
        assert row["forecast_score"] == pytest.approx(182 / 290)  # (192 - 10) / (300 - 10)

    def test_linear_least_squares_by_hand(self):
        kr = key_result(aggregate="latest")
        # points (0, 1), (1, 3), (2, 2): mean x 1, mean y 2,
        # slope = sum(dx*dy) / sum(dx^2) = ((-1)(-1) + 0 + (1)(0)) / 2 = 0.5
        # at x = 91: 2 + 0.5 * (91 - 1) = 47
        row = score_row(kr, {"m": daily(1.0, 3.0, 2.0)}, day(3))
        assert row["forecast_value"] == pytest.approx(47.0)
        assert row["forecast_score"] == pytest.approx(0.47)  # (47 - 0) / (100 - 0)

    def test_linear_uses_only_the_28_days_ending_on_d(self):
        kr = key_result(aggregate="latest")
        # days 1..12 read 0, days 13..40 read their day number n (x = n - 1, y = x + 1)
        series = {"m": daily(*[0.0] * 12, *[float(n) for n in range(13, 41)])}
        row = score_row(kr, series, day(40))
        assert row["forecast_value"] == pytest.approx(92.0)  # y = x + 1 at x = 91

    def test_linear_on_a_decrease(self):
        kr = key_result(kr_type="decrease", start=20.0, target=8.0)
        # points (0, 20), (1, 19.9): slope -0.1; at x = 91: 20 - 9.1 = 10.9
        row = score_row(kr, {"m": daily(20.0, 19.9)}, day(2))
        assert row["forecast_value"] == pytest.approx(10.9)
        assert row["forecast_score"] == pytest.approx(0.7583333)  # (10.9 - 20) / (8 - 20)

    def test_linear_for_a_ratio_sum(self):
        kr = ratio_key_result(aggregate="sum", start=0.0, target=1.0)
        series = {"num": daily(1.0, 2.0), "den": daily(2.0, 2.0)}
        row = score_row(kr, series, day(2))
        assert row["forecast_method"] == "linear"
        assert row["value"] == pytest.approx(0.75)  # (1 + 2) / (2 + 2)
        # points (0, 0.5), (1, 0.75): slope 0.25; at x = 91: 0.5 + 22.75 = 23.25
        assert row["forecast_value"] == pytest.approx(23.25)
        assert row["forecast_score"] == 1.0  # clamped

    def test_fewer_than_2_points_gives_the_value(self):
        kr = key_result(aggregate="mean_7d")
        row = score_row(kr, {"m": daily(5.0)}, day(1))
        assert row["forecast_value"] == 5.0
        assert row["forecast_score"] == pytest.approx(0.05)  # 5 / 100

    def test_maintain_and_milestone_forecast_score_is_the_current_score(self):
        maintain = key_result(kr_type="maintain_above", start=None, target=10.0)
        row = score_row(maintain, {"m": daily(12.0, 8.0)}, day(2))
        assert row["score"] == 0.5  # 1 of 2 days held
        assert row["forecast_score"] == 0.5
        milestone = key_result(kr_type="milestone", start=None, target=1.0)
        # points (0, 0), (1, 0.5), (2, 0.5): a rising line, but not reached today
        row = score_row(milestone, {"m": daily(0.0, 0.5, 0.5)}, day(3))
        assert row["forecast_value"] > 1.0
        assert row["score"] == 0.0
        assert row["forecast_score"] == 0.0

    def test_no_value_no_forecast_but_the_method_is_recorded(self):
        row = score_row(key_result(aggregate="sum"), {}, day(10))
        assert missing(row["forecast_value"])
        assert missing(row["forecast_score"])
        assert row["forecast_method"] == "run_rate"

    def test_forecast_function_ignores_values_after_the_as_of_day(self):
        kr = key_result(aggregate="latest", start=10.0, target=300.0)
        values_as_of = daily(10.0, 12.0, 14.0, 1000.0, -50.0)
        result = forecast(kr, values_as_of, Q4, day(3), score=None)
        assert result.value == pytest.approx(192.0)  # 10 + 2 * 91, as above
        assert result.score == pytest.approx(182 / 290)
        assert result.method == "linear"


# ---------------------------------------------------------------------------
# The whole quarter: look-ahead, staleness, frame shape


class TestScoreKeyResults:
    def test_no_look_ahead(self):
        key_results = [
            key_result(kr_id="sum", aggregate="sum"),
            key_result(kr_id="latest", aggregate="latest"),
            key_result(kr_id="mean7", aggregate="mean_7d"),
            key_result(kr_id="max", aggregate="max", kr_type="decrease", start=50.0, target=5.0),
            key_result(kr_id="keep", kr_type="maintain_below", start=None, target=4.0),
            ratio_key_result(kr_id="ratio", aggregate="mean_7d"),
        ]
        series = {
            "m": daily(*[float(n % 7) for n in range(1, 41)]),
            "num": daily(*[float(n % 3) for n in range(1, 41)]),
            "den": daily(*[float(n % 4) for n in range(1, 41)]),
        }
        full = observations(series)
        as_of_days = [day(1), day(9), day(20), day(30)]
        everything = score_key_results(key_results, Q4, full, as_of_days)
        for as_of in as_of_days:
            past_only = score_key_results(key_results, Q4, full[full["date"] <= as_of], [as_of])
            expected = everything[everything["as_of"] == as_of].reset_index(drop=True)
            pd.testing.assert_frame_equal(past_only, expected)

    def test_stale_carries_the_last_value_forward(self):
        kr = key_result(aggregate="sum")
        series = {"m": daily(1.0, 2.0, 3.0)}  # the source failed on day 4
        on_day_3, on_day_4 = score_key_results(
            [kr], Q4, observations(series), [day(3), day(4)]
        ).to_dict("records")
        assert on_day_3["stale"] is False
        assert on_day_3["last_observed"] == day(3)
        assert on_day_4["stale"] is True
        assert on_day_4["value"] == 6.0  # 1 + 2 + 3, carried, never zeroed
        assert on_day_4["last_observed"] == day(3)

    def test_a_ratio_is_stale_when_either_series_misses_the_day(self):
        kr = ratio_key_result()
        series = {"num": daily(1.0, 1.0, 1.0, 1.0), "den": daily(2.0, 2.0, 2.0)}
        row = score_row(kr, series, day(4))
        assert row["stale"] is True
        assert row["last_observed"] == day(3)  # the last day both series have a row
        assert row["value"] == pytest.approx(0.5)  # (1 + 1 + 1) / (2 + 2 + 2)

    def test_a_ratio_with_a_zero_denominator_day_is_observed(self):
        kr = ratio_key_result()
        series = {"num": daily(1.0, 0.0), "den": daily(2.0, 0.0)}
        row = score_row(kr, series, day(2))
        assert row["stale"] is False
        assert row["last_observed"] == day(2)
        assert row["value"] == pytest.approx(0.5)  # (1 + 0) / (2 + 0)

    def test_manual_series_are_never_stale(self):
        kr = key_result(tracks_staleness=False, aggregate="latest")
        row = score_row(kr, {"m": daily(7.0)}, day(5))
        assert row["stale"] is False
        assert row["last_observed"] == day(1)
        assert row["value"] == 7.0

    def test_no_data_at_all(self):
        row = score_row(key_result(), {"m": daily(3.0, first=6)}, day(5))  # data only after D
        assert missing(row["value"])
        assert missing(row["progress"])
        assert missing(row["score"])
        assert row["status"] == "no_data"
        assert row["stale"] is True
        assert row["last_observed"] is None
        assert row["expected_progress"] == pytest.approx(5 / 92)

    def test_frame_shape_and_types(self):
        key_results = [
            key_result(kr_id="a", kr_type="milestone", start=None, target=1.0),
            key_result(kr_id="b", owner=None, metric_key="other"),
        ]
        frame = score_key_results(
            key_results, Q4, observations({"m": daily(1.0)}), [day(2), day(1), day(2)]
        )
        assert list(frame.columns) == KR_SCORE_COLUMNS
        # one row per (KR, as-of day), duplicates dropped, days ascending
        assert list(zip(frame["kr_id"], frame["as_of"], strict=True)) == [
            ("a", day(1)),
            ("a", day(2)),
            ("b", day(1)),
            ("b", day(2)),
        ]
        first = frame.iloc[0]
        assert first["quarter"] == "2026-Q4"
        assert type(first["as_of"]) is date
        assert first["objective_id"] == "obj"
        assert first["kr_title"] == "A key result"
        assert first["owner"] == "growth"
        assert first["definition_hash"] == "abc123"
        assert first["status"] == "achieved"
        assert math.isnan(first["start"])  # missing float: NaN
        assert frame.iloc[2]["owner"] is None  # missing object: None
        assert frame["stale"].dtype == bool
        assert frame["value"].dtype == float

    def test_empty_inputs(self):
        frame = score_key_results([], Q4, observations({}), [day(1)])
        assert list(frame.columns) == KR_SCORE_COLUMNS
        assert frame.empty

    def test_as_of_day_outside_the_quarter_is_an_error(self):
        with pytest.raises(ValueError, match="outside"):
            score_key_results([key_result()], Q4, observations({}), [date(2027, 1, 1)])

    @pytest.mark.parametrize(
        "kr",
        [
            key_result(start=None),
            key_result(kr_type="decrease", start=8.0, target=8.0),
            key_result(kr_type="grow"),
            key_result(aggregate="median"),
            ratio_key_result(aggregate="latest"),
            key_result(metric_key=None),
            key_result(numerator_key="num"),
        ],
    )
    def test_invalid_key_results_are_errors(self, kr):
        with pytest.raises(ValueError, match="key result 'kr'"):
            score_key_results([kr], Q4, observations({}), [day(1)])

    def test_duplicate_observations_are_an_error(self):
        frame = observations({"m": daily(1.0, 2.0)})
        with pytest.raises(ValueError, match="more than one observation"):
            score_key_results([key_result()], Q4, pd.concat([frame, frame]), [day(2)])


# ---------------------------------------------------------------------------
# Objectives


def kr_score_rows(*rows: tuple[str, date, float | None, float | None, str]) -> pd.DataFrame:
    """A kr_scores frame from (kr_id, as_of, value, score, status)."""
    records = []
    for kr_id, as_of, value, score, kr_status_ in rows:
        record = dict.fromkeys(KR_SCORE_COLUMNS)
        record.update(
            quarter="2026-Q4",
            kr_id=kr_id,
            as_of=as_of,
            value=math.nan if value is None else value,
            score=math.nan if score is None else score,
            status=kr_status_,
        )
        records.append(record)
    return pd.DataFrame(records, columns=KR_SCORE_COLUMNS)


class TestScoreObjectives:
    objectives = [
        ObjectiveInput("growth", "Grow", "product", "company"),
        ObjectiveInput("quality", "Be reliable", None, None),
    ]
    key_results = [
        key_result(kr_id="a", objective_id="growth", weight=2.0),
        key_result(kr_id="b", objective_id="growth", weight=1.0),
        key_result(kr_id="c", objective_id="growth", weight=1.0),
        key_result(kr_id="q", objective_id="quality", weight=1.0),
    ]

    def test_weights_coverage_and_worst_status(self):
        kr_scores = kr_score_rows(
            ("a", day(10), 50.0, 0.5, "on_track"),
            ("b", day(10), 80.0, 0.8, "at_risk"),
            ("c", day(10), None, None, "no_data"),
            ("q", day(10), 1.0, 1.0, "achieved"),
        )
        frame = score_objectives(self.objectives, self.key_results, kr_scores)
        assert list(frame.columns) == OBJECTIVE_SCORE_COLUMNS
        growth, quality = frame.to_dict("records")
        assert growth["objective_id"] == "growth"
        assert growth["score"] == pytest.approx(0.6)  # (2 * 0.5 + 1 * 0.8) / (2 + 1)
        assert growth["coverage"] == pytest.approx(0.75)  # (2 + 1) / (2 + 1 + 1)
        assert growth["status"] == "at_risk"  # worst of on_track, at_risk; no_data ignored
        assert (growth["quarter"], growth["as_of"]) == ("2026-Q4", day(10))
        assert (growth["title"], growth["owner"], growth["aligns_to"]) == (
            "Grow",
            "product",
            "company",
        )
        assert quality["score"] == 1.0
        assert quality["coverage"] == 1.0
        assert quality["status"] == "achieved"
        assert quality["owner"] is None

    def test_off_track_beats_achieved(self):
        kr_scores = kr_score_rows(
            ("a", day(10), 1.0, 1.0, "achieved"),
            ("b", day(10), 0.0, 0.0, "off_track"),
            ("c", day(10), 1.0, 1.0, "achieved"),
        )
        growth = score_objectives(self.objectives, self.key_results, kr_scores).iloc[0]
        assert growth["status"] == "off_track"
        assert growth["score"] == pytest.approx(0.75)  # (2 * 1 + 1 * 0 + 1 * 1) / 4
        assert growth["coverage"] == 1.0

    def test_no_kr_with_data_is_no_data(self):
        kr_scores = kr_score_rows(
            ("a", day(10), None, None, "no_data"),
            ("b", day(10), None, None, "no_data"),
        )
        growth, quality = score_objectives(self.objectives, self.key_results, kr_scores).to_dict(
            "records"
        )
        assert growth["status"] == "no_data"
        assert math.isnan(growth["score"])
        assert growth["coverage"] == 0.0
        # "q" has no row at all that day: no data too
        assert quality["status"] == "no_data"
        assert quality["coverage"] == 0.0

    def test_one_row_per_objective_and_as_of_day(self):
        kr_scores = kr_score_rows(
            ("a", day(2), 10.0, 0.1, "on_track"),
            ("a", day(1), 5.0, 0.05, "on_track"),
            ("q", day(1), 1.0, 1.0, "achieved"),
        )
        frame = score_objectives(self.objectives, self.key_results, kr_scores)
        assert list(zip(frame["objective_id"], frame["as_of"], strict=True)) == [
            ("growth", day(1)),
            ("quality", day(1)),
            ("growth", day(2)),
            ("quality", day(2)),
        ]
        assert frame.iloc[2]["score"] == pytest.approx(0.1)  # only "a" has data: 2 * 0.1 / 2
        assert frame.iloc[2]["coverage"] == pytest.approx(0.5)  # 2 / (2 + 1 + 1)
        assert frame.iloc[3]["status"] == "no_data"

    def test_through_score_key_results(self):
        key_results = [
            key_result(kr_id="a", objective_id="growth", weight=3.0, start=0.0, target=10.0),
            key_result(kr_id="b", objective_id="growth", weight=1.0, metric_key="nothing"),
        ]
        kr_scores = score_key_results(
            key_results, Q4, observations({"m": daily(5.0, first=46)}), [day(46)]
        )
        growth = score_objectives(self.objectives[:1], key_results, kr_scores).iloc[0]
        assert growth["score"] == pytest.approx(0.5)  # "a": 5 / 10, the only KR with data
        assert growth["coverage"] == pytest.approx(0.75)  # 3 / (3 + 1)
        assert growth["status"] == "on_track"  # "a": pace 0.5 / (46 / 92) = 1

    def test_empty_kr_scores(self):
        frame = score_objectives(self.objectives, self.key_results, kr_score_rows())
        assert list(frame.columns) == OBJECTIVE_SCORE_COLUMNS
        assert frame.empty


# ---------------------------------------------------------------------------
# The days of stored observations, whatever form their dates take


@pytest.mark.parametrize(
    "as_stored",
    [
        pytest.param(lambda d: d, id="dates"),
        pytest.param(lambda d: d.isoformat(), id="text"),
        pytest.param(pd.Timestamp, id="timestamps"),
    ],
)
def test_each_observation_counts_on_its_own_day(as_stored):
    # 4 on day 1, 6 on day 3 (twice over, in two series), 5 on day 92: by day 3 the sum is
    # 10, by day 92 it is 15; a day outside the quarter (30 Sep) is not counted.
    rows = [
        ("m", day(1), 4.0),
        ("other", day(3), 6.0),
        ("m", day(3), 6.0),
        ("m", day(92), 5.0),
        ("m", Q4.start - timedelta(days=1), 100.0),
    ]
    frame = pd.DataFrame(
        [(key, as_stored(when), value) for key, when, value in rows],
        columns=["metric_key", "date", "value"],
    )
    scores = score_key_results(
        [key_result(aggregate="sum")], Q4, frame, [day(2), day(3), day(92)], DEFAULT
    )
    assert scores["value"].tolist() == [4.0, 10.0, 15.0]


def test_aware_datetimes_count_on_their_own_calendar_day():
    # The same instant seen from two zones falls on two calendar days (1 Oct in UTC,
    # 2 Oct in UTC+2): each row counts on the day it names.
    utc, plus_two = timezone.utc, timezone(timedelta(hours=2))
    frame = pd.DataFrame(
        [
            ("m", datetime(2026, 10, 1, 23, tzinfo=utc), 4.0),
            ("n", datetime(2026, 10, 2, 1, tzinfo=plus_two), 6.0),
        ],
        columns=["metric_key", "date", "value"],
    )
    first = score_key_results([key_result(aggregate="sum")], Q4, frame, [day(1)], DEFAULT)
    second = score_key_results(
        [key_result(metric_key="n", aggregate="sum")], Q4, frame, [day(1), day(2)], DEFAULT
    )
    assert first["value"].tolist() == [4.0]
    assert missing(second["value"].iloc[0])
    assert second["value"].iloc[1] == 6.0
