"""The Jira Cloud connector: issues created, resolved, and resolved within N hours, per day.

Built by the Dagster observation assets (through `connectors/registry.py`) from
`JIRA_BASE_URL`, `JIRA_EMAIL` and `JIRA_API_TOKEN` (basic auth); works against a Jira
Cloud site and the sandbox alike.

One metric is one JQL search, `POST /rest/api/3/search/jql`, paged by `nextPageToken`:
the user's JQL in parentheses, then the date window (`AND resolved >= "..." AND
resolved < "..."`), asking only for `created` and `resolutiondate`.

The series of one JQL query share one search (`plan`): counts by `created` and by
`resolved` (and both series of a `resolved_within` KR) read the issues created in the
first's window or resolved in the second's (`... AND ((created >= ... AND created < ...)
OR (resolved >= ... AND resolved < ...))`), each series keeping its own issues and days
client-side. The connector also keeps the issues of each search it sent for the run, so
series asked for one by one share a search all the same.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any, ClassVar

import pandas as pd
import requests

from okr_metrics.connectors.base import SeriesAnswer, SourceEnv, SourceError, only_answer
from okr_metrics.connectors.http import (
    ApiError,
    Basic,
    HttpClient,
    HttpConnector,
    NextTokenPaginator,
    PageRequest,
    Query,
    said_in,
)
from okr_metrics.connectors.jira.params import JiraMetric
from okr_metrics.connectors.kit import (
    Plan,
    Record,
    SeriesRequest,
    SharedQuery,
    daily_counts,
    daily_ratio,
    daily_totals,
    distinct,
    totals_by_day,
)

SEARCH_PATH = "/rest/api/3/search/jql"
# `maxResults`: the most /search/jql takes. Jira sends fewer a page, without a word, as
# the fields asked for allow (100 with these today; more when it can), and the pages
# follow `nextPageToken` whatever their length.
PAGE_SIZE = 5000
FIELDS = ["created", "resolutiondate"]

# Jira reads the dates of a JQL query in the time zone of the user's profile, which the
# connector does not know. Time zones are at most 26 hours apart, so the query reaches two
# days beyond the window on each side, and the exact days are kept client-side.
JQL_MARGIN = timedelta(days=2)

_ORDER_BY = re.compile(r"\border\s+by\b", re.IGNORECASE)


def error_reason(response: requests.Response) -> ApiError:
    """Jira's errors: `{"errorMessages": [...], "errors": {...}}` (or a `message`)."""
    return ApiError(said_in(response, "message", "errorMessages"))


def without_order_by(jql: str) -> str:
    """The JQL without a trailing `ORDER BY` (which cannot sit inside parentheses)."""
    quote: str | None = None
    escaped = False
    for index, char in enumerate(jql):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif (
            char in "oO"
            and _ORDER_BY.match(jql, index)
            and (index == 0 or not _word(jql[index - 1]))
        ):
            return jql[:index].strip()
    return jql.strip()


def _word(char: str) -> bool:
    return char.isalnum() or char == "_"


def search_jql(jql: str, date_clause_field: str, start: date, end: date) -> str:
    """The JQL the connector sends: the user's query, then the (widened) date window."""
    condition = without_order_by(jql)
    low, high = start - JQL_MARGIN, end + timedelta(days=1) + JQL_MARGIN
    window = (
        f'{date_clause_field} >= "{low.isoformat()}" AND {date_clause_field} < "{high.isoformat()}"'
    )
    return f"({condition}) AND {window}" if condition else window


def shared_search_jql(jql: str, windows: Mapping[str, tuple[date, date]]) -> str:
    """The JQL of one search for several date fields: the user's query, then the issues of
    any field's (widened) window; with one field, `search_jql`."""
    if len(windows) == 1:
        ((field, (start, end)),) = windows.items()
        return search_jql(jql, field, start, end)
    alternatives = " OR ".join(
        f"({search_jql('', field, start, end)})" for field, (start, end) in sorted(windows.items())
    )
    condition = without_order_by(jql)
    return f"({condition}) AND ({alternatives})" if condition else alternatives


def date_field(metric: JiraMetric) -> str:
    """The date field a series' search reads: `created`, or `resolved` for the rest."""
    return "created" if metric.count == "created" else "resolved"


class _JiraPaginator(NextTokenPaginator):
    """`nextPageToken` in the JSON body; stops on a missing token, `isLast` or an empty page."""

    def __init__(self) -> None:
        super().__init__("nextPageToken", "nextPageToken", where="json", last_path="isLast")

    def _next(
        self, response: requests.Response, data: Any, request: PageRequest
    ) -> PageRequest | None:
        if not _issues_of(data):
            return None
        return super()._next(response, data, request)


