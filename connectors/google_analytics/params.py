"""YAML keys of a Google Analytics 4 metric, and its filters.

`filter` maps a dimension to a condition on its values, `metric_filter` a metric to a
comparison of its daily value; several entries are all required (ANDed):

    filter:
      platform: [iOS, Android]                      # one of these values
      pagePath: {contains: /pricing}                # exact, begins_with, ends_with, contains,
      eventName: {full_regexp: "sign_?up", case_sensitive: false}  # full_regexp, partial_regexp
      country: {not: [France, Spain]}               # not, around any condition
      pageTitle: {any: [{begins_with: Pricing}, {contains: Plans}]}  # any (OR) / all (AND)
      deviceCategory: {in: [Mobile, Tablet], case_sensitive: false}  # a list, case-insensitive
    metric_filter:
      sessions: {gte: 10}                           # eq, lt, lte, gt, gte, between: [low, high]

Matching is case-sensitive unless `case_sensitive: false` stands beside the match (the
Data API's own default for a `stringFilter` is case-insensitive; the connector always
sends `caseSensitive`, so one rule holds for lists and string matches alike). Regular
expressions are RE2 (GA's syntax): no lookaround, atomic groups or backreferences.

The parsed conditions are frozen dataclasses (tuples inside, so hashable); they dump
back to the canonical YAML shape, which is what the metric key and the definition hash
are built from: a plain list stays a list, so the keys of existing definitions do not
move, and `{in: [a]}` and `[a]` are one query with one key. `client.py` turns them into
the Data API's `FilterExpression`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from pydantic import (
    Field,
    PlainSerializer,
    PlainValidator,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
)

from okr_metrics.connectors.params import MetricParams

# YAML name -> the Data API's StringFilter.MatchType.
MATCH_TYPES = {
    "exact": "EXACT",
    "begins_with": "BEGINS_WITH",
    "ends_with": "ENDS_WITH",
    "contains": "CONTAINS",
    "full_regexp": "FULL_REGEXP",
    "partial_regexp": "PARTIAL_REGEXP",
}
REGEXP_MATCHES = ("full_regexp", "partial_regexp")
# YAML name -> the Data API's NumericFilter.Operation (`between` is a BetweenFilter).
COMPARISONS = {
    "eq": "EQUAL",
    "lt": "LESS_THAN",
    "lte": "LESS_THAN_OR_EQUAL",
    "gt": "GREATER_THAN",
    "gte": "GREATER_THAN_OR_EQUAL",
}
COMBINATORS = ("not", "any", "all")
DIMENSION_KEYS = (*MATCH_TYPES, "in", *COMBINATORS)
METRIC_KEYS = (*COMPARISONS, "between", *COMBINATORS)
API_NAME = r"^[A-Za-z][A-Za-z0-9_:]*$"


# --- the parsed conditions ---------------------------------------------------------------


@dataclass(frozen=True)
class StringMatch:
    """A dimension value matched against `value` (`match` is a MATCH_TYPES key, or `in`)."""

    match: str
    value: str | tuple[str, ...]
    case_sensitive: bool = True


@dataclass(frozen=True)
class Comparison:
    """A metric value compared with a number (`op` is a COMPARISONS key, or `between`)."""

    op: str
    value: int | float | tuple[int | float, int | float]


@dataclass(frozen=True)
class Not:
    condition: Condition


@dataclass(frozen=True)
class AnyOf:
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class AllOf:
    conditions: tuple[Condition, ...]


Condition = Union[StringMatch, Comparison, Not, AnyOf, AllOf]  # noqa: UP007


def to_yaml(condition: Condition) -> Any:
    """The canonical YAML shape of a condition (a case-sensitive list is a plain list)."""
    if isinstance(condition, Not):
        return {"not": to_yaml(condition.condition)}
    if isinstance(condition, AnyOf | AllOf):
        name = "any" if isinstance(condition, AnyOf) else "all"
        return {name: [to_yaml(c) for c in condition.conditions]}
    if isinstance(condition, Comparison):
        value = condition.value
        return {condition.op: list(value) if isinstance(value, tuple) else value}
    if condition.match == "in" and condition.case_sensitive:
        return condition.value
    shape: dict[str, Any] = {
        condition.match: list(condition.value)
        if isinstance(condition.value, tuple)
        else condition.value
    }
    if not condition.case_sensitive:
        shape["case_sensitive"] = False
    return shape


# --- parsing the YAML ----------------------------------------------------------------------


class _Bad(ValueError):
    """A condition in the wrong shape; `where` is its path below the filter entry."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}" if where else message)


