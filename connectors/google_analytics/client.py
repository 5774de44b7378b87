"""The Google Analytics 4 connector: one metric of one property, per day.

Built by the Dagster observation assets (through `connectors/registry.py`) from
`GA_API_URL` and `GA_ACCESS_TOKEN`, or from a service-account file named by
`GOOGLE_APPLICATION_CREDENTIALS` (through google-auth, imported only then; it is not
a dependency of okr-metrics: `pip install google-auth` to use it).

One metric is one report, `POST /v1beta/properties/{id}:runReport`, over the whole
window: the `date` dimension, the metric, `dimensionFilter` from the KR's `filter` and
`metricFilter` from its `metric_filter` (see `params.py` for the YAML; each entry is
one `FilterExpression`, all of them in an `andGroup`), `keepEmptyRows`, paged by
`limit`/`offset` until `offset >= rowCount`, and `returnPropertyQuota`. Values arrive
as strings and are cast by `metricHeaders[].type`; a day the report leaves out is a 0
(which is also what a day failing the `metricFilter` reads: with `date` the only
dimension, the metric filter keeps or drops whole days).

Series of one property and one stretch of days share a report (`plan`): metrics with
the same `filter` and `metric_filter` are columns of one report (at most 10 metrics a
report, the Data API's limit); and metrics without a `metric_filter` whose `filter` is
one value of one dimension, matched exactly and case-sensitively (`eventName:
[push_opt_in]`), share a report broken down by that dimension too (`date` and, say,
`eventName`, filtered to every value asked), each series reading its value's rows. A
row of that breakdown is exactly what the one-value filter gives, whatever the metric.
Each series keeps its own days client-side.

The connector remembers the last `propertyQuota` of each property and, once the run's
last series is fetched (`finish()`), logs one line per property: the reports made, the
daily tokens they used and the tokens left (a warning when few daily tokens are left).

GA reports days in the property's time zone, which the connector cannot change: the
KR file's `timezone` should be the property's (the connector warns when the report
says otherwise). Each day's value is GA's value for that day: a non-additive metric
such as `activeUsers` is never summed across days here; the KR's `aggregate` decides.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, ClassVar

import pandas as pd
import requests

from okr_metrics.connectors.base import (
    SeriesAnswer,
    SourceEnv,
    SourceError,
    SourceSettings,
    only_answer,
)
from okr_metrics.connectors.google_analytics.params import (
    COMPARISONS,
    MATCH_TYPES,
    AllOf,
    AnyOf,
    Comparison,
    Condition,
    GoogleAnalyticsMetric,
    Not,
    StringMatch,
)
from okr_metrics.connectors.http import (
    ApiError,
    HttpClient,
    HttpConnector,
    OffsetPaginator,
    PageRequest,
    Query,
    json_body,
    said_in,
)
from okr_metrics.connectors.kit import (
    Plan,
    Record,
    SeriesRequest,
    SharedQuery,
    Window,
    daily_values,
)

log = logging.getLogger("okr_metrics.google_analytics")

API_VERSION = "v1beta"
SCOPE = "https://www.googleapis.com/auth/analytics.readonly"
# GA returns at most 250,000 rows a request (a report has a row per day and breakdown value).
PAGE_SIZE = 250_000
# The most metrics a report may hold (the Data API's limit; dimensions: 9, of which the
# connector uses 2 at most).
MAX_METRICS = 10
INTEGER_TYPES = {"TYPE_INTEGER"}
# The quotas logged at the end of a run; with fewer daily tokens left, the line is a warning.
TOKEN_QUOTAS = ("tokensPerDay", "tokensPerHour", "tokensPerProjectPerHour")
LOW_QUOTA_TOKENS = 10_000
# How a quota failure starts, so that the connector can add the budget it last saw.
QUOTA_USED_UP = "the property's quota is used up"


def report_path(property_id: str) -> str:
    return f"/{API_VERSION}/properties/{property_id}:runReport"


def filter_expression(name: str, condition: Condition) -> dict[str, Any]:
    """The Data API `FilterExpression` of one dimension's or metric's condition."""
    if isinstance(condition, Not):
        return {"notExpression": filter_expression(name, condition.condition)}
    if isinstance(condition, AnyOf | AllOf):
        group = "orGroup" if isinstance(condition, AnyOf) else "andGroup"
        expressions = [filter_expression(name, part) for part in condition.conditions]
        return {group: {"expressions": expressions}}
    if isinstance(condition, Comparison):
        if condition.op == "between":
            low, high = condition.value
            spec = {
                "betweenFilter": {"fromValue": numeric_value(low), "toValue": numeric_value(high)}
            }
        else:
            spec = {
                "numericFilter": {
                    "operation": COMPARISONS[condition.op],
                    "value": numeric_value(condition.value),
                }
            }
        return {"filter": {"fieldName": name, **spec}}
    if not isinstance(condition, StringMatch):
        raise TypeError(f"not a filter condition: {condition!r}")
    if condition.match == "in":
        spec = {
            "inListFilter": {
                "values": list(condition.value),
                "caseSensitive": condition.case_sensitive,
            }
        }
    else:
        spec = {
            "stringFilter": {
                "matchType": MATCH_TYPES[condition.match],
                "value": condition.value,
                "caseSensitive": condition.case_sensitive,
            }
        }
    return {"filter": {"fieldName": name, **spec}}


def numeric_value(number: float) -> dict[str, Any]:
    """A `NumericValue`: int64 travels as a string in JSON, a double as a number."""
    if isinstance(number, int):
        return {"int64Value": str(number)}
    return {"doubleValue": number}


def combined_filter(conditions: Mapping[str, Condition]) -> dict[str, Any] | None:
    """One `FilterExpression` of every field's condition, all required (an `andGroup`)."""
    expressions = [filter_expression(name, found) for name, found in conditions.items()]
    if not expressions:
        return None
    if len(expressions) == 1:
        return expressions[0]
    return {"andGroup": {"expressions": expressions}}


