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
object's describe call, made once per object and run. Batches are Salesforce's largest
(`Sforce-Query-Options: batchSize=2000`).

The series of one object and date field share one query (`plan`) when each `where` is
comparisons of text fields with `=` or `!=` and text literals, joined by `AND`
(`StageName = 'Closed Won' AND Segment__c = 'SMB'`): the query keeps the comparisons all
of them make, selects the fields of the others, and each series keeps its own records
client-side (text compared regardless of case, as SOQL's `=` does; `!=` holds for a null,
as in SOQL). Series with any other `where` share a query only with series of the same
`where` (a count and a sum, say).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import requests

from okr_metrics.connectors.base import SeriesAnswer, SourceEnv, SourceError, only_answer
from okr_metrics.connectors.http import (
    ApiError,
    HttpClient,
    HttpConnector,
    NextUrlPaginator,
    Query,
    json_body,
    said_in,
)
from okr_metrics.connectors.kit import (
    Observation,
    Plan,
    Record,
    SeriesRequest,
    SharedQuery,
    Window,
    daily_totals,
)
from okr_metrics.connectors.salesforce.params import SalesforceMetric

API_VERSION = "v62.0"
QUERY_PATH = f"/services/data/{API_VERSION}/query"
DESCRIBE_PATH = f"/services/data/{API_VERSION}/sobjects/{{object}}/describe"
NUMERIC_TYPES = frozenset({"currency", "double", "int", "long", "percent"})
# Field types compared as text, regardless of case, when series share a query.
TEXT_TYPES = frozenset({"string", "picklist", "textarea", "email", "phone", "url", "combobox"})
# Records a batch holds: Salesforce's default and largest.
BATCH_SIZE = 2000
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
    fields: str | Sequence[str] | None = None,
) -> str:
    """The query of a window: the date field (and the other `fields`: the summed one, those
    compared client-side) of the matching records.

    `where` is the user's SOQL condition, kept whole in parentheses; `date_type` is `date`
    (unquoted date literals, the days as named) or `datetime` (UTC datetime literals of the
    window's local midnights).
    """
    others = [fields] if isinstance(fields, str) else list(fields or ())
    selected = [date_field]
    for name in others:
        if name.lower() not in {known.lower() for known in selected}:
            selected.append(name)
    if date_type == "date":
        low, high = window.first.isoformat(), window.last.isoformat()
        bounds = f"{date_field} >= {low} AND {date_field} <= {high}"
    else:
        low, high = soql_datetime(window.start), soql_datetime(window.end)
        bounds = f"{date_field} >= {low} AND {date_field} < {high}"
    condition = f"({where.strip()}) AND {bounds}" if where and where.strip() else bounds
    return f"SELECT {', '.join(selected)} FROM {sobject} WHERE {condition}"


@dataclass(frozen=True)
class Comparison:
    """One `field = 'text'` (or `!=`) of a `where`, as written (`text`)."""

    field: str
    op: str  # "=" or "!="
    value: str
    text: str

    @property
    def key(self) -> tuple[str, str, str]:
        """What makes two comparisons the same condition (SOQL ignores the case of names
        and of text)."""
        return self.field.lower(), self.op, self.value.casefold()

    def holds(self, value: Any) -> bool:
        equal = isinstance(value, str) and value.casefold() == self.value.casefold()
        return equal if self.op == "=" else not equal


_COMPARISON = re.compile(
    r"\s*([A-Za-z][A-Za-z0-9_]*)\s*(=|!=|<>)\s*'((?:[^'\\]|\\['\\])*)'\s*"
    r"(?:(AND)\b|$)",
    re.IGNORECASE,
)


def comparisons(where: str | None) -> tuple[Comparison, ...] | None:
    """The `where` as text comparisons joined by AND; None when it is anything else."""
    if not where or not where.strip():
        return ()
    found, position = [], 0
    while position < len(where):
        match = _COMPARISON.match(where, position)
        if not match:
            return None
        name, op, value, joined = match.groups()
        text = where[match.start(1) : match.end(3) + 1].strip()
        value = re.sub(r"\\(['\\])", r"\1", value)
        found.append(Comparison(name, "=" if op == "=" else "!=", value, text))
        position = match.end()
        if not joined:
            return tuple(found) if not where[position:].strip() else None
    return None  # a trailing AND


