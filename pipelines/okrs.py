"""The OKR definitions: the YAML model, its loader and the linter.

`load_definitions(path)` reads one file or every `*.yaml` in a folder and returns
the valid quarters plus every problem found, each naming `file:line` and the key.
Used by the CLI (`okr lint`), the Dagster assets and the tests. Pure: no Dagster,
no HTTP.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from connectors.params import Aggregate, Expectations, MetricParams
from connectors.registry import sources
from pipelines.quarters import Quarter
from pipelines.scoring import (
    KeyResultInput,
    ObjectiveInput,
    StatusThresholds,
    definition_hash,
)

SLUG = r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$"
KrType = Literal["increase", "decrease", "maintain_above", "maintain_below", "milestone"]
RATIO_AGGREGATES = ("sum", "mean_7d")

# Best-practice limits: warnings, not errors.
MAX_OBJECTIVES = 5
MIN_KRS, MAX_KRS = 2, 4


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _source_metric_type() -> Any:
    """The union of every known source's metric model, told apart by `source`."""
    models = tuple(source.params_model() for source in sources().values())
    if len(models) == 1:
        return models[0]
    return Annotated[Union[models], Field(discriminator="source")]  # noqa: UP007


SourceMetric = _source_metric_type()


def _metric_shape(value: Any) -> str:
    is_ratio = isinstance(value, RatioMetric) or (isinstance(value, dict) and "ratio" in value)
    return "ratio-metric" if is_ratio else "source-metric"


def _no_pipeline_fields(value: Any) -> Any:
    """Reject the keys a source leaves for the pipeline to fill (a manual KR's id, quarter...)."""
    source = sources().get(value.get("source")) if isinstance(value, dict) else None
    if source is not None:
        for name in getattr(source.params_model(), "pipeline_fields", ()):
            if name in value:
                raise ValueError(f"`{name}` is filled in by the pipeline; remove it from the YAML")
    return value


class RatioParts(_Strict):
    numerator: SourceMetric
    denominator: SourceMetric

    _pipeline_fields = field_validator("numerator", "denominator", mode="before")(
        _no_pipeline_fields
    )

    @field_validator("numerator", "denominator")
    @classmethod
    def _plain_series(cls, metric: MetricParams) -> MetricParams:
        if metric.aggregate is not None:
            raise ValueError("put `aggregate` beside `ratio`, not inside numerator or denominator")
        if metric.ratio_parts() is not None:
            raise ValueError("a ratio's numerator and denominator must be plain series")
        return metric


class RatioMetric(_Strict):
    ratio: RatioParts
    aggregate: Aggregate | None = None


class KeyResult(_Strict):
    id: str = Field(pattern=SLUG)
    title: str = Field(min_length=1)
    owner: str | None = None
    type: KrType
    start: float | None = None
    target: float | None = None
    weight: float = Field(default=1.0, gt=0)
    metric: Annotated[
        Annotated[RatioMetric, Tag("ratio-metric")] | Annotated[SourceMetric, Tag("source-metric")],
        Discriminator(_metric_shape),
    ]

    _pipeline_fields = field_validator("metric", mode="before")(_no_pipeline_fields)

    @model_validator(mode="after")
    def _type_rules(self) -> KeyResult:
        if self.type in ("increase", "decrease") and self.start is None:
            raise ValueError(f"`start` is required for a {self.type} KR")
        if self.type != "milestone" and self.target is None:
            raise ValueError(f"`target` is required for a {self.type} KR")
        if self.start is not None and self.start == self.effective_target:
            raise ValueError(f"`start` and `target` are both {self.start:g}: nothing to move")
        if self.type == "increase" and self.start is not None and self.target < self.start:
            raise ValueError("an increase KR needs `target` above `start` (use type: decrease)")
        if self.type == "decrease" and self.start is not None and self.target > self.start:
            raise ValueError("a decrease KR needs `target` below `start` (use type: increase)")
        if self.is_ratio and self.aggregate not in RATIO_AGGREGATES:
            raise ValueError(
                f"aggregate `{self.aggregate}` cannot apply to a ratio; use sum or mean_7d"
            )
        return self

    @property
    def effective_target(self) -> float:
        return 1.0 if self.target is None else self.target

    @property
    def series_parts(self) -> tuple[MetricParams, ...]:
        """One series, or a (numerator, denominator) pair for ratios."""
        if isinstance(self.metric, RatioMetric):
            return (self.metric.ratio.numerator, self.metric.ratio.denominator)
        return self.metric.ratio_parts() or (self.metric,)

    @property
    def is_ratio(self) -> bool:
        return len(self.series_parts) == 2

    @property
    def aggregate(self) -> str:
        if self.metric.aggregate:
            return self.metric.aggregate
        if self.is_ratio:
            return "sum"
        return type(self.metric).default_aggregate

    @property
    def sources(self) -> set[str]:
        return {part.source for part in self.series_parts}