def dimension_filter(conditions: Mapping[str, Condition]) -> dict[str, Any] | None:
    """The `dimensionFilter` of a KR's `filter`.

    A plain list is one `inListFilter`, case-sensitive as GA tells `Purchase` and
    `purchase` apart as events; string matches are case-sensitive too unless the KR
    says `case_sensitive: false` (`caseSensitive` is always sent).
    """
    return combined_filter(conditions)


def metric_filter(conditions: Mapping[str, Condition]) -> dict[str, Any] | None:
    """The `metricFilter` of a KR's `metric_filter`: applied to each day's aggregated row."""
    return combined_filter(conditions)


def report_request(metric: GoogleAnalyticsMetric, start: date, end: date) -> dict[str, Any]:
    """The runReport body of one metric over start..end (without `limit`/`offset`)."""
    body: dict[str, Any] = {
        "dateRanges": [{"startDate": start.isoformat(), "endDate": end.isoformat()}],
        "dimensions": [{"name": "date"}],
        "metrics": [{"name": metric.metric}],
        # Days on which the metric is 0 come back too (a missing day is a 0 all the same).
        "keepEmptyRows": True,
        # A stable order, so that offset paging neither skips nor repeats a day.
        "orderBys": [{"dimension": {"dimensionName": "date"}}],
        "returnPropertyQuota": True,
    }
    found = dimension_filter(metric.filter)
    if found is not None:
        body["dimensionFilter"] = found
    found = metric_filter(metric.metric_filter)
    if found is not None:
        body["metricFilter"] = found
    return body


@dataclass(frozen=True)
class ReportShape:
    """What the series of one report share: the property, and either their whole `filter`
    and `metric_filter` (`by` None) or the one dimension `by` whose values they filter on."""

    property: str
    by: str | None
    filters: str  # the canonical JSON of `filter` and `metric_filter` (`by` None), else ""


def report_shape(metric: GoogleAnalyticsMetric) -> ReportShape:
    """The report a metric can share: broken down by its filter's one dimension when the
    filter is one value matched exactly and case-sensitively, with no `metric_filter`."""
    value = one_value(metric)
    if value is not None:
        return ReportShape(metric.property, value[0], "")
    dumped = metric.model_dump(mode="json", include={"filter", "metric_filter"})
    return ReportShape(metric.property, None, json.dumps(dumped, sort_keys=True))


