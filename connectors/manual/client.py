"""The manual connector: check-ins for KRs no API can measure (survey scores, NPS, uptime).

Check-ins live beside the definitions, one CSV file per quarter,
`okr_defs/checkins/<quarter>.csv`:

    kr_id,date,value,note
    time-to-first-value,2026-10-05,70.5,median over the week (Amplitude funnel)

Only check-in days have data. Every row is checked: a bad date (or one outside the
quarter), a value that is not a number, an unknown `kr_id` or a second check-in of a KR
on the same day is rejected with a one-line reason naming `file:line`. A bad row costs
that row only: the KR is scored from its other rows, and the rejected rows go to
`rejected_observations` (`rejected_rows`) under the series of the KR they belong to. A
row whose `kr_id` is unknown belongs to the KR it most resembles (a typo), or else to
the file itself (`manual:quarter=<quarter>`). Only a file that cannot be read as a
whole (a bad header, an unreadable file) fails every KR of the file.

Built by the Dagster observation assets (through `connectors/registry.py`); it needs
no settings, so it is never skipped. Its `SeriesRequest` names the KR (`kr_id`), the
quarter, the quarter's other manual KRs (`sibling_kr_ids`) and the definitions folder
(`definitions_root`), beside which the file lives.
"""

from __future__ import annotations

import csv
import difflib
import logging
import math
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd

from okr_metrics.connectors.base import Connector, SourceEnv, SourceError, SourceSettings
from okr_metrics.connectors.kit import SeriesRequest, daily_values, parse_day
from okr_metrics.connectors.manual.params import ManualMetric
from okr_metrics.pipelines.vocabulary.quarters import Quarter

log = logging.getLogger("okr_metrics.manual")

COLUMNS = ("kr_id", "date", "value", "note")
REQUIRED_COLUMNS = ("kr_id", "date", "value")


@dataclass(frozen=True)
class RejectedCheckIn:
    """A check-in row that cannot be used, as it stands in the file."""

    line: int
    date: str
    raw_value: str
    reason: str  # "file:line: ..."


@dataclass(frozen=True)
class CheckIn:
    """A valid check-in row, with what its owner wrote beside it."""

    kr_id: str
    date: date
    value: float
    note: str | None
    line: int


@dataclass
class CheckIns:
    """One check-ins file, read and checked: values and rejected rows by KR id."""

    path: str
    values: dict[str, dict[date, float]] = field(default_factory=dict)
    rows: list[CheckIn] = field(default_factory=list)  # the valid rows, in file order
    # kr_id -> its rejected rows; None holds the rows that belong to no KR of the quarter.
    rejected: dict[str | None, list[RejectedCheckIn]] = field(default_factory=dict)
    file_problem: str | None = None  # fails every KR of the file
    missing: bool = False

    @property
    def problems(self) -> list[str]:
        """Every rejected row's reason (`file:line: ...`), in file order."""
        rows = sorted((row for rows in self.rejected.values() for row in rows), key=_line)
        return [row.reason for row in rows]


def _line(row: RejectedCheckIn) -> int:
    return row.line


def quarter_days(quarter: str) -> tuple[date, date] | None:
    """First and last day of `2026-Q4`, or None for another shape."""
    try:
        parsed = Quarter.parse(quarter)
    except ValueError:
        return None
    return parsed.start, parsed.end


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
        raw = [cell.strip() for cell in cells] + [""] * max(0, len(header) - len(cells))
        kr_id, day_text, value_text = (raw[column[n]] for n in REQUIRED_COLUMNS)
        owner: str | None = kr_id
        if len(cells) > len(header):
            owner = _owner(kr_id, known_ids)
            problem = f"{len(cells)} fields, expected {len(header)}"
        elif known_ids is not None and kr_id not in known_ids:
            owner = _owner(kr_id, known_ids)
            scope = f"the manual KRs of {quarter}" if quarter else "the manual KRs"
            problem = f"unknown kr_id {kr_id!r} (not one of {scope}: {', '.join(known_ids)})"
            problem += f"; did you mean {owner!r}?" if owner else ""
        else:
            checked = _check_values(day_text, value_text, quarter, bounds)
            if isinstance(checked, str):
                problem = checked
            elif (kr_id, checked[0]) in first_line:
                day = checked[0]
                problem = (
                    f"a second check-in of {kr_id} on {day} "
                    f"(the first, at line {first_line[kr_id, day]}, is kept)"
                )
            else:
                day, value = checked
                first_line[kr_id, day] = line
                found.values.setdefault(kr_id, {})[day] = value
                note = raw[column["note"]] if "note" in column else ""
                found.rows.append(CheckIn(kr_id, day, value, note or None, line))
                continue
        rejected = RejectedCheckIn(line, day_text, value_text, f"{shown}:{line}: {problem}")
        found.rejected.setdefault(owner, []).append(rejected)
    return found


