"""`okr checkin KR_ID [VALUE] [--confidence N] [--note TEXT] [--date D]`: one check-in row,
appended to the quarter's check-in file.

The row goes to `<definitions>/checkins/<quarter>.csv` for the quarter holding `--date`
(default: today, UTC), created with its header when missing. It is checked first as the
pipeline checks the file (connectors/manual/client.py) and refused, with one line and
exit code 2, when the KR is not one of that quarter's, the day is in no defined quarter,
the KR already has a check-in that day, a value is given for a KR an API measures, or
the value or confidence is not valid. VALUE is left out (or given as `-`) for a
confidence-only check-in, which any KR may have. Registered in `pipelines/cli/main.py`.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import io
import math
import re
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from okr_metrics.pipelines.settings import Settings

EXIT_OK, EXIT_USAGE = 0, 2
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # as the check-in reader splits lines


class CheckinError(Exception):
    """A check-in that cannot be written: one line for the user."""


def add_command(commands: Any) -> None:
    """Add `checkin` to the `okr` parser's subcommands."""
    checkin = commands.add_parser(
        "checkin",
        help="append a check-in (a value, a confidence or both) to the quarter's check-in file",
        description="Append a validated row to <defs>/checkins/<quarter>.csv. Give VALUE for "
        "a manual KR; leave it out, or give '-', for a confidence-only check-in (any KR, "
        "also one an API measures): then --confidence is required.",
    )
    checkin.add_argument("kr_id", metavar="KR_ID", help="the key result, as in the definitions")
    checkin.add_argument(
        "value",
        metavar="VALUE",
        nargs="?",
        default="-",
        help="the KR's value that day; '-' or left out: a confidence-only check-in",
    )
    checkin.add_argument(
        "--confidence", metavar="N", help="how confident the owner is that the KR is met, 0 to 10"
    )
    checkin.add_argument("--note", metavar="TEXT", help="one line kept beside the check-in")
    checkin.add_argument(
        "--date", metavar="D", help="the day it is for, YYYY-MM-DD (default: today, UTC)"
    )
    checkin.add_argument(
        "--defs", default=None, help="definitions folder (default: $OKR_DEFS or okr_defs/)"
    )
    checkin.set_defaults(handler=cmd_checkin)


def cmd_checkin(args: argparse.Namespace, settings: Settings) -> int:
    try:
        where = append_checkin(
            settings.definitions_path,
            args.kr_id,
            None if args.value in (None, "", "-") else args.value,
            confidence=args.confidence,
            note=args.note,
            day=args.date,
        )
    except CheckinError as error:
        print(f"okr checkin: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(where)
    return EXIT_OK


def append_checkin(
    definitions_path: str | Path,
    kr_id: str,
    value: str | None,
    confidence: str | None = None,
    note: str | None = None,
    day: str | None = None,
    today: date | None = None,
) -> str:
    """Append the check-in and return `file:line`; CheckinError says why it cannot be."""
    from okr_metrics.connectors.manual.client import parse_confidence
    from okr_metrics.pipelines.definitions import load_definitions
    from okr_metrics.pipelines.jobs.checkins import (
        checkins_path,
        manual_kr_ids,
        read_quarter_checkins,
    )
    from okr_metrics.pipelines.vocabulary.quarters import Quarter

    on = _day(day) if day else (today or datetime.now(UTC).date())
    definitions = load_definitions(definitions_path)
    quarter = Quarter.containing(on)
    okr_file = definitions.for_quarter(quarter)
    if okr_file is None:
        defined = ", ".join(str(q) for q in sorted(definitions.files)) or "none"
        raise CheckinError(
            f"{on} is in {quarter}, which has no valid definitions (defined: {defined})"
        )
    every_id = [key_result.id for _, key_result in okr_file.key_results]
    if kr_id not in every_id:
        close = difflib.get_close_matches(kr_id, every_id, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise CheckinError(f"unknown KR {kr_id!r} in {quarter}{hint}")
    if value is None and confidence is None:
        raise CheckinError("give a VALUE, a --confidence, or both")
    if value is not None:
        if kr_id not in manual_kr_ids(okr_file):
            raise CheckinError(
                f"{kr_id} is measured by its source, not by check-ins: "
                "check in only a confidence (VALUE '-')"
            )
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise CheckinError(f"VALUE {value!r} is not a number")
    if confidence is not None and parse_confidence(confidence) is None:
        raise CheckinError(f"--confidence {confidence!r} is not a whole number from 0 to 10")
    if note is not None and ("\n" in note or "\r" in note):
        raise CheckinError("--note must be one line")
    path = checkins_path(definitions, str(quarter))
    existing = read_quarter_checkins(definitions, okr_file)
    if existing.file_problem:
        raise CheckinError(f"fix the check-in file first: {existing.file_problem}")
    for row in existing.rows:
        if row.kr_id == kr_id and row.date == on:
            raise CheckinError(
                f"{kr_id} already has a check-in on {on} ({existing.path}:{row.line})"
            )
    cells = {
        "kr_id": kr_id,
        "date": on.isoformat(),
        "value": value or "",
        "note": note or "",
        "confidence": "" if confidence is None else str(parse_confidence(confidence)),
    }
    line, before = _append(path, cells)
    written = read_quarter_checkins(definitions, okr_file)
    if not any(row.line == line for row in written.rows):
        _undo(path, before)
        reasons = [r for r in written.problems if r.startswith(f"{written.path}:{line}:")]
        raise CheckinError(reasons[0] if reasons else f"{path}:{line}: the row did not read back")
    return f"{written.path}:{line}"


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CheckinError(f"--date {text!r} is not a YYYY-MM-DD date") from None


def _append(path: Path, cells: dict[str, str]) -> tuple[int, bytes | None]:
    """Append one row in the file's own column order; returns its line number and the
    file's bytes before (None: it did not exist), to undo the write.

    A missing file is created with the full header. A header without a column the row
    needs (`note`, `confidence`) gets it added at its end, the only change to earlier
    lines (the earlier, shorter rows read as empty there).
    """
    from okr_metrics.connectors.manual.client import COLUMNS, MAX_LINE_CHARS

    path.parent.mkdir(parents=True, exist_ok=True)
    before = path.read_bytes() if path.exists() else None
    text = (before or b"").decode("utf-8-sig", errors="surrogateescape")
    lines = _LINE_BREAK.split(text) if text else []
    header = [name.strip() for name in next(csv.reader(lines[:1]), [])]
    if not any(header):
        header, text = list(COLUMNS), ",".join(COLUMNS) + "\n"
    added = [name for name in COLUMNS if cells[name] and name not in header]
    if added:
        first_break = _LINE_BREAK.search(text)
        rest = text[first_break.start() :] if first_break else "\n"
        header += added
        text = ",".join(header) + rest
    if not text.endswith(("\n", "\r")):
        text += "\n"
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow([cells.get(name, "") for name in header])
    row = buffer.getvalue()
    if len(row) > MAX_LINE_CHARS:
        raise CheckinError(
            f"the row is {len(row):,} characters; a check-in line is limited to {MAX_LINE_CHARS:,}"
        )
    line = len(_LINE_BREAK.split(text))
    if before is not None and not added and text == before.decode("utf-8-sig", "surrogateescape"):
        with path.open("a", encoding="utf-8", newline="") as stream:
            stream.write(row + "\n")
    else:
        data = (text + row + "\n").encode("utf-8", errors="surrogateescape")
        path.write_bytes(data)
    return line, before


def _undo(path: Path, before: bytes | None) -> None:
    if before is None:
        path.unlink(missing_ok=True)
    else:
        path.write_bytes(before)
