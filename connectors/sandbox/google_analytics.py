"""Google Analytics 4's part of the sandbox: the Data API's `runReport` for any property.

`register(router, data)` (a built-in API of the sandbox, `registry.py`) serves
`POST /v1beta/properties/{property}:runReport` in the Data API's wire format
(https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/properties/runReport):
`dimensionHeaders`, `metricHeaders` with their types, rows of string values, `rowCount`,
`metadata`, `propertyQuota` when asked, `limit`/`offset` paging, `keepEmptyRows`
(all-zero rows are left out otherwise), `orderBys`, filters and Google's error bodies
(`{"error": {"code", "message", "status"}}`).

Filters are `FilterExpression`s
(https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/FilterExpression),
evaluated as GA does: `andGroup`, `orGroup` and `notExpression` around filters; in
`dimensionFilter`, `stringFilter` (every `matchType`; `caseSensitive` false, the
default, matches regardless of case), `inListFilter` and `emptyFilter` on dimension
values; in `metricFilter`, `numericFilter` (`EQUAL`, `LESS_THAN`, `LESS_THAN_OR_EQUAL`,
`GREATER_THAN`, `GREATER_THAN_OR_EQUAL`) and `betweenFilter` (both ends included) on
each row's aggregated metric value, the metric requested or not, like SQL's HAVING.
Regular expressions are Python's, which accept all RE2 does. A malformed expression
(not exactly one kind, unknown fields or match types, an empty list, an invalid
regular expression, a NumericValue without a number, a dimension in `metricFilter`...)
is a 400 INVALID_ARGUMENT.

A property's data is a list of facts, each a day, some dimension values and some
metric values. A report groups the facts that pass its filter by the requested
dimensions: additive metrics are summed, averages weighted by sessions. A user metric
is simply its generated daily value per platform (the sandbox does not model users
active on two platforms).

Every numeric property id gets deterministic sample data on first request (seeded by
the id), from 2025-01-01 up to the sandbox's horizon, with the dimensions `date`,
`platform` (iOS, Android, web) and `eventName`. Tests replace a property with a few
hand-written facts through `sandbox.data.google_analytics.set_rows(...)`.
"""

from __future__ import annotations

import bisect
import itertools
import random
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Any

from okr_metrics.connectors.sandbox.api import Api, ApiData, ApiError, BadRequest, token_problem
from okr_metrics.connectors.sandbox.data import SandboxData
from okr_metrics.connectors.sandbox.server import Router, SandboxRequest, SandboxResponse

DOCS = "https://developers.google.com/analytics/devguides/reporting/data/v1"
MAX_ROWS = 250_000
DEFAULT_LIMIT = 10_000

# The metrics the sandbox knows, with their MetricType. Those in WEIGHTED are averages,
# combined weighted by the named metric; every other metric is summed.
METRICS = {
    "activeUsers": "TYPE_INTEGER",
    "totalUsers": "TYPE_INTEGER",
    "newUsers": "TYPE_INTEGER",
    "sessions": "TYPE_INTEGER",
    "screenPageViews": "TYPE_INTEGER",
    "eventCount": "TYPE_INTEGER",
    "averageSessionDuration": "TYPE_SECONDS",
    "engagementRate": "TYPE_FLOAT",
    "purchaseRevenue": "TYPE_CURRENCY",
}
WEIGHTED = {"averageSessionDuration": "sessions", "engagementRate": "sessions"}
DIMENSIONS = {"date", "platform", "eventName", "country", "deviceCategory", "operatingSystem"}
NOT_SET = "(not set)"

# Standard (not 360) property quotas.
QUOTAS = {
    "tokensPerDay": 200_000,
    "tokensPerHour": 40_000,
    "concurrentRequests": 10,
    "serverErrorsPerProjectPerHour": 10,
    "potentiallyThresholdedRequestsPerHour": 120,
    "tokensPerProjectPerHour": 14_000,
}

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_AUTH_PROBLEMS = {
    "missing": "Request is missing required authentication credential.",
    "invalid": "Request had invalid authentication credentials.",
}
_AUTH_HELP = (
    "Expected OAuth 2 access token, login cookie or other valid authentication credential. "
    "See https://developers.google.com/identity/sign-in/web/devconsole-project."
)


