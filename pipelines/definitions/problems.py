"""What the loader and the linter report, and the YAML containers that remember their lines."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

# Characters that would break a `file:line: message` line or hide in a terminal.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    """`text` with line breaks and control characters written as escapes (`\\n`, `\\x00`)."""
    return _UNPRINTABLE.sub(lambda match: repr(match.group())[1:-1], text)


class LineMapping(dict):
    """A YAML mapping that remembers the line of itself and of each key."""

    line: int = 0
    key_lines: dict[str, int]


class LineSequence(list):
    """A YAML sequence that remembers the line of itself and of each item."""

    line: int = 0
    item_lines: list[int]


@dataclass(frozen=True, order=True)
class Problem:
    """One problem in a definitions or check-in file: `file:line: [warning: ]message`."""

    path: str
    line: int
    message: str
    severity: Literal["error", "warning"] = "error"

    def __post_init__(self) -> None:
        # A key or value quoted from a hostile file must not split the problem over lines.
        object.__setattr__(self, "message", one_line(self.message))

    def __str__(self) -> str:
        prefix = "" if self.severity == "error" else "warning: "
        return f"{self.path}:{self.line}: {prefix}{self.message}"