def _issues_of(body: Any) -> list | None:
    if isinstance(body, Mapping) and isinstance(body.get("issues"), list):
        return body["issues"]
    return None


# (created, resolved or None) of one issue
Issue = tuple[datetime, datetime | None]


class _Search:
    """The issues of one search; `unresolved_problem`, the error of a series counting
    resolutions when an issue lacks its resolution date."""

    def __init__(self, issues: list[Issue], unresolved_problem: SourceError | None) -> None:
        self.issues, self.unresolved_problem = issues, unresolved_problem


class JiraConnector(HttpConnector):
    """Counts of a JQL query's issues per day, by `created` or `resolutiondate`."""

    source = "jira"
    concurrent_queries = True
    params_model = JiraMetric
    env = SourceEnv(base_url="JIRA_BASE_URL", token="JIRA_API_TOKEN", user="JIRA_EMAIL")
    auth = Basic()
    error_reason = staticmethod(error_reason)
    page_size: ClassVar[int] = PAGE_SIZE  # `maxResults` of each page

    def __init__(self, client: HttpClient) -> None:
        super().__init__(client)
        # The JQL sent -> the issues of that search, fetched once per run.
        self._searches: dict[str, _Search] = {}

    def plan(self, requests: Sequence[SeriesRequest[JiraMetric]]) -> Plan[JiraMetric]:
        """One search per JQL query (and stretch of days), whatever the counts."""
        return Plan.grouped(requests, lambda request: without_order_by(request.metric.jql))

    def fetch(self, request: SeriesRequest[JiraMetric]) -> pd.DataFrame:
        return only_answer(self.fetch_shared(SharedQuery(request.metric.jql, (request,))), request)

    def fetch_shared(self, query: SharedQuery[JiraMetric]) -> dict[str, SeriesAnswer]:
        windows: dict[str, tuple[date, date]] = {}
        for request in query.requests:
            field = date_field(request.metric)
            first, last = windows.get(field, (request.start, request.end))
            windows[field] = (min(first, request.start), max(last, request.end))
        search = self._search(query.requests[0].metric.jql, windows)
        answers: dict[str, SeriesAnswer] = {}
        for request in query.requests:
            try:
                answers[request.metric_key] = _series(request, search)
            except SourceError as error:
                answers[request.metric_key] = error
        return answers

    # -- the search -----------------------------------------------------------------------

    def _search(self, jql: str, windows: Mapping[str, tuple[date, date]]) -> _Search:
        sent = shared_search_jql(jql, windows)
        if sent not in self._searches:
            query = Query(
                "POST",
                SEARCH_PATH,
                _JiraPaginator(),
                json={"jql": sent, "fields": FIELDS, "maxResults": self.page_size},
                records=_issues_of,
            )
            # An issue that moves while the search is paged may come twice: once each.
            records = distinct(
                Record(self.source, item, "issue", id_fields=("key", "id"))
                for item in self.records(query)
            )
            issues, problem = [], None
            for record in records:
                created = record.instant("fields.created")
                if set(windows) == {"resolved"}:
                    # An issue the search found by its resolution date has one: without it,
                    # the field was renamed or dropped, and the issue would silently not count.
                    resolved = record.instant("fields.resolutiondate", required=False)
                    if resolved is None:
                        problem = problem or record.missing("fields.resolutiondate")
                elif "resolved" in windows:
                    # Found by either date: unresolved issues have a null resolution date,
                    # but the field is always sent.
                    resolved = record.instant("fields.resolutiondate", required=False, present=True)
                else:
                    resolved = record.instant("fields.resolutiondate", required=False)
                issues.append((created, resolved))
            self._searches[sent] = _Search(issues, problem)
        return self._searches[sent]


def _series(request: SeriesRequest[JiraMetric], search: _Search) -> pd.DataFrame:
    """One series from a search's issues: those of its date field in its window."""
    metric, window = request.metric, request.window
    if metric.count == "created":
        return daily_counts(window, (created for created, _ in search.issues))
    if search.unresolved_problem is not None:
        raise search.unresolved_problem
    # (created, resolved) of the issues resolved
    resolutions = [(created, done) for created, done in search.issues if done is not None]
    if metric.count == "resolved":
        return daily_counts(window, (done for _, done in resolutions))
    limit = timedelta(hours=metric.hours or 0)
    within = [(done, 1.0) for opened, done in resolutions if done - opened <= limit]
    if metric.count == "resolved_within":
        return daily_totals(window, within)
    # `measure: resolved_within` asked for whole: the daily share, on days with resolutions.
    resolved = totals_by_day(window, ((done, 1.0) for _, done in resolutions))
    return daily_ratio(window, totals_by_day(window, within), resolved)