@dataclass(frozen=True)
class Fact:
    """Metric values of one day for one combination of dimension values."""

    day: date
    dimensions: Mapping[str, str]
    metrics: Mapping[str, float]

    @cached_property
    def values(self) -> dict[str, str]:
        """Its dimension values as a report reads them, the date (`20261015`) among them."""
        return {**self.dimensions, "date": self.day.strftime("%Y%m%d")}


@dataclass
class GaProperty:
    property_id: str
    facts: list[Fact] = field(default_factory=list)
    time_zone: str = "UTC"
    currency_code: str = "USD"
    denied: bool = False
    # Tokens spent per quota: (the hour or day they were spent in, how many).
    tokens_used: dict[str, tuple[int, int]] = field(default_factory=dict)
    # (the facts, their count, their days, or None when they are not in day order), for
    # `facts_between`: a report reads a quarter of a property's years of facts.
    _days: tuple[list[Fact], int, list[date] | None] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def facts_between(self, start: date, end: date) -> list[Fact]:
        """The facts of the days `start` through `end`, in their order."""
        facts = self.facts
        kept = self._days
        if kept is None or kept[0] is not facts or kept[1] != len(facts):
            days = [fact.day for fact in facts]
            ordered = all(a <= b for a, b in itertools.pairwise(days))
            kept = self._days = (facts, len(facts), days if ordered else None)
        days = kept[2]
        if days is None:  # facts set out of day order: each is looked at
            return [fact for fact in facts if start <= fact.day <= end]
        return facts[bisect.bisect_left(days, start) : bisect.bisect_right(days, end)]


class GoogleAnalyticsSandboxData(ApiData):
    """The properties the sandbox serves, generated on first request or set by tests."""

    name = "google_analytics"

    def property(self, property_id: str) -> GaProperty:
        """The property, generated (seeded by its id) on first use."""
        return self.cached(
            property_id, lambda: GaProperty(property_id, facts=self._generate(property_id))
        )

    def facts(self, property_id: str) -> list[Fact]:
        return list(self.property(property_id).facts)

    def set_rows(
        self,
        property_id: str,
        rows: Iterable[Mapping[str, Any]],
        *,
        time_zone: str = "UTC",
        currency_code: str = "USD",
    ) -> GaProperty:
        """Replace a property's data with hand-written facts.

        Each row has a `date` (a date, `YYYY-MM-DD` or `YYYYMMDD`), metric values under
        their API names (`activeUsers`, `eventCount`, ...) and dimension values under any
        other key: `{"date": "2026-10-01", "platform": "iOS", "activeUsers": 120}`. Rows
        for the same day and dimensions add up, as events do.
        """
        facts = []
        for row in rows:
            dimensions, metrics, day = {}, {}, None
            for name, value in row.items():
                if name == "date":
                    day = _parse_day(value)
                elif name in METRICS:
                    metrics[name] = float(value)
                else:
                    dimensions[name] = str(value)
            if day is None:
                raise ValueError(f"a Google Analytics row needs a date: {row!r}")
            facts.append(Fact(day, dimensions, metrics))
        prop = GaProperty(property_id, facts, time_zone=time_zone, currency_code=currency_code)
        return self.replace(property_id, prop)

    def deny(self, property_id: str) -> None:
        """Make the property answer 403 PERMISSION_DENIED, as one the account cannot read."""
        self.property(property_id).denied = True

    # -- generated sample data ----------------------------------------------------------

    def _generate(self, property_id: str) -> list[Fact]:
        """Daily facts from `first_day` through the horizon's day (partial on that day).

        Mobile daily active users grow from about 5,000 (January 2025) to about 8,500
        (July 2026), 10,000 (October 2026) and 11,700 (end of 2026); onboarding
        completion, push opt-in and help-centre helpfulness rates improve from mid-2026.
        """
        rng = random.Random(f"google_analytics:{property_id}")
        facts: list[Fact] = []
        day, last = self.first_day, self.now.date()
        midnight = datetime.combine(last, datetime.min.time(), tzinfo=self.now.tzinfo)
        elapsed_today = (self.now - midnight).total_seconds() / 86400
        while day <= last:
            t = (day - self.first_day).days
            share = elapsed_today if day == last else 1.0
            facts.extend(_day_facts(rng, day, t, share))
            day += timedelta(days=1)
        return facts


