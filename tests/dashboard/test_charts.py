"""The inline SVG charts and the text sparkline, on small series worked out by hand."""

from __future__ import annotations

import re
from datetime import date, timedelta

from okr_metrics.pipelines.dashboard.charts import (
    Series,
    history_chart,
    nice_ticks,
    score_chart,
    sparkline,
    trend_chart,
)
from okr_metrics.pipelines.vocabulary.quarters import Quarter

Q4 = Quarter(2026, 4)  # 92 days: Oct 1 is x = 0, Dec 31 is x = 91 days


def days(*values):
    return [(Q4.start + timedelta(days=i), v) for i, v in enumerate(values)]


def attribute(svg: str, marker: str, name: str) -> str:
    element = re.search(rf"<[^>]*{re.escape(marker)}[^>]*>", svg).group(0)
    return re.search(rf'\b{name}="([^"]*)"', element).group(1)


def test_trend_chart_draws_value_forecast_and_expected_mark():
    # increase 0 -> 91, as of Oct 4 (4 days elapsed of 92), values 0, 1, gap, 3.
    series = Series(
        days(0.0, 1.0, None, 3.0), Q4, date(2026, 10, 4), "increase", start=0.0, target=91.0,
        forecast=91.0,
    )  # fmt: skip
    svg = str(trend_chart(series, "green", label="a KR"))
    assert svg.startswith('<svg data-chart="trend"')

    # The frame: x from 2 to 2 + 162 over 91 days, y from 4 (top) to 40 (bottom) over the
    # domain 0..91 padded by 8% of 91 = 7.28 each side: -7.28..98.28.
    def x(day):
        return 2 + day / 91 * 162

    def y(value):
        return 4 + (1 - (value + 7.28) / 105.56) * 36

    path = attribute(svg, 'data-line="value"', "d")
    # The gap on Oct 3 starts a new segment (M), and the points are where they should be.
    segments = [s for s in re.split(r"(?=M)", path) if s]
    assert len(segments) == 2
    first = [tuple(map(float, p.split(","))) for p in re.findall(r"[ML]([\d.,-]+)", segments[0])]
    assert [(round(a, 1), round(b, 1)) for a, b in first] == [
        (round(x(0), 1), round(y(0), 1)),
        (round(x(1), 1), round(y(1), 1)),
    ]
    # The forecast runs from the last value (Oct 4) to the quarter's last day at 91.
    assert float(attribute(svg, 'data-line="forecast"', "x1")) == round(x(3), 1)
    assert float(attribute(svg, 'data-line="forecast"', "x2")) == round(x(91), 1)
    assert float(attribute(svg, 'data-line="forecast"', "y2")) == round(y(91), 1)
    # The expected-progress mark on Oct 4: 0 + 91 * 4/92.
    assert float(attribute(svg, 'data-mark="expected"', "cy")) == round(y(91 * 4 / 92), 1)
    # No interval in the warehouse: no band.
    assert "data-band" not in svg
    assert "#1a7f37" in svg  # drawn in the score's colour


def test_the_band_is_drawn_only_when_the_interval_is_there():
    base = dict(points=days(1.0, 2.0), quarter=Q4, as_of=date(2026, 10, 2), kr_type="increase",
                start=0.0, target=10.0, forecast=6.0)  # fmt: skip
    assert "data-band" not in str(history_chart(Series(**base)))
    banded = str(history_chart(Series(**base, forecast_low=4.0, forecast_high=8.0)))
    points = attribute(banded, 'data-band="forecast"', "points").split()
    assert len(points) == 3  # from the last value out to [low, high] on the last day
    (_, y_high), (_, y_low) = (map(float, p.split(",")) for p in points[1:])
    assert y_high < y_low  # higher values are higher on the page


def test_maintain_krs_get_a_target_line_not_an_expected_one():
    series = Series(days(0.99, 0.98), Q4, date(2026, 10, 2), "maintain_above", target=0.995)
    svg = str(trend_chart(series))
    assert 'data-line="target"' in svg and 'data-mark="expected"' not in svg