def one_value(metric: GoogleAnalyticsMetric) -> tuple[str, str] | None:
    """(dimension, value) when the metric's whole filter is that one value, matched exactly
    and case-sensitively (a breakdown row of that value is then the filtered report)."""
    if metric.metric_filter or len(metric.filter) != 1:
        return None
    ((name, condition),) = metric.filter.items()
    if not isinstance(condition, StringMatch) or not condition.case_sensitive:
        return None
    if condition.match == "exact" and isinstance(condition.value, str):
        return name, condition.value
    if condition.match == "in" and len(condition.value) == 1:
        return name, condition.value[0]
    return None


def shared_report_request(
    metrics: Sequence[GoogleAnalyticsMetric], shape: ReportShape, start: date, end: date
) -> dict[str, Any]:
    """The runReport body of every metric of one shared report over start..end.

    The first metric's filters stand for all when the report is not broken down (they
    share them); broken down by a dimension, the filter lists every value asked.
    """
    body = report_request(metrics[0], start, end)
    body["metrics"] = [{"name": name} for name in _distinct(m.metric for m in metrics)]
    if shape.by is not None and len(metrics) > 1:
        values = _distinct(value for m in metrics if (value := _value_of(m)) is not None)
        body["dimensions"] = [{"name": "date"}, {"name": shape.by}]
        body["orderBys"] = [
            {"dimension": {"dimensionName": "date"}},
            {"dimension": {"dimensionName": shape.by}},
        ]
        body["dimensionFilter"] = {
            "filter": {
                "fieldName": shape.by,
                "inListFilter": {"values": values, "caseSensitive": True},
            }
        }
    return body


def _value_of(metric: GoogleAnalyticsMetric) -> str | None:
    found = one_value(metric)
    return found[1] if found else None


def _distinct(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def cast_value(text: Any, metric_type: str) -> float:
    """A metric value (a string on the wire) by its `MetricType`; the series holds floats."""
    if metric_type in INTEGER_TYPES:
        return float(int(str(text)))
    value = float(str(text))
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"not a finite number: {text!r}")
    return value


class _RowCountPaginator(OffsetPaginator):
    """`offset` moves by the rows a page holds, until `offset >= rowCount`.

    GA may return fewer rows than `limit` (it caps a page at 250,000) without the report
    being over, so a short page alone does not end the paging.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(limit, records_path="rows", total_path="rowCount")

    def _next(
        self, response: requests.Response, data: Any, request: PageRequest
    ) -> PageRequest | None:
        rows = _rows_of(data)
        self.offset += len(rows)
        if not rows or self.offset >= _row_count(data):
            return None
        return PageRequest(
            request.method, request.url, request.params, {**request.json, "offset": self.offset}
        )


def _row_count(body: Any) -> int:
    """The report's `rowCount`; proto3 JSON leaves out a 0."""
    found = body.get("rowCount") if isinstance(body, Mapping) else None
    try:
        return int(found or 0)
    except (TypeError, ValueError):
        raise SourceError(
            GoogleAnalyticsConnector.source, f"the report's rowCount {found!r} is not a number"
        ) from None


def _rows_of(body: Any) -> list:
    rows = body.get("rows") if isinstance(body, Mapping) else None
    return rows if isinstance(rows, list) else []