def _day_facts(rng: random.Random, day: date, t: int, share: float) -> list[Fact]:
    mobile = 5000 - 2.058 * t + 0.01551 * t * t
    mobile *= (0.92 if day.weekday() >= 5 else 1.0) * rng.uniform(0.97, 1.03) * share
    users = {"iOS": mobile * 0.56, "Android": mobile * 0.44, "web": mobile * 0.22}
    duration = 270 + 40 * min(t, 638) ** 2 / 638**2 + 1.3 * max(0, t - 638)
    onboarding_rate = 0.62 + 0.18 * _ramp(t, 638, 92)
    opt_in_rate = 0.55 + 0.10 * _ramp(t, 546, 184)
    helpful_rate = 0.30 + 0.10 * _ramp(t, 546, 184)
    facts = []
    for platform, active in users.items():
        sessions = active * rng.uniform(1.35, 1.5)
        new_users = active * (0.10 if platform == "web" else 0.06) * rng.uniform(0.9, 1.1)
        views = sessions * rng.uniform(6, 9)
        seconds = duration * (0.6 if platform == "web" else 1.0) + rng.uniform(-15, 15)
        dims = {"platform": platform}
        facts.append(
            Fact(
                day,
                dims,
                {
                    "activeUsers": round(active),
                    "totalUsers": round(active * 1.04),
                    "newUsers": round(new_users),
                    "sessions": round(sessions),
                    "screenPageViews": round(views),
                    "averageSessionDuration": round(seconds, 6),
                    "engagementRate": round(rng.uniform(0.55, 0.7), 6),
                },
            )
        )
        events = {
            "session_start": sessions,
            "page_view" if platform == "web" else "screen_view": views,
            "article_view": active * (0.35 if platform == "web" else 0.07) * rng.uniform(0.9, 1.1),
        }
        if platform != "web":
            started = new_users * rng.uniform(0.95, 1.0)
            shown = new_users * rng.uniform(0.85, 0.95)
            events |= {
                "first_open": new_users,
                "onboarding_start": started,
                "onboarding_complete": started * (onboarding_rate + rng.uniform(-0.03, 0.03)),
                "push_prompt_shown": shown,
                "push_opt_in": shown * (opt_in_rate + rng.uniform(-0.03, 0.03)),
            }
        events["article_helpful"] = events["article_view"] * (
            helpful_rate + rng.uniform(-0.03, 0.03)
        )
        for name, count in events.items():
            facts.append(Fact(day, {**dims, "eventName": name}, {"eventCount": round(count)}))
    return facts


def _ramp(t: int, begin: int, length: int) -> float:
    """0 before day `begin`, rising linearly to 1 over `length` days."""
    return min(1.0, max(0.0, (t - begin) / length))


def _parse_day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value)
    return datetime.strptime(text, "%Y%m%d" if text.isdigit() else "%Y-%m-%d").date()


# --- the report ------------------------------------------------------------------------------
# A request the Data API refuses raises `BadRequest`: 400 INVALID_ARGUMENT.