class Objective(_Strict):
    id: str = Field(pattern=SLUG)
    title: str = Field(min_length=1)
    owner: str | None = None
    aligns_to: str | None = Field(default=None, pattern=SLUG)
    key_results: list[KeyResult] = Field(min_length=1)


class Thresholds(_Strict):
    on_track: float = Field(default=0.7, gt=0)
    at_risk: float = Field(default=0.5, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.at_risk >= self.on_track:
            raise ValueError("status_thresholds: at_risk must be below on_track")
        return self


class OkrFile(_Strict):
    quarter: Quarter
    timezone: str = "UTC"
    status_thresholds: Thresholds = Thresholds()
    objectives: list[Objective] = Field(min_length=1)

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    @field_validator("quarter", mode="before")
    @classmethod
    def _quarter(cls, value: Any) -> Quarter:
        if isinstance(value, Quarter):
            return value
        return Quarter.parse(str(value))

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown timezone {value!r} (use an IANA name such as Europe/Oslo)"
            ) from None
        return value

    @property
    def key_results(self) -> Iterator[tuple[Objective, KeyResult]]:
        for objective in self.objectives:
            for key_result in objective.key_results:
                yield objective, key_result

    def metric_key(self, key_result: KeyResult, part: MetricParams) -> str:
        return part.metric_key(
            timezone=self.timezone, quarter=str(self.quarter), kr_id=key_result.id
        )

    def series_by_key(self) -> dict[str, MetricParams]:
        """Every distinct series the quarter needs, by metric key (shared queries once).

        A series that belongs to one KR (a manual check-in series) learns which KR and
        quarter, and the quarter's other such KRs, through its `pipeline_fields`.
        """
        found: dict[str, MetricParams] = {}
        bound_ids = tuple(
            key_result.id
            for _, key_result in self.key_results
            if any(getattr(part, "pipeline_fields", ()) for part in key_result.series_parts)
        )
        for _, key_result in self.key_results:
            for part in key_result.series_parts:
                wanted = {
                    "kr_id": key_result.id,
                    "quarter": str(self.quarter),
                    "quarter_kr_ids": bound_ids,
                }
                fields = getattr(part, "pipeline_fields", ())
                update = {name: value for name, value in wanted.items() if name in fields}
                if update:
                    part = part.model_copy(update=update)
                found.setdefault(self.metric_key(key_result, part), part)
        return found

    def expectations_by_key(self) -> dict[str, dict[str, Expectations | None]]:
        """Per series key, the `expect` block each KR reading it declares (None: none).

        Every block applies to the shared series, so that no KR's expectations are lost.
        """
        found: dict[str, dict[str, Expectations | None]] = {}
        for _, key_result in self.key_results:
            for part in key_result.series_parts:
                blocks = found.setdefault(self.metric_key(key_result, part), {})
                blocks.setdefault(key_result.id, part.expect)
        return found

    def scoring_inputs(self) -> tuple[list[ObjectiveInput], list[KeyResultInput]]:
        """The plain inputs `pipelines.scoring` works on."""
        objectives, key_results = [], []
        for objective in self.objectives:
            objectives.append(
                ObjectiveInput(objective.id, objective.title, objective.owner, objective.aligns_to)
            )
            for key_result in objective.key_results:
                keys = [self.metric_key(key_result, part) for part in key_result.series_parts]
                key_results.append(
                    KeyResultInput(
                        kr_id=key_result.id,
                        objective_id=objective.id,
                        title=key_result.title,
                        owner=key_result.owner or objective.owner,
                        kr_type=key_result.type,
                        start=key_result.start,
                        target=key_result.effective_target,
                        weight=key_result.weight,
                        aggregate=key_result.aggregate,
                        metric_key=keys[0] if len(keys) == 1 else None,
                        numerator_key=keys[0] if len(keys) == 2 else None,
                        denominator_key=keys[1] if len(keys) == 2 else None,
                        tracks_staleness=key_result.sources != {"manual"},
                        definition_hash=self.definition_hash(key_result),
                    )
                )
        return objectives, key_results

    def definition_hash(self, key_result: KeyResult) -> str:
        """What a KR's score depends on: its definition, the timezone and the thresholds."""
        return definition_hash(
            {
                "key_result": key_result.model_dump(mode="json", exclude={"title", "owner"}),
                "timezone": self.timezone,
                "status_thresholds": self.status_thresholds.model_dump(),
            }
        )

    @property
    def thresholds(self) -> StatusThresholds:
        return StatusThresholds(self.status_thresholds.on_track, self.status_thresholds.at_risk)


# ---------------------------------------------------------------------------
# Loading with line numbers


class _Mapping(dict):
    """A YAML mapping that remembers the line of itself and of each key."""

    line: int = 0
    key_lines: dict[str, int]


class _Sequence(list):
    line: int = 0
    item_lines: list[int]


