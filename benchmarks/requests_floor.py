"""The fewest requests a run could make, and the time floor latency sets, from what the sandbox served.

`benchmarks/pipeline_runs.py` (`make bench`) serves each API from a `RecordingSandbox`
of its own (`ApiSandboxes`: one host an API, as the vendors are), which notes one `Exchange` per answered request: the API, the query it belongs to (the
request without its paging: page number, cursor, offset, page size), where in that
query's pages it is, how many items it held and how many of them the run needed.
`minimum_requests` then counts, per API, the pages each distinct query needs at the
API's largest page size; `latency_floor` is the slowest API's pages x latency / the
requests it may have in flight. A query asked twice counts once, so a repeated request
shows as requests above the minimum.

A Jira search fetched in slices (its JQL ANDed with `created` bounds, after a first page
asked `ORDER BY created ASC`) is one query: its distinct issues, counted once each by
id, at 100 a page; the slices' partial last pages and the issues read twice where the
first page and the first slice meet are requests above the minimum.

Items needed: every item of an API that filters by the run's window itself (Jira,
Salesforce, HubSpot, GA4); for GitHub's newest-first lists (pull requests by update,
releases by creation) the items down to the oldest one the window needs, since the
list can stop there. GA4 reports that differ only in their metrics are one query (a
report holds up to 10 metrics). Other queries the run kept apart stay apart: the figure
says how well each query is paged, and that no query is asked twice.
"""

from __future__ import annotations

import json
import math
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from okr_metrics.connectors.jira.client import unsliced
from okr_metrics.connectors.sandbox import Sandbox, SandboxData, SandboxRequest, SandboxResponse
from okr_metrics.connectors.sandbox.github import repository_id
from okr_metrics.connectors.sandbox.google_analytics import MAX_ROWS
from okr_metrics.connectors.sandbox.hubspot import MAX_LIMIT
from okr_metrics.connectors.sandbox.jira import MAX_RESULTS_CAP
from okr_metrics.connectors.sandbox.registry import BUILTIN_APIS
from okr_metrics.connectors.sandbox.salesforce import BATCH_SIZE
from okr_metrics.connectors.sandbox.server import CONTROL_PREFIX

# The most items one page of each API holds (the sandbox serves the vendors' maximums).
PAGE_SIZES = {
    "github": 100,
    "jira": MAX_RESULTS_CAP,
    "google_analytics": MAX_ROWS,
    "salesforce": BATCH_SIZE,
    "hubspot": MAX_LIMIT,
}
# Metrics one GA4 report may ask for.
GA4_METRICS_PER_REPORT = 10

_API_PREFIXES = (
    ("/repos/", "github"),
    ("/repositories/", "github"),
    ("/rest/api/", "jira"),
    ("/v1beta/properties/", "google_analytics"),
    ("/services/data/", "salesforce"),
    ("/crm/", "hubspot"),
)
# The list endpoints GitHub serves newest first, and the field that puts an item in the window.
_NEWEST_FIRST = {"pulls": "merged_at", "releases": "published_at"}


@dataclass(frozen=True)
class Exchange:
    """One answered request: its API, its query (without paging), its page within the
    query (`page`: the page number or cursor, "" for the first; `order`: its place
    among the query's pages), the items it held, the items of them the run needed
    (counted from the page's first item, through the last one needed), for GA4, the
    metrics it asked for and, for Jira, the ids of the issues it held (a Jira query's
    items are its distinct issues)."""

    api: str
    query: str
    page: str
    order: int
    items: int
    needed: int
    metrics: frozenset[str] = frozenset()
    ids: frozenset[str] | None = None


def api_of(path: str) -> str | None:
    """The API a sandbox path belongs to (None: not one of the five)."""
    return next((api for prefix, api in _API_PREFIXES if path.startswith(prefix)), None)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _without(mapping: Mapping[str, Any] | None, *keys: str) -> dict[str, Any]:
    return {k: v for k, v in (mapping or {}).items() if k not in keys}


