"""Loading OKR definitions with line numbers: every problem names `file:line` and the key.

`load_definitions(path)` reads one file or every `*.yaml` in a folder, a quarter's folder
of team files (`2026-Q4/*.yaml`, merged into one quarter) included, and returns the
valid quarters plus every problem found (errors, and the linter's warnings from
`lint.py`). The files are parsed once for as long as their bytes stay the same. Used by
the CLI (`okr lint`), the Dagster resource, the jobs and the tests.

A definitions file is refused whole, before it is parsed, when it is larger than
`MAX_FILE_BYTES`, is not UTF-8 or holds a control character; before it is built, when
it nests deeper than `MAX_DEPTH`, holds more than `MAX_NODES` values and keys, or its
aliases expand to more than `MAX_ALIAS_NODES` nodes (a "billion laughs" file); and
before it is validated, when it has more than `MAX_KEY_RESULTS` KRs. The shape checks
read the YAML's event stream once without building a node, and at most `MAX_PROBLEMS`
errors are listed, so a hostile file is turned down in time and memory bounded by
these limits.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from okr_metrics.connectors.registry import sources
from okr_metrics.pipelines.definitions.lint import best_practice
from okr_metrics.pipelines.definitions.model import (
    ID_MAX_LENGTH,
    QUARTER_SETTINGS,
    SLUG,
    Objective,
    OkrFile,
    QuarterSettings,
    TeamFile,
)
from okr_metrics.pipelines.definitions.problems import (
    LineMapping,
    LineSequence,
    Placed,
    Problem,
)
from okr_metrics.pipelines.vocabulary.quarters import Quarter

# The limits of a definitions file (README, "Limits"). A quarter of 1,000 KRs is about 200 KB.
MAX_FILE_BYTES = 1_000_000
MAX_DEPTH = 32
MAX_ALIAS_NODES = 10_000
MAX_NODES = 100_000  # values and keys, aliases expanded: about 4,500 KRs
MAX_KEY_RESULTS = 5_000
# Past this many errors in a file, the rest are counted, not listed.
MAX_PROBLEMS = 100
# The warehouse keeps a series key in 1,000 characters (metric_observations.metric_key).
MAX_METRIC_KEY = 1000
# A quarter's file or folder is named after it; in a folder, `_quarter.yaml` holds its settings.
QUARTER_NAME = re.compile(r"^\d{4}-Q[1-4]$")
SETTINGS_FILE = "_quarter"

# What YAML does not allow in a file (PyYAML's own rule), found before parsing so the
# problem names its line.
_NOT_YAML_TEXT = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
# libyaml builds nodes about ten times faster; the pure-Python loader is the fallback.
_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _LineLoader(_Base):
    duplicate_keys: list[tuple[str, int]]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> LineMapping:
        mapping = LineMapping()
        mapping.line = node.start_mark.line + 1
        mapping.key_lines = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    "a key must be a plain value, not a list or mapping",
                    key_node.start_mark,
                ) from None
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


def _read_bytes(path: Path) -> tuple[bytes | None, tuple[int, str] | None]:
    """The file's bytes, or the line and reason it cannot be loaded (never more than the
    size limit is read)."""
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
            if len(data) > MAX_FILE_BYTES:
                stream.seek(0, 2)
                size = max(stream.tell(), len(data))
                return None, (
                    1,
                    f"the file is {_megabytes(size)}; a definitions file is limited to {_megabytes(MAX_FILE_BYTES)}",
                )
    except OSError as error:
        return None, (1, f"cannot read: {error.strerror}")
    return data, None


def _decode(data: bytes) -> tuple[str | None, tuple[int, str] | None]:
    """The file's text, or the line and reason it is not YAML text."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        return None, (line, f"not UTF-8 text (byte 0x{data[error.start]:02x})")
    bad = _NOT_YAML_TEXT.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        return None, (line, f"control character U+{ord(bad.group()):04X} is not allowed in YAML")
    return text, None


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size >= 100_000 else f"{size:,} bytes"


