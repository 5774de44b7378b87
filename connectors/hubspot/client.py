"""The HubSpot connector: CRM records (deals by default) counted or summed per day.

Built by the Dagster observation assets (through `connectors/registry.py`) from
`HUBSPOT_API_URL` and `HUBSPOT_ACCESS_TOKEN` (a private app's token, sent as a bearer
token); works against api.hubapi.com and the sandbox alike.

One metric is one CRM search, `POST /crm/v3/objects/{object}/search`: one filter group
holding the KR's `filters` (see `connectors/hubspot/params.py` for their YAML shapes) and
the date window (`date_property` from the first instant of `start` to the first instant
after `end`, in epoch milliseconds in the KR file's time zone), sorted by the date
property, 200 records a page, paged by `paging.next.after`. HubSpot's search never pages
past its 10,000th result (it answers 400), so a window with more results is split in
halves, recursively, until each part fits: no record is lost.

Each KR filter becomes one search filter in HubSpot's shape (`filter_body`): `value` for
the one-value operators, `values: [...]` for IN / NOT_IN, `value` and `highValue` for
BETWEEN, nothing for HAS_PROPERTY / NOT_HAS_PROPERTY. Values are text; a value written as
a date or ISO datetime goes as epoch milliseconds (`search_text`), as HubSpot compares
date and datetime properties.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import pandas as pd

from okr_metrics.connectors.base import SourceEnv, SourceError
from okr_metrics.connectors.http import HttpConnector, NextTokenPaginator, Query
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
from okr_metrics.connectors.kit import Record, SeriesRequest, daily_totals, epoch_ms

API_URL = "https://api.hubapi.com"
# The most records a search page holds, and the most results a search can page through.
PAGE_SIZE = 200
RESULT_CAP = 10_000
# Filters a filter group may hold; the date window takes two of them.
MAX_FILTERS = 6


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


class HubSpotConnector(HttpConnector):
    """Counts or sums per day from the CRM search API, splitting windows past 10,000 results."""

    source = "hubspot"
    params_model = HubSpotMetric
    env = SourceEnv(
        base_url="HUBSPOT_API_URL", default_base_url=API_URL, token="HUBSPOT_ACCESS_TOKEN"
    )
    # Records a page asks for (HubSpot's maximum). The contract tests shrink it.
    page_size: ClassVar[int] = PAGE_SIZE
    # Results a search can page through; tests lower it with a sandbox that does the same.
    result_cap: ClassVar[int] = RESULT_CAP

    def fetch(self, request: SeriesRequest[HubSpotMetric]) -> pd.DataFrame:
        metric, window = request.metric, request.window
        if len(metric.filters) > MAX_FILTERS - 2:
            raise SourceError(
                self.source,
                f"at most {MAX_FILTERS - 2} filters: HubSpot allows {MAX_FILTERS} in a search "
                "and the date window takes 2",
            )
        return daily_totals(
            window,
            (
                (record.moment(metric.date_property, epoch="ms"), self._measure(metric, record))
                for record in self._records(metric, window.start_ms, window.end_ms)
            ),
        )

    def _measure(self, metric: HubSpotMetric, record: Record) -> float:
        if metric.measure == "count":
            return 1.0
        return record.number(metric.field or "") or 0.0  # nulls add nothing to a sum

    # -- the window split: a search pages through 10,000 results at most ----------------------

    def _records(self, metric: HubSpotMetric, low: int, high: int) -> Iterator[Record]:
        """Every record dated in [low, high) (epoch ms), once, splitting past the result cap.

        Each record is its `properties`, named by the object and the record's id.
        """
        pending = [(low, high)]
        while pending:
            part_low, part_high = pending.pop(0)
            found = self._search(metric, part_low, part_high)
            if found is None:
                if part_high - part_low <= 1:
                    raise SourceError(
                        self.source,
                        f"more than {self.result_cap} {metric.object} at one instant "
                        f"({part_low} ms): the search cannot list them all",
                    )
                middle = (part_low + part_high) // 2
                pending[:0] = [(part_low, middle), (middle, part_high)]
                continue
            yield from found.values()

    def _search(self, metric: HubSpotMetric, low: int, high: int) -> dict[str, Record] | None:
        """The records dated in [low, high) by id, or None when there are more than the cap."""
        filters = [filter_body(item) for item in metric.filters]
        filters += [
            {"propertyName": metric.date_property, "operator": "GTE", "value": str(low)},
            {"propertyName": metric.date_property, "operator": "LT", "value": str(high)},
        ]
        properties = [metric.date_property]
        if metric.measure == "sum" and metric.field and metric.field != metric.date_property:
            properties.append(metric.field)
        query = Query(
            "POST",
            f"/crm/v3/objects/{metric.object}/search",
            NextTokenPaginator("paging.next.after", "after", where="json"),
            json={
                "filterGroups": [{"filters": filters}],
                "properties": properties,
                "sorts": [{"propertyName": metric.date_property, "direction": "ASCENDING"}],
                "limit": self.page_size,
            },
            records=lambda page: [page],  # the whole body: its total and paging matter
        )
        records: dict[str, Record] = {}
        for page in self.records(query):
            if not isinstance(page, Mapping) or not isinstance(page.get("results"), list):
                raise SourceError(self.source, "unexpected response body: expected search results")
            if int(page.get("total") or 0) > self.result_cap:
                return None
            for item in page["results"]:
                found = Record(self.source, item, metric.object, id_fields=("id",))
                properties = Record(
                    self.source, found.get("properties") or {}, found.kind, found.id
                )
                # An id seen twice (records moved while paging) counts once.
                records[str(found.id)] = properties
            following = ((page.get("paging") or {}).get("next") or {}).get("after")
            if following is not None and _int(following) >= self.result_cap:
                return None  # the window grew past the cap while paging
        return records


def _int(text: Any) -> int:
    try:
        return int(str(text))
    except ValueError:
        return 0