def error_reason(response: requests.Response) -> ApiError:
    """Google's errors, `{"error": {"code", "message", "status"}}`; a 403 PERMISSION_DENIED
    deserves a clearer word than the usual handling.

    A 429 RESOURCE_EXHAUSTED names the quota used up: the concurrent requests free up
    in seconds (retried with backoff); the tokens of the hour or the day, and the other
    hourly quotas, do not, so the source fails at once instead of retrying in vain
    (unless the answer says when to come back, in `Retry-After`).
    """
    said = said_in(response, "message", "error.message", "error_description", "error")
    body = json_body(response)
    error = body.get("error") if isinstance(body, Mapping) else None
    if (
        response.status_code == 429
        and isinstance(error, Mapping)
        and error.get("status") == "RESOURCE_EXHAUSTED"
        and "concurrent" not in said.lower()
        and "retry-after" not in response.headers
    ):
        quota = " ".join(said.split(". ")[0].rstrip(".").split())[:200]
        return ApiError(
            said,
            reason=f"{QUOTA_USED_UP}: {quota} (HTTP 429 RESOURCE_EXHAUSTED); not retried: "
            "the quota refills within the hour (tokens per hour) or the day (tokens per day)",
        )
    if (
        response.status_code != 403
        or not isinstance(error, Mapping)
        or error.get("status") != "PERMISSION_DENIED"
    ):
        return ApiError(said)
    said = " ".join(str(error.get("message") or "").split())[:200]
    return ApiError(
        said,
        reason="permission denied (HTTP 403): the account behind the credentials cannot read "
        f"this property; give it at least Viewer access in GA (the API says: {said})",
    )