def _check_shape(text: str) -> tuple[int, str] | None:
    """The line and reason the YAML nests too deep or expands its aliases too far, else None.

    Reads the event stream only (no nodes are built), counting each node as 1 plus its
    children, an alias as the whole node it names.
    """
    # One entry per open collection: [anchor, nodes so far].
    open_nodes: list[list[Any]] = []
    anchor_sizes: dict[str, int] = {}
    nodes = expanded = 0
    loader = _Base(text)
    try:
        while loader.check_event():
            event = loader.get_event()
            line = event.start_mark.line + 1
            if isinstance(event, yaml.NodeEvent):
                nodes += 1
                if nodes + expanded > MAX_NODES:
                    return line, f"more than {MAX_NODES:,} values and keys"
            if isinstance(event, yaml.CollectionStartEvent):
                open_nodes.append([event.anchor, 1])
                if len(open_nodes) > MAX_DEPTH:
                    return line, f"nested more than {MAX_DEPTH} levels deep"
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                anchor, size = open_nodes.pop()
            elif isinstance(event, yaml.ScalarEvent):
                anchor, size = event.anchor, 1
            elif isinstance(event, yaml.AliasEvent):
                if any(entry[0] == event.anchor for entry in open_nodes):
                    return line, f"alias *{event.anchor} refers to a node that contains it"
                anchor, size = None, anchor_sizes.get(event.anchor, 0)
                expanded += size
                if expanded > MAX_ALIAS_NODES:
                    return line, f"aliases expand to more than {MAX_ALIAS_NODES:,} nodes"
            else:
                continue
            if anchor is not None:
                anchor_sizes[anchor] = size
            if open_nodes:
                open_nodes[-1][1] += size
    except yaml.YAMLError:
        return None  # the full load reports it, with its line
    finally:
        loader.dispose()
    return None


@dataclass
class Definitions:
    """What `load_definitions` found: the valid quarters, and every problem.

    `paths` holds each quarter's file, or its folder when it is split over team files;
    `sources` every file a quarter was read from.
    """

    files: dict[Quarter, OkrFile] = field(default_factory=dict)
    paths: dict[Quarter, Path] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    root: Path | None = None
    sources: dict[Quarter, tuple[Path, ...]] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def for_quarter(self, quarter: Quarter) -> OkrFile | None:
        return self.files.get(quarter)

    def errors_for(self, quarter: Quarter) -> list[Problem]:
        """The errors in the quarter's file, or in the files of its folder."""
        name = str(quarter)
        return [
            p for p in self.errors if Path(p.path).stem == name or Path(p.path).parent.name == name
        ]

    def copy(self) -> Definitions:
        """A copy whose lists and mappings can be changed (the models are frozen)."""
        return Definitions(
            dict(self.files), dict(self.paths), list(self.problems), self.root, dict(self.sources)
        )


def _line_of(raw: Any, loc: tuple[Any, ...]) -> tuple[int, str]:
    """Follow a pydantic error location through the raw YAML: the line and the dotted key."""
    node, line, keys = raw, getattr(raw, "line", 1), []
    for part in loc:
        if isinstance(node, LineMapping) and part in node:
            line = node.key_lines.get(part, node.line)
            keys.append(_shown_key(part))
            node = node[part]
        elif isinstance(node, LineMapping) and isinstance(part, str) and part not in node:
            # A missing key, or a union tag that is not in the data.
            if not part.endswith("-metric") and part not in sources():
                keys.append(part)
        elif isinstance(node, LineSequence) and isinstance(part, int) and part < len(node):
            line = node.item_lines[part]
            item = node[part]
            label = item.get("id") if isinstance(item, LineMapping) else None
            keys.append(f"[{_shown_id(label)}]" if isinstance(label, str) else f"[{part}]")
            node = item
    dotted = ".".join(keys).replace(".[", "[")
    return line, dotted


