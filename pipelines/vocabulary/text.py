"""Text from users' files made safe to show: on one line, and inert in a spreadsheet.

The definitions loader and the check-in reader quote keys, ids and cells from hostile
files in their `file:line` problems (`one_line`); every CSV the project writes passes
its text cells through `spreadsheet_cell`, so a title or note written as a formula is
shown, never run.
"""

from __future__ import annotations

import re

# Characters that would break a `file:line: message` line or hide in a terminal.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# What Excel, LibreOffice and Google Sheets read as the start of a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def one_line(text: str) -> str:
    """`text` with line breaks and control characters written as escapes (`\\n`, `\\x00`)."""
    return _UNPRINTABLE.sub(lambda match: repr(match.group())[1:-1], text)


def spreadsheet_cell(text: str) -> str:
    """`text` for a CSV cell: an apostrophe before a leading `=`, `+`, `-`, `@`, tab or CR.

    The text is kept whole (the warehouse keeps it as written); only its CSV copy is
    changed, the way OWASP advises against CSV injection.
    """
    return "'" + text if text.startswith(_FORMULA_START) else text