def test_labels_are_escaped_and_the_history_chart_writes_its_target():
    series = Series(days(5.0), Q4, date(2026, 10, 1), "increase", start=0.0, target=6.0)
    svg = str(history_chart(series, label="<script>alert(1)</script>"))
    assert "<script>" not in svg and "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
    assert svg.startswith('<svg data-chart="history"')
    assert ">target 6</text>" in svg
    assert ">Oct 1</text>" in svg and ">Nov 1</text>" in svg and ">Dec 1</text>" in svg


def test_score_chart_spans_0_to_1():
    svg = str(score_chart(days(0.0, 0.5, 1.0), Q4, date(2026, 10, 3), paced=True))
    assert svg.startswith('<svg data-chart="score"')
    ys = [
        float(v.split(",")[1])
        for v in re.findall(r"[ML]([\d.,]+)", attribute(svg, 'data-line="score"', "d"))
    ]
    # Plot area: top 10, height 160 - 10 - 26 = 124: score 0 at 134, 1 at 10.
    assert ys == [134.0, 72.0, 10.0]


def test_nice_ticks():
    assert nice_ticks(0, 10) == [0, 2.5, 5, 7.5, 10]
    assert nice_ticks(9100, 13240) == [10000, 12000]
    assert nice_ticks(0.52, 0.71) == [0.55, 0.6, 0.65, 0.7]


def test_sparkline_by_hand():
    assert sparkline([1, 2, 3, 4]) == "▁▃▆█"  # (v - 1) / 3 * 7, rounded: 0, 2, 5, 7
    assert sparkline([5, 5, 5]) == "▄▄▄"
    assert sparkline([None, 1, None, 2]) == " ▁ █"
    assert sparkline([]) == ""
    # 32 days in 16 characters: each pair drawn at its second day.
    assert sparkline(list(range(32)), width=16) == sparkline(list(range(1, 32, 2)), width=16)
    assert len(sparkline(list(range(92)))) == 16


def test_a_maintain_between_kr_gets_its_band_not_an_expected_line():
    # Band 10..20 over values 5..25: domain 5..25 padded by 1.6 (8% of 20) each side.
    series = Series(days(5.0, 25.0), Q4, date(2026, 10, 2), "maintain_between", low=10.0, high=20.0)
    for svg in (str(trend_chart(series)), str(history_chart(series))):
        assert 'data-band="maintain"' in svg and 'data-line="expected"' not in svg
    svg = str(history_chart(series))

    def y(value):  # history frame: top 18, height 320 - 18 - 30 = 272
        return 18 + (1 - (value - 3.4) / 23.2) * 272

    assert float(attribute(svg, 'data-band="maintain"', "y")) == round(y(20), 1)
    assert float(attribute(svg, 'data-band="maintain"', "height")) == round(y(10) - y(20), 1)
    assert ">low 10</text>" in svg and ">high 20</text>" in svg


def test_checkpoints_bend_the_expected_line():
    # increase 0 -> 100, 10 by Oct 31 (day 31), 40 by Nov 30 (day 61).
    checkpoints = [(date(2026, 10, 31), 10.0), (date(2026, 11, 30), 40.0)]
    series = Series(
        days(1.0, 2.0), Q4, date(2026, 10, 2), "increase", start=0.0, target=100.0,
        checkpoints=checkpoints,
    )  # fmt: skip
    assert series.expected_value(date(2026, 10, 15)) == 10 * 15 / 31
    assert series.expected_value(date(2026, 11, 15)) == 10 + 30 * 15 / 30
    assert series.expected_value(Q4.end) == 100
    svg = str(history_chart(series))
    corners = re.findall(r"[ML]([\d.]+),", attribute(svg, 'data-line="expected"', "d"))
    assert len(corners) == 4  # the quarter's first day, both checkpoints, its last day
    assert svg.count('data-mark="checkpoint"') == 2
    straight = str(history_chart(Series(**{**series.__dict__, "checkpoints": ()})))
    assert '<line data-line="expected"' in straight and 'data-mark="checkpoint"' not in straight