def _shown_key(key: Any) -> str:
    """A key as it reads in a problem: bare when it is a plain word (GA4's `pagePath`
    too), else quoted."""
    text = str(key)
    return text if re.fullmatch(r"[A-Za-z0-9_-]{1,100}", text) else repr(text[:100])


def _shown_id(label: str) -> str:
    """An objective's or KR's id in a key path: bare when it is a valid id, else quoted."""
    return label if re.fullmatch(r"[a-z0-9_-]{1,100}", label) else repr(label[:100])


def _message(error: ErrorDetails) -> str:
    kind, message = error["type"], error["msg"]
    if kind == "string_pattern_mismatch" and error["ctx"].get("pattern") == SLUG:
        shown = repr(error["input"][:100])
        return (
            f"{shown} is not an id: use lower-case letters and digits, "
            f"words joined by - or _ (at most {ID_MAX_LENGTH} characters)"
        )
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


def _parse_yaml(data: bytes, display: str) -> tuple[LineMapping | None, list[Problem]]:
    """A file's YAML as line-keeping mappings, or the problems that stop it loading."""
    text, refused = _decode(data)
    if text is None or refused:
        line, reason = refused or (1, "cannot read")
        return None, [Problem(display, line, reason)]
    refused = _check_shape(text)
    if refused:
        return None, [Problem(display, refused[0], f"invalid YAML: {refused[1]}")]
    loader = _LineLoader(text)
    loader.duplicate_keys = []
    try:
        raw = loader.get_single_data()
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        # libyaml can mark the end of the stream one line past a last line without \n.
        line = min(mark.line + 1, text.count("\n") + 1) if mark else 1
        reason = getattr(error, "problem", None) or str(error).splitlines()[0]
        return None, [Problem(display, line, f"invalid YAML: {reason}")]
    finally:
        loader.dispose()
    problems = [
        Problem(display, line, f"{key}: duplicate key") for key, line in loader.duplicate_keys
    ]
    if not isinstance(raw, LineMapping):
        return None, [
            *problems,
            Problem(display, 1, "expected a mapping with quarter and objectives"),
        ]
    return raw, problems


def _validation_problems(error: ValidationError, raw: LineMapping, display: str) -> list[Problem]:
    """A pydantic error as `file:line: key: message` lines, the first `MAX_PROBLEMS` of them."""
    problems = []
    if error.error_count() > MAX_PROBLEMS:
        problems.append(
            Problem(
                display, 1, f"{error.error_count():,} problems; the first {MAX_PROBLEMS} are listed"
            )
        )
    seen = set()
    for item in error.errors(include_url=False)[:MAX_PROBLEMS]:
        line, key = _line_of(raw, item["loc"])
        problem = Problem(display, line, f"{key}: {_message(item)}" if key else _message(item))
        if problem not in seen:
            seen.add(problem)
            problems.append(problem)
    return problems


def _parse_file(path: Path, display: str, data: bytes) -> tuple[OkrFile | None, list[Problem]]:
    """A quarter written in one file."""
    raw, problems = _parse_yaml(data, display)
    if raw is None:
        return None, problems
    problems += _check_ids(raw, display, {})
    too_many = _count_key_results(raw, display)
    if too_many:
        return None, [*problems, too_many]
    try:
        okr_file = OkrFile.model_validate(raw)
    except ValidationError as error:
        return None, problems + _validation_problems(error, raw, display)
    if QUARTER_NAME.match(path.stem) and path.stem != str(okr_file.quarter):
        line = raw.key_lines.get("quarter", 1)
        problems.append(
            Problem(
                display,
                line,
                f"quarter: {okr_file.quarter} does not match the file name {path.name}",
            )
        )
    problems += _checked(okr_file, Placed.one_file(display, raw))
    has_errors = any(p.severity == "error" for p in problems)
    return (None if has_errors else okr_file), problems