class GoogleAnalyticsConnector(HttpConnector):
    """Daily values of a GA4 metric, from one windowed runReport per metric."""

    source = "google_analytics"
    params_model = GoogleAnalyticsMetric
    env = SourceEnv(
        base_url="GA_API_URL",
        default_base_url="https://analyticsdata.googleapis.com",
        token="GA_ACCESS_TOKEN",
        credentials_file="GOOGLE_APPLICATION_CREDENTIALS",
    )
    error_reason = staticmethod(error_reason)
    concurrent_queries = True
    # Rows (days) a page asks for. The contract tests shrink it to cross pages.
    page_size: ClassVar[int] = PAGE_SIZE

    def __init__(
        self,
        client: HttpClient | None = None,
        *,
        settings: SourceSettings | None = None,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        # Without a token, the client is built on first use, from the service account.
        self._client = client
        self._settings = settings or SourceSettings()
        self._client_options = dict(client_options or {})
        # Per property, since the last `finish()`: the last `propertyQuota` seen.
        self._quotas: dict[str, _QuotaSeen] = {}
        # Reports run side by side: one builds the client, and quotas add up under it.
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: SourceSettings, **client_options: Any
    ) -> GoogleAnalyticsConnector:
        """Build from settings; `client_options` go to `HttpClient` (e.g. `sleep`, `max_attempts`)."""
        connector = cls(settings=settings, client_options=client_options)
        if settings.token:
            connector._client = cls.http_client(settings, **client_options)
        return connector

    @property
    def client(self) -> HttpClient:
        with self._lock:
            if self._client is None:
                token = access_token_from_file(self._settings.credentials_file)
                self._client = self.http_client(
                    self._settings,
                    token=token,
                    token_env=self.env.credentials_file,
                    **self._client_options,
                )
            return self._client

    def query_concurrency(self) -> int:
        try:
            return super().query_concurrency()
        except SourceError:  # no usable credentials: each report says so on its own
            return 1

    def plan(
        self, requests: Sequence[SeriesRequest[GoogleAnalyticsMetric]]
    ) -> Plan[GoogleAnalyticsMetric]:
        """One report per property, stretch of days and filter (or broken-down dimension),
        with at most MAX_METRICS metrics."""
        grouped = Plan.grouped(requests, lambda request: report_shape(request.metric))
        queries: list[SharedQuery[GoogleAnalyticsMetric]] = []
        for query in grouped.queries:
            # Each request joins the first report that has its metric or room for it.
            reports: list[tuple[set[str], list[SeriesRequest[GoogleAnalyticsMetric]]]] = []
            for request in query.requests:
                name = request.metric.metric
                for names, members in reports:
                    if name in names or len(names) < MAX_METRICS:
                        names.add(name)
                        members.append(request)
                        break
                else:
                    reports.append(({name}, [request]))
            queries += [SharedQuery(query.shape, tuple(members)) for _, members in reports]
        return Plan(tuple(queries))

    def fetch(self, request: SeriesRequest[GoogleAnalyticsMetric]) -> pd.DataFrame:
        query = SharedQuery(report_shape(request.metric), (request,))
        return only_answer(self.fetch_shared(query), request)

    def fetch_shared(self, query: SharedQuery[GoogleAnalyticsMetric]) -> dict[str, SeriesAnswer]:
        metrics = [request.metric for request in query.requests]
        shape = query.shape
        if not isinstance(shape, ReportShape):
            shape = report_shape(metrics[0])
        property_id = metrics[0].property
        try:
            rows = list(self._report_rows(metrics, shape, query.window))
        except SourceError as error:
            raise self._with_budget(error, property_id) from None
        broken_down = shape.by is not None and len(metrics) > 1  # as `shared_report_request`
        answers: dict[str, SeriesAnswer] = {}
        for request in query.requests:
            wanted = _value_of(request.metric) if broken_down else None
            values = (
                (day, found[request.metric.metric])
                for day, dimensions, found in rows
                if wanted is None or dimensions[1] == wanted
            )
            try:
                answers[request.metric_key] = daily_values(
                    request.window, values, source=self.source
                )
            except SourceError as error:
                answers[request.metric_key] = error
        return answers

    def _with_budget(self, error: SourceError, property_id: str) -> SourceError:
        """A quota failure with the budget the property's last report showed."""
        seen = self._quotas.get(property_id)
        if not error.reason.startswith(QUOTA_USED_UP) or seen is None:
            return error
        parts = []
        for name in TOKEN_QUOTAS:
            status = seen.quota.get(name)
            if isinstance(status, Mapping):
                consumed, remaining = (
                    _quota_count(status, "consumed"),
                    _quota_count(status, "remaining"),
                )
                parts.append(f"{name} {remaining} left after {consumed} used")
        if not parts:
            return error
        return SourceError(
            self.source, f"{error.reason}; the last report's propertyQuota: {', '.join(parts)}"
        )

    def _report_rows(
        self, metrics: Sequence[GoogleAnalyticsMetric], shape: ReportShape, window: Window
    ) -> Iterator[tuple[date, tuple[str, ...], dict[str, float]]]:
        """(day, dimension values, value of each metric) of every row of the report, cast
        by each metric's type."""
        property_id = metrics[0].property
        last_page: Mapping[str, Any] = {}
        received = 0
        query = Query(
            "POST",
            report_path(property_id),
            _RowCountPaginator(self.page_size),
            json=shared_report_request(metrics, shape, window.first, window.last),
            records=lambda body: [body],  # the whole body: its headers and quota matter
        )
        for number, page in enumerate(self.records(query)):
            if not isinstance(page, Mapping):
                raise SourceError(self.source, "unexpected response body: expected a report")
            types = _metric_types(page, query.json["metrics"])
            self._remember_quota(property_id, page, new_report=number == 0)
            for row in _rows_of(page):
                yield self._row(row, types, len(query.json["dimensions"]))
                received += 1
            last_page = page
        # A report whose pages hold fewer (or more) rows than its rowCount says lost some:
        # a missing day would read as a 0.
        expected = _row_count(last_page)
        if received != expected:
            raise SourceError(
                self.source,
                f"the report of property {property_id} says rowCount {expected} "
                f"but its pages hold {received} rows",
            )
        self._check_time_zone(property_id, last_page, window.timezone)

    def _row(
        self, item: Any, types: list[tuple[str, str]], dimension_count: int
    ) -> tuple[date, tuple[str, ...], dict[str, float]]:
        row = Record(self.source, item, "report row", id_fields=("dimensionValues.0.value",))
        day = row.day("dimensionValues.0.value")
        dimensions = [day.isoformat()]
        for index in range(1, dimension_count):
            value = row.get(f"dimensionValues.{index}.value")
            if not isinstance(value, str):
                raise row.missing(f"dimensionValues.{index}.value")
            dimensions.append(value)
        values = {}
        for index, (name, metric_type) in enumerate(types):
            path = f"metricValues.{index}.value"
            text = row.get(path)
            if text is None:
                raise row.missing(path)
            try:
                values[name] = cast_value(text, metric_type)
            except ValueError:
                raise row.bad(path, text, f"{metric_type} number") from None
        return day, tuple(dimensions), values

    def _check_time_zone(self, property_id: str, page: Mapping[str, Any], timezone: str) -> None:
        reported = (page.get("metadata") or {}).get("timeZone")
        if reported and reported != timezone:
            log.warning(
                "google_analytics: property %s reports days in %s, but the KR file's timezone "
                "is %s; GA's days are the property's, so set the file's timezone to %s",
                property_id,
                reported,
                timezone,
                reported,
            )

    def _remember_quota(
        self, property_id: str, page: Mapping[str, Any], *, new_report: bool
    ) -> None:
        """Keep the page's `propertyQuota` as the property's latest, and add up its tokens."""
        quota = page.get("propertyQuota")
        if not isinstance(quota, Mapping):
            return
        with self._lock:
            seen = self._quotas.setdefault(property_id, _QuotaSeen())
            seen.quota = quota
            seen.reports += new_report
            daily = quota.get("tokensPerDay")
            if isinstance(daily, Mapping):
                seen.tokens += _quota_count(daily, "consumed")

    def finish(self) -> None:
        """Log each property's quota left after this run: one line per property.

        The line is a warning when fewer than LOW_QUOTA_TOKENS daily tokens are left.
        """
        quotas, self._quotas = self._quotas, {}
        for property_id, seen in quotas.items():
            parts, low = [], False
            for name in TOKEN_QUOTAS:
                status = seen.quota.get(name)
                if not isinstance(status, Mapping):
                    continue
                remaining = _quota_count(status, "remaining")
                parts.append(f"{name} {remaining} left")
                low = low or (name == "tokensPerDay" and remaining < LOW_QUOTA_TOKENS)
            if not parts:
                continue
            reports = f"{seen.reports} report{'' if seen.reports == 1 else 's'}"
            log.log(
                logging.WARNING if low else logging.INFO,
                "google_analytics: property %s quota after %s (%d tokens used): %s",
                property_id,
                reports,
                seen.tokens,
                ", ".join(parts),
            )


