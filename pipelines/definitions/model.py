"""The OKR definitions' YAML model: quarters, objectives, key results and their metrics.

Pydantic models, strict (unknown keys are errors) and frozen. A KR's `metric` is one of
the sources' metric models (`okr_metrics.connectors.<source>.params`), told apart by
`source`, or a ratio of two. The loader (`loader.py`) validates YAML against these and
turns every error into `file:line: key: message`. Pure: no Dagster, no HTTP.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from datetime import date, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from okr_metrics.connectors.params import Expectations, MetricParams
from okr_metrics.connectors.registry import sources
from okr_metrics.pipelines.definitions.units import UNIT_MAX_LENGTH, check_format, check_unit
from okr_metrics.pipelines.vocabulary.quarters import Quarter
from okr_metrics.pipelines.vocabulary.terms import (
    ALERT_WEBHOOK_VARIABLE,
    PROGRESS_TYPES,
    RATIO_AGGREGATES,
    Aggregate,
    Commitment,
    KrType,
)

# Ids are slugs, so that no id can carry SQL, a path or a control character into a query,
# a file name or a page.
SLUG = r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$"
ID_MAX_LENGTH = 100
# Owners are kept in 200 characters by the warehouse.
OWNER_MAX_LENGTH = 200
# A route names a variable of its own, so a file can never send alerts to another secret.
ALERT_ROUTE_VARIABLE = ALERT_WEBHOOK_VARIABLE + r"_[A-Z0-9]+(?:_[A-Z0-9]+)*"


_ONE_DAY = timedelta(days=1)
# Keys added after the first release: left out of the hash at their default, so that a
# definition that does not use them keeps the hash its rows were scored with.
_HASH_DEFAULTS = {
    "low": None,
    "high": None,
    "checkpoints": None,
    "commitment": "aspirational",
    "reset_each_quarter": True,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _source_metric_type() -> Any:
    """The union of every known source's metric model, told apart by `source`."""
    models = tuple(source.params_model() for source in sources().values())
    if len(models) == 1:
        return models[0]
    return Annotated[Union[models], Field(discriminator="source")]  # noqa: UP007


if TYPE_CHECKING:
    SourceMetric = MetricParams
else:
    SourceMetric = _source_metric_type()


def _metric_shape(value: Any) -> str:
    is_ratio = isinstance(value, RatioMetric) or (isinstance(value, dict) and "ratio" in value)
    return "ratio-metric" if is_ratio else "source-metric"


class RatioParts(_Strict):
    numerator: SourceMetric
    denominator: SourceMetric

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


class AlertRules(_Strict):
    """When a KR raises an alert (docs/alerts.md); a KR's block overrides the file's key by key."""

    status_changes: bool = True
    score_below: float | None = Field(default=None, ge=0, le=1)
    score_above: float | None = Field(default=None, ge=0, le=1)
    value_below: float | None = None
    value_above: float | None = None
    p_achieve_below: float | None = Field(default=0.3, ge=0, le=1)
    dwell_days: int = Field(default=2, ge=1, le=30)


class Checkpoint(_Strict):
    """A phased target: where the KR should stand by the end of `date`."""

    date: date
    target: float = Field(allow_inf_nan=False)


def _item_errors(title: str, errors: list[tuple[tuple[Any, ...], str]]) -> ValidationError:
    """A validation error at a location inside the value being validated."""
    return ValidationError.from_exception_data(
        title,
        [
            InitErrorDetails(type=PydanticCustomError("value_error", message), loc=loc, input=None)
            for loc, message in errors
        ],
    )