def _parse_folder(
    folder: Path, quarter: Quarter, contents: list[_Content]
) -> tuple[OkrFile | None, list[Problem]]:
    """A quarter split over team files (`okr_defs/2026-Q4/*.yaml`), merged into one.

    `_quarter.yaml` holds the quarter's settings, every other file objectives only; ids
    are unique across the files. Any error in any file refuses the whole quarter, so that
    no team's KRs silently drop out of a run.
    """
    problems: list[Problem] = []
    settings_file = folder / f"{SETTINGS_FILE}.yaml"
    settings: QuarterSettings = QuarterSettings(quarter=quarter)
    settings_place: tuple[str, LineMapping] | None = None
    objectives: list[Objective] = []
    placed_objectives: list[tuple[str, LineMapping]] = []
    first_team: tuple[str, LineMapping] | None = None
    key_results = 0
    first_seen: dict[tuple[str, str], tuple[str, int]] = {}
    failed = False
    for path, data, refused in contents:
        display = str(path)
        if data is None:
            line, reason = refused or (1, "cannot read")
            problems.append(Problem(display, line, reason))
            failed = True
            continue
        raw, found = _parse_yaml(data, display)
        problems += found
        if raw is None:
            failed = True
            continue
        kept = _without(raw, "objectives" if path.stem == SETTINGS_FILE else QUARTER_SETTINGS)
        for key in raw.keys() - kept.keys():
            failed = True
            message = (
                f"objectives: {path.name} holds the quarter's settings only "
                f"({', '.join(QUARTER_SETTINGS)}); objectives go in the team files"
                if path.stem == SETTINGS_FILE
                else f"{key}: a quarter-level setting; set it in {settings_file} for every team"
            )
            problems.append(Problem(display, raw.key_lines.get(key, 1), message))
        try:
            if path.stem == SETTINGS_FILE:
                settings = QuarterSettings.model_validate(kept)
                settings_place = (display, raw)
                named = settings.quarter
            else:
                problems += _check_ids(kept, display, first_seen)
                too_many = _count_key_results(kept, display)
                if too_many:
                    problems.append(too_many)
                    failed = True
                    continue
                # The folder's quarter when the file names none (its checkpoints need it).
                team = TeamFile.model_validate({"quarter": quarter, **kept})
                first_team = first_team or (display, kept)
                key_results += sum(len(objective.key_results) for objective in team.objectives)
                if key_results > MAX_KEY_RESULTS:
                    problems.append(
                        Problem(
                            display,
                            kept.key_lines.get("objectives", 1),
                            f"objectives: the files of {quarter} hold more than "
                            f"{MAX_KEY_RESULTS:,} key results; a quarter holds at most "
                            f"{MAX_KEY_RESULTS:,}",
                        )
                    )
                    return None, problems
                objectives += team.objectives
                placed_objectives += [(display, item) for item in kept["objectives"]]
                named = team.quarter
        except ValidationError as error:
            problems += _validation_problems(error, kept, display)
            failed = True
            continue
        if named is not None and named != quarter:
            problems.append(
                Problem(
                    display,
                    raw.key_lines.get("quarter", 1),
                    f"quarter: {named} does not match its folder {folder.name}/",
                )
            )
    if not failed and not objectives:
        problems.append(
            Problem(str(settings_file), 1, f"no team file with objectives in {folder}/")
        )
    if failed or any(p.severity == "error" for p in problems) or not objectives:
        return None, problems
    okr_file = OkrFile.model_validate(
        {
            **{key: getattr(settings, key) for key in QUARTER_SETTINGS},
            "quarter": quarter,
            "objectives": objectives,
        }
    )
    head, head_raw = settings_place or first_team or ("", LineMapping())
    problems += _checked(okr_file, Placed(head, head_raw, tuple(placed_objectives)))
    has_errors = any(p.severity == "error" for p in problems)
    return (None if has_errors else okr_file), problems


