"""The Salesforce connector: records, or the sum of a field, per day of a date field.

Built by the Dagster observation assets (through `connectors/registry.py`) from
`SALESFORCE_INSTANCE_URL` and `SALESFORCE_ACCESS_TOKEN` (bearer); works against a
Salesforce org and the sandbox alike.

One metric is one SOQL query, `GET /services/data/v62.0/query?q=...`, followed through
`nextRecordsUrl`: the date field (and the summed field) of every record matching the
user's `where` in the window, bucketed by day client-side. A date field (`CloseDate`) is
filtered with date literals and taken as the day it names; a datetime field
(`CreatedDate`) with UTC datetime literals for the window's local midnights, and its
values converted to the definitions' time zone. Which one a field is comes from the
object's describe call, made once per object and run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import requests

from okr_metrics.connectors.base import SourceEnv, SourceError
from okr_metrics.connectors.http import (
    ApiError,
    HttpClient,
    HttpConnector,
    NextUrlPaginator,
    Query,
    json_body,
    said_in,
)
from okr_metrics.connectors.kit import Observation, Record, SeriesRequest, Window, daily_totals
from okr_metrics.connectors.salesforce.params import SalesforceMetric

API_VERSION = "v62.0"
QUERY_PATH = f"/services/data/{API_VERSION}/query"
DESCRIBE_PATH = f"/services/data/{API_VERSION}/sobjects/{{object}}/describe"
NUMERIC_TYPES = frozenset({"currency", "double", "int", "long", "percent"})
TOKEN_ENV = "SALESFORCE_ACCESS_TOKEN"
_QUERY_ECHO = re.compile(r"^.*?(?=ERROR at Row:\d+:Column:\d+)")


def soql_datetime(moment: datetime) -> str:
    """A SOQL datetime literal (unquoted, UTC): `2026-10-01T00:00:00Z`."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_soql(
    sobject: str,
    where: str | None,
    date_field: str,
    date_type: str,
    window: Window,
    sum_field: str | None = None,
) -> str:
    """The query of a window: the date field (and the summed field) of the matching records.

    `where` is the user's SOQL condition, kept whole in parentheses; `date_type` is `date`
    (unquoted date literals, the days as named) or `datetime` (UTC datetime literals of the
    window's local midnights).
    """
    selected = [date_field] + ([sum_field] if sum_field and sum_field != date_field else [])
    if date_type == "date":
        low, high = window.first.isoformat(), window.last.isoformat()
        bounds = f"{date_field} >= {low} AND {date_field} <= {high}"
    else:
        low, high = soql_datetime(window.start), soql_datetime(window.end)
        bounds = f"{date_field} >= {low} AND {date_field} < {high}"
    condition = f"({where.strip()}) AND {bounds}" if where and where.strip() else bounds
    return f"SELECT {', '.join(selected)} FROM {sobject} WHERE {condition}"


def salesforce_errors(response: requests.Response) -> list[tuple[str, str]]:
    """The `(errorCode, message)` pairs of Salesforce's error body `[{message, errorCode}]`."""
    body = json_body(response)
    if not isinstance(body, list):
        return []
    return [
        (str(item.get("errorCode") or ""), " ".join(str(item.get("message") or "").split()))
        for item in body
        if isinstance(item, Mapping) and ("errorCode" in item or "message" in item)
    ]


def error_reason(response: requests.Response) -> ApiError:
    """Salesforce's errors, `[{message, errorCode}]`: a reason to fail at once, except for
    what the client retries (5xx, 429); OAuth's `{error, error_description}` is quoted."""
    said = said_in(response, "0.message", "message", "error_description", "error")
    status = response.status_code
    errors = salesforce_errors(response)
    if not errors or status == 429 or status >= 500:
        return ApiError(said)
    code, message = errors[0]
    # A query error echoes the whole query before saying what is wrong with it.
    message = _QUERY_ECHO.sub("", message)[:300]
    said = f"{code}: {message}" if code else message
    if code == "REQUEST_LIMIT_EXCEEDED":
        return ApiError(
            reason=f"the org's API request limit is used up (HTTP {status}, {said}); not retried: "
            "the limit frees up over the next 24 hours"
        )
    if status in (401, 403) or code == "INVALID_SESSION_ID":
        return ApiError(reason=f"authentication failed (HTTP {status}): check {TOKEN_ENV} ({said})")
    method = response.request.method if response.request is not None else "GET"
    path = urlsplit(response.url).path or "/"
    if status == 404:
        return ApiError(reason=f"not found (HTTP 404): {path} ({said})")
    return ApiError(reason=f"request failed (HTTP {status}) on {method} {path}: {said}")


