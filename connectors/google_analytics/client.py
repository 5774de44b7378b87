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

The connector remembers the last `propertyQuota` of each property and, once the run's
last series is fetched (`finish()`), logs one line per property: the reports made, the
daily tokens they used and the tokens left (a warning when few daily tokens are left).

GA reports days in the property's time zone, which the connector cannot change: the
KR file's `timezone` should be the property's (the connector warns when the report
says otherwise). Each day's value is GA's value for that day: a non-additive metric
such as `activeUsers` is never summed across days here; the KR's `aggregate` decides.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, ClassVar

import pandas as pd
import requests

from okr_metrics.connectors.base import SourceEnv, SourceError, SourceSettings
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
from okr_metrics.connectors.kit import Record, SeriesRequest, daily_values

log = logging.getLogger("okr_metrics.google_analytics")

API_VERSION = "v1beta"
SCOPE = "https://www.googleapis.com/auth/analytics.readonly"
# GA returns at most 250,000 rows a request; a report here has one row per day.
PAGE_SIZE = 10_000
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
        if self._client is None:
            token = access_token_from_file(self._settings.credentials_file)
            self._client = self.http_client(
                self._settings,
                token=token,
                token_env=self.env.credentials_file,
                **self._client_options,
            )
        return self._client

    def fetch(self, request: SeriesRequest[GoogleAnalyticsMetric]) -> pd.DataFrame:
        rows = self._report_rows(request.metric, request.start, request.end, request.timezone)
        try:
            return daily_values(request.window, rows, source=self.source)
        except SourceError as error:
            raise self._with_budget(error, request.metric.property) from None

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
        self, metric: GoogleAnalyticsMetric, start: date, end: date, timezone: str
    ) -> Iterator[tuple[date, float]]:
        """(day, value) of every row of the report, cast by the metric's type."""
        last_page: Mapping[str, Any] = {}
        received = 0
        query = Query(
            "POST",
            report_path(metric.property),
            _RowCountPaginator(self.page_size),
            json=report_request(metric, start, end),
            records=lambda body: [body],  # the whole body: its headers and quota matter
        )
        for number, page in enumerate(self.records(query)):
            if not isinstance(page, Mapping):
                raise SourceError(self.source, "unexpected response body: expected a report")
            metric_type = _metric_type(page, metric.metric)
            self._remember_quota(metric.property, page, new_report=number == 0)
            for row in _rows_of(page):
                yield self._row(row, metric_type)
                received += 1
            last_page = page
        # A report whose pages hold fewer (or more) rows than its rowCount says lost some:
        # a missing day would read as a 0.
        expected = _row_count(last_page)
        if received != expected:
            raise SourceError(
                self.source,
                f"the report of property {metric.property} says rowCount {expected} "
                f"but its pages hold {received} rows",
            )
        self._check_time_zone(metric, last_page, timezone)

    def _row(self, item: Any, metric_type: str) -> tuple[date, float]:
        row = Record(self.source, item, "report row", id_fields=("dimensionValues.0.value",))
        day = row.day("dimensionValues.0.value")
        text = row.get("metricValues.0.value")
        if text is None:
            raise row.missing("metricValues.0.value")
        try:
            return day, cast_value(text, metric_type)
        except ValueError:
            raise row.bad("metricValues.0.value", text, f"{metric_type} number") from None

    def _check_time_zone(
        self, metric: GoogleAnalyticsMetric, page: Mapping[str, Any], timezone: str
    ) -> None:
        reported = (page.get("metadata") or {}).get("timeZone")
        if reported and reported != timezone:
            log.warning(
                "google_analytics: property %s reports days in %s, but the KR file's timezone "
                "is %s; GA's days are the property's, so set the file's timezone to %s",
                metric.property,
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


def _metric_type(page: Mapping[str, Any], name: str) -> str:
    headers = page.get("metricHeaders") or []
    for header in headers:
        if isinstance(header, Mapping) and header.get("name") == name:
            return str(header.get("type") or "TYPE_FLOAT")
    if headers and isinstance(headers[0], Mapping):
        return str(headers[0].get("type") or "TYPE_FLOAT")
    return "TYPE_FLOAT"


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
