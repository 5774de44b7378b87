"""Inline SVG charts of a key result, drawn here (no chart library, nothing fetched).

`trend_chart` is the small one beside each KR of the overview: the quarter so far, the
forecast to the quarter's end, the expected-progress line with a mark for today.
`history_chart` is the KR page's: value, target, expected progress, forecast and, when
the warehouse has one, the 80% interval band. `score_chart` draws the daily score on
the 0-1 scale with its colour bands. Used by `dashboard.web` and `dashboard.report`;
every text in a chart is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from markupsafe import Markup, escape

from okr_metrics.pipelines.dashboard.formats import format_number, is_missing
from okr_metrics.pipelines.vocabulary.quarters import Quarter

COLOURS = {"green": "#1a7f37", "yellow": "#bf8700", "red": "#cf222e", "none": "#8c959f"}
VALUE_COLOUR = "#0969da"
PACED_TYPES = ("increase", "decrease", "milestone")


@dataclass(frozen=True)
class Series:
    """What a KR chart draws: the daily values and where they were meant to go."""

    points: Sequence[tuple[date, float | None]]
    quarter: Quarter
    as_of: date
    kr_type: str
    start: float | None = None
    target: float | None = None
    forecast: float | None = None
    forecast_low: float | None = None
    forecast_high: float | None = None
    # maintain_between's band, and phased targets (day, target) the expected line runs through
    low: float | None = None
    high: float | None = None
    checkpoints: Sequence[tuple[date, float]] = ()

    @property
    def paced(self) -> bool:
        return self.kr_type in PACED_TYPES and not is_missing(self.target)

    def expected_value(self, day: date) -> float | None:
        """Where a paced KR should be on `day`: start + (target - start) * days elapsed share,
        or the straight pieces between its checkpoints."""
        if not self.paced:
            return None
        start = 0.0 if is_missing(self.start) else float(self.start)
        elapsed = self.quarter.days_elapsed(day)
        corners = [(0, start)]
        corners += [(self.quarter.days_elapsed(d), float(v)) for d, v in self.checkpoints]
        corners.append((self.quarter.days, float(self.target)))
        for (x0, y0), (x1, y1) in zip(corners, corners[1:], strict=False):
            if elapsed <= x1:
                return y0 + (y1 - y0) * (elapsed - x0) / (x1 - x0)
        return float(self.target)

    def expected_points(self) -> list[tuple[date, float | None]]:
        """The expected line's corners: the quarter's first day, each checkpoint, its last."""
        days = [self.quarter.start, *(d for d, _ in self.checkpoints), self.quarter.end]
        return [(day, self.expected_value(day)) for day in days]

    @property
    def has_between(self) -> bool:
        return self.kr_type == "maintain_between" and not (
            is_missing(self.low) or is_missing(self.high)
        )

    @property
    def last_point(self) -> tuple[date, float] | None:
        for day, value in reversed(self.points):
            if not is_missing(value):
                return day, float(value)
        return None

    @property
    def has_band(self) -> bool:
        return not (is_missing(self.forecast_low) or is_missing(self.forecast_high))

    def domain(self) -> tuple[float, float]:
        values = [float(v) for _, v in self.points if not is_missing(v)]
        values += [
            float(v)
            for v in (
                self.target,
                self.low,
                self.high,
                self.start if self.paced else None,
                self.forecast,
                self.forecast_low,
                self.forecast_high,
            )
            if not is_missing(v)
        ]
        if not values:
            return 0.0, 1.0
        low, high = min(values), max(values)
        if math.isclose(low, high):
            spread = abs(low) * 0.1 or 1.0
            return low - spread, high + spread
        pad = (high - low) * 0.08
        return low - pad, high + pad


class _Frame:
    """Days and values to pixels inside a plot area."""

    def __init__(self, series: Series, left: float, top: float, width: float, height: float):
        self.quarter = series.quarter
        self.left, self.top, self.width, self.height = left, top, width, height
        self.low, self.high = series.domain()
        self._first = series.quarter.start.toordinal()
        self._per_day = width / max(series.quarter.days - 1, 1)

    def x(self, day: date) -> float:
        return self.left + (day.toordinal() - self._first) * self._per_day

    def y(self, value: float) -> float:
        share = (value - self.low) / (self.high - self.low)
        return self.top + (1 - share) * self.height


def _n(number: float) -> str:
    return f"{number:.1f}".rstrip("0").rstrip(".")


def _path(frame: _Frame, points: Sequence[tuple[date, float | None]]) -> str:
    """An SVG path through the points, broken where a day has no value."""
    parts: list[str] = []
    pen_down = False
    x, y = frame.x, frame.y
    for day, value in points:
        if value is None or value != value:  # no value (None or NaN): lift the pen
            pen_down = False
            continue
        parts.append(f"{'L' if pen_down else 'M'}{x(day):.1f},{y(value):.1f}")
        pen_down = True
    return "".join(parts)


def _title(text: str) -> str:
    return f"<title>{escape(text)}</title>"


def trend_chart(
    series: Series,
    colour: str = "none",
    label: str = "",
    width: int = 168,
    height: int = 44,
) -> Markup:
    """The overview's small chart: `svg[data-chart="trend"]`."""
    frame = _Frame(series, 2, 4, width - 6, height - 8)
    stroke = COLOURS.get(colour, COLOURS["none"])
    parts = [
        f'<svg data-chart="trend" class="trend" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{escape(label)}">',
        _title(label),
        f'<line x1="{_n(frame.x(series.as_of))}" y1="2" x2="{_n(frame.x(series.as_of))}" '
        f'y2="{height - 2}" stroke="#d0d7de" stroke-width="1"/>',
    ]
    if series.paced and series.checkpoints:
        parts.append(
            f'<path data-line="expected" d="{_path(frame, series.expected_points())}" '
            'fill="none" stroke="#afb8c1" stroke-width="1" stroke-dasharray="2 2"/>'
        )
    elif series.paced:
        begin, end = (
            series.expected_value(series.quarter.start),
            series.expected_value(series.quarter.end),
        )
        parts.append(
            f'<line data-line="expected" x1="{_n(frame.x(series.quarter.start))}" '
            f'y1="{_n(frame.y(begin))}" x2="{_n(frame.x(series.quarter.end))}" '
            f'y2="{_n(frame.y(end))}" stroke="#afb8c1" stroke-width="1" stroke-dasharray="2 2"/>'
        )
    elif series.has_between:
        parts.append(_between_band(series, frame, frame.left, frame.left + frame.width))
    elif not is_missing(series.target):
        y = _n(frame.y(float(series.target)))
        parts.append(
            f'<line data-line="target" x1="{frame.left}" y1="{y}" x2="{_n(frame.left + frame.width)}" '
            f'y2="{y}" stroke="#afb8c1" stroke-width="1" stroke-dasharray="2 2"/>'
        )
    parts.extend(_forecast(series, frame, stroke, small=True))
    line = _path(frame, series.points)
    if line:
        parts.append(
            f'<path data-line="value" d="{line}" fill="none" stroke="{stroke}" '
            'stroke-width="1.6" stroke-linejoin="round" stroke-linecap="round"/>'
        )
    expected_now = series.expected_value(series.as_of)
    if expected_now is not None:
        parts.append(
            f'<circle data-mark="expected" cx="{_n(frame.x(series.as_of))}" '
            f'cy="{_n(frame.y(expected_now))}" r="2.2" fill="#fff" stroke="#57606a" stroke-width="1"/>'
        )
    last = series.last_point
    if last is not None:
        parts.append(
            f'<circle cx="{_n(frame.x(last[0]))}" cy="{_n(frame.y(last[1]))}" r="2.4" fill="{stroke}"/>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _between_band(series: Series, frame: _Frame, left: float, right: float) -> str:
    """maintain_between's band, `[data-band="maintain"]`: the values that hold."""
    top, bottom = frame.y(float(series.high)), frame.y(float(series.low))  # type: ignore[arg-type]
    return (
        f'<rect data-band="maintain" x="{_n(left)}" y="{_n(top)}" width="{_n(right - left)}" '
        f'height="{_n(max(bottom - top, 1.0))}" fill="#1a7f37" fill-opacity="0.1" '
        'stroke="#1a7f37" stroke-opacity="0.5" stroke-dasharray="1 0"/>'
    )


def _forecast(series: Series, frame: _Frame, stroke: str, small: bool) -> list[str]:
    """The band (when present) and the dashed forecast line from the last value to the end."""
    last = series.last_point
    if last is None or series.as_of >= series.quarter.end:
        return []
    end_x = frame.x(series.quarter.end)
    start_x, start_y = frame.x(last[0]), frame.y(last[1])
    parts = []
    if series.has_band:
        low_y, high_y = frame.y(float(series.forecast_low)), frame.y(float(series.forecast_high))
        parts.append(
            f'<polygon data-band="forecast" points="{_n(start_x)},{_n(start_y)} '
            f'{_n(end_x)},{_n(high_y)} {_n(end_x)},{_n(low_y)}" fill="{stroke}" '
            f'fill-opacity="{0.12 if small else 0.14}" stroke="none"/>'
        )
    if not is_missing(series.forecast):
        parts.append(
            f'<line data-line="forecast" x1="{_n(start_x)}" y1="{_n(start_y)}" x2="{_n(end_x)}" '
            f'y2="{_n(frame.y(float(series.forecast)))}" stroke="{stroke}" '
            f'stroke-width="{1.3 if small else 2}" stroke-dasharray="{"3 2" if small else "6 4"}"/>'
        )
    return parts


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering low..high (1, 2, 2.5 or 5 times a power of ten apart)."""
    if high <= low:
        return [low]
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _month_ticks(quarter: Quarter) -> list[date]:
    days = [quarter.start]
    day = quarter.start
    while True:
        day = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
        if day > quarter.end:
            break
        days.append(day)
    return days


def history_chart(
    series: Series,
    fmt: Callable[[float | None], str] = format_number,
    label: str = "",
    width: int = 1140,
    height: int = 320,
) -> Markup:
    """The KR page's chart: `svg[data-chart="history"]`."""
    left, right, top, bottom = 70, 150, 18, 30
    frame = _Frame(series, left, top, width - left - right, height - top - bottom)
    plot_right = left + frame.width
    parts = [
        f'<svg data-chart="history" class="history" viewBox="0 0 {width} {height}" '
        f'preserveAspectRatio="xMidYMid meet" role="img" aria-label="{escape(label)}">',
        _title(label),
    ]
    # The axis leaves a number's unit out: the labels and the page say it.
    tick_text = getattr(fmt, "tick", fmt)
    for tick in nice_ticks(frame.low, frame.high):
        y = _n(frame.y(tick))
        parts.append(
            f'<line x1="{left}" y1="{y}" x2="{_n(plot_right)}" y2="{y}" stroke="#eaeef2"/>'
            f'<text x="{left - 8}" y="{y}" dy="0.32em" text-anchor="end" class="tick">'
            f"{escape(tick_text(tick))}</text>"
        )
    for day in _month_ticks(series.quarter):
        x = _n(frame.x(day))
        parts.append(
            f'<line x1="{x}" y1="{top}" x2="{x}" y2="{_n(top + frame.height)}" stroke="#f3f5f7"/>'
            f'<text x="{x}" y="{height - 10}" text-anchor="middle" class="tick">'
            f"{day.strftime('%b')} {day.day}</text>"
        )
    x_now = _n(frame.x(series.as_of))
    parts.append(
        f'<line x1="{x_now}" y1="{top}" x2="{x_now}" y2="{_n(top + frame.height)}" '
        'stroke="#8c959f" stroke-dasharray="2 3"/>'
        f'<text x="{x_now}" y="{top - 3}" text-anchor="middle" class="tick">'
        f"{series.as_of.isoformat()}</text>"
    )
    if not is_missing(series.target):
        y = _n(frame.y(float(series.target)))
        parts.append(
            f'<line data-line="target" x1="{left}" y1="{y}" x2="{_n(plot_right)}" y2="{y}" '
            'stroke="#1a7f37" stroke-width="1.2" stroke-dasharray="1 0"/>'
            f'<text x="{_n(plot_right + 6)}" y="{y}" dy="0.32em" class="label">target '
            f"{escape(fmt(series.target))}</text>"
        )
    if series.has_between:
        parts.append(_between_band(series, frame, left, plot_right))
        for bound, name in ((series.high, "high"), (series.low, "low")):
            parts.append(
                f'<text x="{_n(plot_right + 6)}" y="{_n(frame.y(float(bound)))}" dy="0.32em" '
                f'class="label">{name} {escape(fmt(bound))}</text>'
            )
    if series.paced and series.checkpoints:
        parts.append(
            f'<path data-line="expected" d="{_path(frame, series.expected_points())}" '
            'fill="none" stroke="#8c959f" stroke-width="1.2" stroke-dasharray="5 4"/>'
        )
        for day, value in series.checkpoints:
            parts.append(
                f'<circle data-mark="checkpoint" cx="{_n(frame.x(day))}" '
                f'cy="{_n(frame.y(float(value)))}" r="3" fill="#fff" stroke="#57606a">'
                f"<title>checkpoint {day.isoformat()}: {escape(fmt(value))}</title></circle>"
            )
    elif series.paced:
        begin = series.expected_value(series.quarter.start)
        end = series.expected_value(series.quarter.end)
        parts.append(
            f'<line data-line="expected" x1="{left}" y1="{_n(frame.y(begin))}" '
            f'x2="{_n(plot_right)}" y2="{_n(frame.y(end))}" stroke="#8c959f" '
            'stroke-width="1.2" stroke-dasharray="5 4"/>'
        )
    parts.extend(_forecast(series, frame, VALUE_COLOUR, small=False))
    if not is_missing(series.forecast) and series.as_of < series.quarter.end and series.last_point:
        y = frame.y(float(series.forecast))
        target_y = frame.y(float(series.target)) if not is_missing(series.target) else None
        if target_y is not None and abs(y - target_y) < 12:
            y += 12 if y >= target_y else -12
        parts.append(
            f'<text x="{_n(plot_right + 6)}" y="{_n(y)}" dy="0.32em" class="label forecast">'
            f"forecast {escape(fmt(series.forecast))}</text>"
        )
    line = _path(frame, series.points)
    if line:
        parts.append(
            f'<path data-line="value" d="{line}" fill="none" stroke="{VALUE_COLOUR}" '
            'stroke-width="2.2" stroke-linejoin="round" stroke-linecap="round"/>'
        )
    last = series.last_point
    if last is not None:
        parts.append(
            f'<circle cx="{_n(frame.x(last[0]))}" cy="{_n(frame.y(last[1]))}" r="3.5" '
            f'fill="{VALUE_COLOUR}"/>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def score_chart(
    points: Sequence[tuple[date, float | None]],
    quarter: Quarter,
    as_of: date,
    paced: bool,
    label: str = "",
    width: int = 1140,
    height: int = 160,
) -> Markup:
    """The daily score on 0..1 over the red, yellow and green bands: `svg[data-chart="score"]`."""
    left, right, top, bottom = 70, 150, 10, 26
    series = Series(points, quarter, as_of, "maintain_above", target=None)
    frame = _Frame(series, left, top, width - left - right, height - top - bottom)
    frame.low, frame.high = 0.0, 1.0
    plot_right = left + frame.width
    parts = [
        f'<svg data-chart="score" class="history" viewBox="0 0 {width} {height}" '
        f'preserveAspectRatio="xMidYMid meet" role="img" aria-label="{escape(label)}">',
        _title(label),
    ]
    for low, high, colour in ((0.0, 0.4, "red"), (0.4, 0.7, "yellow"), (0.7, 1.0, "green")):
        parts.append(
            f'<rect x="{left}" y="{_n(frame.y(high))}" width="{_n(frame.width)}" '
            f'height="{_n(frame.y(low) - frame.y(high))}" fill="{COLOURS[colour]}" fill-opacity="0.07"/>'
        )
    for tick in (0.0, 0.4, 0.7, 1.0):
        y = _n(frame.y(tick))
        parts.append(
            f'<text x="{left - 8}" y="{y}" dy="0.32em" text-anchor="end" class="tick">{tick:.1f}</text>'
        )
    for day in _month_ticks(quarter):
        x = _n(frame.x(day))
        parts.append(
            f'<text x="{x}" y="{height - 8}" text-anchor="middle" class="tick">'
            f"{day.strftime('%b')} {day.day}</text>"
        )
    if paced:
        parts.append(
            f'<line data-line="expected" x1="{left}" y1="{_n(frame.y(1 / quarter.days))}" '
            f'x2="{_n(plot_right)}" y2="{_n(frame.y(1.0))}" stroke="#8c959f" '
            'stroke-width="1.2" stroke-dasharray="5 4"/>'
        )
    line = _path(frame, points)
    if line:
        parts.append(
            f'<path data-line="score" d="{line}" fill="none" stroke="#24292f" stroke-width="1.8" '
            'stroke-linejoin="round"/>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


SPARK_BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float | None], width: int = 16) -> str:
    """A text sparkline of at most `width` characters (`okr scorecard` in a terminal).

    The days are cut into `width` equal spans, each drawn at its last value; a span
    without a value is a space. The lowest value is ▁ and the highest █ (all ▄ when flat).
    """
    if not values:
        return ""
    count = min(width, len(values))
    buckets: list[float | None] = []
    for index in range(count):
        span = values[index * len(values) // count : (index + 1) * len(values) // count]
        present = [float(v) for v in span if not is_missing(v)]
        buckets.append(present[-1] if present else None)
    known = [v for v in buckets if v is not None]
    if not known:
        return " " * count
    low, high = min(known), max(known)
    top = len(SPARK_BLOCKS) - 1
    if math.isclose(low, high):
        return "".join(" " if v is None else SPARK_BLOCKS[3] for v in buckets)
    return "".join(
        " " if v is None else SPARK_BLOCKS[round((v - low) / (high - low) * top)] for v in buckets
    )