def _quota_count(status: Mapping[str, Any], name: str) -> int:
    """A `QuotaStatus` count; proto3 JSON leaves out zeros, so a missing count is a 0."""
    try:
        return int(status.get(name, 0))
    except (TypeError, ValueError):
        return 0


@dataclass
class _QuotaSeen:
    """A property's latest `propertyQuota`, and the reports and daily tokens since `finish()`."""

    quota: Mapping[str, Any] = field(default_factory=dict)
    reports: int = 0
    tokens: int = 0


def _metric_types(page: Mapping[str, Any], asked: list[dict[str, str]]) -> list[tuple[str, str]]:
    """(name, MetricType) of each metric asked, in order, from the page's `metricHeaders`
    (a metric without a header is a float)."""
    headers = [h for h in page.get("metricHeaders") or [] if isinstance(h, Mapping)]
    by_name = {str(h.get("name")): str(h.get("type") or "TYPE_FLOAT") for h in headers}
    found = []
    for index, item in enumerate(asked):
        name = item["name"]
        fallback = headers[index].get("type") if index < len(headers) else None
        found.append((name, by_name.get(name) or str(fallback or "TYPE_FLOAT")))
    return found


def access_token_from_file(path: str | None) -> str:
    """An OAuth access token for the service account (or other Google credentials) in `path`."""
    source = GoogleAnalyticsConnector.source
    if not path:
        raise SourceError(source, "GA_ACCESS_TOKEN and GOOGLE_APPLICATION_CREDENTIALS not set")
    try:
        import google.auth
        import google.auth.transport.requests
    except ImportError:
        raise SourceError(
            source, "install google-auth to use GOOGLE_APPLICATION_CREDENTIALS"
        ) from None
    failure: str | None = None
    try:
        credentials, _ = google.auth.load_credentials_from_file(path, scopes=[SCOPE])
        credentials.refresh(google.auth.transport.requests.Request())
        token = credentials.token
    except Exception as error:  # google-auth's errors may quote the file: keep only the kind
        failure = type(error).__name__
    if failure is not None:
        raise SourceError(
            source,
            f"cannot get an access token from GOOGLE_APPLICATION_CREDENTIALS ({failure}); "
            "check that it names a readable service-account key file",
        )
    if not token:
        raise SourceError(source, "the GOOGLE_APPLICATION_CREDENTIALS credentials gave no token")
    return str(token)