def run_report(prop: GaProperty, body: Any, today: date) -> dict[str, Any]:
    """The RunReportResponse of a request body (raises `BadRequest` for an invalid one)."""
    if not isinstance(body, Mapping):
        raise BadRequest("Invalid JSON payload received. Expected a RunReportRequest object.")
    start, end = _date_range(body.get("dateRanges"), today)
    dimensions = [_name(d, "dimension") for d in body.get("dimensions") or []]
    metrics = [_name(m, "metric") for m in body.get("metrics") or []]
    if not metrics and not dimensions:
        raise BadRequest("Must request at least one dimension or metric.")
    known = _Dimensions(prop)
    for name in dimensions:
        if name not in known:
            raise BadRequest(f"Field {name} is not a valid dimension. {_SCHEMA_HELP}")
    for name in metrics:
        if name not in METRICS:
            raise BadRequest(f"Field {name} is not a valid metric. {_SCHEMA_HELP}")
    where = body.get("dimensionFilter")
    if where is not None:
        _check_filter(where, known, "dimensionFilter")
    having = body.get("metricFilter")
    if having is not None:
        _check_filter(having, set(METRICS), "metricFilter")
    limit = _count(body.get("limit"), "limit", DEFAULT_LIMIT)
    offset = _count(body.get("offset"), "offset", 0)
    if limit <= 0:
        raise BadRequest("limit must be positive.")

    groups: dict[tuple[str, ...], list[Fact]] = {}
    for fact in prop.facts_between(start, end):
        values = fact.values
        if where is not None and not _matches(where, values):
            continue
        groups.setdefault(tuple(values.get(name, NOT_SET) for name in dimensions), []).append(fact)
    rows = []
    for key, facts in groups.items():
        if having is not None:
            totals = {name: _aggregate(facts, name) for name in _field_names(having)}
            if not _matches(having, totals):
                continue
        numbers = [_aggregate(facts, name) for name in metrics]
        if not body.get("keepEmptyRows") and all(n == 0 for n in numbers):
            continue
        rows.append((key, numbers))
    rows = _ordered(rows, body.get("orderBys") or [], dimensions, metrics)

    response: dict[str, Any] = {
        "dimensionHeaders": [{"name": name} for name in dimensions],
        "metricHeaders": [{"name": name, "type": METRICS[name]} for name in metrics],
    }
    page = rows[offset : offset + min(limit, MAX_ROWS)]
    if page:
        response["rows"] = [
            {
                "dimensionValues": [{"value": value} for value in key],
                "metricValues": [
                    {"value": _format(number, METRICS[name])}
                    for name, number in zip(metrics, numbers, strict=True)
                ],
            }
            for key, numbers in page
        ]
    # proto3 JSON leaves out zero values: an empty report has no rowCount.
    if rows:
        response["rowCount"] = len(rows)
    response["metadata"] = {"currencyCode": prop.currency_code, "timeZone": prop.time_zone}
    if body.get("returnPropertyQuota"):
        response["propertyQuota"] = _spend_tokens(prop, 1 + len(rows) // 500)
    response["kind"] = "analyticsData#runReport"
    return response


_SCHEMA_HELP = f"For a list of valid dimensions and metrics, see {DOCS}/api-schema"


def _name(item: Any, kind: str) -> str:
    if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
        raise BadRequest(f"Each {kind} needs a name.")
    return item["name"]


def _date_range(ranges: Any, today: date) -> tuple[date, date]:
    if not isinstance(ranges, list) or not ranges:
        raise BadRequest("dateRanges must be specified.")
    if len(ranges) > 1:
        raise BadRequest("The sandbox serves one date range a report.")
    found = ranges[0] if isinstance(ranges[0], Mapping) else {}
    start, end = (_relative_day(found.get(k), today) for k in ("startDate", "endDate"))
    if start > end:
        raise BadRequest(f"The start date {start} is after the end date {end}.")
    return start, end


def _relative_day(text: Any, today: date) -> date:
    if text == "today":
        return today
    if text == "yesterday":
        return today - timedelta(days=1)
    ago = re.fullmatch(r"(\d+)daysAgo", str(text))
    if ago:
        return today - timedelta(days=int(ago.group(1)))
    try:
        return date.fromisoformat(str(text))
    except ValueError:
        raise BadRequest(f"Invalid date: {text!r}. Dates must be YYYY-MM-DD.") from None


def _count(value: Any, name: str, default: int) -> int:
    # int64 fields travel as strings in JSON; numbers are accepted too.
    if value is None:
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid value at '{name}' (TYPE_INT64), {value!r}") from None
    if number < 0:
        raise BadRequest(f"{name} must not be negative.")
    return number


class _Dimensions:
    """The dimensions a property knows: the API's, then those its facts hold (looked for
    only when a request names one that is not the API's)."""

    def __init__(self, prop: GaProperty) -> None:
        self.prop = prop
        self._custom: set[str] | None = None

    def __contains__(self, name: object) -> bool:
        if name in DIMENSIONS:
            return True
        if self._custom is None:
            self._custom = {key for fact in self.prop.facts for key in fact.dimensions}
        return name in self._custom


_EXPRESSIONS = ("andGroup", "orGroup", "notExpression", "filter")
_FILTERS = {
    "dimensionFilter": ("stringFilter", "inListFilter", "emptyFilter"),
    "metricFilter": ("numericFilter", "betweenFilter"),
}
MATCH_TYPES = ("EXACT", "BEGINS_WITH", "ENDS_WITH", "CONTAINS", "FULL_REGEXP", "PARTIAL_REGEXP")
OPERATIONS = {
    "EQUAL": lambda value, wanted: value == wanted,
    "LESS_THAN": lambda value, wanted: value < wanted,
    "LESS_THAN_OR_EQUAL": lambda value, wanted: value <= wanted,
    "GREATER_THAN": lambda value, wanted: value > wanted,
    "GREATER_THAN_OR_EQUAL": lambda value, wanted: value >= wanted,
}


def _check_filter(expression: Any, known: _Dimensions | set[str], where: str) -> None:
    """Reject what the Data API rejects: unknown fields and malformed expressions.

    `where` is `dimensionFilter` (fields are dimensions) or `metricFilter` (metrics).
    """
    if not isinstance(expression, Mapping) or len(expression) != 1:
        raise BadRequest(
            f"A FilterExpression in {where} needs exactly one of andGroup, orGroup, "
            "notExpression or filter."
        )
    ((kind, inner),) = expression.items()
    if kind not in _EXPRESSIONS:
        raise BadRequest(f"Invalid JSON payload received. Unknown name {kind!r} in {where}.")
    if kind == "notExpression":
        _check_filter(inner, known, where)
        return
    if not isinstance(inner, Mapping):
        raise BadRequest(f"{where}: {kind} must be an object.")
    if kind in ("andGroup", "orGroup"):
        items = inner.get("expressions")
        if set(inner) - {"expressions"} or not isinstance(items, list) or not items:
            raise BadRequest(f"{where}: {kind}.expressions must be a non-empty list.")
        for item in items:
            _check_filter(item, known, where)
        return
    name = inner.get("fieldName")
    if where == "dimensionFilter" and name in METRICS:
        raise BadRequest(f"Field {name} is a metric: filter it in metricFilter.")
    if not isinstance(name, str) or name not in known:
        field_kind = "dimension" if where == "dimensionFilter" else "metric"
        raise BadRequest(f"Field {name} is not a valid {field_kind}. {_SCHEMA_HELP}")
    kinds = [k for k in inner if k != "fieldName"]
    if len(kinds) != 1:
        raise BadRequest(f"{where}: the filter on {name} needs exactly one kind of filter.")
    (filter_kind,) = kinds
    if filter_kind not in _FILTERS[where]:
        raise BadRequest(
            f"{where}: {filter_kind} is not a filter for {name} here; the sandbox evaluates "
            f"{', '.join(_FILTERS[where])} in {where}."
        )
    spec = inner[filter_kind]
    if not isinstance(spec, Mapping):
        raise BadRequest(f"{where}: {filter_kind} must be an object.")
    _CHECKS[filter_kind](spec, f"{where}: {filter_kind} on {name}")


def _check_case(spec: Mapping[str, Any], where: str) -> None:
    if not isinstance(spec.get("caseSensitive", False), bool):
        raise BadRequest(f"{where}: caseSensitive must be a boolean.")


def _check_string(spec: Mapping[str, Any], where: str) -> None:
    _only(spec, {"matchType", "value", "caseSensitive"}, where)
    _check_case(spec, where)
    match_type = spec.get("matchType", "EXACT")
    if match_type not in MATCH_TYPES:
        raise BadRequest(
            f"{where}: Invalid value {match_type!r} for matchType (one of {', '.join(MATCH_TYPES)})."
        )
    value = spec.get("value", "")
    if not isinstance(value, str):
        raise BadRequest(f"{where}: value must be a string.")
    if match_type.endswith("_REGEXP"):
        try:
            re.compile(value)
        except re.error as error:
            raise BadRequest(f"{where}: invalid regular expression {value!r}: {error}.") from None


def _check_in_list(spec: Mapping[str, Any], where: str) -> None:
    _only(spec, {"values", "caseSensitive"}, where)
    _check_case(spec, where)
    values = spec.get("values")
    if not isinstance(values, list) or not values:
        raise BadRequest(f"{where}: values must not be empty.")
    if not all(isinstance(value, str) for value in values):
        raise BadRequest(f"{where}: values must be strings.")


def _check_empty(spec: Mapping[str, Any], where: str) -> None:
    _only(spec, set(), where)


def _check_numeric(spec: Mapping[str, Any], where: str) -> None:
    _only(spec, {"operation", "value"}, where)
    if spec.get("operation") not in OPERATIONS:
        raise BadRequest(
            f"{where}: Invalid value {spec.get('operation')!r} for operation "
            f"(one of {', '.join(OPERATIONS)})."
        )
    _number(spec.get("value"), f"{where}: value")


def _check_between(spec: Mapping[str, Any], where: str) -> None:
    _only(spec, {"fromValue", "toValue"}, where)
    _number(spec.get("fromValue"), f"{where}: fromValue")
    _number(spec.get("toValue"), f"{where}: toValue")


_CHECKS = {
    "stringFilter": _check_string,
    "inListFilter": _check_in_list,
    "emptyFilter": _check_empty,
    "numericFilter": _check_numeric,
    "betweenFilter": _check_between,
}


def _only(spec: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise BadRequest(f"Invalid JSON payload received. Unknown name {unknown[0]!r} ({where}).")


def _number(value: Any, where: str) -> float:
    """The number of a NumericValue: `{"int64Value": "10"}` or `{"doubleValue": 1.5}`."""
    if not isinstance(value, Mapping) or len(value) != 1:
        raise BadRequest(f"{where} must be a NumericValue with one of int64Value or doubleValue.")
    ((kind, number),) = value.items()
    try:
        if kind == "int64Value" and not isinstance(number, bool | float):
            return float(int(str(number)))
        if kind == "doubleValue" and not isinstance(number, bool):
            return float(number)
    except (TypeError, ValueError):
        pass
    raise BadRequest(f"{where}: invalid NumericValue {dict(value)!r}.")


def _field_names(expression: Mapping[str, Any]) -> set[str]:
    ((kind, inner),) = expression.items()
    if kind in ("andGroup", "orGroup"):
        return set().union(*(_field_names(e) for e in inner["expressions"]))
    if kind == "notExpression":
        return _field_names(inner)
    return {inner["fieldName"]}


def _matches(expression: Mapping[str, Any], values: Mapping[str, Any]) -> bool:
    """Whether a row passes a (checked) expression: dimension values, or metric totals."""
    ((kind, inner),) = expression.items()
    if kind == "andGroup":
        return all(_matches(e, values) for e in inner["expressions"])
    if kind == "orGroup":
        return any(_matches(e, values) for e in inner["expressions"])
    if kind == "notExpression":
        return not _matches(inner, values)
    name = inner["fieldName"]
    if "numericFilter" in inner:
        spec = inner["numericFilter"]
        return OPERATIONS[spec["operation"]](values[name], _number(spec["value"], name))
    if "betweenFilter" in inner:
        spec = inner["betweenFilter"]
        low, high = _number(spec["fromValue"], name), _number(spec["toValue"], name)
        return low <= values[name] <= high
    value = values.get(name, NOT_SET)
    if "emptyFilter" in inner:
        return value in ("", NOT_SET)
    if "inListFilter" in inner:
        spec = inner["inListFilter"]
        if spec.get("caseSensitive"):
            return value in spec["values"]
        return value.casefold() in {str(v).casefold() for v in spec["values"]}
    spec = inner["stringFilter"]
    wanted = spec.get("value", "")
    match_type = spec.get("matchType", "EXACT")
    case_sensitive = bool(spec.get("caseSensitive"))
    if match_type.endswith("_REGEXP"):
        flags = 0 if case_sensitive else re.IGNORECASE
        search = re.fullmatch if match_type == "FULL_REGEXP" else re.search
        return search(wanted, value, flags) is not None
    if not case_sensitive:
        value, wanted = value.casefold(), wanted.casefold()
    if match_type == "EXACT":
        return value == wanted
    if match_type == "BEGINS_WITH":
        return value.startswith(wanted)
    if match_type == "ENDS_WITH":
        return value.endswith(wanted)
    return wanted in value  # CONTAINS


def _aggregate(facts: list[Fact], name: str) -> float:
    weight_name = WEIGHTED.get(name)
    carrying = [fact for fact in facts if name in fact.metrics]
    if weight_name is None:
        return sum(fact.metrics[name] for fact in carrying)
    weights = [fact.metrics.get(weight_name, 1.0) for fact in carrying]
    if not sum(weights):
        return 0.0
    total = sum(fact.metrics[name] * w for fact, w in zip(carrying, weights, strict=True))
    return total / sum(weights)


def _ordered(
    rows: list[tuple[tuple[str, ...], list[float]]],
    order_bys: list[Any],
    dimensions: list[str],
    metrics: list[str],
) -> list[tuple[tuple[str, ...], list[float]]]:
    """Rows sorted by `orderBys` (default: by the dimension values, ascending)."""
    rows = sorted(rows, key=lambda row: row[0])
    # An orderBy's kind: the row part it sorts by (dimension values, metric values),
    # the key naming the field, and the fields a report may be sorted by.
    kinds = {"dimension": (0, "dimensionName", dimensions), "metric": (1, "metricName", metrics)}
    for order in reversed(order_bys):
        if not isinstance(order, Mapping):
            raise BadRequest("Each orderBy must be an object.")
        kind = next((k for k in kinds if k in order), None)
        if kind is None:
            raise BadRequest("An orderBy needs a dimension or a metric.")
        part, key, names = kinds[kind]
        name = (order[kind] or {}).get(key)
        if name not in names:
            raise BadRequest(f"orderBys {kind} {name} must be one of the {kind}s.")
        index = names.index(name)
        rows.sort(key=lambda row, p=part, i=index: row[p][i], reverse=bool(order.get("desc")))
    return rows


def _format(number: float, metric_type: str) -> str:
    """Values travel as strings: integers without a decimal point, others as Go prints them."""
    if metric_type == "TYPE_INTEGER":
        return str(int(round(number)))
    if number == int(number) and abs(number) < 1e15:
        return str(int(number))
    return repr(float(number))


def _spend_tokens(prop: GaProperty, tokens: int) -> dict[str, Any]:
    """Charge a request's tokens and return the PropertyQuota (zero counts left out)."""
    hour = int(time.time() // 3600)
    periods = {"tokensPerDay": hour // 24, "tokensPerHour": hour, "tokensPerProjectPerHour": hour}
    quota = {}
    for name, limit in QUOTAS.items():
        consumed = 0
        if name in periods:
            period, spent = prop.tokens_used.get(name, (periods[name], 0))
            spent = (spent if period == periods[name] else 0) + tokens
            prop.tokens_used[name] = (periods[name], spent)
            consumed, limit = tokens, limit - spent
        status = {"consumed": consumed, "remaining": max(0, limit)}
        quota[name] = {key: value for key, value in status.items() if value}
    return quota


# --- the HTTP side -----------------------------------------------------------------------


def error_body(status: int, message: str) -> dict[str, Any]:
    """Google's error body (https://cloud.google.com/apis/design/errors)."""
    code = _STATUS.get(status, "UNKNOWN")
    if status == 429:
        message = (
            "Exhausted property tokens per hour. This property has used more than its "
            "hourly quota; try again later."
        )
    return {"error": {"code": status, "message": message, "status": code}}


GOOGLE = Api("application/json; charset=UTF-8", error_body)


def check_auth(request: SandboxRequest) -> SandboxResponse | None:
    """Google's answers to a missing or bad access token (`invalid` or `invalid-...`)."""
    problem = token_problem(request, invalid_prefix=True)
    if problem is None:
        return None
    message = f"{_AUTH_PROBLEMS[problem]} {_AUTH_HELP}"
    return GOOGLE.error(401, message, headers={"WWW-Authenticate": "Bearer"})


def register(router: Router, data: SandboxData) -> None:
    """Serve runReport from `data.google_analytics` (what `okr sandbox` and the tests call)."""
    analytics = GoogleAnalyticsSandboxData.of(data)

    def report(request: SandboxRequest) -> SandboxResponse:
        property_id = request.path_params["property"]
        if not property_id.isdigit():
            raise BadRequest(f"Invalid property id properties/{property_id}: it must be numeric.")
        prop = analytics.property(property_id)
        if prop.denied:
            raise ApiError(
                "User does not have sufficient permissions for this property. To learn more "
                f"about Property ID, see {DOCS}/property-id.",
                status=403,
            )
        return GOOGLE.reply(run_report(prop, request.body, analytics.now.date()))

    GOOGLE.add(router, "POST", "/v1beta/properties/{property}:runReport", report, auth=check_auth)
