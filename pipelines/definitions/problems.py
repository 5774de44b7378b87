"""What the loader and the linter report, and the YAML containers that remember their lines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from okr_metrics.pipelines.vocabulary.text import one_line


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


@dataclass(frozen=True)
class Placed:
    """Where a quarter's definitions were written, for problems found after the merge.

    `path`/`raw`: the file holding the quarter's settings (its one file, or
    `_quarter.yaml`, or its first team file when it has none); `objectives`: the file and
    YAML mapping of each objective, in the quarter's order.
    """

    path: str
    raw: LineMapping
    objectives: tuple[tuple[str, LineMapping], ...]

    @classmethod
    def one_file(cls, path: str, raw: LineMapping) -> Placed:
        objectives = raw.get("objectives") or []
        return cls(path, raw, tuple((path, objective) for objective in objectives))

    def key_result(self, index: int, position: int) -> tuple[str, LineMapping]:
        """The file and mapping of the objective `index`'s KR at `position`."""
        path, objective = self.objectives[index]
        return path, objective["key_results"][position]
