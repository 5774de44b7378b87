"""Calendar quarters (`2026-Q4`): their days, and the quarter a day belongs to.

Used by the OKR model, scoring, the Dagster assets and the CLI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

_QUARTER_RE = re.compile(r"^(\d{4})-Q([1-4])$")


@dataclass(frozen=True, order=True)
class Quarter:
    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> Quarter:
        match = _QUARTER_RE.match(str(text).strip())
        if not match:
            raise ValueError(f"bad quarter {text!r}: expected YYYY-Qn, e.g. 2026-Q4")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def containing(cls, day: date) -> Quarter:
        return cls(day.year, (day.month - 1) // 3 + 1)

    @property
    def start(self) -> date:
        return date(self.year, 3 * self.number - 2, 1)

    @property
    def end(self) -> date:
        """The quarter's last day (inclusive)."""
        return self.next().start - timedelta(days=1)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def days_elapsed(self, as_of: date) -> int:
        """Days from the quarter's first day through `as_of`, both included."""
        return (as_of - self.start).days + 1

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end

    def next(self) -> Quarter:
        return (
            Quarter(self.year + 1, 1) if self.number == 4 else Quarter(self.year, self.number + 1)
        )

    def previous(self) -> Quarter:
        return (
            Quarter(self.year - 1, 4) if self.number == 1 else Quarter(self.year, self.number - 1)
        )

    def __str__(self) -> str:
        return f"{self.year}-Q{self.number}"


def days_between(start: date, end: date) -> list[date]:
    """Every day from `start` through `end`, both included."""
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def quarters_between(start: date, end: date) -> list[Quarter]:
    """The quarters that the days `start` through `end` touch, in order."""
    quarters = []
    quarter = Quarter.containing(start)
    while quarter.start <= end:
        quarters.append(quarter)
        quarter = quarter.next()
    return quarters
