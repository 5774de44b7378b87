"""The manual connector: check-ins for KRs no API can measure (survey scores, NPS, uptime).

Check-ins live beside the definitions, one CSV file per quarter,
`okr_defs/checkins/<quarter>.csv`:

    kr_id,date,value,note,confidence
    time-to-first-value,2026-10-05,70.5,median over the week (Amplitude funnel),7
    weekly-active-teams,2026-10-05,,the pilot slipped a month,3

Only check-in days have data. `confidence` (optional, a whole number from 0 to 10) is the
owner's confidence that the KR will be met; any KR of the quarter may carry one, also a KR
measured by an API: a row with a confidence and no value is a confidence-only check-in,
and adds nothing to the KR's series. Every row is checked: a bad date (or one outside the
quarter), a value that is not a number (a spreadsheet formula such as `=1+1` is not),
a confidence that is not a whole number from 0 to 10, a row with neither value nor
confidence, an unknown `kr_id`, a second check-in of a KR on the same day, a line longer than
`MAX_LINE_CHARS` or one holding a control character (NUL) or bytes that are not UTF-8
is rejected with a one-line reason naming `file:line`. A bad row costs that row only:
the KR is scored from its other rows, and the rejected rows go to
`rejected_observations` (`rejected_rows`) under the series of the KR they belong to,
their cells escaped so that any database keeps them. A row whose `kr_id` is unknown
belongs to the KR it most resembles (a typo), or else to the file itself
(`manual:quarter=<quarter>`). Only a file that cannot be read as a whole (a bad header,
an unreadable file, one larger than `MAX_FILE_BYTES`) fails every KR of the file.
Notes are kept as written (`CheckIns.rows`); a CSV that shows one passes it through
`spreadsheet_cell`, so a note starting with `=` is never run as a formula.

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
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from okr_metrics.connectors.base import Connector, SourceEnv, SourceError, SourceSettings
from okr_metrics.connectors.kit import SeriesRequest, daily_values, parse_day
from okr_metrics.connectors.manual.params import ManualMetric
from okr_metrics.pipelines.vocabulary.quarters import Quarter
from okr_metrics.pipelines.vocabulary.text import one_line

log = logging.getLogger("okr_metrics.manual")

COLUMNS = ("kr_id", "date", "value", "note", "confidence")
REQUIRED_COLUMNS = ("kr_id", "date", "value")
# A file over the limit fails its KRs; a line over the limit, or holding a control
# character (NUL) or bytes that are not UTF-8, costs that row only.
MAX_FILE_BYTES = 1_000_000
MAX_LINE_CHARS = 2_000
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_NOT_TEXT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\udc80-\udcff]")


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
    value: float | None  # None: a confidence-only check-in
    note: str | None
    line: int
    confidence: int | None = None


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
    path: Path,
    quarter: str | None = None,
    known_ids: tuple[str, ...] | None = None,
    confidence_ids: tuple[str, ...] | None = None,
) -> CheckIns:
    """Read and check a check-ins file (see the module docstring for the rules).

    `known_ids` are the KRs whose check-ins carry values (the manual KRs); `confidence_ids`
    every KR of the quarter, which may carry a confidence-only check-in. Without
    `confidence_ids`, a confidence-only row of a KR not in `known_ids` is passed over: it
    is not this reader's to judge (the quarter-wide reading checks it).
    """
    shown = str(path)
    found = CheckIns(shown)
    table = read_table(path, found, "check-in", REQUIRED_COLUMNS, COLUMNS)
    if table is None:
        return found
    header, column, rows = table
    bounds = quarter_days(quarter) if quarter else None
    first_line: dict[tuple[str, date], int] = {}
    for line, text, cells, raw in rows:
        kr_id, day_text, value_text = (raw[column[n]] for n in REQUIRED_COLUMNS)
        confidence_text = raw[column["confidence"]] if "confidence" in column else ""
        confidence_only = not value_text and bool(confidence_text)
        owner: str | None = kr_id
        unreadable = _unreadable(text)
        if unreadable:
            owner = _owner(kr_id, known_ids)
            problem = unreadable
        elif len(cells) > len(header):
            owner = _owner(kr_id, known_ids)
            problem = f"{len(cells)} fields, expected {len(header)}"
        elif (
            confidence_only
            and confidence_ids is None
            and known_ids is not None
            and kr_id not in known_ids
        ):
            continue
        elif problem := _unknown_kr(kr_id, confidence_only, quarter, known_ids, confidence_ids):
            owner = _owner(kr_id, known_ids)
            if owner and owner != kr_id:
                problem += f"; did you mean {owner!r}?"
        else:
            checked = _check_values(day_text, value_text, confidence_text, quarter, bounds)
            if isinstance(checked, str):
                problem = checked
            elif (kr_id, checked[0]) in first_line:
                day = checked[0]
                problem = (
                    f"a second check-in of {kr_id} on {day} "
                    f"(the first, at line {first_line[kr_id, day]}, is kept)"
                )
            else:
                day, value, confidence = checked
                first_line[kr_id, day] = line
                if value is not None:
                    found.values.setdefault(kr_id, {})[day] = value
                note = raw[column["note"]] if "note" in column else ""
                found.rows.append(CheckIn(kr_id, day, value, note or None, line, confidence))
                continue
        rejected = RejectedCheckIn(
            line, _storable(day_text), _storable(value_text), f"{shown}:{line}: {problem}"
        )
        found.rejected.setdefault(owner, []).append(rejected)
    return found


def _unknown_kr(
    kr_id: str,
    confidence_only: bool,
    quarter: str | None,
    known_ids: tuple[str, ...] | None,
    confidence_ids: tuple[str, ...] | None,
) -> str | None:
    """Why the row's `kr_id` cannot take this check-in, or None when it can."""
    if known_ids is None or kr_id in known_ids:
        return None
    if confidence_ids is not None and kr_id in confidence_ids:
        if confidence_only:
            return None
        return (
            f"{kr_id} is measured by its source, not by check-ins: "
            "give it a confidence and leave the value empty"
        )
    if confidence_ids is not None and confidence_only:
        scope = f"the KRs of {quarter}" if quarter else "the KRs"
        return f"unknown kr_id {kr_id!r} (not one of {scope})"
    scope = f"the manual KRs of {quarter}" if quarter else "the manual KRs"
    return f"unknown kr_id {kr_id!r} (not one of {scope}: {', '.join(known_ids)})"


