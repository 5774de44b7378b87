"""The GitHub connector: merged pull requests, opened and closed issues, releases per day.

Built by the Dagster observation assets (through `connectors/registry.py`) from
`GITHUB_API_URL` and `GITHUB_TOKEN`; works against api.github.com, GitHub Enterprise
(`https://host/api/v3`) and the sandbox alike. Each count reads one list endpoint,
newest first, and stops after the page that reaches back past the window's start (the
pages up to it are fetched side by side, as many as the stamps say it needs: `NewestFirst`
in `connectors/http.py`).

The counts of one repository that read one endpoint share its listing (`plan`): merged
pull requests with any labels, opened and closed issues with any labels, releases. The
listing reaches back to the earliest window asked; each series keeps its own days and
labels client-side. Issues are the exception GitHub filters by label itself (`labels`):
a label set keeps its filtered listing unless the repository's issues are listed
unfiltered anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

import pandas as pd
import requests

from okr_metrics.connectors.base import SeriesAnswer, SourceEnv, SourceError, only_answer
from okr_metrics.connectors.github.params import GitHubMetric
from okr_metrics.connectors.http import (
    ApiError,
    HttpConnector,
    LinkHeaderPaginator,
    NewestFirst,
    Query,
    said_in,
    vendor_limits,
)
from okr_metrics.connectors.kit import (
    Plan,
    Record,
    SeriesRequest,
    SharedQuery,
    daily_counts,
    distinct,
    parse_timestamp,
)

API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
PER_PAGE = 100

# A release published days after it was drafted: keep reading this far back.
RELEASE_DRAFT_LOOKBACK = timedelta(days=90)


# GitHub's advice for a secondary rate limit without `Retry-After`: wait at least a minute
# (https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api).
SECONDARY_LIMIT_WAIT = 60.0


def error_reason(response: requests.Response) -> ApiError:
    """GitHub's errors: `{"message": ...}`; a 403 or 429 is a rate limit when its headers or
    its message say so. The primary limit names its reset time (`x-ratelimit-reset`); the
    secondary one ("You have exceeded a secondary rate limit") may name none: then a
    minute, as GitHub asks."""
    said = said_in(response, "message")
    headers = response.headers
    limited = response.status_code in (403, 429) and (
        headers.get("x-ratelimit-remaining") == "0"
        or "retry-after" in headers
        or "rate limit" in said.lower()
    )
    secondary = limited and "secondary rate limit" in said.lower()
    return ApiError(said, rate_limited=limited, wait=SECONDARY_LIMIT_WAIT if secondary else None)


@dataclass(frozen=True)
class Count:
    """One count: the list endpoint it reads and the field of each item it buckets.

    `required`: an item without the field is an error (otherwise it does not count);
    `stop_field`: the list is sorted by it, newest first, so the reading stops after the
    page whose last item is older than the window (`lookback` earlier still).
    """

    endpoint: str
    field: str
    params: Mapping[str, str] = dataclass_field(default_factory=dict)
    required: bool = False
    stop_field: str | None = None
    lookback: timedelta = timedelta(0)

    def stop(self, start: datetime) -> NewestFirst | None:
        if not self.stop_field:
            return None
        return NewestFirst(_stamp_of(self.stop_field), start - self.lookback)

    def counts(self, item: Record, labels: tuple[str, ...]) -> bool:
        if self.endpoint == "releases":
            return not item.get("draft")
        # The issues endpoint lists pull requests too.
        is_pull = "pull_request" in item.data
        return (self.endpoint == "pulls" or not is_pull) and _has_labels(item, labels)


# Issues updated in or after the window (`since`), which every issue opened or closed in it was.
ISSUES = {"state": "all", "sort": "updated", "direction": "desc"}
COUNTS = {
    # Closed PRs, most recently updated first: a PR merged in the window was updated at or
    # after its merge.
    "merged_pull_requests": Count(
        "pulls",
        "merged_at",
        {"state": "closed", "sort": "updated", "direction": "desc"},
        stop_field="updated_at",
    ),
    "opened_issues": Count("issues", "created_at", ISSUES, required=True),
    # Whatever the close reason (completed, not_planned, duplicate).
    "closed_issues": Count("issues", "closed_at", ISSUES),
    # A release is listed by `created_at` but counted by `published_at`, which may come later.
    "releases": Count(
        "releases", "published_at", stop_field="created_at", lookback=RELEASE_DRAFT_LOOKBACK
    ),
}


class GitHubConnector(HttpConnector):
    """Counts per day, from the REST API's list endpoints (newest first, stopping early)."""

    source = "github"
    concurrent_queries = True
    # GitHub's guidance wherever its API is served (github.com, Enterprise Server, the
    # sandbox): a run's listings and their pages side by side, 8 at most.
    host_limits = vendor_limits("https://api.github.com")
    params_model = GitHubMetric
    env = SourceEnv(base_url="GITHUB_API_URL", default_base_url=API_URL, token="GITHUB_TOKEN")
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION}
    error_reason = staticmethod(error_reason)
    # Items per page: GitHub's maximum. The contract tests shrink it to cross pages.
    page_size: ClassVar[int] = PER_PAGE

    def plan(self, requests: Sequence[SeriesRequest[GitHubMetric]]) -> Plan[GitHubMetric]:
        """One listing per repository and endpoint, whatever the counts and labels.

        Except for issues, which GitHub filters by label itself: there each label set has a
        listing of its own (opened and closed alike), unless some count of the repository
        reads its issues unfiltered, whose listing then serves every label set.
        """
        unfiltered = {
            request.metric.repo
            for request in requests
            if COUNTS[request.metric.count].endpoint == "issues" and not request.metric.labels
        }

        def shape(request: SeriesRequest[GitHubMetric]) -> Hashable | None:
            found = listing_of(request)
            if found is None or found[1] != "issues" or found[0] in unfiltered:
                return found
            return (*found, request.metric.labels)

        return Plan.grouped(requests, shape, across_gaps=True)

    def fetch(self, request: SeriesRequest[GitHubMetric]) -> pd.DataFrame:
        return only_answer(self.fetch_shared(SharedQuery(listing_of(request), (request,))), request)

    def fetch_shared(self, query: SharedQuery[GitHubMetric]) -> dict[str, SeriesAnswer]:
        first = query.requests[0].metric
        endpoint = COUNTS[first.count].endpoint
        if first.labels and endpoint == "releases":
            raise SourceError(self.source, "`labels` do not apply to `count: releases`")
        start = query.window.start
        # One endpoint's counts share its parameters and stop rule.
        count = COUNTS[first.count]
        params: dict[str, Any] = {**count.params, "per_page": self.page_size}
        if endpoint == "issues":
            params["since"] = start.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            label_sets = {request.metric.labels for request in query.requests}
            if len(label_sets) == 1 and first.labels:
                params["labels"] = ",".join(first.labels)
        listing = Query(
            "GET",
            f"/repos/{first.repo}/{endpoint}",
            LinkHeaderPaginator(),
            params=params,
            stop=count.stop(start),
        )
        kind = {"pulls": "pull request", "issues": "issue", "releases": "release"}[endpoint]
        # An item updated while the list is read moves to its head and shows up again on a
        # later page: each item counts once.
        items = distinct(
            Record(self.source, item, kind, id_fields=("number", "id"))
            for item in self.records(listing)
        )
        answers: dict[str, SeriesAnswer] = {}
        for request in query.requests:
            try:
                answers[request.metric_key] = _counted(request, items)
            except SourceError as error:  # a bad item costs the series that counts it
                answers[request.metric_key] = error
        return answers


