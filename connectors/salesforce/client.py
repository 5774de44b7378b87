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
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, ClassVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pandas as pd
import requests

from okr_metrics.connectors.base import Connector, SourceEnv, SourceError, SourceSettings
from okr_metrics.connectors.http import HttpClient, NextUrlPaginator
from okr_metrics.connectors.params import MetricParams
from okr_metrics.connectors.salesforce.params import SalesforceMetric

API_VERSION = "v62.0"
QUERY_PATH = f"/services/data/{API_VERSION}/query"
DESCRIBE_PATH = f"/services/data/{API_VERSION}/sobjects/{{object}}/describe"
NUMERIC_TYPES = frozenset({"currency", "double", "int", "long", "percent"})
_QUERY_ECHO = re.compile(r"^.*?(?=ERROR at Row:\d+:Column:\d+)")


def parse_datetime(text: str) -> datetime:
    """Salesforce's `2026-10-15T09:12:33.000+0000` as an aware datetime."""
    for pattern in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(text, pattern)
        except ValueError:
            continue
    raise ValueError(f"not a Salesforce datetime: {text!r}")


def soql_datetime(moment: datetime) -> str:
    """A SOQL datetime literal (unquoted, UTC): `2026-10-01T00:00:00Z`."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_soql(
    sobject: str,
    where: str | None,
    date_field: str,
    date_type: str,
    start: date,
    end: date,
    zone: ZoneInfo,
    sum_field: str | None = None,
) -> str:
    """The query of a window: the date field (and the summed field) of the matching records.

    `where` is the user's SOQL condition, kept whole in parentheses; `date_type` is `date`
    (unquoted date literals, the days as named) or `datetime` (UTC datetime literals of the
    window's midnights in `zone`).
    """
    selected = [date_field] + ([sum_field] if sum_field and sum_field != date_field else [])
    if date_type == "date":
        window = f"{date_field} >= {start.isoformat()} AND {date_field} <= {end.isoformat()}"
    else:
        low = datetime.combine(start, time.min, tzinfo=zone)
        high = datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone)
        window = f"{date_field} >= {soql_datetime(low)} AND {date_field} < {soql_datetime(high)}"
    condition = f"({where.strip()}) AND {window}" if where and where.strip() else window
    return f"SELECT {', '.join(selected)} FROM {sobject} WHERE {condition}"


def salesforce_errors(response: requests.Response) -> list[tuple[str, str]]:
    """The `(errorCode, message)` pairs of Salesforce's error body `[{message, errorCode}]`."""
    try:
        body = response.json()
    except ValueError:
        return []
    if not isinstance(body, list):
        return []
    return [
        (str(item.get("errorCode") or ""), " ".join(str(item.get("message") or "").split()))
        for item in body
        if isinstance(item, Mapping) and ("errorCode" in item or "message" in item)
    ]


def error_reason(token_env: str) -> Callable[[requests.Response], str | None]:
    """How the client reads Salesforce's errors: a reason to fail at once, or None to let
    it retry (5xx, 429) or handle the response as usual (a body of another shape)."""

    def reason(response: requests.Response) -> str | None:
        status = response.status_code
        errors = salesforce_errors(response)
        if not errors or status == 429 or status >= 500:
            return None
        code, message = errors[0]
        # A query error echoes the whole query before saying what is wrong with it.
        message = _QUERY_ECHO.sub("", message)[:300]
        said = f"{code}: {message}" if code else message
        if code == "REQUEST_LIMIT_EXCEEDED":
            return (
                f"the org's API request limit is used up (HTTP {status}, {said}); not retried: "
                "the limit frees up over the next 24 hours"
            )
        if status in (401, 403) or code == "INVALID_SESSION_ID":
            return f"authentication failed (HTTP {status}): check {token_env} ({said})"
        method = response.request.method if response.request is not None else "GET"
        path = urlsplit(response.url).path or "/"
        if status == 404:
            return f"not found (HTTP 404): {path} ({said})"
        return f"request failed (HTTP {status}) on {method} {path}: {said}"

    return reason


class SalesforceConnector(Connector):
    """Counts or sums of a SOQL query's records per day of a date or datetime field."""

    source: ClassVar[str] = "salesforce"
    params_model: ClassVar[type[MetricParams]] = SalesforceMetric
    env: ClassVar[SourceEnv] = SourceEnv(
        base_url="SALESFORCE_INSTANCE_URL", token="SALESFORCE_ACCESS_TOKEN"
    )

    def __init__(self, client: HttpClient) -> None:
        self.client = client
        # object (lower case) -> its API name and {field (lower case): (API name, type)}
        self._describes: dict[str, tuple[str, dict[str, tuple[str, str]]]] = {}

    @classmethod
    def from_settings(cls, settings: SourceSettings, **client_options: Any) -> SalesforceConnector:
        """Build from settings; `client_options` go to `HttpClient` (e.g. `sleep`, `max_attempts`)."""
        error_reason_for = error_reason(cls.env.token or "SALESFORCE_ACCESS_TOKEN")
        return cls(cls.bearer_client(settings, error_reason=error_reason_for, **client_options))

    def daily_series(
        self, metric: MetricParams, start: date, end: date, timezone: str = "UTC"
    ) -> pd.DataFrame:
        if not isinstance(metric, SalesforceMetric):
            raise TypeError(
                f"SalesforceConnector needs a SalesforceMetric, not {type(metric).__name__}"
            )
        if end < start:
            raise ValueError(f"window ends ({end}) before it starts ({start})")
        zone = ZoneInfo(timezone)
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
        soql = build_soql(
            sobject, metric.where, date_name, date_type, start, end, zone, sum_field=sum_name
        )

        totals: defaultdict[date, float] = defaultdict(float)
        pages = self.client.paginate(
            "GET",
            QUERY_PATH,
            params={"q": soql},
            paginator=NextUrlPaginator(),
            records=_records_of,
        )
        for page in pages:
            for record in page:
                day = self._day(record, date_name, date_type, zone)
                if day is None or not start <= day <= end:
                    continue
                if sum_name is None:
                    totals[day] += 1
                else:
                    value = record.get(sum_name) if isinstance(record, Mapping) else None
                    if value is not None:  # nulls add nothing
                        totals[day] += float(value)
        window = [start + timedelta(days=i) for i in range((end - start).days + 1)]
        return pd.DataFrame(
            {
                "date": pd.Series(window, dtype=object),
                "value": pd.Series([totals.get(day, 0.0) for day in window], dtype=float),
            }
        )

    # -- helpers --------------------------------------------------------------------------

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

    def _day(self, record: Any, name: str, kind: str, zone: ZoneInfo) -> date | None:
        value = record.get(name) if isinstance(record, Mapping) else None
        if not value:
            return None
        try:
            if kind == "date":
                return date.fromisoformat(str(value)[:10])
            return parse_datetime(str(value)).astimezone(zone).date()
        except ValueError:
            raise SourceError(
                self.source, f"unexpected {kind} value {str(value)[:40]!r} in field {name}"
            ) from None


def _records_of(body: Any) -> list | None:
    if isinstance(body, Mapping) and isinstance(body.get("records"), list):
        return body["records"]
    return None
