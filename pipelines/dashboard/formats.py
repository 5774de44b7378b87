"""Numbers as people read them: 12,840 not 12840.0, 85% for a share, 6m 30s for a duration.

Used by the dashboard pages, the report and `okr scorecard`. Every function takes None
(or NaN) for "no data" and returns a dash.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MISSING = "–"

# Kinds of KR values, by how they are written.
NUMBER, SHARE, DURATION = "number", "share", "duration"

_DURATION_UNITS = {
    "s": 1,
    "sec": 1,
    "seconds": 1,
    "min": 60,
    "minutes": 60,
    "h": 3600,
    "hours": 3600,
}
_SHARE_WORDS = {"percent", "share", "ratio", "%"}


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _strip(text: str) -> str:
    """'44.10' -> '44.1', '480.0' -> '480' (only after a decimal point)."""
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_number(value: Any) -> str:
    """A plain number for its size: 1,250,000 -> 1.25M, 12840.0 -> 12,840, 390.14 -> 390.1,
    44.1 -> 44.1, 0.0421 -> 0.0421."""
    if is_missing(value):
        return MISSING
    value = float(value)
    size = abs(value)
    if size >= 1e9:
        return _strip(f"{value / 1e9:.2f}") + "B"
    if size >= 1e6:
        return _strip(f"{value / 1e6:.2f}") + "M"
    if size >= 999.95:  # what rounds to 1,000 or more
        return f"{value:,.0f}"
    if size >= 100:
        return _strip(f"{value:.1f}")
    if size >= 1 or size == 0:
        return _strip(f"{value:.2f}")
    return _strip(f"{value:.3g}") if size >= 1e-4 else f"{value:.1e}"


def share_decimals(*references: Any) -> int:
    """The fewest decimals (0 to 2) that write every reference share exactly as a percent:
    0.7 -> 0, 0.048 -> 1, 0.9995 -> 2."""
    for decimals in (0, 1):
        if all(
            abs(round(float(share) * 100, decimals) - float(share) * 100) < 1e-9
            for share in references
            if not is_missing(share)
        ):
            return decimals
    return 2


def format_share(value: Any, decimals: int | None = None) -> str:
    """A 0..1 share as a percent: 0.85 -> 85%, 0.042 -> 4.2%, 0.99994 -> 99.99%.

    Without `decimals`: none from 10% up, one below (0 stays 0%).
    """
    if is_missing(value):
        return MISSING
    percent = float(value) * 100
    if decimals is None:
        decimals = 0 if abs(percent) >= 10 or percent == 0 else 1
    return f"{percent:,.{decimals}f}%"


def format_duration(seconds: Any) -> str:
    """Seconds as a duration: 45 -> 45s, 390.14 -> 6m 30s, 7200 -> 2h, 93784 -> 1d 2h."""
    if is_missing(seconds):
        return MISSING
    total = round(float(seconds))
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        parts = [f"{days}d", f"{hours}h" if hours else ""]
    elif hours:
        parts = [f"{hours}h", f"{minutes}m" if minutes else ""]
    elif minutes:
        parts = [f"{minutes}m", f"{secs}s" if secs else ""]
    else:
        parts = [f"{secs}s"]
    return sign + " ".join(part for part in parts if part)


def format_score(value: Any) -> str:
    """A 0..1 score with two decimals (the OKR convention): 0.7 -> 0.70."""
    return MISSING if is_missing(value) else f"{float(value):.2f}"


def format_delta(text: str, change: Any) -> str:
    """A formatted change with its sign: ('1,200', 1200) -> '+1,200'."""
    if is_missing(change):
        return MISSING
    if float(change) > 0:
        return "+" + text
    if float(change) == 0:
        return "±0"
    return text if text.startswith("-") else "−" + text


def grade(score: Any, commitment: str | None = None) -> str:
    """The colour of a 0..1 score: green at 0.7 and over, yellow from 0.4, red under 0.4;
    a committed KR's (expected to reach 1.0): green at 1.0, yellow from 0.7, red under."""
    if is_missing(score):
        return "none"
    green, yellow = (1.0, 0.7) if commitment == "committed" else (0.7, 0.4)
    if score >= green:
        return "green"
    if score >= yellow:
        return "yellow"
    return "red"


@dataclass(frozen=True)
class ValueFormat:
    """How one KR's values are written: a kind and, for shares, the decimals."""

    kind: str = NUMBER
    decimals: int | None = None
    seconds_per_unit: float = 1.0

    def __call__(self, value: Any) -> str:
        if self.kind == SHARE:
            if is_missing(value):
                return MISSING
            decimals = self.decimals
            if decimals is not None and decimals == 0 and abs(float(value)) < 0.1:
                decimals = 1  # 4.2%, not 4%
            return format_share(value, decimals)
        if self.kind == DURATION:
            return (
                MISSING
                if is_missing(value)
                else format_duration(float(value) * self.seconds_per_unit)
            )
        return format_number(value)

    def delta(self, change: Any) -> str:
        """A change in the KR's value, signed (a share's change is in percentage points)."""
        if is_missing(change):
            return MISSING
        size = abs(float(change))
        if self.kind == SHARE:
            decimals = 1 if self.decimals is None else max(self.decimals, 1)
            text = f"{size * 100:.{decimals}f} pp"
        elif self.kind == DURATION:
            text = format_duration(size * self.seconds_per_unit)
        else:
            text = format_number(size)
        return format_delta(text, change)


def value_format(
    kr_type: str | None,
    start: Any,
    target: Any,
    definition: Mapping[str, Any] | None = None,
) -> ValueFormat:
    """How a KR's values are written.

    A definition's `format` or `unit` decides when it has one; a GA4 `...Duration` metric
    is seconds; otherwise a KR whose start and target both lie in 0..1 (a milestone
    aside) is a share.
    """
    definition = definition or {}
    declared = str(definition.get("format") or definition.get("unit") or "").lower()
    if declared in _SHARE_WORDS:
        return ValueFormat(SHARE, share_decimals(start, target))
    if declared in _DURATION_UNITS:
        return ValueFormat(DURATION, seconds_per_unit=_DURATION_UNITS[declared])
    if declared:
        return ValueFormat(NUMBER)
    metric = definition.get("metric")
    if isinstance(metric, Mapping) and "duration" in str(metric.get("metric", "")).lower():
        return ValueFormat(DURATION)
    if kr_type == "maintain_between":
        # The band stands for start and target: a band of 0.2 to 0.4 is a share.
        start, target = definition.get("low", start), definition.get("high", target)
    if kr_type != "milestone" and not is_missing(target):
        bounds = [float(v) for v in (start, target) if not is_missing(v)]
        if all(0 <= v <= 1 for v in bounds):
            return ValueFormat(SHARE, share_decimals(start, target))
    return ValueFormat(NUMBER)