def exchange_of(
    request: SandboxRequest,
    response: SandboxResponse,
    window_start: str | None,
    continuations: dict[str, tuple[str, int]],
) -> Exchange | None:
    """The `Exchange` of one answered request (None for other paths and refusals).

    `window_start` (ISO 8601, UTC) is the first moment the run needs; `continuations`
    maps the follow-up URLs answers named (Salesforce's `nextRecordsUrl`) to the query
    and page number they continue, and is updated here.
    """
    api = api_of(request.path)
    if api is None or response.status >= 400:
        return None
    body = response.body
    if api == "github":
        query = _github_path(request.path) + "?"
        query += _canonical(_without(request.query, "page", "per_page"))
        page = request.query.get("page", "1")
        items = body if isinstance(body, list) else []
        endpoint = request.path.rsplit("/", 1)[-1]
        field = _NEWEST_FIRST.get(endpoint)
        needed = len(items)
        if field is not None and window_start is not None:
            # Through the last item of the page that falls in the window.
            needed = max(
                (i + 1 for i, item in enumerate(items) if (item.get(field) or "") >= window_start),
                default=0,
            )
        order = int(page) if page.isdigit() else 1
        return Exchange(api, query, page, order, len(items), needed)
    if api == "jira":
        asked = request.body if isinstance(request.body, Mapping) else request.query
        jql = str(asked.get("jql") or "")
        search = {**_without(asked, "nextPageToken", "maxResults"), "jql": unsliced(jql)}
        issues = (body.get("issues") or []) if isinstance(body, Mapping) else []
        ids = frozenset(str(issue.get("id")) for issue in issues if isinstance(issue, Mapping))
        page = f"{jql}#{asked.get('nextPageToken') or ''}"  # the slice and its page
        count = len(issues)
        return Exchange(api, request.path + _canonical(search), page, 0, count, count, ids=ids)
    if api == "google_analytics":
        asked = request.body if isinstance(request.body, Mapping) else {}
        query = request.path + _canonical(
            _without(asked, "limit", "offset", "metrics", "returnPropertyQuota")
        )
        metrics = frozenset(
            str(m.get("name") if isinstance(m, Mapping) else m) for m in asked.get("metrics") or ()
        )
        count = len(body.get("rows") or []) if isinstance(body, Mapping) else 0
        offset = str(asked.get("offset") or 0)
        return Exchange(api, query, offset, int(offset), count, count, metrics)
    if api == "salesforce":
        continued = continuations.get(request.path)
        if continued is not None:
            query, order = continued
            page = request.path
        elif request.path.endswith("/query") or request.path.endswith("/queryAll"):
            query, order, page = request.path + "?" + request.query.get("q", ""), 0, ""
        else:  # describe and the other single answers
            query, order, page = request.path, 0, ""
        records = body.get("records") if isinstance(body, Mapping) else None
        count = len(records or [])
        following = body.get("nextRecordsUrl") if isinstance(body, Mapping) else None
        if following:
            continuations[urlsplit(str(following)).path] = (query, order + 1)
        return Exchange(api, query, page, order, count, count)
    asked = request.body if isinstance(request.body, Mapping) else {}
    query = request.path + _canonical(_without(asked, "after", "limit"))
    count = len(body.get("results") or []) if isinstance(body, Mapping) else 0
    return Exchange(api, query, str(asked.get("after") or ""), 0, count, count)


def _github_path(path: str) -> str:
    """A repository's list path by its id: the `Link` header names the pages after the
    first as `/repositories/{id}/...`, the first is asked as `/repos/{owner}/{repo}/...`."""
    parts = path.strip("/").split("/")
    if parts[0] == "repos" and len(parts) >= 4:
        rest = "/".join(parts[3:])
        return f"/repositories/{repository_id(parts[1] + '/' + parts[2])}/{rest}"
    return path


def minimum_requests(
    exchanges: Iterable[Exchange], page_sizes: Mapping[str, int] = PAGE_SIZES
) -> dict[str, int]:
    """Per API, the pages its distinct queries need at its largest page size (at least
    one a query: an empty answer is still a request); a query whose pages name their
    items' ids (Jira) needs its distinct items."""
    pages: dict[tuple[str, str], dict[tuple[frozenset[str], str], Exchange]] = defaultdict(dict)
    for exchange in exchanges:
        # A page asked again (a retry, a repeated query) is needed once.
        pages[exchange.api, exchange.query].setdefault((exchange.metrics, exchange.page), exchange)
    minimum: dict[str, int] = defaultdict(int)
    for (api, _query), answered in pages.items():
        by_metrics: dict[frozenset[str], list[Exchange]] = defaultdict(list)
        for (metrics, _page), exchange in answered.items():
            by_metrics[metrics].append(exchange)
        needed = max(_needed(list_) for list_ in by_metrics.values())
        if all(exchange.ids is not None for exchange in answered.values()):
            # Jira: the distinct issues of all its slices
            needed = len(frozenset().union(*(exchange.ids or () for exchange in answered.values())))
        reports = 1
        if api == "google_analytics":
            names = set().union(*by_metrics)
            reports = max(1, math.ceil(len(names) / GA4_METRICS_PER_REPORT))
        minimum[api] += reports * max(1, math.ceil(needed / page_sizes[api]))
    return dict(minimum)