def _check_values(
    day_text: str, value_text: str, quarter: str | None, bounds: tuple[date, date] | None
) -> tuple[date, float] | str:
    """The row's day and value, or what is wrong with them."""
    try:
        day = parse_day(day_text)
    except ValueError:
        return f"date {day_text!r} is not a YYYY-MM-DD date"
    if bounds and not bounds[0] <= day <= bounds[1]:
        return f"date {day} is not in {quarter} ({bounds[0]}..{bounds[1]})"
    try:
        value = float(value_text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        return f"value {value_text!r} is not a number"
    return day, value


def _owner(kr_id: str, known_ids: tuple[str, ...] | None) -> str | None:
    """The KR a row belongs to: its own id, the known id it most resembles, or none."""
    if known_ids is None or kr_id in known_ids:
        return kr_id
    close = difflib.get_close_matches(kr_id, known_ids, n=1, cutoff=0.75)
    return close[0] if close else None


class ManualConnector(Connector):
    """Check-ins of one KR from the quarter's CSV file; only check-in days have data."""

    source = "manual"
    params_model = ManualMetric
    env = SourceEnv()
    row_expectation = "valid_checkin_row"

    def __init__(self) -> None:
        # Every manual KR of a quarter reads the same file: read it once while it is unchanged.
        self._read: dict[tuple, CheckIns] = {}

    @classmethod
    def from_settings(cls, settings: SourceSettings) -> ManualConnector:
        return cls()

    def fetch(self, request: SeriesRequest[ManualMetric]) -> pd.DataFrame:
        checkins = self._checkins(request)
        if checkins is None:
            raise SourceError(
                self.source,
                "a check-in series needs its KR, quarter and definitions folder on the request "
                "(the pipeline passes them)",
            )
        if checkins.file_problem:
            raise SourceError(self.source, checkins.file_problem)
        values = checkins.values.get(request.kr_id or "", {})
        return daily_values(request.window, values.items(), source=self.source, fill=None)

    @classmethod
    def lint_inputs(cls, requests: list[SeriesRequest]) -> list[tuple[str, int, str]]:
        problems: dict[tuple[str, int, str], None] = {}
        connector = cls()
        for request in requests:
            checkins = connector._checkins(request)
            if checkins is None:
                continue
            if checkins.file_problem:
                where, _, message = checkins.file_problem.partition(":1: ")
                problems[where, 1, message] = None
            for rows in checkins.rejected.values():
                for row in rows:
                    message = row.reason.removeprefix(f"{checkins.path}:{row.line}: ")
                    problems[checkins.path, row.line, message] = None
        return list(problems)

    def rejected_rows(self, request: SeriesRequest) -> dict[str, pd.DataFrame]:
        """Every rejected row of the KR's check-ins, wherever it is dated (the file is read whole).

        The quarter's first manual KR (by id) also carries the rows that belong to no KR,
        under the file's own key, `manual:quarter=<quarter>`.
        """
        checkins = self._checkins(request)
        if checkins is None or checkins.file_problem or not request.kr_id or not request.quarter:
            return {}
        found = {request.metric_key: _rejected_frame(checkins.rejected.get(request.kr_id, []))}
        if request.kr_id == min(request.sibling_kr_ids or (request.kr_id,)):
            orphans = checkins.rejected.get(None, [])
            found[file_key(request.quarter)] = _rejected_frame(orphans)
        return found

    def _checkins(self, request: SeriesRequest) -> CheckIns | None:
        """The quarter's check-ins file, read and checked (None: the request names no KR,
        quarter or definitions folder)."""
        if not (request.kr_id and request.quarter and request.definitions_root):
            return None
        path = Path(request.definitions_root) / "checkins" / f"{request.quarter}.csv"
        known = request.sibling_kr_ids or None
        try:
            stat = path.stat()
            version: tuple = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            version = ()
        key = (str(path), request.quarter, known, version)
        if key not in self._read:
            self._read[key] = read_checkins(path, request.quarter, known)
            if self._read[key].missing:
                log.info("manual: no check-ins file %s yet: its KRs have no data", path)
        return self._read[key]


def file_key(quarter: str) -> str:
    """The series key of a quarter's check-ins file, for rows that belong to no KR."""
    return f"manual:quarter={quarter}"


def _rejected_frame(rows: list[RejectedCheckIn]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": pd.Series([row.date for row in rows], dtype=object),
            "raw_value": pd.Series([row.raw_value for row in rows], dtype=object),
            "reason": pd.Series([row.reason for row in rows], dtype=object),
        }
    )