def _without(raw: LineMapping, keys: str | tuple[str, ...]) -> LineMapping:
    """`raw` less `keys`, lines kept."""
    drop = {keys} if isinstance(keys, str) else set(keys)
    kept = LineMapping((key, value) for key, value in raw.items() if key not in drop)
    kept.line = raw.line
    kept.key_lines = {key: line for key, line in raw.key_lines.items() if key not in drop}
    return kept


def _checked(okr_file: OkrFile, placed: Placed) -> list[Problem]:
    """What is found once a quarter is whole: series keys too long, and the linter's warnings."""
    return _check_metric_keys(okr_file, placed) + best_practice(okr_file, placed)


def _check_metric_keys(okr_file: OkrFile, placed: Placed) -> list[Problem]:
    """A series key the warehouse cannot hold (a very long `jql`, `where` or filter)."""
    problems = []
    for index, objective in enumerate(okr_file.objectives):
        for position, key_result in enumerate(objective.key_results):
            longest = max(
                len(okr_file.metric_key(key_result, part)) for part in key_result.series_parts
            )
            if longest > MAX_METRIC_KEY:
                path, raw_kr = placed.key_result(index, position)
                where = f"objectives[{objective.id}].key_results[{key_result.id}].metric"
                problems.append(
                    Problem(
                        path,
                        raw_kr.key_lines.get("metric", raw_kr.line),
                        f"{where}: the query is {longest:,} characters as a series key; "
                        f"the warehouse keeps {MAX_METRIC_KEY:,}",
                    )
                )
    return problems


def _count_key_results(raw: LineMapping, display: str) -> Problem | None:
    """A file with more KRs than `MAX_KEY_RESULTS`, refused before each one is checked."""
    objectives = raw.get("objectives")
    if not isinstance(objectives, list):
        return None
    count = sum(
        len(objective.get("key_results") or [])
        for objective in objectives
        if isinstance(objective, dict) and isinstance(objective.get("key_results"), list)
    )
    if count <= MAX_KEY_RESULTS:
        return None
    line = raw.key_lines.get("objectives", 1)
    return Problem(
        display,
        line,
        f"objectives: {count:,} key results; a file holds at most {MAX_KEY_RESULTS:,}",
    )


def _check_ids(
    raw: LineMapping, display: str, first_seen: dict[tuple[str, str], tuple[str, int]]
) -> list[Problem]:
    """Duplicate objective and KR ids, read off the raw YAML so they show beside other
    errors; `first_seen` carries the ids of the quarter's other files."""
    problems: list[Problem] = []
    objectives = raw.get("objectives")
    if not isinstance(objectives, LineSequence):
        return problems

    def check(kind: str, where: str, item: Any, line: int) -> None:
        item_id = item.get("id") if isinstance(item, LineMapping) else None
        if not isinstance(item_id, str):
            return
        id_line = item.key_lines.get("id", line)
        if (kind, item_id) in first_seen:
            path, first_line = first_seen[kind, item_id]
            at = f"line {first_line}" if path == display else f"{path}:{first_line}"
            problems.append(
                Problem(
                    display,
                    id_line,
                    f"{where}[{item_id}].id: duplicate id {item_id!r} (first at {at})",
                )
            )
        else:
            first_seen[kind, item_id] = (display, id_line)

    for objective, line in zip(objectives, objectives.item_lines, strict=True):
        check("objective", "objectives", objective, line)
        key_results = objective.get("key_results") if isinstance(objective, LineMapping) else None
        if isinstance(key_results, LineSequence):
            where = f"objectives[{objective.get('id')}].key_results"
            for key_result, kr_line in zip(key_results, key_results.item_lines, strict=True):
                check("key_result", where, key_result, kr_line)
    return problems


def _yaml_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def _is_quarter_folder(path: Path) -> bool:
    return path.is_dir() and bool(QUARTER_NAME.match(path.name))


