"""Numbers as people read them: 12,840 not 12840.0, 85% for a share, 6m 30s for a duration,
€12,840 for euros.

Used by the dashboard pages, the report and `okr scorecard`. Every function takes None
(or NaN) for "no data" and returns a dash.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from okr_metrics.pipelines.definitions.units import DURATION_UNITS, SHARE_UNITS, currency_of

MISSING = "–"

# Kinds of KR values, by how they are written.
NUMBER, SHARE, DURATION, CURRENCY = "number", "share", "duration", "currency"

# The currencies written with a symbol of their own (every other one with its code:
# CHF 12,840); "$" is the US dollar's alone, so CAD 12,840, not $12,840.
CURRENCY_SYMBOLS = {
    "USD": "$",
    "EUR": "€",
    "GBP": "£",
    "JPY": "¥",
    "CNY": "CN¥",
    "INR": "₹",
    "KRW": "₩",
    "ILS": "₪",
    "NGN": "₦",
    "PHP": "₱",
    "VND": "₫",
    "UAH": "₴",
    "TRY": "₺",
}
# Between a code or a unit and its number: a space a line never breaks at.
_NBSP = "\u00a0"


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


def format_currency(value: Any, code: str) -> str:
    """An amount in a currency: €12,840, €1.25M, €44.10, €44, -€1,200, CHF 12,840.

    From 1,000 up as `format_number` writes it; below, cents when there are any.
    """
    if is_missing(value):
        return MISSING
    value = float(value)
    size = abs(value)
    if size >= 999.995:
        number = format_number(size)
    else:
        cents = round(size, 2)
        number = f"{cents:.0f}" if cents == int(cents) else f"{cents:.2f}"
    symbol = CURRENCY_SYMBOLS.get(code)
    text = symbol + number if symbol else code + _NBSP + number
    return "-" + text if value < 0 and number.strip("0.") else text


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
    """How one KR's values are written: a kind and, for shares, the decimals; for a
    currency its code; for a number its unit (12,840 users)."""

    kind: str = NUMBER
    decimals: int | None = None
    seconds_per_unit: float = 1.0
    currency: str | None = None
    unit: str | None = None

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
        if self.kind == CURRENCY and self.currency:
            return format_currency(value, self.currency)
        return self._with_unit(format_number(value))

    def tick(self, value: Any) -> str:
        """An axis label: the value without a number's unit (12,840, not 12,840 users)."""
        return format_number(value) if self.kind == NUMBER else self(value)

    def _with_unit(self, text: str) -> str:
        return text + _NBSP + self.unit if self.unit and text != MISSING else text

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
        elif self.kind == CURRENCY and self.currency:
            text = format_currency(size, self.currency)
        else:
            text = self._with_unit(format_number(size))
        return format_delta(text, change)


def value_format(
    kr_type: str | None,
    start: Any,
    target: Any,
    definition: Mapping[str, Any] | None = None,
) -> ValueFormat:
    """How a KR's values are written.

    The definition's `format` decides when it has one (with its `unit`: a number's
    label, a duration's unit); else a `unit` alone (seconds, minutes, hours: a duration;
    percent: a share; any other: a number's label); else a GA4 `...Duration` metric is
    seconds, and a KR whose start and target both lie in 0..1 (a milestone aside) is a
    share.
    """
    definition = definition or {}
    declared = str(definition.get("format") or "")
    unit = str(definition.get("unit") or "") or None
    code = currency_of(declared)
    if code:
        return ValueFormat(CURRENCY, currency=code)
    if declared == "percent":
        return ValueFormat(SHARE, share_decimals(start, target))
    if declared == "duration":
        return ValueFormat(DURATION, seconds_per_unit=DURATION_UNITS.get((unit or "s").lower(), 1))
    if declared == "number":
        return ValueFormat(NUMBER, unit=unit)
    if unit is not None:
        if unit.lower() in SHARE_UNITS:
            return ValueFormat(SHARE, share_decimals(start, target))
        if unit.lower() in DURATION_UNITS:
            return ValueFormat(DURATION, seconds_per_unit=DURATION_UNITS[unit.lower()])
        return ValueFormat(NUMBER, unit=unit)
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