def read_table(
    path: Path,
    found: CheckIns | Any,
    kind: str,
    required: tuple[str, ...],
    allowed: tuple[str, ...],
) -> tuple[list[str], dict[str, int], Iterator[tuple[int, str, list[str], list[str]]]] | None:
    """The file's header, each column's index and its non-blank rows as (line, text, cells,
    stripped cells padded to the header); or None with `found.file_problem` (or
    `found.missing`) set when the file or its header cannot be read.

    Shared by the check-in and grades files.
    """
    lines = read_lines(path, found, kind)
    if lines is None:
        return None
    header = [name.strip() for name in next(csv.reader(lines[:1]), [])]
    missing = [name for name in required if name not in header]
    unknown = [name for name in header if name not in allowed]
    if missing or unknown:
        found.file_problem = header_problem(str(path), missing, unknown, allowed)
        return None

    def rows() -> Iterator[tuple[int, str, list[str], list[str]]]:
        for line, text in enumerate(lines[1:], start=2):
            cells = next(csv.reader([text[:MAX_LINE_CHARS]]), [])
            if any(cell.strip() for cell in cells):
                padding = [""] * max(0, len(header) - len(cells))
                yield line, text, cells, [cell.strip() for cell in cells] + padding

    return header, {name: header.index(name) for name in header}, rows()


def read_lines(path: Path, found: CheckIns | Any, kind: str) -> list[str] | None:
    """The file's lines, or None with `found.file_problem` (or `found.missing`) set.

    Shared by the check-in and grades files: the size limit, and bytes that are not
    UTF-8 kept as surrogates so that they cost their row only.
    """
    shown = str(path)
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
            if len(data) > MAX_FILE_BYTES:
                stream.seek(0, 2)
                size = max(stream.tell(), len(data))
                found.file_problem = (
                    f"{shown}:1: the file is {size / 1_000_000:.1f} MB; "
                    f"a {kind} file is limited to {MAX_FILE_BYTES / 1_000_000:g} MB"
                )
                return None
    except FileNotFoundError:
        found.missing = True
        return None
    except OSError as error:
        found.file_problem = f"{shown}:1: cannot read: {error.strerror or type(error).__name__}"
        return None
    return _LINE_BREAK.split(data.decode("utf-8-sig", errors="surrogateescape"))


def header_problem(
    shown: str, missing: list[str], unknown: list[str], columns: tuple[str, ...]
) -> str:
    """`file:1: missing column ...; unknown column ... (expected ...)`."""
    what = f"missing column {', '.join(missing)}" if missing else ""
    what += ("; " if what else "") + (f"unknown column {', '.join(unknown)}" if unknown else "")
    return one_line(f"{shown}:1: {what} (expected {','.join(columns)})")


def _unreadable(text: str) -> str | None:
    """Why a line cannot be taken as it stands (too long, not UTF-8, a control character)."""
    if len(text) > MAX_LINE_CHARS:
        return f"the line is {len(text):,} characters long; a check-in line is limited to {MAX_LINE_CHARS:,}"
    bad = _NOT_TEXT.search(text)
    if bad is None:
        return None
    char = bad.group()
    if "\udc80" <= char <= "\udcff":
        return f"not UTF-8 text (byte 0x{ord(char) - 0xDC00:02x} at character {bad.start() + 1})"
    return f"control character U+{ord(char):04X} at character {bad.start() + 1}"


def _storable(text: str) -> str:
    """`text` as any database can keep it: undecodable bytes and control characters escaped."""
    text = text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="backslashreplace")
    return one_line(text)


def _check_values(
    day_text: str,
    value_text: str,
    confidence_text: str,
    quarter: str | None,
    bounds: tuple[date, date] | None,
) -> tuple[date, float | None, int | None] | str:
    """The row's day, value and confidence, or what is wrong with them."""
    try:
        day = parse_day(day_text)
    except ValueError:
        return f"date {day_text!r} is not a YYYY-MM-DD date"
    if bounds and not bounds[0] <= day <= bounds[1]:
        return f"date {day} is not in {quarter} ({bounds[0]}..{bounds[1]})"
    confidence = None
    if confidence_text:
        confidence = parse_confidence(confidence_text)
        if confidence is None:
            return f"confidence {confidence_text!r} is not a whole number from 0 to 10"
    if not value_text and confidence is not None:
        return day, None, confidence
    try:
        value = float(value_text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        return f"value {value_text!r} is not a number"
    return day, value, confidence


def parse_confidence(text: str) -> int | None:
    """A confidence, a whole number from 0 to 10 (`7` or `7.0`), or None when it is not one."""
    try:
        number = float(text)
    except ValueError:
        return None
    if not (math.isfinite(number) and number.is_integer() and 0 <= number <= 10):
        return None
    return int(number)


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