class KeyResult(_Strict):
    id: str = Field(pattern=SLUG, max_length=ID_MAX_LENGTH)
    title: str = Field(min_length=1)
    owner: str | None = Field(default=None, max_length=OWNER_MAX_LENGTH)
    type: KrType
    start: float | None = Field(default=None, allow_inf_nan=False)
    target: float | None = Field(default=None, allow_inf_nan=False)
    weight: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    # How its values are written (definitions/units.py); presentation only.
    format: str | None = None
    unit: str | None = Field(default=None, max_length=UNIT_MAX_LENGTH)
    alerts: AlertRules | None = None
    # The kinds of docs/scoring.md: a band, phased targets, commitment, running totals.
    low: float | None = Field(default=None, allow_inf_nan=False)
    high: float | None = Field(default=None, allow_inf_nan=False)
    checkpoints: list[Checkpoint] | None = Field(default=None, min_length=1)
    commitment: Commitment = "aspirational"
    reset_each_quarter: bool = True
    metric: Annotated[
        Annotated[RatioMetric, Tag("ratio-metric")] | Annotated[SourceMetric, Tag("source-metric")],
        Discriminator(_metric_shape),
    ]

    @field_validator("format")
    @classmethod
    def _format(cls, value: str | None) -> str | None:
        return None if value is None else check_format(value)

    @field_validator("unit")
    @classmethod
    def _unit(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else check_unit(value, info.data.get("format"))

    @field_validator("checkpoints")
    @classmethod
    def _checkpoints_in_order(
        cls, checkpoints: list[Checkpoint] | None, info: ValidationInfo
    ) -> list[Checkpoint] | None:
        kr_type, start, target = (info.data.get(key) for key in ("type", "start", "target"))
        if checkpoints is None or kr_type not in PROGRESS_TYPES:
            return checkpoints
        if start is None or target is None:
            return checkpoints  # the missing key is reported on its own
        errors: list[tuple[tuple[Any, ...], str]] = []
        sign = 1 if target >= start else -1
        previous_date, previous_target = None, start
        for index, checkpoint in enumerate(checkpoints):
            if previous_date is not None and checkpoint.date <= previous_date:
                errors.append(((index, "date"), f"{checkpoint.date} is not after {previous_date}"))
            if (
                sign * (checkpoint.target - previous_target) < 0
                or sign * (target - checkpoint.target) < 0
            ):
                way = "rise" if sign > 0 else "fall"
                errors.append(
                    (
                        (index, "target"),
                        f"{checkpoint.target:g}: checkpoint targets {way} from `start` "
                        f"({start:g}) to `target` ({target:g}), never back",
                    )
                )
            previous_date, previous_target = checkpoint.date, checkpoint.target
        if errors:
            raise _item_errors("checkpoints", errors)
        return checkpoints

    @model_validator(mode="after")
    def _kind_rules(self) -> KeyResult:
        kind = self.type
        if kind == "maintain_between":
            if self.low is None or self.high is None:
                raise ValueError("`low` and `high` are both required for a maintain_between KR")
            if self.low > self.high:
                raise ValueError(f"`low` ({self.low:g}) is above `high` ({self.high:g})")
            if self.target is not None or self.start is not None:
                raise ValueError("a maintain_between KR takes `low` and `high`, not start/target")
        elif self.low is not None or self.high is not None:
            raise ValueError(f"`low` and `high` are for maintain_between KRs, not {kind}")
        if kind == "baseline":
            if self.target is not None or self.start is not None:
                raise ValueError("a baseline KR is measured, not scored: drop start and target")
            if self.commitment == "committed":
                raise ValueError("a baseline KR is never scored, so it cannot be committed")
        if self.checkpoints is not None and kind not in PROGRESS_TYPES:
            raise ValueError(f"`checkpoints` are for increase and decrease KRs, not {kind}")
        if not self.reset_each_quarter and (
            self.aggregate != "sum" or self.is_ratio or kind.startswith("maintain")
        ):
            raise ValueError(
                "reset_each_quarter: false carries a running total: it needs a single series "
                "with aggregate sum, on a KR that is not a maintain KR"
            )
        if not self.reset_each_quarter and "manual" in self.sources:
            raise ValueError(
                "reset_each_quarter: false needs a source's series: check-ins belong to one "
                "quarter, so there is no earlier total to carry"
            )
        return self

    @model_validator(mode="after")
    def _type_rules(self) -> KeyResult:
        if self.type in ("increase", "decrease") and self.start is None:
            raise ValueError(f"`start` is required for a {self.type} KR")
        if self.type not in ("milestone", "maintain_between", "baseline") and self.target is None:
            raise ValueError(f"`target` is required for a {self.type} KR")
        if self.start is not None and self.start == self.effective_target:
            raise ValueError(f"`start` and `target` are both {self.start:g}: nothing to move")
        target = self.effective_target
        if self.type == "increase" and self.start is not None and target < self.start:
            raise ValueError("an increase KR needs `target` above `start` (use type: decrease)")
        if self.type == "decrease" and self.start is not None and target > self.start:
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
        metric = self.metric
        if isinstance(metric, RatioMetric):
            return (metric.ratio.numerator, metric.ratio.denominator)
        return metric.ratio_parts() or (metric,)

    @property
    def is_ratio(self) -> bool:
        return len(self.series_parts) == 2

    @property
    def aggregate(self) -> str:
        if self.metric.aggregate:
            return self.metric.aggregate
        if self.is_ratio or isinstance(self.metric, RatioMetric):
            return "sum"
        return type(self.metric).default_aggregate

    @property
    def sources(self) -> set[str]:
        return {part.source for part in self.series_parts}


class Objective(_Strict):
    id: str = Field(pattern=SLUG, max_length=ID_MAX_LENGTH)
    title: str = Field(min_length=1)
    owner: str | None = Field(default=None, max_length=OWNER_MAX_LENGTH)
    aligns_to: str | None = Field(default=None, pattern=SLUG, max_length=ID_MAX_LENGTH)
    key_results: list[KeyResult] = Field(min_length=1)


class Thresholds(_Strict):
    on_track: float = Field(default=0.7, gt=0)
    at_risk: float = Field(default=0.5, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.at_risk >= self.on_track:
            raise ValueError("status_thresholds: at_risk must be below on_track")
        return self


def _parse_quarter(value: Any) -> Quarter | None:
    if value is None or isinstance(value, Quarter):
        return value
    return Quarter.parse(str(value))


def _checkpoints_in_quarter(objectives: list[Objective], info: ValidationInfo) -> list[Objective]:
    """Every checkpoint's date inside the quarter, before its last day."""
    quarter = info.data.get("quarter")
    if quarter is None:
        return objectives
    errors: list[tuple[tuple[Any, ...], str]] = []
    for o, objective in enumerate(objectives):
        for k, key_result in enumerate(objective.key_results):
            for c, checkpoint in enumerate(key_result.checkpoints or ()):
                # The quarter's last day is the target's own.
                if not quarter.start <= checkpoint.date < quarter.end:
                    errors.append(
                        (
                            (o, "key_results", k, "checkpoints", c, "date"),
                            f"{checkpoint.date} is not inside {quarter} before its last "
                            f"day ({quarter.start}..{quarter.end - _ONE_DAY})",
                        )
                    )
    if errors:
        raise _item_errors("objectives", errors)
    return objectives


# The keys a quarter sets for all its objectives: in a quarter split over team files
# (`okr_defs/2026-Q4/*.yaml`) they live in its `_quarter.yaml` alone.
QUARTER_SETTINGS = ("timezone", "status_thresholds", "alerts", "alert_routes")


class QuarterSettings(_Strict):
    """A quarter's settings: what `_quarter.yaml` holds in a quarter split over team
    files, and the head of a one-file quarter (`OkrFile`)."""

    quarter: Quarter | None = None
    timezone: str = "UTC"
    status_thresholds: Thresholds = Thresholds()
    alerts: AlertRules = AlertRules()
    # owner -> the variable holding that team's webhook URL (never the URL itself)
    alert_routes: dict[str, str] = Field(default_factory=dict)
    # Days after the quarter's last day before its grades are frozen (data that settles late).
    close_offset_days: int = Field(default=7, ge=0, le=92, strict=True)

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    _quarter = field_validator("quarter", mode="before")(_parse_quarter)

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

    @field_validator("alert_routes")
    @classmethod
    def _alert_routes(cls, routes: dict[str, str]) -> dict[str, str]:
        for owner, variable in routes.items():
            if not re.fullmatch(ALERT_ROUTE_VARIABLE, variable):
                raise ValueError(
                    f"{owner}: {variable!r} is not a route variable: name one such as "
                    f"{ALERT_WEBHOOK_VARIABLE}_{re.sub(r'[^A-Z0-9]+', '_', owner.upper())} "
                    "(the URL itself stays in the environment)"
                )
        return routes


class TeamFile(_Strict):
    """One team's file in a quarter split over files: its objectives (and, optionally,
    the quarter, which must be its folder's)."""

    quarter: Quarter | None = None
    objectives: list[Objective] = Field(min_length=1)

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    _quarter = field_validator("quarter", mode="before")(_parse_quarter)
    _checkpoints = field_validator("objectives")(_checkpoints_in_quarter)


class OkrFile(QuarterSettings):
    """A quarter's definitions: one file, or the merge of its team files."""

    quarter: Quarter
    objectives: list[Objective] = Field(min_length=1)

    _checkpoints = field_validator("objectives")(_checkpoints_in_quarter)

    def alert_rules(self, key_result: KeyResult) -> AlertRules:
        """The file's `alerts` with the KR's own keys over them."""
        if key_result.alerts is None:
            return self.alerts
        return self.alerts.model_copy(update=key_result.alerts.model_dump(exclude_unset=True))

    def alert_route(self, owner: str | None) -> str:
        """The variable naming the webhook of `owner`'s alerts: its route, else the default."""
        return self.alert_routes.get(owner or "", ALERT_WEBHOOK_VARIABLE)

    @property
    def closing_day(self) -> date:
        """The first day a run freezes the quarter's grades (docs/scoring.md)."""
        return self.quarter.end + timedelta(days=self.close_offset_days)

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
        """Every distinct series the quarter needs, by metric key (shared queries once)."""
        found: dict[str, MetricParams] = {}
        for _, key_result in self.key_results:
            for part in key_result.series_parts:
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

    def definition_hash(self, key_result: KeyResult) -> str:
        """What a KR's score depends on: its definition, the timezone and the thresholds."""
        dumped = key_result.model_dump(
            mode="json", exclude={"title", "owner", "alerts", "format", "unit"}
        )
        for key, default in _HASH_DEFAULTS.items():
            if dumped.get(key) == default:
                dumped.pop(key, None)
        return definition_hash(
            {
                "key_result": dumped,
                "timezone": self.timezone,
                "status_thresholds": self.status_thresholds.model_dump(),
            }
        )


def definition_hash(definition: Mapping[str, Any]) -> str:
    """A short, stable fingerprint of a KR definition: sha256 of canonical JSON, 16 hex chars."""
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
