"""Numbers written for their size, shares as percents, durations; worked out by hand."""

from __future__ import annotations

import math

import pytest

from okr_metrics.pipelines.dashboard.formats import (
    DURATION,
    NUMBER,
    SHARE,
    ValueFormat,
    format_delta,
    format_duration,
    format_number,
    format_score,
    format_share,
    grade,
    share_decimals,
    value_format,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (12840.0, "12,840"),
        (459945.4, "459,945"),
        (1000, "1,000"),
        (999.96, "1,000"),
        (390.14, "390.1"),
        (480.0, "480"),
        (44.1, "44.1"),
        (72.0, "72"),
        (7.4167, "7.42"),
        (1.5, "1.5"),
        (0.0, "0"),
        (0.5968, "0.597"),
        (0.042, "0.042"),
        (-1250.0, "-1,250"),
        (1_250_000, "1.25M"),
        (3_000_000_000, "3B"),
        (None, "–"),
        (math.nan, "–"),
    ],
)
def test_numbers_for_their_size(value, text):
    assert format_number(value) == text


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [
        (0.85, None, "85%"),
        (0.042, None, "4.2%"),
        (0.0, None, "0%"),
        (0.9994, 2, "99.94%"),
        (0.7, 0, "70%"),
        (1.25, 0, "125%"),
        (None, 0, "–"),
    ],
)
def test_shares_as_percents(value, decimals, text):
    assert format_share(value, decimals) == text


def test_share_decimals_write_the_references_exactly():
    assert share_decimals(0.52, 0.70) == 0
    assert share_decimals(0.048, 0.05) == 1
    assert share_decimals(None, 0.9995) == 2
    assert share_decimals(0.123456) == 2  # never more than two


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (45, "45s"),
        (390.14, "6m 30s"),
        (480, "8m"),
        (7200, "2h"),
        (5400, "1h 30m"),
        (93784, "1d 2h"),
        (-90, "-1m 30s"),
        (None, "–"),
    ],
)
def test_durations(seconds, text):
    assert format_duration(seconds) == text


def test_scores_and_grades_follow_the_0_1_convention():
    assert format_score(0.7) == "0.70"
    assert format_score(None) == "–"
    assert [grade(s) for s in (1.0, 0.7, 0.6999, 0.4, 0.3999, 0.0, None)] == [
        "green",
        "green",
        "yellow",
        "yellow",
        "red",
        "red",
        "none",
    ]


def test_a_committed_kr_is_green_only_at_1():
    scores = (1.0, 0.9999, 0.7, 0.6999, 0.4, None)
    assert [grade(s, "committed") for s in scores] == [
        "green",
        "yellow",
        "yellow",
        "red",
        "red",
        "none",
    ]
    assert [grade(s, "aspirational") for s in scores] == [grade(s) for s in scores]


def test_a_band_of_shares_is_written_as_shares():
    band = value_format("maintain_between", None, None, {"low": 0.2, "high": 0.45})
    assert (band(0.2), band(0.45)) == ("20%", "45%")
    assert value_format("maintain_between", 150, 300)(239.8) == "239.8"


def test_deltas_carry_their_sign():
    assert format_delta("1,200", 1200) == "+1,200"
    assert format_delta("0", 0) == "±0"
    assert format_delta("3", -3) == "−3"
    assert ValueFormat(SHARE, 0).delta(0.02) == "+2.0 pp"
    assert ValueFormat(SHARE, 2).delta(-0.0001) == "−0.01 pp"
    assert ValueFormat(NUMBER).delta(998.0) == "+998"
    assert ValueFormat(DURATION).delta(-90) == "−1m 30s"


def test_which_kr_is_a_share_a_duration_or_a_number():
    # Start and target in 0..1: a share, written with the decimals its target needs.
    push_opt_in = value_format("increase", 0.52, 0.70)
    assert (push_opt_in.kind, push_opt_in(0.6192), push_opt_in(0.70)) == (SHARE, "62%", "70%")
    uptime = value_format("maintain_above", None, 0.9995)
    assert uptime(0.99941) == "99.94%"
    churn = value_format("maintain_below", None, 0.05)
    assert churn(0.042) == "4.2%"  # a small share keeps a decimal
    # Outside 0..1, or a milestone: a number.
    assert value_format("decrease", 1.5, 0.6).kind == NUMBER
    assert value_format("milestone", None, 1.0).kind == NUMBER
    assert value_format("increase", 10000, 13000)(11196.0) == "11,196"
    # A definition that says what its values are wins; a GA4 duration metric is seconds.
    assert value_format("increase", 300, 480, {"unit": "seconds"})(390.14) == "6m 30s"
    assert value_format("increase", 0.2, 0.5, {"format": "number"}).kind == NUMBER
    ga = {"metric": {"source": "google_analytics", "metric": "averageSessionDuration"}}
    assert value_format("increase", 300, 480, ga)(390.14) == "6m 30s"
    assert value_format("increase", 5, 60, {"unit": "minutes"})(6.5) == "6m 30s"
