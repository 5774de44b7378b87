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

A search of many pages is fetched in slices side by side (`slice_bounds`): its first
page (or pages, past the issues created before the window), asked `ORDER BY created
ASC`, shows how much of the window a page covers; when the pages left are enough for
at least `MIN_SLICE_PAGES` a slice, the rest is split by `created` into up to as many
slices as the host may have requests in flight, each the search's JQL AND `created >=
"t1" AND created < "t2"` (disjoint and complete in any time zone); otherwise the first
page's chain goes on. Each slice ends on a partial page, which is why a slice must be
worth many pages. `benchmarks/requests_floor.py` counts a search's slices as one query
(`unsliced`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, time, timedelta
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
    distinct_by,
    quick_instant,
    totals_by_day,
)

SEARCH_PATH = "/rest/api/3/search/jql"
# `maxResults`: the most /search/jql takes. Jira sends fewer a page, without a word, as
# the fields asked for allow (100 with these today; more when it can), and the pages
# follow `nextPageToken` whatever their length.
PAGE_SIZE = 5000
FIELDS = ["created", "resolutiondate"]
ID_FIELDS = ("key", "id")  # what names an issue in errors and keeps it once

# Jira reads the dates of a JQL query in the time zone of the user's profile, which the
# connector does not know. Time zones are at most 26 hours apart, so the query reaches two
# days beyond the window on each side, and the exact days are kept client-side.
JQL_MARGIN = timedelta(days=2)

_ORDER_BY = re.compile(r"\border\s+by\b", re.IGNORECASE)

# The first page of a search is asked in `created` order: the part of the window it
# covers tells how many pages are left.
BY_CREATED = " ORDER BY created ASC"
# A slice ends on a partial page: with at least this many pages a slice, the partial
# pages cost at most 1/20 (5%) more requests than the one chain.
MIN_SLICE_PAGES = 20
# The fewest issues of the window on a first page to estimate the window's pace from.
MIN_SAMPLE = 10
# UTC offsets run from -12:00 to +14:00: a boundary written as a UTC time is, in the
# user's time zone, at most 12 hours later than meant.
LATEST_OFFSET = timedelta(hours=12)
# A slice's bounds at the end of its JQL: minutes, where the window's are days.
_MINUTE = r'"\d{4}-\d\d-\d\d \d\d:\d\d"'
_SLICE = re.compile(
    rf"^\((?P<search>.*)\) AND created >= {_MINUTE}(?: AND created < {_MINUTE})?$", re.DOTALL
)
_JQL_MINUTE = "%Y-%m-%d %H:%M"


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


def slice_jql(search: str, low: datetime, high: datetime | None) -> str:
    """One slice of a search: its JQL AND `created` from `low` (included) to `high`
    (excluded; None: no end). A boundary is the same text in the slices on both sides,
    so whatever time zone Jira reads it in, every issue is in exactly one slice."""
    bounds = f'created >= "{low.strftime(_JQL_MINUTE)}"'
    if high is not None:
        bounds += f' AND created < "{high.strftime(_JQL_MINUTE)}"'
    return f"({search}) AND {bounds}"


def unsliced(jql: str) -> str:
    """The search a JQL the connector sent belongs to: without its trailing `ORDER BY`
    and, for a slice, without the slice's `created` bounds."""
    jql = without_order_by(jql)
    found = _SLICE.match(jql)
    return found.group("search") if found else jql


def slice_bounds(
    read: Sequence[datetime],
    windows: Mapping[str, tuple[date, date]],
    width: int,
    page_size: int,
) -> list[datetime] | None:
    """Where to split the rest of a search whose first pages (in `created` order, of
    `page_size` issues) held these `created` instants: the slices' lower bounds (UTC, to
    the minute); [] to read on page after page; None when those pages hold too few of
    the window's issues to tell (read one more and ask again).

    The issues are taken to be spread evenly over the window: the time the window's
    first `MIN_SAMPLE` or more issues take tells how many pages are left until the
    window's end (the issues before the window, found by their resolution, are few and
    far apart: they say little of its pace); one slice per `MIN_SLICE_PAGES` of them,
    at most `width`. The first slice starts `LATEST_OFFSET` before the last issue read,
    so that in any time zone the pages read hold every issue before it (the issues on
    both sides are kept once, by key).
    """
    if list(read) != sorted(read):
        return []  # not in `created` order: nothing to estimate from
    opening = datetime.combine(
        min(start for start, _ in windows.values()) - JQL_MARGIN, time.min, UTC
    )
    closing = datetime.combine(
        max(end for _, end in windows.values()) + timedelta(days=1) + JQL_MARGIN, time.min, UTC
    )
    sample = [moment for moment in read if moment >= opening]
    if len(sample) < MIN_SAMPLE:
        return None
    last = sample[-1]
    covered = (last - sample[0]).total_seconds()
    if covered <= 0 or closing <= last:
        return []  # issues of one instant (an import) or nothing left: no pace to go by
    left = (len(sample) - 1) * (closing - last).total_seconds() / covered
    slices = int(min(width, left / page_size // MIN_SLICE_PAGES))
    if slices < 2:
        return []
    low = (last - LATEST_OFFSET).replace(second=0, microsecond=0)
    step = (closing - low) / slices
    bounds = [(low + step * index).replace(second=0, microsecond=0) for index in range(slices)]
    return sorted(set(bounds))


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


def _more_after(body: Any) -> bool:
    """Whether a page names one after it (as `_JiraPaginator` reads it)."""
    return bool(body.get("nextPageToken")) and body.get("isLast") is not True


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

    def finish(self) -> None:
        """The run has every series of its searches: their issues (two instants each, a
        few megabytes for 100,000 issues) are let go before the scoring needs memory."""
        self._searches.clear()

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
            # An issue that moves while the search is paged may come twice, and the slices
            # of a search overlap the first page: each issue once, by key.
            items = distinct_by(self._issues(sent, windows), self._issue_id)
            issues, problem = [], None
            only_resolved = set(windows) == {"resolved"}
            for item in items:
                found = _quick_instants(item)
                if found is None or (found[1] is None and only_resolved):
                    # Another shape, or a problem to name: the issue read field by field.
                    record = Record(self.source, item, "issue", id_fields=ID_FIELDS)
                    created, resolved, missing = self._instants(record, windows)
                    problem = problem or missing
                else:
                    created, resolved = found
                issues.append((created, resolved))
            self._searches[sent] = _Search(issues, problem)
        return self._searches[sent]

    def _issue_id(self, item: Any) -> str | None:
        """The id `Record` gives the issue (its key, else its id); a one-line error for an
        issue that is not an object."""
        if type(item) is not dict:
            return Record(self.source, item, "issue", id_fields=ID_FIELDS).id
        for name in ID_FIELDS:
            found = item.get(name)
            if found not in (None, ""):
                return str(found)
        return None

    @staticmethod
    def _instants(
        record: Record, windows: Mapping[str, tuple[date, date]]
    ) -> tuple[datetime, datetime | None, SourceError | None]:
        """(created, resolved, why the issue cannot count as resolved, if it cannot)."""
        created = record.instant("fields.created")
        if set(windows) == {"resolved"}:
            # An issue the search found by its resolution date has one: without it, the
            # field was renamed or dropped, and the issue would silently not count.
            resolved = record.instant("fields.resolutiondate", required=False)
            if resolved is None:
                return created, None, record.missing("fields.resolutiondate")
        elif "resolved" in windows:
            # Found by either date: unresolved issues have a null resolution date, but the
            # field is always sent.
            resolved = record.instant("fields.resolutiondate", required=False, present=True)
        else:
            resolved = record.instant("fields.resolutiondate", required=False)
        return created, resolved, None

    def _query(self, jql: str, records: Any = _issues_of) -> Query:
        return Query(
            "POST",
            SEARCH_PATH,
            _JiraPaginator(),
            json={"jql": jql, "fields": FIELDS, "maxResults": self.page_size},
            records=records,
        )

    def _issues(self, sent: str, windows: Mapping[str, tuple[date, date]]) -> list[Any]:
        """The issues of a search: its first pages, then the rest of its chain or, when
        the pages left are many, its slices side by side (`slice_bounds`)."""
        last_body: list[Any] = [None]  # the body of the page just read

        def noted(body: Any) -> list | None:
            last_body[0] = body
            return _issues_of(body)

        chain = self.client.paginate(self._query(sent + BY_CREATED, noted))
        issues: list[Any] = []
        created: list[datetime] = []  # of the pages read while the pace is not known
        page_size, settled = 0, False
        try:
            for page in chain:
                issues.extend(page)
                page_size = page_size or len(page)  # as many as Jira chose to send
                if settled or not page or not _more_after(last_body[0]):
                    continue
                created += [
                    Record(self.source, item, "issue", id_fields=ID_FIELDS).instant(
                        "fields.created"
                    )
                    for item in page
                ]
                width = self.client.limiter.limits.max_in_flight
                bounds = slice_bounds(created, windows, width, page_size)
                if bounds:
                    chain.close()
                    return issues + self._slices(sent, bounds)
                settled = bounds is not None  # [] : read on, page after page
            return issues
        finally:
            chain.close()

    def _slices(self, sent: str, bounds: list[datetime]) -> list[Any]:
        """Every slice's issues, fetched side by side (the host's limiter decides how
        many requests are out at once); a failing slice fails the search, as a failing
        page would, and the others stop after their current page."""
        failed = threading.Event()
        queries = [
            self._query(slice_jql(sent, low, high))
            for low, high in zip(bounds, [*bounds[1:], None], strict=True)
        ]

        def fetch(query: Query) -> list[Any]:
            found: list[Any] = []
            pages = self.client.paginate(query)  # a generator: `close` stops its fetching
            try:
                for page in pages:
                    found.extend(page)
                    if failed.is_set():
                        break
            except BaseException:
                failed.set()
                raise
            finally:
                pages.close()
            return found

        with ThreadPoolExecutor(len(queries), thread_name_prefix="okr-jira-slice") as pool:
            futures = [pool.submit(fetch, query) for query in queries]
            return [issue for future in futures for issue in future.result()]


def _quick_instants(item: Any) -> tuple[datetime, datetime | None] | None:
    """(created, resolved) of an issue as Jira sends nearly all of them (an object whose
    `fields` hold both instants in Jira's format, the resolution date possibly null), read
    as `JiraConnector._instants` reads them; None for any other issue."""
    fields = item.get("fields") if type(item) is dict else None
    if type(fields) is not dict:
        return None
    created = quick_instant(fields.get("created"))
    if created is None or "resolutiondate" not in fields:
        return None
    resolution = fields["resolutiondate"]
    if resolution is None:
        return created, None
    resolved = quick_instant(resolution)
    return None if resolved is None else (created, resolved)


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