def definition_files(path: Path) -> list[Path]:
    """Every definitions file `path` names: itself, a folder's `*.yaml`, and the `*.yaml`
    of each quarter folder in it (`2026-Q4/`)."""
    if not path.is_dir():
        return [path]
    if _is_quarter_folder(path):
        return _yaml_files(path)
    found = []
    for child in sorted(path.iterdir()):
        if child.suffix in (".yaml", ".yml") and child.is_file():
            found.append(child)
        elif _is_quarter_folder(child):
            found += _yaml_files(child)
    return found


# (path, bytes or None, why not) of each definitions file.
_Content = tuple[Path, "bytes | None", "tuple[int, str] | None"]
# Loaded definitions by what they were loaded from; see `load_definitions`.
_CACHE: OrderedDict[tuple[Any, ...], Definitions] = OrderedDict()
_CACHE_SIZE = 8
_CACHE_LOCK = threading.Lock()  # the dashboard's server threads may load at once


def load_definitions(path: str | Path) -> Definitions:
    """Load one definitions file or every `*.yaml` in a folder, quarter folders included.

    A team file, or a quarter's folder, is loaded with the rest of its quarter. The files
    are parsed once for as long as their bytes stay the same: a run's assets, `okr lint`
    and the CLI each ask for the definitions, and all but the first get a copy of what
    was parsed. The key is every file's name and content digest rather than its mtime, as
    file times are coarse (a file rewritten at the same size within a clock tick would
    keep its old definitions); reading and hashing 1 MB costs about a millisecond.
    """
    root = Path(path)
    if root.is_file() and _is_quarter_folder(root.parent):
        root = root.parent
    base = root.parent if (root.is_file() or _is_quarter_folder(root)) else root
    if not root.exists():
        found = Definitions(root=base)
        found.problems.append(Problem(str(root), 1, "no such file or folder"))
        return found
    contents: list[_Content] = [(file, *_read_bytes(file)) for file in definition_files(root)]
    key = (
        str(root),
        str(root.resolve()),
        tuple(
            (str(file), hashlib.sha256(data).digest() if data is not None else refused)
            for file, data, refused in contents
        ),
    )
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            _CACHE.move_to_end(key)
    if cached is None:
        cached = _load(root, base, contents)
        with _CACHE_LOCK:
            _CACHE[key] = cached
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
    return cached.copy()


def _load(root: Path, base: Path, contents: list[_Content]) -> Definitions:
    found = Definitions(root=base)
    if not contents:
        found.problems.append(Problem(str(root), 1, "no *.yaml definitions found"))
    folders: dict[Path, list[_Content]] = {}
    for file, data, refused in contents:
        if _is_quarter_folder(file.parent) and file.parent != base:
            folders.setdefault(file.parent, []).append((file, data, refused))
            continue
        display = str(file)
        if data is None:
            line, reason = refused or (1, "cannot read")
            found.problems.append(Problem(display, line, reason))
            continue
        okr_file, problems = _parse_file(file, display, data)
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
        found.sources[okr_file.quarter] = (file,)
    for folder, files in folders.items():
        quarter = Quarter.parse(folder.name)
        okr_file, problems = _parse_folder(folder, quarter, files)
        found.problems += problems
        single = found.paths.get(quarter) or next(
            (file for file, _, _ in contents if file.parent == base and file.stem == folder.name),
            None,
        )
        if single is not None:
            found.problems.append(
                Problem(
                    str(single),
                    1,
                    f"quarter: {quarter} is also defined by the folder {folder}/ (a file per "
                    f"team); keep the one file or the folder, not both",
                )
            )
            for table in (found.files, found.paths, found.sources):
                table.pop(quarter, None)
            continue
        if okr_file is not None:
            found.files[quarter] = okr_file
            found.paths[quarter] = folder
            found.sources[quarter] = tuple(file for file, _, _ in files)
    found.problems.sort(key=lambda p: (p.path, p.line))
    return found
