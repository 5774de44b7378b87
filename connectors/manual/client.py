"""The manual connector: check-ins for KRs no API can measure (survey scores, NPS, uptime).

Check-ins live beside the definitions, one CSV file per quarter,
`okr_defs/checkins/<quarter>.csv`:

    kr_id,date,value,note
    time-to-first-value,2026-10-05,70.5,median over the week (Amplitude funnel)

Only check-in days have data. Every row is checked: a bad date (or one outside the
quarter), a value that is not a number, an unknown `kr_id` or a second check-in of a KR
on the same day is an error naming `file:line`. The error fails the series of the KR
the row belongs to; the other KRs of the file load. A row whose `kr_id` is unknown
belongs to the KR it most resembles (a typo), or else only to the log.

Built by the Dagster observation assets (through `connectors/registry.py`); it needs
no settings, so it is never skipped. The pipeline tells it the KR, the quarter and the
file (`ManualMetric`'s pipeline fields).
"""

from __future__ import annotations

import csv
import difflib
import logging
import math
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import ClassVar

import pandas as pd

from connectors.base import Connector, SourceEnv, SourceError, SourceSettings, empty_series
from connectors.manual.params import ManualMetric
from connectors.params import MetricParams

log = logging.getLogger("okr_metrics.manual")

COLUMNS = ("kr_id", "date", "value", "note")
REQUIRED_COLUMNS = ("kr_id", "date", "value")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")


@dataclass
class CheckIns:
    """One check-ins file, read and checked: values and problems by KR id."""

    path: str
    values: dict[str, dict[date, float]] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)  # kr_id -> "file:line: ..."
    file_problem: str | None = None  # fails every KR of the file
    missing: bool = False


def quarter_days(quarter: str) -> tuple[date, date] | None:
    """First and last day of `2026-Q4`, or None for another shape."""
    found = _QUARTER.match(quarter)
    if not found:
        return None
    year, number = int(found.group(1)), int(found.group(2))
    first = date(year, 3 * number - 2, 1)
    after = date(year + 1, 1, 1) if number == 4 else date(year, 3 * number + 1, 1)
    return first, date.fromordinal(after.toordinal() - 1)


def read_checkins(
    path: Path, quarter: str | None = None, known_ids: tuple[str, ...] | None = None
) -> CheckIns:
    """Read and check a check-ins file (see the module docstring for the rules)."""
    shown = str(path)
    found = CheckIns(shown)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        found.missing = True
        return found
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or type(error).__name__
        found.file_problem = f"{shown}:1: cannot read: {reason}"
        return found
    lines = csv.reader(text.splitlines())
    header = [name.strip() for name in next(lines, [])]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    unknown = [name for name in header if name not in COLUMNS]
    if missing or unknown:
        what = f"missing column {', '.join(missing)}" if missing else ""
        what += ("; " if what else "") + (f"unknown column {', '.join(unknown)}" if unknown else "")
        found.file_problem = f"{shown}:1: {what} (expected {','.join(COLUMNS)})"
        return found
    column = {name: header.index(name) for name in header}
    bounds = quarter_days(quarter) if quarter else None
    first_line: dict[tuple[str, date], int] = {}
    for line, cells in enumerate(lines, start=2):
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(header):
            owner = cells[column["kr_id"]].strip() if len(cells) > column["kr_id"] else ""
            _problem(found, owner, f"{shown}:{line}: {len(cells)} fields, expected {len(header)}")
            continue
        cells = [cell.strip() for cell in cells] + [""] * (len(header) - len(cells))
        kr_id, day_text, value_text = (cells[column[n]] for n in REQUIRED_COLUMNS)
        where = f"{shown}:{line}"
        if known_ids is not None and kr_id not in known_ids:
            _unknown(found, where, kr_id, known_ids, quarter)
            continue
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            _problem(found, kr_id, f"{where}: date {day_text!r} is not a YYYY-MM-DD date")
            continue
        if bounds and not bounds[0] <= day <= bounds[1]:
            _problem(found, kr_id, f"{where}: date {day} is not in {quarter}")
            continue
        try:
            value = float(value_text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            _problem(found, kr_id, f"{where}: value {value_text!r} is not a number")
            continue
        if (kr_id, day) in first_line:
            _problem(
                found,
                kr_id,
                f"{where}: a second check-in of {kr_id} on {day} "
                f"(the first is at line {first_line[kr_id, day]})",
            )
            continue
        first_line[kr_id, day] = line
        found.values.setdefault(kr_id, {})[day] = value
    return found


def _problem(found: CheckIns, kr_id: str, message: str) -> None:
    found.problems.setdefault(kr_id, []).append(message)


def _unknown(
    found: CheckIns, where: str, kr_id: str, known_ids: tuple[str, ...], quarter: str | None
) -> None:
    """An unknown kr_id fails the KR it most resembles (a typo); otherwise it is only logged."""
    scope = f"the manual KRs of {quarter}" if quarter else "the manual KRs"
    message = f"{where}: unknown kr_id {kr_id!r} (not one of {scope}: {', '.join(known_ids)})"
    close = difflib.get_close_matches(kr_id, known_ids, n=1, cutoff=0.75)
    if close:
        _problem(found, close[0], f"{message}; did you mean {close[0]!r}?")
    else:
        log.warning("manual: %s; the row is ignored", message)


class ManualConnector(Connector):
    """Check-ins of one KR from the quarter's CSV file; only check-in days have data."""

    source: ClassVar[str] = "manual"
    params_model: ClassVar[type[MetricParams]] = ManualMetric
    env: ClassVar[SourceEnv] = SourceEnv()

    def __init__(self) -> None:
        # Every manual KR of a quarter reads the same file: read it once while it is unchanged.
        self._read: dict[tuple, CheckIns] = {}

    @classmethod
    def from_settings(cls, settings: SourceSettings) -> ManualConnector:
        return cls()

    def daily_series(
        self, metric: MetricParams, start: date, end: date, timezone: str = "UTC"
    ) -> pd.DataFrame:
        if not isinstance(metric, ManualMetric):
            raise TypeError(f"ManualConnector needs a ManualMetric, not {type(metric).__name__}")
        if end < start:
            raise ValueError(f"window ends ({end}) before it starts ({start})")
        if not (metric.kr_id and metric.quarter and metric.checkins_path):
            raise SourceError(
                self.source,
                "the manual metric does not know its KR, quarter and check-ins file "
                "(the pipeline fills them in)",
            )
        checkins = self._checkins(metric)
        if checkins.file_problem:
            raise SourceError(self.source, checkins.file_problem)
        problems = checkins.problems.get(metric.kr_id, [])
        if problems:
            more = (
                f" (and {len(problems) - 1} more problem(s) in the file)"
                if len(problems) > 1
                else ""
            )
            raise SourceError(self.source, problems[0] + more)
        values = checkins.values.get(metric.kr_id, {})
        days = sorted(day for day in values if start <= day <= end)
        if not days:
            return empty_series()
        return pd.DataFrame(
            {
                "date": pd.Series(days, dtype=object),
                "value": pd.Series([values[day] for day in days], dtype=float),
            }
        )

    def _checkins(self, metric: ManualMetric) -> CheckIns:
        path = Path(metric.checkins_path or "")
        try:
            stat = path.stat()
            version: tuple = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            version = ()
        key = (str(path), metric.quarter, metric.quarter_kr_ids, version)
        if key not in self._read:
            self._read[key] = read_checkins(path, metric.quarter, metric.quarter_kr_ids)
            if self._read[key].missing:
                log.info("manual: no check-ins file %s yet: its KRs have no data", path)
        return self._read[key]
