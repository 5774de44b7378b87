"""The GitHub connector: merged pull requests, opened and closed issues, releases per day.

Built by the Dagster observation assets (through `connectors/registry.py`) from
`GITHUB_API_URL` and `GITHUB_TOKEN`; works against api.github.com, GitHub Enterprise
(`https://host/api/v3`) and the sandbox alike.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import pandas as pd

from okr_metrics.connectors.base import Connector, SourceEnv, SourceError, SourceSettings
from okr_metrics.connectors.github.params import GitHubMetric
from okr_metrics.connectors.http import HttpClient, LinkHeaderPaginator
from okr_metrics.connectors.params import MetricParams

API_VERSION = "2022-11-28"
PER_PAGE = 100

# A release is listed by `created_at`, but counted by `published_at`, which may come
# later (a draft published days after it was drafted): keep reading this far back.
RELEASE_DRAFT_LOOKBACK = timedelta(days=90)


def parse_timestamp(text: str) -> datetime:
    """`2026-10-15T09:12:33Z` as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class GitHubConnector(Connector):
    """Counts per day, from the REST API's list endpoints (newest first, stopping early)."""

    source: ClassVar[str] = "github"
    params_model: ClassVar[type[MetricParams]] = GitHubMetric
    env: ClassVar[SourceEnv] = SourceEnv(
        base_url="GITHUB_API_URL", default_base_url="https://api.github.com", token="GITHUB_TOKEN"
    )
    # Items per page: GitHub's maximum. The contract tests shrink it to cross pages.
    page_size: ClassVar[int] = PER_PAGE

    def __init__(self, client: HttpClient) -> None:
        self.client = client

    @classmethod
    def from_settings(cls, settings: SourceSettings, **client_options: Any) -> GitHubConnector:
        """Build from settings; `client_options` go to `HttpClient` (e.g. `sleep`, `max_attempts`)."""
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION}
        return cls(cls.bearer_client(settings, headers, **client_options))

    def daily_series(
        self, metric: MetricParams, start: date, end: date, timezone: str = "UTC"
    ) -> pd.DataFrame:
        if not isinstance(metric, GitHubMetric):
            raise TypeError(f"GitHubConnector needs a GitHubMetric, not {type(metric).__name__}")
        if end < start:
            raise ValueError(f"window ends ({end}) before it starts ({start})")
        zone = ZoneInfo(timezone)
        window_start = datetime.combine(start, time.min, tzinfo=zone)
        counting: dict[str, Callable[[GitHubMetric, datetime], Iterable[str]]] = {
            "merged_pull_requests": self._merged_pull_requests,
            "opened_issues": self._opened_issues,
            "closed_issues": self._closed_issues,
            "releases": self._releases,
        }
        timestamps = counting[metric.count](metric, window_start)
        days = Counter(parse_timestamp(ts).astimezone(zone).date() for ts in timestamps)
        window = [start + timedelta(days=i) for i in range((end - start).days + 1)]
        return pd.DataFrame(
            {
                "date": pd.Series(window, dtype=object),
                "value": pd.Series([float(days.get(day, 0)) for day in window], dtype=float),
            }
        )

    # -- one method per count: the timestamps to bucket (outside the window is fine) -----

    def _merged_pull_requests(self, metric: GitHubMetric, window_start: datetime) -> Iterator[str]:
        # Closed PRs, most recently updated first: a PR merged in the window was updated
        # at or after its merge, so once a whole page predates the window, stop.
        pages = self._pages(
            f"{self._repo_path(metric)}/pulls",
            {"state": "closed", "sort": "updated", "direction": "desc", "per_page": self.page_size},
        )
        for page in pages:
            for pull in page:
                if pull.get("merged_at") and _has_labels(pull, metric.labels):
                    yield pull["merged_at"]
            if _all_before(page, "updated_at", window_start):
                break

    def _opened_issues(self, metric: GitHubMetric, window_start: datetime) -> Iterator[str]:
        for issue in self._issues(metric, window_start):
            yield issue["created_at"]

    def _closed_issues(self, metric: GitHubMetric, window_start: datetime) -> Iterator[str]:
        for issue in self._issues(metric, window_start):
            # Whatever the close reason (completed, not_planned, duplicate).
            if issue.get("closed_at"):
                yield issue["closed_at"]

    def _issues(self, metric: GitHubMetric, window_start: datetime) -> Iterator[Mapping[str, Any]]:
        # `since` keeps only issues updated in or after the window, which every issue
        # opened or closed in it was.
        params: dict[str, Any] = {
            "state": "all",
            "sort": "updated",
            "direction": "desc",
            "per_page": self.page_size,
            "since": _iso(window_start),
        }
        if metric.labels:
            params["labels"] = ",".join(metric.labels)
        for page in self._pages(f"{self._repo_path(metric)}/issues", params):
            for issue in page:
                # The issues endpoint lists pull requests too.
                if "pull_request" not in issue and _has_labels(issue, metric.labels):
                    yield issue

    def _releases(self, metric: GitHubMetric, window_start: datetime) -> Iterator[str]:
        if metric.labels:
            raise SourceError(self.source, "`labels` do not apply to `count: releases`")
        stop_before = window_start - RELEASE_DRAFT_LOOKBACK
        pages = self._pages(f"{self._repo_path(metric)}/releases", {"per_page": self.page_size})
        for page in pages:
            for release in page:
                if not release.get("draft") and release.get("published_at"):
                    yield release["published_at"]
            if _all_before(page, "created_at", stop_before):
                break

    # -- helpers --------------------------------------------------------------------------

    def _repo_path(self, metric: GitHubMetric) -> str:
        return f"/repos/{metric.repo}"

    def _pages(self, path: str, params: Mapping[str, Any]) -> Iterator[list]:
        return self.client.paginate("GET", path, params=params, paginator=LinkHeaderPaginator())


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _has_labels(item: Mapping[str, Any], labels: Iterable[str]) -> bool:
    """Whether the item carries every one of `labels` (GitHub matches names case-insensitively)."""
    wanted = {label.casefold() for label in labels}
    if not wanted:
        return True
    names = {str(label.get("name", "")).casefold() for label in item.get("labels") or ()}
    return wanted <= names


def _all_before(page: list, field: str, moment: datetime) -> bool:
    """Whether every item of a page has `field` before `moment` (an empty page: yes)."""
    return all(item.get(field) and parse_timestamp(item[field]) < moment for item in page)