class _LineLoader(yaml.SafeLoader):
    duplicate_keys: list[tuple[str, int]]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> _Mapping:
        mapping = _Mapping()
        mapping.line = node.start_mark.line + 1
        mapping.key_lines = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in mapping:
                self.duplicate_keys.append((str(key), key_node.start_mark.line + 1))
            mapping[key] = self.construct_object(value_node, deep=True)
            mapping.key_lines[key] = key_node.start_mark.line + 1
        return mapping

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> _Sequence:
        sequence = _Sequence(self.construct_object(child, deep=True) for child in node.value)
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


@dataclass(frozen=True, order=True)
class Problem:
    path: str
    line: int
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        prefix = "" if self.severity == "error" else "warning: "
        return f"{self.path}:{self.line}: {prefix}{self.message}"


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
        if isinstance(node, _Mapping) and part in node:
            line = node.key_lines.get(part, node.line)
            keys.append(str(part))
            node = node[part]
        elif isinstance(node, _Mapping) and isinstance(part, str) and part not in node:
            # A missing key, or a union tag that is not in the data.
            if not part.endswith("-metric") and part not in sources():
                keys.append(part)
        elif isinstance(node, _Sequence) and isinstance(part, int) and part < len(node):
            line = node.item_lines[part]
            item = node[part]
            label = item.get("id") if isinstance(item, _Mapping) else None
            keys.append(f"[{label}]" if isinstance(label, str) else f"[{part}]")
            node = item
    dotted = ".".join(keys).replace(".[", "[")
    return line, dotted


def _message(error: dict[str, Any]) -> str:
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
    if not isinstance(raw, dict):
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
    problems += _best_practice(okr_file, raw, display)
    has_errors = any(p.severity == "error" for p in problems)
    return (None if has_errors else okr_file), problems


def _check_ids(raw: _Mapping, display: str) -> list[Problem]:
    """Duplicate objective and KR ids, read off the raw YAML so they show beside other errors."""
    problems: list[Problem] = []
    objectives = raw.get("objectives")
    if not isinstance(objectives, _Sequence):
        return problems
    first_seen: dict[tuple[str, str], int] = {}

    def check(kind: str, where: str, item: Any, line: int) -> None:
        item_id = item.get("id") if isinstance(item, _Mapping) else None
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
        key_results = objective.get("key_results") if isinstance(objective, _Mapping) else None
        if isinstance(key_results, _Sequence):
            where = f"objectives[{objective.get('id')}].key_results"
            for key_result, kr_line in zip(key_results, key_results.item_lines, strict=True):
                check("key_result", where, key_result, kr_line)
    return problems


def _best_practice(okr_file: OkrFile, raw: _Mapping, display: str) -> list[Problem]:
    warnings = _shared_expectations(okr_file, raw, display)
    if len(okr_file.objectives) > MAX_OBJECTIVES:
        warnings.append(
            Problem(
                display,
                raw.key_lines["objectives"],
                f"objectives: {len(okr_file.objectives)} objectives; keep a quarter to {MAX_OBJECTIVES} or fewer",
                "warning",
            )
        )
    for index, objective in enumerate(okr_file.objectives):
        count = len(objective.key_results)
        if not MIN_KRS <= count <= MAX_KRS:
            warnings.append(
                Problem(
                    display,
                    raw["objectives"].item_lines[index],
                    f"objectives[{objective.id}]: {count} key results; aim for {MIN_KRS} to {MAX_KRS}",
                    "warning",
                )
            )
    return warnings


def _shared_expectations(okr_file: OkrFile, raw: _Mapping, display: str) -> list[Problem]:
    """A warning where KRs share a series but declare different `expect` blocks."""
    metric_lines: dict[str, tuple[str, int]] = {}
    for objective in raw["objectives"]:
        for key_result in objective.get("key_results") or []:
            where = f"objectives[{objective['id']}].key_results[{key_result['id']}].metric"
            metric_lines[key_result["id"]] = (where, key_result.key_lines.get("metric", 1))
    warnings = []
    for metric_key, blocks in okr_file.expectations_by_key().items():
        distinct = {_expect_text(block) for block in blocks.values()}
        if len(distinct) < 2:
            continue
        kr_ids = list(blocks)
        where, line = metric_lines[kr_ids[-1]]
        said = "; ".join(f"{kr_id}: {_expect_text(block)}" for kr_id, block in blocks.items())
        warnings.append(
            Problem(
                display,
                line,
                f"{where}: KRs {', '.join(kr_ids)} read the same series ({metric_key}) but "
                f"declare different expect blocks; all of them apply to it ({said})",
                "warning",
            )
        )
    return warnings


def _expect_text(block: Expectations | None) -> str:
    if block is None:
        return "none"
    return json.dumps(block.model_dump(mode="json", exclude_defaults=True), sort_keys=True)


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