def _needed(pages: list[Exchange]) -> int:
    """Items a query needs: all the pages' items before its last page with a needed
    item, and that page's needed ones."""
    pages = sorted(pages, key=lambda exchange: exchange.order)
    last = max((i for i, page in enumerate(pages) if page.needed), default=None)
    if last is None:
        return 0
    return sum(page.items for page in pages[:last]) + pages[last].needed


def requests_made(exchanges: Iterable[Exchange]) -> dict[str, int]:
    """Per API, the requests answered."""
    made: dict[str, int] = defaultdict(int)
    for exchange in exchanges:
        made[exchange.api] += 1
    return dict(made)


def latency_floor(
    minimum: Mapping[str, int], latency_seconds: float, in_flight: Mapping[str, int] | int
) -> float:
    """The least time latency adds to a run: the slowest API's pages x latency / the
    requests it may have in flight at once."""
    return max(
        (
            pages
            * latency_seconds
            / (in_flight if isinstance(in_flight, int) else in_flight.get(api, 1))
            for api, pages in minimum.items()
        ),
        default=0.0,
    )


class RecordingSandbox(Sandbox):
    """The sandbox, noting an `Exchange` for every answered API request.

    Set `window_start` (ISO 8601, UTC: `2026-07-01T00:00:00Z`) before a run: the first
    moment it needs.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.exchanges: list[Exchange] = []
        self.window_start: str | None = None
        self._continuations: dict[str, tuple[str, int]] = {}
        self._noting = threading.Lock()

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        response = super().handle(request)
        if not request.path.startswith(CONTROL_PREFIX):
            with self._noting:
                exchange = exchange_of(request, response, self.window_start, self._continuations)
                if exchange is not None:
                    self.exchanges.append(exchange)
        return response

    def take_exchanges(self) -> list[Exchange]:
        """The exchanges noted since the last call (and forget them)."""
        with self._noting:
            taken, self.exchanges = self.exchanges, []
            self._continuations.clear()
        return taken


class ApiSandboxes:
    """One `RecordingSandbox` an API, each on its own port and all on one `SandboxData`:
    a client limits requests in flight per host, and each vendor is a host of its own.

    `urls` maps each API (a source name) to its sandbox's base URL; `latency_seconds`
    and `window_start` set every sandbox's; `take_exchanges` gathers all of theirs.
    """

    def __init__(self, data: SandboxData, apis: Iterable[str] = BUILTIN_APIS) -> None:
        self.data = data
        self.sandboxes = {
            api: RecordingSandbox(data=data, sources=[f"{registrar_module(api)}:register"])
            for api in apis
        }

    @property
    def urls(self) -> dict[str, str]:
        return {api: sandbox.url for api, sandbox in self.sandboxes.items()}

    @property
    def latency_seconds(self) -> float:
        return max(sandbox.latency_seconds for sandbox in self.sandboxes.values())

    @latency_seconds.setter
    def latency_seconds(self, seconds: float) -> None:
        for sandbox in self.sandboxes.values():
            sandbox.latency_seconds = seconds

    @property
    def window_start(self) -> str | None:
        return next(iter(self.sandboxes.values())).window_start

    @window_start.setter
    def window_start(self, moment: str | None) -> None:
        for sandbox in self.sandboxes.values():
            sandbox.window_start = moment

    def take_exchanges(self) -> list[Exchange]:
        return [e for sandbox in self.sandboxes.values() for e in sandbox.take_exchanges()]

    def __enter__(self) -> ApiSandboxes:
        for sandbox in self.sandboxes.values():
            sandbox.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sandbox in self.sandboxes.values():
            sandbox.stop()


def registrar_module(api: str) -> str:
    return f"okr_metrics.connectors.sandbox.{api}"