class SalesforceConnector(HttpConnector):
    """Counts or sums of a SOQL query's records per day of a date or datetime field."""

    source = "salesforce"
    params_model = SalesforceMetric
    env = SourceEnv(base_url="SALESFORCE_INSTANCE_URL", token=TOKEN_ENV)
    error_reason = staticmethod(error_reason)

    def __init__(self, client: HttpClient) -> None:
        super().__init__(client)
        # object (lower case) -> its API name and {field (lower case): (API name, type)}
        self._describes: dict[str, tuple[str, dict[str, tuple[str, str]]]] = {}

    def fetch(self, request: SeriesRequest[SalesforceMetric]) -> pd.DataFrame:
        return daily_totals(request.window, self._observations(request.metric, request.window))

    def _observations(self, metric: SalesforceMetric, window: Window) -> Iterator[Observation]:
        sobject, fields = self._describe(metric.object)
        date_name, date_type = self._field(metric, fields, metric.date_field)
        if date_type not in ("date", "datetime"):
            raise SourceError(
                self.source,
                f"date_field {date_name} of {metric.object} is a {date_type} field, "
                "not a date or datetime",
            )
        sum_name = None
        if metric.measure == "sum" and metric.field:
            sum_name, sum_type = self._field(metric, fields, metric.field)
            if sum_type not in NUMERIC_TYPES:
                raise SourceError(
                    self.source,
                    f"field {sum_name} of {metric.object} is a {sum_type} field: "
                    "`measure: sum` needs a number",
                )
        sizes: list[int] = []
        query = Query(
            "GET",
            QUERY_PATH,
            NextUrlPaginator("nextRecordsUrl", done_path="done"),
            params={"q": build_soql(sobject, metric.where, date_name, date_type, window, sum_name)},
            records=lambda body: _records_of(body, sizes),
        )
        received = 0
        for item in self.records(query):
            received += 1
            record = Record(self.source, item, sobject, id_fields=("Id",))
            moment = record.moment(date_name)
            # A date field names its day as written; a datetime is bucketed in the window's zone.
            day = moment.date() if date_type == "date" and isinstance(moment, datetime) else moment
            # A selected field is always sent (null or not): missing means it was renamed.
            amount = 1.0 if sum_name is None else record.number(sum_name, present=True)
            if amount is not None:  # nulls add nothing
                yield day, amount
        # The query's cursor holds a snapshot: its pages add up to its totalSize, or some
        # were lost on the way.
        if sizes and received != sizes[0]:
            raise SourceError(
                self.source,
                f"the query of {sobject} says totalSize {sizes[0]} but its pages hold "
                f"{received} records",
            )

    # -- the describe call: which fields the object has, and their types ---------------------

    def _describe(self, sobject: str) -> tuple[str, dict[str, tuple[str, str]]]:
        """The object's API name and fields, from its describe call (once per object and run)."""
        key = sobject.lower()
        if key not in self._describes:
            body = self.client.request_json("GET", DESCRIBE_PATH.format(object=sobject))
            described = body.get("fields") if isinstance(body, Mapping) else None
            if not isinstance(described, list):
                raise SourceError(
                    self.source, f"unexpected describe response for {sobject}: no fields"
                )
            fields = {
                str(item["name"]).lower(): (str(item["name"]), str(item.get("type") or ""))
                for item in described
                if isinstance(item, Mapping) and item.get("name")
            }
            self._describes[key] = (str(body.get("name") or sobject), fields)
        return self._describes[key]

    def _field(
        self, metric: SalesforceMetric, fields: Mapping[str, tuple[str, str]], name: str
    ) -> tuple[str, str]:
        found = fields.get(name.lower())
        if found is None:
            raise SourceError(self.source, f"{metric.object} has no field {name}")
        return found


def _records_of(body: Any, sizes: list[int]) -> list | None:
    """The page's records; its `totalSize` goes to `sizes`."""
    if not isinstance(body, Mapping) or not isinstance(body.get("records"), list):
        return None
    size = body.get("totalSize")
    if isinstance(size, int) and not isinstance(size, bool):
        sizes.append(size)
    return body["records"]
