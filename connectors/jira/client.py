"""The Jira Cloud connector: issues created, resolved, and resolved within N hours, per day.

Built by the Dagster observation assets (through `connectors/registry.py`) from
`JIRA_BASE_URL`, `JIRA_EMAIL` and `JIRA_API_TOKEN` (basic auth); works against a Jira
Cloud site and the sandbox alike.

One metric is one JQL search, `POST /rest/api/3/search/jql`, paged by `nextPageToken`:
the user's JQL in parentheses, then the date window (`AND resolved >= "..." AND
resolved < "..."`), asking only for `created` and `resolutiondate`. The connector keeps
the issues it fetched, so the two series of a `resolved_within` KR (issues resolved
within N hours, and all issues resolved) come from one search per run.
"""

from __future__ import annotations

import base64
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import pandas as pd
import requests

from okr_metrics.connectors.base import Connector, SourceEnv, SourceError, SourceSettings
from okr_metrics.connectors.http import HttpClient, NextTokenPaginator, PageRequest
from okr_metrics.connectors.jira.params import JiraMetric
from okr_metrics.connectors.params import MetricParams

SEARCH_PATH = "/rest/api/3/search/jql"
# Jira returns at most 100 issues a page once fields are asked for (5000 for ids only).
PAGE_SIZE = 100
FIELDS = ["created", "resolutiondate"]

# Jira reads the dates of a JQL query in the time zone of the user's profile, which the
# connector does not know. Time zones are at most 26 hours apart, so the query reaches two
# days beyond the window on each side, and the exact days are kept client-side.
JQL_MARGIN = timedelta(days=2)

_ORDER_BY = re.compile(r"\border\s+by\b", re.IGNORECASE)


def parse_timestamp(text: str) -> datetime:
    """Jira's `2026-10-15T09:12:33.123+0530` (no colon in the offset) as an aware datetime."""
    for pattern in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(text, pattern)
        except ValueError:
            continue
    raise ValueError(f"not a Jira timestamp: {text!r}")


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


@dataclass(frozen=True)
class _Issue:
    key: str
    created: datetime
    resolved: datetime | None


class _JiraPaginator(NextTokenPaginator):
    """`nextPageToken` in the JSON body; stops on a missing token, `isLast` or an empty page."""

    def __init__(self) -> None:
        super().__init__(where="json")

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


class JiraConnector(Connector):
    """Counts of a JQL query's issues per day, by `created` or `resolutiondate`."""

    source: ClassVar[str] = "jira"
    params_model: ClassVar[type[MetricParams]] = JiraMetric
    env: ClassVar[SourceEnv] = SourceEnv(
        base_url="JIRA_BASE_URL", token="JIRA_API_TOKEN", user="JIRA_EMAIL"
    )
    page_size: ClassVar[int] = PAGE_SIZE  # `maxResults` of each page

    def __init__(self, client: HttpClient) -> None:
        self.client = client
        # (jql, date field, start, end) -> the issues of that search, fetched once per run.
        self._searches: dict[tuple[str, str, date, date], list[_Issue]] = {}

    @classmethod
    def from_settings(cls, settings: SourceSettings, **client_options: Any) -> JiraConnector:
        """Build from settings; `client_options` go to `HttpClient` (e.g. `sleep`, `max_attempts`)."""
        headers = {"Accept": "application/json"}
        if settings.user and settings.token:
            pair = f"{settings.user}:{settings.token}".encode()
            headers["Authorization"] = f"Basic {base64.b64encode(pair).decode()}"
        client = HttpClient(
            cls.source,
            settings.base_url or "",
            headers=headers,
            secrets=[settings.token],
            token_env=f"{cls.env.user} and {cls.env.token}",
            **client_options,
        )
        return cls(client)

    def daily_series(
        self, metric: MetricParams, start: date, end: date, timezone: str = "UTC"
    ) -> pd.DataFrame:
        if not isinstance(metric, JiraMetric):
            raise TypeError(f"JiraConnector needs a JiraMetric, not {type(metric).__name__}")
        if end < start:
            raise ValueError(f"window ends ({end}) before it starts ({start})")
        zone = ZoneInfo(timezone)
        window = [start + timedelta(days=i) for i in range((end - start).days + 1)]

        if metric.count == "created":
            issues = self._search(metric.jql, "created", start, end)
            days = _count_days((issue.created for issue in issues), zone)
            return _frame(window, [float(days.get(day, 0)) for day in window])

        # (created, resolved) of the issues resolved in the searched range
        resolutions: list[tuple[datetime, datetime]] = [
            (issue.created, issue.resolved)
            for issue in self._search(metric.jql, "resolved", start, end)
            if issue.resolved is not None
        ]
        resolved = _count_days((done for _, done in resolutions), zone)
        if metric.count == "resolved":
            return _frame(window, [float(resolved.get(day, 0)) for day in window])

        limit = timedelta(hours=metric.hours or 0)
        within = _count_days((done for opened, done in resolutions if done - opened <= limit), zone)
        if metric.count == "resolved_within":
            return _frame(window, [float(within.get(day, 0)) for day in window])
        # `measure: resolved_within` asked for whole: the daily share, on days with resolutions.
        shared = [day for day in window if resolved.get(day)]
        return _frame(shared, [within.get(day, 0) / resolved[day] for day in shared])

    # -- the search -----------------------------------------------------------------------

    def _search(self, jql: str, field: str, start: date, end: date) -> list[_Issue]:
        key = (jql, field, start, end)
        if key not in self._searches:
            body = {
                "jql": search_jql(jql, field, start, end),
                "fields": FIELDS,
                "maxResults": self.page_size,
            }
            pages = self.client.paginate(
                "POST", SEARCH_PATH, json=body, paginator=_JiraPaginator(), records=_issues_of
            )
            self._searches[key] = [self._issue(item) for page in pages for item in page]
        return self._searches[key]

    def _issue(self, item: Any) -> _Issue:
        item = item if isinstance(item, Mapping) else {}
        key = str(item.get("key") or item.get("id") or "?")
        fields = item.get("fields")
        if not isinstance(fields, Mapping) or not fields.get("created"):
            raise SourceError(self.source, f"issue {key} came without its `created` field")
        try:
            created = parse_timestamp(str(fields["created"]))
            resolved_text = fields.get("resolutiondate")
            resolved = parse_timestamp(str(resolved_text)) if resolved_text else None
        except ValueError as error:
            raise SourceError(self.source, f"issue {key}: {error}") from None
        return _Issue(key, created, resolved)


def _count_days(moments: Iterable[datetime], zone: ZoneInfo) -> Counter[date]:
    return Counter(moment.astimezone(zone).date() for moment in moments)


def _frame(days: list[date], values: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {"date": pd.Series(days, dtype=object), "value": pd.Series(values, dtype=float)}
    )
