"""The HubSpot connector: CRM records (deals by default) counted or summed per day.

Built by the Dagster observation assets (through `connectors/registry.py`) from
`HUBSPOT_API_URL` and `HUBSPOT_ACCESS_TOKEN` (a private app's token, sent as a bearer
token); works against api.hubapi.com and the sandbox alike.

One metric is one CRM search, `POST /crm/v3/objects/{object}/search`: one filter group
holding the KR's `filters` (see `connectors/hubspot/params.py` for their YAML shapes) and
the date window (`date_property` from the first instant of `start` to the first instant
after `end`, in epoch milliseconds in the KR file's time zone), sorted by the date
property, 200 records a page, paged by `paging.next.after` (an opaque cursor, sent back
as given). HubSpot's search never pages past its 10,000th result (it answers 400), so a
window with more results is read again sorted by `hs_object_id`, each search starting
after the last id the one before listed: no record is lost, even with more than 10,000
on one instant (a KR using all four filters is split in halves of time instead). West of
UTC the window starts at midnight UTC of its first day, where a date (not datetime)
property stores it (`search_bounds`); days are kept client-side. Each record counts once
(by id), and a search whose distinct records are not its `total` fails.

The series of one object, date property and set of filters share one search (`plan`):
a count and a sum of the same deals, say, ask for the date property and every summed
property at once, over the days of all their windows; each keeps its own days.

Each KR filter becomes one search filter in HubSpot's shape (`filter_body`): `value` for
the one-value operators, `values: [...]` for IN / NOT_IN, `value` and `highValue` for
BETWEEN, nothing for HAS_PROPERTY / NOT_HAS_PROPERTY. Values are text; a value written as
a date or ISO datetime goes as epoch milliseconds (`search_text`), as HubSpot compares
date and datetime properties.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timezone
from typing import Any, ClassVar

import pandas as pd
import requests

from okr_metrics.connectors.base import SeriesAnswer, SourceEnv, SourceError, only_answer
from okr_metrics.connectors.http import (
    ApiError,
    HttpConnector,
    NextTokenPaginator,
    Query,
    json_body,
    said_in,
)
from okr_metrics.connectors.hubspot.params import (
    LIST_OPERATORS,
    NO_VALUE_OPERATORS,
    TOKEN_OPERATORS,
    HubSpotFilter,
    HubSpotMetric,
    Scalar,
    as_moment,
    as_text,
)
from okr_metrics.connectors.kit import (
    Plan,
    Record,
    SeriesRequest,
    SharedQuery,
    Window,
    daily_totals,
    epoch_ms,
)

API_URL = "https://api.hubapi.com"
# The most records a search page holds, and the most results a search can page through.
PAGE_SIZE = 200
RESULT_CAP = 10_000
# Filters a filter group may hold; the date window takes two of them, a split by id one more.
MAX_FILTERS = 6
ID_PROPERTY = "hs_object_id"


def filter_body(item: HubSpotFilter) -> dict[str, Any]:
    """A KR filter as a search filter: `value`, `values` (IN / NOT_IN) or `value` and
    `highValue` (BETWEEN), every value as text and dates as epoch milliseconds."""
    body: dict[str, Any] = {"propertyName": item.property, "operator": item.operator}
    if item.operator in NO_VALUE_OPERATORS:
        return body
    if item.operator in LIST_OPERATORS:
        body["values"] = [search_text(value, item.operator) for value in item.search_values()]
        return body
    ends = (item.value, item.high_value) if item.operator == "BETWEEN" else (item.value,)
    texts = [
        search_text(end, item.operator)
        for end in ends
        if end is not None and not isinstance(end, tuple)
    ]
    if len(texts) != len(ends):  # the model refuses these shapes; a model_construct may not
        raise SourceError(HubSpotConnector.source, f"filter on {item.property}: bad value")
    body["value"] = texts[0]
    if item.operator == "BETWEEN":
        body["highValue"] = texts[1]
    return body


def search_text(value: Scalar, operator: str = "EQ") -> str:
    """A filter value as HubSpot's search takes it: text, and a date or ISO datetime as
    epoch milliseconds.

    HubSpot's APIs take timestamps as Unix milliseconds, and a date property holds
    midnight UTC of its day
    (https://developers.hubspot.com/docs/faq/how-should-timestamps-be-formatted-for-hubspots-apis),
    so `2026-10-01` is 1790812800000 and `2026-10-01T12:00:00+02:00` is 1790848800000.
    The token operators match words of text: their values go as written.
    """
    moment = None if operator in TOKEN_OPERATORS else as_moment(value)
    return as_text(value) if moment is None else str(epoch_ms(moment))


def error_reason(response: requests.Response) -> ApiError:
    """HubSpot's errors, `{status, message, correlationId, category}`; a 429 names the limit
    it hit (`policyName`): the ten-secondly (and secondly) limits free up in seconds and
    are retried, the daily one does not before midnight, so the source fails at once."""
    said = said_in(response, "message")
    body = json_body(response)
    policy = body.get("policyName") if isinstance(body, Mapping) else None
    if response.status_code != 429 or not policy:
        return ApiError(said)
    said = f"policy {policy}: {said}" if said else f"policy {policy}"
    if str(policy).upper() == "DAILY":
        return ApiError(
            said,
            reason=f"the account's daily API limit is used up (HTTP 429, {said}); not retried: "
            "it resets at midnight in the account's time zone",
        )
    return ApiError(said, rate_limited=True)


@dataclass
class _Listing:
    """The records a search listed by id; `complete` is False when more matched than it
    can page through (its 10,000-result cap)."""

    records: dict[str, Record] = field(default_factory=dict)
    complete: bool = True


class HubSpotConnector(HttpConnector):
    """Counts or sums per day from the CRM search API, splitting searches past 10,000 results."""

    source = "hubspot"
    concurrent_queries = True
    params_model = HubSpotMetric
    env = SourceEnv(
        base_url="HUBSPOT_API_URL", default_base_url=API_URL, token="HUBSPOT_ACCESS_TOKEN"
    )
    error_reason = staticmethod(error_reason)
    # Records a page asks for (HubSpot's maximum). The contract tests shrink it.
    page_size: ClassVar[int] = PAGE_SIZE
    # Results a search can page through; tests lower it with a sandbox that does the same.
    result_cap: ClassVar[int] = RESULT_CAP

    def plan(self, requests: Sequence[SeriesRequest[HubSpotMetric]]) -> Plan[HubSpotMetric]:
        """One search per object, date property and set of filters (and stretch of days)."""
        return Plan.grouped(requests, lambda request: search_shape(request.metric))

    def fetch(self, request: SeriesRequest[HubSpotMetric]) -> pd.DataFrame:
        query = SharedQuery(search_shape(request.metric), (request,))
        return only_answer(self.fetch_shared(query), request)

    def fetch_shared(self, query: SharedQuery[HubSpotMetric]) -> dict[str, SeriesAnswer]:
        metric = query.requests[0].metric
        if len(metric.filters) > MAX_FILTERS - 2:
            raise SourceError(
                self.source,
                f"at most {MAX_FILTERS - 2} filters: HubSpot allows {MAX_FILTERS} in a search "
                "and the date window takes 2",
            )
        properties = [metric.date_property]
        for request in query.requests:
            asked = request.metric
            if asked.measure == "sum" and asked.field and asked.field not in properties:
                properties.append(asked.field)
        low, high = search_bounds(query.window)
        records = list(self._records(metric, low, high, properties))
        answers: dict[str, SeriesAnswer] = {}
        for request in query.requests:
            asked = request.metric
            try:
                answers[request.metric_key] = daily_totals(
                    request.window,
                    (
                        (
                            record.moment(asked.date_property, epoch="ms"),
                            self._measure(asked, record),
                        )
                        for record in records
                    ),
                )
            except SourceError as error:  # a bad property costs the series that reads it
                answers[request.metric_key] = error
        return answers

    def _measure(self, metric: HubSpotMetric, record: Record) -> float:
        if metric.measure == "count":
            return 1.0
        # Asked for, so always sent (null when unset): missing means renamed.
        return record.number(metric.field or "", present=True) or 0.0  # nulls add nothing

    # -- past the result cap: split by id, or by time ------------------------------------------

    def _records(
        self, metric: HubSpotMetric, low: int, high: int, properties: list[str]
    ) -> Iterator[Record]:
        """Every record dated in [low, high) (epoch ms), once, whatever the result cap.

        A search with more results than the cap is read again by id: sorted by
        `hs_object_id`, each search starting after the last id the one before listed
        (a filter of its own: a KR with the most filters is split in halves of time
        instead). Each record is its `properties`, named by the object and the record's id.
        """
        listing = self._search(metric, low, high, properties)
        if listing.complete:
            yield from listing.records.values()
        elif len(metric.filters) <= MAX_FILTERS - 3:
            yield from self._by_id(metric, low, high, properties)
        else:
            yield from self._by_halves(metric, low, high, properties)

    def _by_id(
        self, metric: HubSpotMetric, low: int, high: int, properties: list[str]
    ) -> Iterator[Record]:
        after: int | None = None
        while True:
            listing = self._search(metric, low, high, properties, by_id=True, after_id=after)
            ids = [_record_id(self.source, key) for key in listing.records]
            yield from listing.records.values()
            if listing.complete or not ids:
                return
            last = max(ids)
            if after is not None and last <= after:  # never the same search twice
                raise SourceError(
                    self.source, f"the id split of {metric.object} made no progress past {after}"
                )
            after = last

    def _by_halves(
        self, metric: HubSpotMetric, low: int, high: int, properties: list[str]
    ) -> Iterator[Record]:
        pending = [(low, high)]
        while pending:
            part_low, part_high = pending.pop(0)
            listing = self._search(metric, part_low, part_high, properties)
            if listing.complete:
                yield from listing.records.values()
                continue
            if part_high - part_low <= 1:
                raise SourceError(
                    self.source,
                    f"more than {self.result_cap} {metric.object} at one instant "
                    f"({part_low} ms) and {len(metric.filters)} filters: the search cannot "
                    f"list them all (with at most {MAX_FILTERS - 3} filters it splits by id)",
                )
            middle = (part_low + part_high) // 2
            pending[:0] = [(part_low, middle), (middle, part_high)]

    def _search(
        self,
        metric: HubSpotMetric,
        low: int,
        high: int,
        properties: list[str],
        *,
        by_id: bool = False,
        after_id: int | None = None,
    ) -> _Listing:
        """The records dated in [low, high) by id; not `complete` when more match than the
        search pages through. `by_id`: sorted by id, and only those after `after_id`."""
        filters = [filter_body(item) for item in metric.filters]
        filters += [
            {"propertyName": metric.date_property, "operator": "GTE", "value": str(low)},
            {"propertyName": metric.date_property, "operator": "LT", "value": str(high)},
        ]
        if after_id is not None:
            filters.append({"propertyName": ID_PROPERTY, "operator": "GT", "value": str(after_id)})
        sort = ID_PROPERTY if by_id else metric.date_property
        query = Query(
            "POST",
            f"/crm/v3/objects/{metric.object}/search",
            NextTokenPaginator("paging.next.after", "after", where="json"),
            json={
                "filterGroups": [{"filters": filters}],
                "properties": properties,
                "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
                "limit": self.page_size,
            },
            records=lambda page: [page],  # the whole body: its total and paging matter
        )
        listing = _Listing()
        # Results paged through so far. The `after` cursor is opaque text (HubSpot's own
        # examples show `NTI1Cg%3D%3D`): it is sent back as given and never read.
        listed = 0
        total: int | None = None
        for page in self.records(query):
            if not isinstance(page, Mapping) or not isinstance(page.get("results"), list):
                raise SourceError(self.source, "unexpected response body: expected search results")
            total = _total(page.get("total"), total)
            if total is not None and total > self.result_cap and not by_id:
                return _Listing(complete=False)
            for item in page["results"]:
                found = Record(self.source, item, metric.object, id_fields=("id",))
                properties_of = Record(
                    self.source, found.get("properties") or {}, found.kind, found.id
                )
                # An id seen twice (records moved while paging) counts once.
                listing.records[str(found.id)] = properties_of
            listed += len(page["results"])
            following = ((page.get("paging") or {}).get("next") or {}).get("after")
            if following not in (None, "") and listed >= self.result_cap:
                # The next page would be past the cap (HubSpot answers 400): more remain.
                listing.complete = False
                return listing
        # Paged to the end: the distinct records must be as many as the search matched.
        if total is not None and len(listing.records) != total:
            raise SourceError(
                self.source,
                f"the search of {metric.object} says total {total} but lists "
                f"{len(listing.records)} distinct records",
            )
        return listing


def search_shape(metric: HubSpotMetric) -> str:
    """What the series of one search share: the object, the date property and the filters."""
    found = metric.model_dump(mode="json", include={"object", "date_property", "filters"})
    return json.dumps(found, sort_keys=True)


def search_bounds(window: Window) -> tuple[int, int]:
    """The [low, high) epoch ms a window searches: from its first local midnight, or from
    midnight UTC of its first day when that comes earlier, to its last local midnight.

    A date (not datetime) property holds midnight UTC of its day: west of UTC, the first
    local midnight comes after it and would lose the first day (east of UTC, and at the
    far end, midnight UTC of each day already falls inside). The days are kept
    client-side: a date as the day it names, a datetime in the window's time zone.
    """
    first_utc = datetime.combine(window.first, time.min, tzinfo=timezone.utc)
    return min(window.start_ms, epoch_ms(first_utc)), window.end_ms


def _total(value: Any, earlier: int | None) -> int | None:
    """A page's `total` (left out by some answers: None, the earlier page's)."""
    if value is None:
        return earlier
    try:
        return int(str(value))
    except ValueError:
        raise SourceError(
            HubSpotConnector.source, f"the search's total {value!r} is not a number"
        ) from None


def _record_id(source: str, key: str) -> int:
    try:
        return int(key)
    except ValueError:
        raise SourceError(
            source, f"record id {key!r} is not a number: cannot split by id"
        ) from None