def _shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, Mapping | list | tuple) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _known(keys: tuple[str, ...]) -> str:
    return "{" + ", ".join(keys) + "}"


def _below(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _combined(
    raw: Mapping[str, Any], where: str, parse: Callable[[Any, str], Condition]
) -> Condition:
    """`not`, `any` or `all` around conditions parsed by `parse`."""
    ((name, inner),) = raw.items()
    if name == "not":
        return Not(parse(inner, _below(where, "not")))
    if not isinstance(inner, list | tuple) or not inner:
        raise _Bad(_below(where, name), f"use a non-empty list of conditions, got {_shown(inner)}")
    parts = tuple(parse(item, f"{_below(where, name)}[{i}]") for i, item in enumerate(inner))
    return AnyOf(parts) if name == "any" else AllOf(parts)


def _one_key(raw: Mapping[str, Any], where: str, known: tuple[str, ...], kind: str) -> str:
    unknown = [key for key in raw if key not in known]
    if unknown:
        raise _Bad(where, f"unknown {kind} {unknown[0]!r} (known: {', '.join(known)})")
    if not raw:
        raise _Bad(where, f"an empty mapping: use one of {_known(known)}")
    if len(raw) > 1:
        found = " and ".join(str(key) for key in raw)
        raise _Bad(
            where,
            f"one {kind} per mapping, found {found}: combine several with all: [...] or any: [...]",
        )
    return next(iter(raw))


def _values(raw: Any, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list | tuple) or not raw:
        raise _Bad(where, f"list at least one value, got {_shown(raw)}")
    for value in raw:
        if not isinstance(value, str):
            raise _Bad(where, f'values are strings (quote numbers: "1.10"), got {_shown(value)}')
    return tuple(raw)


def parse_dimension_condition(raw: Any, where: str = "") -> Condition:
    """A dimension's condition from its YAML (a list, or a one-key mapping)."""
    if isinstance(raw, list | tuple):
        return StringMatch("in", _values(raw, where))
    if not isinstance(raw, Mapping):
        raise _Bad(
            where, f"use a list of values or one of {_known(DIMENSION_KEYS)}: got {_shown(raw)}"
        )
    rest = {key: value for key, value in raw.items() if key != "case_sensitive"}
    if not rest and raw:
        raise _Bad(
            where, f"case_sensitive needs a match beside it, one of {_known(DIMENSION_KEYS)}"
        )
    name = _one_key(rest, where, DIMENSION_KEYS, "match type")
    if name in COMBINATORS:
        if "case_sensitive" in raw:
            raise _Bad(
                where,
                f"put case_sensitive beside the match inside {name}, not beside {name}",
            )
        return _combined(raw, where, parse_dimension_condition)
    case_sensitive = raw.get("case_sensitive", True)
    if not isinstance(case_sensitive, bool):
        raise _Bad(
            _below(where, "case_sensitive"), f"use true or false, got {_shown(case_sensitive)}"
        )
    if name == "in":
        return StringMatch("in", _values(raw[name], _below(where, "in")), case_sensitive)
    value = raw[name]
    if not isinstance(value, str) or not value:
        raise _Bad(
            _below(where, name),
            f'use a non-empty string (quote numbers: "1.10"), got {_shown(value)}',
        )
    if name in REGEXP_MATCHES:
        _check_regexp(value, _below(where, name))
    return StringMatch(name, value, case_sensitive)


# RE2 (GA's regular expressions) has none of these Python constructs.
_NOT_RE2 = re.compile(r"\\\\|\\[1-9]|\(\?(?:=|!|<=|<!|>|P=)")


def _check_regexp(pattern: str, where: str) -> None:
    try:
        re.compile(pattern)
    except re.error as error:
        raise _Bad(where, f"invalid regular expression {pattern!r}: {error}") from None
    for found in _NOT_RE2.finditer(pattern):
        if found.group() != "\\\\":  # an escaped backslash is fine
            raise _Bad(
                where,
                f"{found.group()!r} in {pattern!r} is not RE2, GA4's regular expression "
                "syntax (no lookaround, atomic groups or backreferences)",
            )


def _number(raw: Any, where: str) -> int | float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise _Bad(where, f"use a number, got {_shown(raw)}")
    if isinstance(raw, float) and not math.isfinite(raw):
        raise _Bad(where, f"use a finite number, got {raw}")
    return raw


def parse_metric_condition(raw: Any, where: str = "") -> Condition:
    """A metric's comparison from its YAML (a one-key mapping)."""
    if not isinstance(raw, Mapping):
        raise _Bad(where, f"use one of {_known(METRIC_KEYS)} (e.g. {{gte: 10}}): got {_shown(raw)}")
    name = _one_key(raw, where, METRIC_KEYS, "comparison")
    if name in COMBINATORS:
        return _combined(raw, where, parse_metric_condition)
    value = raw[name]
    if name != "between":
        return Comparison(name, _number(value, _below(where, name)))
    shape = "use [low, high] (both included, low <= high)"
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise _Bad(_below(where, name), f"{shape}, got {_shown(value)}")
    low, high = (_number(v, _below(where, name)) for v in value)
    if low > high:
        raise _Bad(_below(where, name), f"{shape}, got {_shown(value)}")
    return Comparison("between", (low, high))


def _validator(parse: Callable[[Any, str], Condition]) -> PlainValidator:
    def validate(raw: Any) -> Condition:
        if isinstance(raw, StringMatch | Comparison | Not | AnyOf | AllOf):
            return raw
        return parse(raw, "")

    return PlainValidator(validate)


_as_yaml = PlainSerializer(to_yaml, return_type=Any)
DimensionCondition = Annotated[Condition, _validator(parse_dimension_condition), _as_yaml]
MetricCondition = Annotated[Condition, _validator(parse_metric_condition), _as_yaml]


# --- the metric ------------------------------------------------------------------------------


class GoogleAnalyticsMetric(MetricParams):
    source: Literal["google_analytics"]
    property: str = Field(pattern=r"^[0-9]+$", description="GA4 property id")
    metric: str = Field(pattern=API_NAME, description="GA4 API metric name")
    filter: dict[str, DimensionCondition] = Field(
        default_factory=dict, description="dimension -> values, or a match on them"
    )
    metric_filter: dict[str, MetricCondition] = Field(
        default_factory=dict, description="metric -> comparison of each day's value"
    )

    @field_validator("filter", "metric_filter", mode="before")
    @classmethod
    def _api_names(cls, value: Any, info: ValidationInfo) -> Any:
        kind = "dimension" if info.field_name == "filter" else "metric"
        if isinstance(value, Mapping):
            for name in value:
                if not isinstance(name, str) or not re.match(API_NAME, name):
                    raise ValueError(
                        f"{name!r} is not a GA4 {kind} API name (letters, digits, _ and :)"
                    )
        return value

    @model_serializer(mode="wrap")
    def _without_empty_metric_filter(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Leave out an unused `metric_filter`, so that the definition hash of a KR
        # written before it existed does not move.
        data = handler(self)
        if not self.metric_filter and isinstance(data, dict):
            data.pop("metric_filter", None)
        return data

    def series_kind(self) -> str:
        # GA4's own naming tells the kind of its built-in metrics; custom ones are plain values.
        name = self.metric
        if name.endswith("Rate"):
            return "share"
        if name.endswith("Duration"):
            return "duration"
        if "Revenue" in name or name.startswith(("customEvent:", "customUser:")):
            return "value" if name.startswith("custom") else "amount"
        if name.endswith(("Users", "Count", "Views", "Events")) or name in COUNT_METRICS:
            return "count"
        return "value"


# Built-in GA4 metrics that count something but whose names do not say so.
COUNT_METRICS = frozenset({"sessions", "conversions", "transactions", "checkouts", "purchasers"})