def listing_of(request: SeriesRequest[GitHubMetric]) -> tuple[str, str] | None:
    """The listing a count reads: (repository, endpoint); None for a request that fails
    alone (labels on releases)."""
    metric = request.metric
    endpoint = COUNTS[metric.count].endpoint
    if metric.labels and endpoint == "releases":
        return None
    return metric.repo, endpoint


def _counted(request: SeriesRequest[GitHubMetric], items: list[Record]) -> pd.DataFrame:
    metric = request.metric
    count = COUNTS[metric.count]
    # GitHub sends the field on every item (null until it happens): one missing means
    # the API changed, and counting nothing would be a silent zero.
    moments = (
        item.moment(count.field, required=count.required, present=True)
        for item in items
        if count.counts(item, metric.labels)
    )
    return daily_counts(request.window, (moment for moment in moments if moment))


def _has_labels(item: Record, labels: Iterable[str]) -> bool:
    """Whether the item carries every one of `labels` (GitHub matches names case-insensitively)."""
    wanted = {label.casefold() for label in labels}
    if not wanted:
        return True
    names = {
        str(label.get("name", "") if isinstance(label, Mapping) else label).casefold()
        for label in item.get("labels") or ()
    }
    return wanted <= names


def _stamp_of(field: str) -> Callable[[Any], datetime | None]:
    """An item's `field` as an instant; None when it has none or it cannot be read (the
    item itself is checked where it is counted)."""

    def stamp(item: Any) -> datetime | None:
        value = item.get(field) if isinstance(item, Mapping) else None
        if not value:
            return None
        try:
            moment = parse_timestamp(value)
        except (ValueError, TypeError):
            return None
        return moment if isinstance(moment, datetime) else None

    return stamp