def query_shape(metric: SalesforceMetric) -> tuple[str, ...]:
    """What the series of one query share: the object and date field, and the `where`
    itself unless it is text comparisons (which merge)."""
    shape = (metric.object.lower(), metric.date_field.lower())
    if comparisons(metric.where) is None:
        return (*shape, (metric.where or "").strip())
    return shape


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
    headers = {"Sforce-Query-Options": f"batchSize={BATCH_SIZE}"}
    error_reason = staticmethod(error_reason)
    concurrent_queries = True

    def __init__(self, client: HttpClient) -> None:
        super().__init__(client)
        # object (lower case) -> its API name and {field (lower case): (API name, type)}
        self._describes: dict[str, tuple[str, dict[str, tuple[str, str]]]] = {}
        # Queries run side by side: the first to need an object describes it, once.
        self._describing = threading.Lock()

    def plan(self, requests: Sequence[SeriesRequest[SalesforceMetric]]) -> Plan[SalesforceMetric]:
        """One query per object and date field (and stretch of days), where the `where`s allow."""
        return Plan.grouped(requests, lambda request: query_shape(request.metric))

    def fetch(self, request: SeriesRequest[SalesforceMetric]) -> pd.DataFrame:
        query = SharedQuery(query_shape(request.metric), (request,))
        return only_answer(self.fetch_shared(query), request)

    def fetch_shared(self, query: SharedQuery[SalesforceMetric]) -> dict[str, SeriesAnswer]:
        first = query.requests[0].metric
        sobject, fields = self._describe(first.object)
        date_name, date_type = self._field(first, fields, first.date_field)
        if date_type not in ("date", "datetime"):
            raise SourceError(
                self.source,
                f"date_field {date_name} of {first.object} is a {date_type} field, "
                "not a date or datetime",
            )
        answers: dict[str, SeriesAnswer] = {}
        readers: list[_Reader] = []
        for request in query.requests:
            try:
                readers.append(self._reader(request, fields))
            except SourceError as error:
                answers[request.metric_key] = error
        shared = [reader for reader in readers if reader.tests is not None]
        groups = [shared] if shared else []
        # A `where` on a field that is not text is sent whole, in a query of its own.
        groups += [[reader] for reader in readers if reader.tests is None]
        for group in groups:
            window = SharedQuery(query.shape, tuple(r.request for r in group)).window
            try:
                found = self._read(sobject, date_name, date_type, group, window)
            except SourceError as error:
                found = {reader.request.metric_key: error for reader in group}
            answers.update(found)
        return answers

    def _reader(
        self, request: SeriesRequest[SalesforceMetric], fields: Mapping[str, tuple[str, str]]
    ) -> _Reader:
        """What one series needs of a shared query: its summed field and its comparisons
        by their API names (None: its `where` must be sent whole)."""
        metric = request.metric
        sum_name = None
        if metric.measure == "sum" and metric.field:
            sum_name, sum_type = self._field(metric, fields, metric.field)
            if sum_type not in NUMERIC_TYPES:
                raise SourceError(
                    self.source,
                    f"field {sum_name} of {metric.object} is a {sum_type} field: "
                    "`measure: sum` needs a number",
                )
        found = comparisons(metric.where)
        tests: tuple[Comparison, ...] | None = None
        if found is not None:
            named = []
            for item in found:
                known = fields.get(item.field.lower())
                if known is None or known[1] not in TEXT_TYPES:
                    named = None
                    break
                named.append(Comparison(known[0], item.op, item.value, item.text))
            tests = tuple(named) if named is not None else None
        return _Reader(request, sum_name, tests)

    def _read(
        self,
        sobject: str,
        date_name: str,
        date_type: str,
        readers: list[_Reader],
        window: Window,
    ) -> dict[str, SeriesAnswer]:
        """One query for the readers; each keeps the records its own comparisons pass."""
        metrics = [reader.request.metric for reader in readers]
        wheres = {(metric.where or "").strip() for metric in metrics}
        residual: list[tuple[Comparison, ...]] = [() for _ in readers]
        if len(wheres) == 1:
            where = metrics[0].where
        else:
            # The comparisons every series makes go to Salesforce; the rest are kept here.
            tests = [reader.tests or () for reader in readers]
            keys = set.intersection(*({item.key for item in group} for group in tests))
            where = " AND ".join(item.text for item in tests[0] if item.key in keys)
            residual = [tuple(item for item in group if item.key not in keys) for group in tests]
        selected = [reader.sum_name for reader in readers if reader.sum_name]
        selected += [item.field for group in residual for item in group]
        sizes: list[int] = []
        query = Query(
            "GET",
            QUERY_PATH,
            NextUrlPaginator("nextRecordsUrl", done_path="done"),
            params={"q": build_soql(sobject, where, date_name, date_type, window, selected)},
            records=lambda body: _records_of(body, sizes),
        )
        observations: list[list[Observation]] = [[] for _ in readers]
        problems: list[SourceError | None] = [None for _ in readers]
        received = 0
        for item in self.records(query):
            received += 1
            record = Record(self.source, item, sobject, id_fields=("Id",))
            moment = record.moment(date_name)
            # A date field names its day as written; a datetime is bucketed in the window's zone.
            day = moment.date() if date_type == "date" and isinstance(moment, datetime) else moment
            for index, reader in enumerate(readers):
                if problems[index] is not None:
                    continue
                try:
                    if not all(
                        test.holds(_selected(record, test.field)) for test in residual[index]
                    ):
                        continue
                    # A selected field is always sent (null or not): missing means renamed.
                    amount = (
                        1.0
                        if reader.sum_name is None
                        else record.number(reader.sum_name, present=True)
                    )
                except SourceError as error:  # a bad field costs the series that reads it
                    problems[index] = error
                    continue
                if amount is not None:  # nulls add nothing
                    observations[index].append((day, amount))
        # The query's cursor holds a snapshot: its pages add up to its totalSize, or some
        # were lost on the way.
        if sizes and received != sizes[0]:
            raise SourceError(
                self.source,
                f"the query of {sobject} says totalSize {sizes[0]} but its pages hold "
                f"{received} records",
            )
        answers: dict[str, SeriesAnswer] = {}
        for index, reader in enumerate(readers):
            request = reader.request
            problem = problems[index]
            answers[request.metric_key] = (
                problem
                if problem is not None
                else daily_totals(request.window, observations[index])
            )
        return answers

    # -- the describe call: which fields the object has, and their types ---------------------

    def _describe(self, sobject: str) -> tuple[str, dict[str, tuple[str, str]]]:
        """The object's API name and fields, from its describe call (once per object and run)."""
        key = sobject.lower()
        with self._describing:
            return self._describe_once(sobject, key)

    def _describe_once(self, sobject: str, key: str) -> tuple[str, dict[str, tuple[str, str]]]:
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


@dataclass(frozen=True)
class _Reader:
    """One series of a shared query: its summed field (None: a count) and its `where` as
    comparisons of text fields (None: sent whole)."""

    request: SeriesRequest[SalesforceMetric]
    sum_name: str | None
    tests: tuple[Comparison, ...] | None


def _selected(record: Record, name: str) -> Any:
    """A selected field of the record (always sent, null or not: missing means renamed)."""
    if not record.has(name):
        raise record.missing(name)
    return record.get(name)


def _records_of(body: Any, sizes: list[int]) -> list | None:
    """The page's records; its `totalSize` goes to `sizes`."""
    if not isinstance(body, Mapping) or not isinstance(body.get("records"), list):
        return None
    size = body.get("totalSize")
    if isinstance(size, int) and not isinstance(size, bool):
        sizes.append(size)
    return body["records"]
