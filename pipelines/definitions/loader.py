"""Loading OKR definitions with line numbers: every problem names `file:line` and the key.

`load_definitions(path)` reads one file or every `*.yaml` in a folder and returns the
valid quarters plus every problem found (errors, and the linter's warnings from
`lint.py`). Used by the CLI (`okr lint`), the jobs and the tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from okr_metrics.connectors.registry import sources
from okr_metrics.pipelines.definitions.lint import best_practice
from okr_metrics.pipelines.definitions.model import OkrFile
from okr_metrics.pipelines.definitions.problems import LineMapping, LineSequence, Problem
from okr_metrics.pipelines.vocabulary.quarters import Quarter


class _LineLoader(yaml.SafeLoader):
    duplicate_keys: list[tuple[str, int]]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> LineMapping:
        mapping = LineMapping()
        mapping.line = node.start_mark.line + 1
        mapping.key_lines = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in mapping:
                self.duplicate_keys.append((str(key), key_node.start_mark.line + 1))
            mapping[key] = self.construct_object(value_node, deep=True)
            mapping.key_lines[key] = key_node.start_mark.line + 1
        return mapping

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> LineSequence:
        sequence = LineSequence(self.construct_object(child, deep=True) for child in node.value)
        sequence.line = node.start_mark.line + 1
        sequence.item_lines = [child.start_mark.line + 1 for child in node.value]
        return sequence


_LineLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _LineLoader.construct_mapping
)
_LineLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _LineLoader.construct_sequence
)
# Keep dates and quarters as text: `quarter: 2026-Q4` must not depend on YAML's date guessing.
_LineLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass
class Definitions:
    """What `load_definitions` found: the valid files by quarter, and every problem."""

    files: dict[Quarter, OkrFile] = field(default_factory=dict)
    paths: dict[Quarter, Path] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    root: Path | None = None

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def for_quarter(self, quarter: Quarter) -> OkrFile | None:
        return self.files.get(quarter)


def _line_of(raw: Any, loc: tuple[Any, ...]) -> tuple[int, str]:
    """Follow a pydantic error location through the raw YAML: the line and the dotted key."""
    node, line, keys = raw, getattr(raw, "line", 1), []
    for part in loc:
        if isinstance(node, LineMapping) and part in node:
            line = node.key_lines.get(part, node.line)
            keys.append(str(part))
            node = node[part]
        elif isinstance(node, LineMapping) and isinstance(part, str) and part not in node:
            # A missing key, or a union tag that is not in the data.
            if not part.endswith("-metric") and part not in sources():
                keys.append(part)
        elif isinstance(node, LineSequence) and isinstance(part, int) and part < len(node):
            line = node.item_lines[part]
            item = node[part]
            label = item.get("id") if isinstance(item, LineMapping) else None
            keys.append(f"[{label}]" if isinstance(label, str) else f"[{part}]")
            node = item
    dotted = ".".join(keys).replace(".[", "[")
    return line, dotted


def _message(error: ErrorDetails) -> str:
    kind, message = error["type"], error["msg"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "missing required key"
    if kind == "union_tag_invalid":
        known = ", ".join(sorted(sources()))
        return f"unknown source {error['input'].get('source')!r} (known: {known})"
    if kind == "literal_error" and "aggregate" in map(str, error["loc"]):
        return f"unknown aggregate {error['input']!r} (use sum, latest, mean, mean_7d, min or max)"
    return message.removeprefix("Value error, ")


def _parse_file(path: Path, display: str) -> tuple[OkrFile | None, list[Problem]]:
    problems: list[Problem] = []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        return None, [Problem(display, 1, f"cannot read: {error.strerror}")]
    loader = _LineLoader(text)
    loader.duplicate_keys = []
    try:
        raw = loader.get_single_data()
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        reason = getattr(error, "problem", None) or str(error).splitlines()[0]
        return None, [Problem(display, line, f"invalid YAML: {reason}")]
    finally:
        loader.dispose()
    for key, line in loader.duplicate_keys:
        problems.append(Problem(display, line, f"{key}: duplicate key"))
    if not isinstance(raw, LineMapping):
        return None, [
            *problems,
            Problem(display, 1, "expected a mapping with quarter and objectives"),
        ]
    problems += _check_ids(raw, display)
    try:
        okr_file = OkrFile.model_validate(raw)
    except ValidationError as error:
        seen = set()
        for item in error.errors():
            line, key = _line_of(raw, item["loc"])
            problem = Problem(display, line, f"{key}: {_message(item)}" if key else _message(item))
            if problem not in seen:
                seen.add(problem)
                problems.append(problem)
        return None, problems
    stem_quarter = re.match(r"^\d{4}-Q[1-4]$", path.stem)
    if stem_quarter and path.stem != str(okr_file.quarter):
        line = raw.key_lines.get("quarter", 1)
        problems.append(
            Problem(
                display,
                line,
                f"quarter: {okr_file.quarter} does not match the file name {path.name}",
            )
        )
    problems += best_practice(okr_file, raw, display)
    has_errors = any(p.severity == "error" for p in problems)
    return (None if has_errors else okr_file), problems


def _check_ids(raw: LineMapping, display: str) -> list[Problem]:
    """Duplicate objective and KR ids, read off the raw YAML so they show beside other errors."""
    problems: list[Problem] = []
    objectives = raw.get("objectives")
    if not isinstance(objectives, LineSequence):
        return problems
    first_seen: dict[tuple[str, str], int] = {}

    def check(kind: str, where: str, item: Any, line: int) -> None:
        item_id = item.get("id") if isinstance(item, LineMapping) else None
        if not isinstance(item_id, str):
            return
        id_line = item.key_lines.get("id", line)
        if (kind, item_id) in first_seen:
            problems.append(
                Problem(
                    display,
                    id_line,
                    f"{where}[{item_id}].id: duplicate id {item_id!r} (first at line {first_seen[kind, item_id]})",
                )
            )
        else:
            first_seen[kind, item_id] = id_line

    for objective, line in zip(objectives, objectives.item_lines, strict=True):
        check("objective", "objectives", objective, line)
        key_results = objective.get("key_results") if isinstance(objective, LineMapping) else None
        if isinstance(key_results, LineSequence):
            where = f"objectives[{objective.get('id')}].key_results"
            for key_result, kr_line in zip(key_results, key_results.item_lines, strict=True):
                check("key_result", where, key_result, kr_line)
    return problems


def definition_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    return [path]


def load_definitions(path: str | Path) -> Definitions:
    """Load one definitions file or every `*.yaml` in a folder."""
    root = Path(path)
    found = Definitions(root=root if root.is_dir() else root.parent)
    if not root.exists():
        found.problems.append(Problem(str(root), 1, "no such file or folder"))
        return found
    files = definition_files(root)
    if not files:
        found.problems.append(Problem(str(root), 1, "no *.yaml definitions found"))
    for file in files:
        display = str(file)
        okr_file, problems = _parse_file(file, display)
        found.problems += problems
        if okr_file is None:
            continue
        if okr_file.quarter in found.files:
            found.problems.append(
                Problem(
                    display,
                    1,
                    f"quarter: {okr_file.quarter} is already defined in {found.paths[okr_file.quarter]}",
                )
            )
            continue
        found.files[okr_file.quarter] = okr_file
        found.paths[okr_file.quarter] = file
    found.problems.sort(key=lambda p: (p.path, p.line))
    return found
