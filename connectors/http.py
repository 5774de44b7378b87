"""The HTTP half of the connector kit: the client every API source shares, its
paginators, its auth, and `HttpConnector`, the base of a source behind an HTTP API.

A connector declares, on an `HttpConnector` subclass, its `auth` (`Bearer`, `Basic`,
`HeaderAuth`), extra `headers`, and its vendor's error shape (`error_reason(response)`,
returning an `ApiError`: the API's own words, a reason to fail at once, or a rate limit
the status does not tell); each call is a `Query` (endpoint, request, paginator, where the
records are). The client owns what all sources need alike: timeouts, retries with
backoff, rate limits (429, `Retry-After`, `x-ratelimit-reset`), one-line `SourceError`s,
and redaction of secrets in every message it emits.

Paginators (the shapes of dlt's rest_client paginators); each takes the names of its
API's fields:

| class | where the next page is |
| --- | --- |
| `LinkHeaderPaginator` | `Link: <url>; rel="next"`, followed as given |
| `NextTokenPaginator` | a token in the body, sent back as a parameter (query or JSON body) |
| `OffsetPaginator` | `offset` + `limit` in the request, a total in the body |
| `NextUrlPaginator` | a URL (a path on the same host) in the body |
"""

from __future__ import annotations

import base64
import email.utils
import json as jsonlib
import logging
import math
import os
import random
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal, TypeVar
from urllib.parse import parse_qsl, urljoin, urlsplit, urlunsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.auth import _basic_auth_str
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers, get_netrc_auth, requote_uri, urldefragauth
from urllib3 import exceptions as urllib3_errors

from okr_metrics.connectors.base import Connector, SourceEnv, SourceSettings
from okr_metrics.connectors.errors import SourceError
from okr_metrics.connectors.kit import lookup

logger = logging.getLogger("okr_metrics.http")

USER_AGENT = "okr-metrics/0.1 (+https://github.com/okr-metrics)"
REDACTED = "***"
# The longest one attempt may take, body included: a server that drips its answer a
# byte at a time never trips the socket's read timeout.
REQUEST_DEADLINE_SECONDS = 120.0
# Bytes read from the socket at most at once while a body arrives.
_READ_SIZE = 64 * 1024

Records = Callable[[Any], list]


class _RedactSecrets(logging.Filter):
    """Replaces the secrets of live clients in log records of the transport under `requests`.

    urllib3 logs every request line (path and query) at DEBUG: a token in a URL would
    otherwise reach the logs.
    """

    def __init__(self) -> None:
        super().__init__()
        self.clients: weakref.WeakSet[HttpClient] = weakref.WeakSet()
        # Clients are added on one thread while another's request is logged.
        self.lock = threading.Lock()

    def add(self, client: HttpClient) -> None:
        with self.lock:
            self.clients.add(client)

    def filter(self, record: logging.LogRecord) -> bool:
        with self.lock:
            clients = list(self.clients)
        secrets = {secret for client in clients for secret in client._secrets}
        if secrets:
            message = record.getMessage()
            if any(secret in message for secret in secrets):
                for secret in sorted(secrets, key=len, reverse=True):
                    message = message.replace(secret, REDACTED)
                record.msg, record.args = message, None
        return True


_TRANSPORT_REDACTION = _RedactSecrets()
for _name in ("urllib3.connectionpool", "urllib3.connection", "urllib3.util.retry"):
    logging.getLogger(_name).addFilter(_TRANSPORT_REDACTION)


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {raw!r}")
    return value


@dataclass(frozen=True)
class PageRequest:
    """One page's request: where to send it, its query parameters and its JSON body."""

    method: str
    url: str
    params: Mapping[str, Any] | None = None
    json: Any = None


# --- paginators -------------------------------------------------------------------------


class Paginator:
    """Decides the request of the next page from the response of the current one.

    A paginator holds the state of one pagination (`HttpClient.paginate` calls `reset`
    first). The client, not the paginator, refuses a page already read (a cursor or a
    link that loops back), which would otherwise loop forever.
    """

    def __init__(self) -> None:
        self.source = "http"

    def reset(self, source: str) -> None:
        self.source = source

    def first_request(self, request: PageRequest) -> PageRequest:
        """The first page's request (a paginator may add its parameters to it)."""
        return request

    def next_request(
        self, response: requests.Response, data: Any, request: PageRequest
    ) -> PageRequest | None:
        """The next page's request, or None after the last page."""
        return self._next(response, data, request)

    def page_requests(
        self, response: requests.Response, data: Any, request: PageRequest
    ) -> list[PageRequest] | None:
        """Every later page's request at once, when the first page names them all (so
        they can be fetched side by side); None: one page after another."""
        return None

    def _next(
        self, response: requests.Response, data: Any, request: PageRequest
    ) -> PageRequest | None:
        raise NotImplementedError


class SinglePagePaginator(Paginator):
    """An endpoint that answers in one page."""

    def _next(
        self, response: requests.Response, data: Any, request: PageRequest
    ) -> PageRequest | None:
        return None


class LinkHeaderPaginator(Paginator):
    """Follow `Link: <...>; rel="next"` exactly as given.

    The API may rewrite the next URL and carries every query parameter in it, so the URL
    is never rebuilt and no parameter is added. When the first page's header also names
    the last page (`rel="last"`, GitHub's page numbers), `page_requests` gives the pages
    between by number: the next and last URLs with the page number of each in between.
    """

    def __init__(self, rel: str = "next") -> None:
        super().__init__()
        self.rel = rel

    def _next(
        self, response: requests.Response, data: Any, request: PageRequest
    ) -> PageRequest | None:
        link = response.links.get(self.rel)
        if not link or not link.get("url"):
            return None
        return PageRequest(request.method, link["url"], params=None, json=request.json)

    def page_requests(
        self, response: requests.Response, data: Any, request: PageRequest
    ) -> list[PageRequest] | None:
        following = (response.links.get(self.rel) or {}).get("url")
        last = (response.links.get("last") or {}).get("url")
        if not following or not last:
            return None
        urls = numbered_pages(following, last)
        if urls is None:
            return None
        return [PageRequest(request.method, url, params=None, json=request.json) for url in urls]


# More pages than this between the next and the last: read them one after another.
MAX_NUMBERED_PAGES = 10_000


def numbered_pages(following: str, last: str) -> list[str] | None:
    """The URLs from `following` to `last` when they differ only in one number in the
    query (the page): `following` and `last` as given, those between with that number
    replaced; None when the two are not shaped so."""
    one, other = urlsplit(following), urlsplit(last)
    if (one.scheme, one.netloc, one.path) != (other.scheme, other.netloc, other.path):
        return None
    parts, last_parts = one.query.split("&"), other.query.split("&")
    if len(parts) != len(last_parts):
        return None
    differing = [i for i, (a, b) in enumerate(zip(parts, last_parts, strict=True)) if a != b]
    if len(differing) != 1:
        return None
    (index,) = differing
    name, _, first_number = parts[index].partition("=")
    last_name, _, last_number = last_parts[index].partition("=")
    if name != last_name or not (first_number.isdigit() and last_number.isdigit()):
        return None
    start, stop = int(first_number), int(last_number)
    if stop <= start or stop - start > MAX_NUMBERED_PAGES:
        return None

    def page(number: int) -> str:
        query = [*parts[:index], f"{name}={number}", *parts[index + 1 :]]
        return urlunsplit((one.scheme, one.netloc, one.path, "&".join(query), one.fragment))

    return [following, *(page(number) for number in range(start + 1, stop)), last]


def _with_value(
    request: PageRequest, where: Literal["params", "json"], name: str, value: Any
) -> PageRequest:
    if where == "params":
        return replace(request, params={**(request.params or {}), name: value})
    return replace(request, json={**(request.json or {}), name: value})


class NextTokenPaginator(Paginator):
    """The token at `token_path` of the body, sent back as `param` (in the query string or
    the JSON body); the last page has no token, or says so at `last_path`."""

    def __init__(
        self,
        token_path: str,
        param: str,
        where: Literal["params", "json"] = "params",
        last_path: str | None = None,
    ) -> None:
        super().__init__()
        self.token_path, self.param, self.where, self.last_path = (
            token_path,
            param,
            where,
            last_path,
        )

    def _next(
        self, response: requests.Response, data: Any, request: PageRequest
    ) -> PageRequest | None:
        token = lookup(data, self.token_path)
        if token in (None, "") or (self.last_path and lookup(data, self.last_path) is True):
            return None
        return _with_value(request, self.where, self.param, token)


class NextUrlPaginator(Paginator):
    """The URL at `url_path` of the body (a path on the same host), until `done_path` is true."""

    def __init__(self, url_path: str, done_path: str | None = None) -> None:
        super().__init__()
        self.url_path, self.done_path = url_path, done_path

    def _next(
        self, response: requests.Response, data: Any, request: PageRequest
    ) -> PageRequest | None:
        url = lookup(data, self.url_path)
        if not url or (self.done_path and lookup(data, self.done_path) is True):
            return None
        return PageRequest(request.method, url, params=None, json=request.json)


class OffsetPaginator(Paginator):
    """`offset` and `limit` in the request; stops at the body's total (`total_path`) or a
    short page of the records at `records_path`."""

    def __init__(
        self,
        limit: int,
        records_path: str,
        total_path: str | None = None,
        offset_param: str = "offset",
        limit_param: str = "limit",
        where: Literal["params", "json"] = "json",
    ) -> None:
        super().__init__()
        self.limit, self.offset_param, self.limit_param = limit, offset_param, limit_param
        self.total_path, self.records_path, self.where = total_path, records_path, where
        self.offset = 0

    def reset(self, source: str) -> None:
        super().reset(source)
        self.offset = 0

    def first_request(self, request: PageRequest) -> PageRequest:
        request = _with_value(request, self.where, self.offset_param, self.offset)
        return _with_value(request, self.where, self.limit_param, self.limit)

    def _next(
        self, response: requests.Response, data: Any, request: PageRequest
    ) -> PageRequest | None:
        records = lookup(data, self.records_path) or []
        self.offset += self.limit
        total = lookup(data, self.total_path) if self.total_path else None
        if len(records) < self.limit or (total is not None and self.offset >= int(total)):
            return None
        return _with_value(request, self.where, self.offset_param, self.offset)


# The pages of a newest-first list whose stamps set the pace of its estimate.
PACE_PAGES = 4
# The estimate of the pages still needed is cut by this share: a page asked past the end
# is a request spent for nothing, one asked late only a round trip. (Over the sandbox's
# pull requests, windows of 1 to 91 days: 0.4 asks one page too many in 1 listing of 100,
# 0.1 in 1 of 4; 0.4 takes 14% more round trips than knowing the end would at 4 in
# flight (38% at 8), and a third of those of one page after another (a quarter at 8).)
ESTIMATE_MARGIN = 0.4


@dataclass(frozen=True)
class NewestFirst:
    """The end of a list sorted newest first by a stamp (GitHub's pull requests by
    `updated_at`, its releases by `created_at`): the reading stops after the page whose
    last stamped item is older than `since`, since every later item is older still (an
    empty page stops it too). `stamp(item)` is an item's stamp, None when it has none or
    it cannot be read: such items are passed over (a page of them only never stops it).

    A `Query.stop` like any other, which also tells the client how far the pages read so
    far reached (`pages_ahead`): a list whose first page names its last one then has the
    pages it is expected to need fetched side by side (`HttpClient.paginate`).
    """

    stamp: Callable[[Any], datetime | None]
    since: datetime

    def __call__(self, page: list) -> bool:
        oldest = self._first_stamp(reversed(page))
        return oldest < self.since if oldest is not None else not page

    def span(self, page: list) -> tuple[datetime, datetime] | None:
        """The stamps of the first and the last stamped item of `page`: its newest and
        its oldest (None: no item has one)."""
        newest = self._first_stamp(page)
        if newest is None:
            return None
        return newest, self._first_stamp(reversed(page)) or newest

    def _first_stamp(self, items: Iterable[Any]) -> datetime | None:
        return next((m for m in map(self.stamp, items) if m is not None), None)

    def pages_ahead(self, spans: Sequence[tuple[datetime, datetime] | None]) -> int:
        """How many more pages the reading is expected to need after the pages whose
        `span`s are `spans` (in order, none of them the last): at least the next one;
        more at the slower of two paces (time per page: all the pages' so far and the last
        `PACE_PAGES`'), less `ESTIMATE_MARGIN`."""
        newest = spans[0][0] if spans[0] else None
        oldest = [span[1] if span else None for span in spans]
        reached = oldest[-1]
        if newest is None or reached is None or reached < self.since:
            return 1
        per_page = (newest - reached) / len(spans)
        if len(spans) > PACE_PAGES:
            began = oldest[-PACE_PAGES - 1]
            if began is not None:
                per_page = max(per_page, (began - reached) / PACE_PAGES)
        if per_page <= timedelta(0):  # one moment on every page: no pace to go by
            return 1
        to_go = (reached - self.since) / per_page
        return 1 + math.floor(to_go * (1 - ESTIMATE_MARGIN))


@dataclass(frozen=True)
class Query:
    """One paged call: the endpoint and its request, how its pages chain (a fresh
    `paginator` per query: it holds the paging state), where a page's records are
    (`records`, default the body itself) and, for lists sorted newest first, when to stop
    reading (`stop(page)`, asked after each page; a `NewestFirst` also lets the pages
    it expects to need be fetched side by side)."""

    method: str
    path: str
    paginator: Paginator = field(default_factory=SinglePagePaginator)
    params: Mapping[str, Any] | None = None
    json: Any = None
    records: Records | None = None
    stop: Callable[[list], bool] | None = None


# --- how much each API host takes at once ---------------------------------------------------


@dataclass(frozen=True)
class HostLimits:
    """What one API host is sent from this process: at most `max_in_flight` requests at
    once, and, where its vendor publishes a budget, at most `per_second` requests a second
    (spaced evenly: no bursts) and `per_hour` in any hour."""

    max_in_flight: int = 4
    per_second: float | None = None
    per_hour: int | None = None

    def __post_init__(self) -> None:
        if self.max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {self.max_in_flight}")


DEFAULT_LIMITS = HostLimits(max_in_flight=4)
# The vendors' published limits, by host name (a leading dot: any host under that domain).
VENDOR_LIMITS: tuple[tuple[str, HostLimits], ...] = (
    # Far below the secondary limit's 100 concurrent requests. The hourly budget differs
    # by token (5,000 for a user, up to 15,000 for an app or Enterprise Cloud), so it is
    # read from GitHub's X-RateLimit headers, not assumed here.
    ("api.github.com", HostLimits(max_in_flight=8)),
    # Standard properties take 10 concurrent requests (Analytics 360: 50).
    ("analyticsdata.googleapis.com", HostLimits(max_in_flight=10)),
    # CRM search: 4 requests a second per token.
    ("api.hubapi.com", HostLimits(max_in_flight=4, per_second=4)),
    # Burst limits per tenant and endpoint, numbers unpublished: few at once.
    (".atlassian.net", HostLimits(max_in_flight=4)),
    # No limit on requests shorter than 20 s; 25 long-running ones (5 in a developer org).
    (".salesforce.com", HostLimits(max_in_flight=5)),
)


def vendor_limits(base_url: str) -> HostLimits:
    """The limits of the host of `base_url`: its vendor's, or `DEFAULT_LIMITS`."""
    host = (urlsplit(base_url).hostname or "").lower()
    for name, limits in VENDOR_LIMITS:
        if host == name or (name.startswith(".") and host.endswith(name)):
            return limits
    return DEFAULT_LIMITS


class HostLimiter:
    """Keeps one API host within its `HostLimits`, for every client of that host in the
    process (`host_limiter`), from any thread.

    A request takes a slot (`slot()`): it waits while the host asked a request of this
    process to wait (a rate limit, `holding()`), then for a free slot while
    `max_in_flight` are out, then for its turn in the host's budget. Each host's waits are
    its own: another host never waits for them.
    """

    def __init__(self, host: str, limits: HostLimits) -> None:
        self.host, self.limits = host, limits
        self._slots = threading.BoundedSemaphore(limits.max_in_flight)
        self._lock = threading.Condition()
        self._next_start = 0.0  # monotonic time of the next start the per-second budget allows
        self._hour: deque[float] = deque()  # starts in the last hour, for the per-hour budget
        self._holding = 0  # requests sleeping out a rate limit of this host
        self.in_flight = 0
        self.most_in_flight = 0  # the most requests out at once so far

    @contextmanager
    def holding(self) -> Iterator[None]:
        """While a request sleeps out the host's rate limit, no other request to the host
        starts: they would only be refused too."""
        with self._lock:
            self._holding += 1
        try:
            yield
        finally:
            with self._lock:
                self._holding -= 1
                self._lock.notify_all()

    @contextmanager
    def slot(self, sleep: Callable[[float], None] = time.sleep) -> Iterator[None]:
        """Hold one of the host's slots while one request is out; `sleep` waits for the
        budget (the caller's: a test's never waits)."""
        with self._lock:
            while self._holding:
                self._lock.wait()
        self._slots.acquire()
        try:
            wait = self._reserve()
            if wait > 1:
                logger.warning("%s: waiting %.0f s for the host's request budget", self.host, wait)
            if wait > 0:
                sleep(wait)
            with self._lock:
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                yield
            finally:
                with self._lock:
                    self.in_flight -= 1
        finally:
            self._slots.release()

    def _reserve(self) -> float:
        """Take the next start the host's budget allows; seconds until it."""
        now = time.monotonic()
        with self._lock:
            start = now
            if self.limits.per_second:
                start = max(start, self._next_start)
                self._next_start = start + 1.0 / self.limits.per_second
            if self.limits.per_hour:
                while self._hour and self._hour[0] <= now - 3600.0:
                    self._hour.popleft()
                if len(self._hour) >= self.limits.per_hour:
                    start = max(start, self._hour[-self.limits.per_hour] + 3600.0)
                self._hour.append(start)
            return start - now


_LIMITERS: dict[tuple[str, HostLimits], HostLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def host_limiter(base_url: str, limits: HostLimits | None = None) -> HostLimiter:
    """The process's limiter of the host of `base_url` (scheme, host and port) under
    `limits` (default the vendor's): clients of one host with the same limits share it.
    A source that names its own limits keeps them on a host another source also uses
    (one sandbox serving every API)."""
    split = urlsplit(base_url)
    # Never the user and password a URL may carry: the name is logged.
    port = f":{split.port}" if split.port else ""
    host = f"{split.scheme}://{split.hostname or ''}{port}".lower()
    chosen = limits or vendor_limits(base_url)
    with _LIMITERS_LOCK:
        found = _LIMITERS.get((host, chosen))
        if found is None:
            found = _LIMITERS[host, chosen] = HostLimiter(host, chosen)
        return found


# --- the vendor's error shape ------------------------------------------------------------


@dataclass(frozen=True)
class ApiError:
    """What a source reads in an error response (its `error_reason(response)`).

    `said` is the API's own short message, quoted in the usual errors ("the API says:
    ..."); `reason` a one-line reason to fail with at once (never retried);
    `rate_limited` a rate limit the status does not tell (a 403 that says so): the
    client waits (`Retry-After`, `x-ratelimit-reset`) and retries; `wait` the seconds
    the vendor's documentation asks for when the response names none (GitHub's
    secondary limit: a minute), instead of the usual backoff.
    """

    said: str = ""
    reason: str | None = None
    rate_limited: bool = False
    wait: float | None = None


ErrorReason = Callable[[requests.Response], ApiError | None]


def json_body(response: requests.Response) -> Any:
    """The decoded JSON body, or None when there is none."""
    try:
        return response.json()
    except ValueError:
        return None


def said_in(response: requests.Response, *paths: str) -> str:
    """The first non-empty text at one of `paths` (dotted; `0.message` in a list) of the
    JSON body; a list of texts is joined with `; `."""
    body = json_body(response)
    for path in paths:
        found = lookup(body, path)
        if isinstance(found, list):
            found = "; ".join(str(item) for item in found)
        if found not in (None, "") and not isinstance(found, Mapping | bool):
            return str(found)
    return ""


def message_error(response: requests.Response) -> ApiError:
    """The error shape of an API without one of its own: the body's `message`."""
    return ApiError(said_in(response, "message"))


# --- the client -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Retry:
    """An attempt failed in a way worth retrying; `wait` is None for plain backoff."""

    problem: str
    wait: float | None = None
    said: str = ""  # the API's own words, quoted when the client gives up
    rate_limited: bool = False  # the host asked to slow down: its other requests wait too


# Redirects followed at most, as requests follows them.
MAX_REDIRECTS = 30


@dataclass
class _Route:
    """How requests reaches one host (scheme and netloc): the connection pool its adapter
    picks (proxy, TLS settings and CA bundle included), whether the request line carries
    the whole URL (plain HTTP through a proxy) and the `~/.netrc` credentials of the host."""

    pool: Any
    whole_url: bool
    netrc: str | None


class _Transport:
    """Sends requests as a `requests.Session` sends them, for a fraction of its cost a page.

    For every request, a session merges its settings, reads the environment again
    (`~/.netrc`, the proxy and CA bundle variables: file lookups and dozens of variables),
    looks its connection pool up, and runs its cookie jar over the response: more than
    half of the client's own time on a page of a long listing. Here what depends on the
    host alone is worked out by requests' own code at the host's first request (the
    session's environment settings, its adapter's pool) and kept for the transport's
    life; each request is then one `urlopen` of that pool, made exactly as the adapter
    makes it. Redirects are followed as requests follows them: up to `MAX_REDIRECTS`,
    the method turned to GET where requests turns it, the credentials dropped on the way
    to another host. Cookies are not kept: none of the APIs asks for them.

    urllib3's errors are raised as requests raises them (`requests.Timeout`,
    `requests.ConnectionError`, ...), so callers handle one family of errors.
    """

    def __init__(self, session: requests.Session, timeout: float | tuple[float, float]) -> None:
        self.session = session
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        self._timeout = urllib3.Timeout(connect=connect, read=read)
        self._routes: dict[tuple[str, str], _Route] = {}
        self._lock = threading.Lock()

    def send(
        self, method: str, url: str, params: Mapping[str, Any] | None, json: Any
    ) -> requests.Response:
        prepared = requests.PreparedRequest()
        prepared.prepare_method(method)
        prepared.prepare_url(url, params)
        prepared.prepare_headers(self.session.headers)
        prepared.prepare_body(None, None, json)
        for _ in range(MAX_REDIRECTS + 1):  # the request, then each redirect it gets
            response = self._send_once(prepared)
            location = self.session.get_redirect_target(response)
            if not location:
                return response
            response.raw.drain_conn()
            response.raw.release_conn()
            prepared = self._redirected(prepared, response, location)
        raise requests.TooManyRedirects(f"Exceeded {MAX_REDIRECTS} redirects.")

    def _send_once(self, prepared: requests.PreparedRequest) -> requests.Response:
        url = prepared.url or ""
        route = self._route(url)
        headers = prepared.headers
        if route.netrc and "Authorization" not in headers:
            headers = CaseInsensitiveDict(headers)
            headers["Authorization"] = route.netrc
        try:
            raw = route.pool.urlopen(
                method=prepared.method,
                url=urldefragauth(url) if route.whole_url else prepared.path_url,
                body=prepared.body,
                headers=headers,
                redirect=False,
                assert_same_host=False,
                preload_content=False,
                decode_content=False,
                retries=False,
                timeout=self._timeout,
                chunked=False,
            )
        except urllib3_errors.NewConnectionError as error:
            raise requests.ConnectionError(error) from None
        except (urllib3_errors.ConnectTimeoutError, urllib3_errors.ReadTimeoutError) as error:
            raise requests.Timeout(error) from None
        except urllib3_errors.ProxyError as error:
            raise requests.exceptions.ProxyError(error) from None
        except urllib3_errors.SSLError as error:
            raise requests.exceptions.SSLError(error) from None
        except (
            urllib3_errors.ProtocolError,
            urllib3_errors.ClosedPoolError,
            urllib3_errors.MaxRetryError,
            OSError,
        ) as error:
            raise requests.ConnectionError(error) from None
        except urllib3_errors.LocationValueError as error:
            raise requests.exceptions.InvalidURL(error) from None
        response = requests.Response()
        response.status_code = raw.status
        response.headers = CaseInsensitiveDict(raw.headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = raw
        response.reason = raw.reason
        response.url = url
        response.request = prepared
        return response

    def _route(self, url: str) -> _Route:
        parts = urlsplit(url)
        key = (parts.scheme.lower(), parts.netloc.lower())
        with self._lock:
            route = self._routes.get(key)
            if route is None or route.pool.pool is None:  # never used, or closed by its manager
                route = self._routes[key] = self._new_route(url)
            return route

    def _new_route(self, url: str) -> _Route:
        session = self.session
        settings = session.merge_environment_settings(url, {}, True, None, None)
        proxies, verify, cert = settings["proxies"], settings["verify"], settings["cert"]
        probe = requests.PreparedRequest()
        probe.prepare_url(url, None)
        adapter = session.get_adapter(url)
        if not isinstance(adapter, HTTPAdapter):  # the only adapter requests itself mounts
            raise requests.exceptions.InvalidSchema(
                f"no HTTP adapter for {urlsplit(url).scheme}:// (got {type(adapter).__name__})"
            )
        pool = adapter.get_connection_with_tls_context(probe, verify, proxies=proxies, cert=cert)
        adapter.cert_verify(pool, url, verify, cert)
        netrc = None
        if session.trust_env and "Authorization" not in session.headers:
            found = get_netrc_auth(url)
            if found:
                netrc = _basic_auth_str(*found)
        whole_url = adapter.request_url(probe, proxies) != probe.path_url
        return _Route(pool, whole_url, netrc)

    def _redirected(
        self, prepared: requests.PreparedRequest, response: requests.Response, location: str
    ) -> requests.PreparedRequest:
        """The request `location` asks for, as requests' `resolve_redirects` builds it."""
        following = prepared.copy()
        if location.startswith("//"):
            location = f"{urlsplit(prepared.url or '').scheme}:{location}"
        if urlsplit(location).netloc:
            url = requote_uri(location)
        else:
            url = urljoin(prepared.url or "", requote_uri(location))
        following.url = url
        self.session.rebuild_method(following, response)
        if response.status_code not in (307, 308):
            for name in ("Content-Length", "Content-Type", "Transfer-Encoding"):
                following.headers.pop(name, None)
            following.body = None
        following.headers.pop("Cookie", None)
        if "Authorization" in following.headers and self.session.should_strip_auth(
            prepared.url or "", url
        ):
            del following.headers["Authorization"]
        return following

    def close(self) -> None:
        self.session.close()


class HttpClient:
    """A `requests.Session`'s settings with a base URL, timeouts, retries, rate limits and
    redaction; requests go out through `_Transport` (urllib3's pools, set up by requests).

    `secrets` are values (tokens) that must never appear in a message; the value of an
    `Authorization` header is always one. `token_env` names the variable an
    authentication error tells the user to check. `error_reason(response)` reads the
    source's own error bodies (an `ApiError`); without one, the API's words are the
    `message` of a JSON object body. `deadline` is the longest one attempt may take,
    from sending the request to the body's last byte (the socket `timeout` bounds each
    read only); an attempt past it is retried like a timeout.

    Every client of one API host shares that host's `HostLimiter` (`limits`, default
    the vendor's published ones, `VENDOR_LIMITS`): clients on several threads never have
    more requests out to a host than it takes, and a rate limit on one host makes that
    host's requests wait, never another's.
    """

    def __init__(
        self,
        source: str,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        secrets: Iterable[str | None] = (),
        token_env: str | None = None,
        timeout: float | tuple[float, float] = (5, 30),
        deadline: float = REQUEST_DEADLINE_SECONDS,
        max_attempts: int | None = None,
        backoff_base: float | None = None,
        backoff_max: float = 60.0,
        max_wait: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
        session: requests.Session | None = None,
        error_reason: ErrorReason | None = None,
        limits: HostLimits | None = None,
    ) -> None:
        self.source = source
        self.error_reason = error_reason
        self.base_url = base_url.rstrip("/")
        self.token_env = token_env
        self.timeout = timeout
        self.deadline = deadline
        # Operators tune retries for every source at once through the environment.
        if max_attempts is None:
            max_attempts = int(_env_number("OKR_HTTP_MAX_ATTEMPTS", 5))
        if backoff_base is None:
            backoff_base = _env_number("OKR_HTTP_BACKOFF_SECONDS", 1.0)
        if max_wait is None:
            max_wait = _env_number("OKR_HTTP_MAX_WAIT_SECONDS", 300.0)
        self.max_attempts = max(1, max_attempts)
        self.backoff_base, self.backoff_max, self.max_wait = backoff_base, backoff_max, max_wait
        self.sleep, self.clock, self.jitter = sleep, clock, jitter
        self.limiter = host_limiter(self.base_url, limits)
        if session is None:
            session = requests.Session()
            # One pooled connection per request in flight, so none is opened and dropped.
            size = max(10, self.limiter.limits.max_in_flight)
            adapter = HTTPAdapter(pool_connections=size, pool_maxsize=size)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        self.session = session
        self._transport = _Transport(session, timeout)
        self.session.headers.update({"User-Agent": USER_AGENT, **(headers or {})})
        found = [s for s in secrets if s]
        authorization = self.session.headers.get("Authorization")
        if authorization:
            found.append(authorization)
            found.append(authorization.partition(" ")[2])
        # Longest first, so a secret that contains another is replaced whole.
        self._secrets = sorted({s for s in found if s}, key=len, reverse=True)
        _TRANSPORT_REDACTION.add(self)

    # -- public ---------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> requests.Response:
        """Send one request (a path under the base URL, or an absolute URL on its host).

        Retries 5xx, connection errors, timeouts and rate limits; raises `SourceError`
        for anything else that is not a success.
        """
        url = self._url(path)
        shown = self.redact(urlsplit(url).path or "/")
        attempt = 0
        while True:
            attempt += 1
            with self.limiter.slot(self.sleep):
                outcome = self._attempt(method, url, shown, params, json)
            if isinstance(outcome, requests.Response):
                return outcome
            problem = self.redact(outcome.problem)
            said = f" (the API says: {outcome.said})" if outcome.said else ""
            if attempt >= self.max_attempts:
                raise SourceError(
                    self.source,
                    f"gave up after {attempt} attempts on {method} {shown}: last {problem}{said}",
                )
            wait = outcome.wait if outcome.wait is not None else self._backoff(attempt)
            if wait > self.max_wait:
                raise SourceError(
                    self.source,
                    f"{problem} on {method} {shown}: the API asks to wait {wait:.0f} s, "
                    f"more than max_wait {self.max_wait:.0f} s{said}",
                )
            logger.warning(
                "%s: %s on %s %s; retrying in %.1f s (attempt %d of %d)",
                self.source,
                problem,
                method,
                shown,
                wait,
                attempt + 1,
                self.max_attempts,
            )
            if outcome.rate_limited:
                with self.limiter.holding():
                    self.sleep(wait)
            else:
                self.sleep(wait)

    def request_json(self, method: str, path: str, **options: Any) -> Any:
        """`request` (`params`, `json`), returning the decoded JSON body."""
        return self._decode(self.request(method, path, **options))

    def paginate(self, query: Query) -> Iterator[list]:
        """Yield each page's records (a list), in order, fetching the next page only when
        asked, or a few ahead when the first page names the others.

        `query.records` picks the records out of a page's JSON body (default: the body,
        which must then be a list); `query.stop(page)` ends the reading after a page.
        Stop iterating to stop fetching.
        """
        paginator = query.paginator
        paginator.reset(self.source)
        page_request: PageRequest | None = paginator.first_request(
            PageRequest(query.method, query.path, params=query.params, json=query.json)
        )
        read: set[str] = set()
        first = True
        while page_request is not None:
            self._mark_read(page_request, read)
            response, data, page = self._fetch_page(query, page_request)
            yield page
            if query.stop is not None and query.stop(page):
                return
            if first and (query.stop is None or isinstance(query.stop, NewestFirst)):
                # A first page that names the others: fetch them side by side, within the
                # host's limits (a newest-first list: those it is expected to need), and
                # yield them in order.
                numbered = paginator.page_requests(response, data, page_request)
                if numbered:
                    found = yield from self._fan_out(query, numbered, read, page)
                    if found is None:
                        return
                    response, data, page_request = found
            first = False
            # After the numbered pages, the last one's next link is still followed: pages
            # added while the list was read are not lost.
            page_request = paginator.next_request(response, data, page_request)

    def _mark_read(self, page_request: PageRequest, read: set[str]) -> None:
        """Refuse a page already read (a cursor or a link that loops back)."""
        key = self._page_key(page_request)
        if key in read:
            raise SourceError(
                self.source,
                f"pagination loop: the API pointed back to a page already read "
                f"({page_request.method} {self._shown(self._url(page_request.url))}, "
                f"after {len(read)} pages); nothing of this query is kept",
            )
        read.add(key)

    def _fetch_page(
        self, query: Query, page_request: PageRequest
    ) -> tuple[requests.Response, Any, list]:
        """One page: its response, its decoded body and its records."""
        response = self.request(
            page_request.method,
            page_request.url,
            params=page_request.params,
            json=page_request.json,
        )
        data = self._decode(response)
        page = query.records(data) if query.records else data
        if not isinstance(page, list):
            raise SourceError(
                self.source,
                f"unexpected response body from {self._shown(response.url)}: expected a list of records",
            )
        return response, data, page

    def _fan_out(
        self, query: Query, page_requests: list[PageRequest], read: set[str], first_page: list
    ) -> Generator[list, None, tuple[requests.Response, Any, PageRequest] | None]:
        """Yield the records of each of `page_requests` (the pages after `first_page`) in
        order, fetching a few ahead on threads (the host's limiter decides how many are
        out at once); returns the last page's response, body and request, or None when
        `query.stop` ended the reading. A page that fails fails the query, as it would one
        page after another.

        A list read whole keeps twice the host's requests in flight asked ahead. A
        `NewestFirst` list asks, after each page it yields, the pages its estimate says
        the reading still needs (`NewestFirst.pages_ahead`, at most the host's requests in
        flight): pages asked past its end are spent for nothing, so few are.
        """
        rule = query.stop if isinstance(query.stop, NewestFirst) else None
        spans = [rule.span(first_page)] if rule else []
        width = self.limiter.limits.max_in_flight
        pending: deque[tuple[PageRequest, Future]] = deque()
        asked = 0
        pool = ThreadPoolExecutor(max_workers=width, thread_name_prefix=f"okr-{self.source}")
        try:
            while True:
                ahead = min(width, rule.pages_ahead(spans)) if rule else 2 * width
                while asked < len(page_requests) and len(pending) < ahead:
                    page_request = page_requests[asked]
                    self._mark_read(page_request, read)
                    pending.append(
                        (page_request, pool.submit(self._fetch_page, query, page_request))
                    )
                    asked += 1
                page_request, future = pending.popleft()
                response, data, page = future.result()
                yield page
                if query.stop is not None and query.stop(page):
                    return None
                if rule:
                    spans.append(rule.span(page))
                if not pending and asked == len(page_requests):
                    return response, data, page_request
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def redact(self, text: str) -> str:
        """`text` with every secret replaced by `***`, on one line."""
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return " ".join(text.split())

    def close(self) -> None:
        self._transport.close()

    # -- internals ------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            self._check_same_host(path)
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def _check_same_host(self, url: str) -> None:
        # The session sends the token with every request: never to another host.
        if not url.startswith(("http://", "https://")):
            return
        there, here = urlsplit(url), urlsplit(self.base_url)
        if (there.scheme, there.netloc) != (here.scheme, here.netloc):
            raise SourceError(
                self.source,
                f"refusing to follow a link to another host: {self.redact(there.scheme + '://' + there.netloc)}",
            )

    def _shown(self, url: str) -> str:
        return self.redact(urlsplit(url).path or "/")

    def _page_key(self, request: PageRequest) -> str:
        """What names a page: the method, the full path, every query parameter (those in
        the URL and those beside it, in any order) and the JSON body."""
        split = urlsplit(self._url(request.url))
        params = parse_qsl(split.query, keep_blank_values=True)
        params += [(str(name), str(value)) for name, value in (request.params or {}).items()]
        return jsonlib.dumps(
            [request.method.upper(), split.path, sorted(params), request.json],
            sort_keys=True,
            default=str,
        )

    def _attempt(
        self, method: str, url: str, shown: str, params: Mapping[str, Any] | None, json: Any
    ) -> requests.Response | _Retry:
        """The response, or why to retry; raises `SourceError` for a failure not worth retrying.

        Errors of `requests` are turned into outcomes outside their `except` blocks: their
        text and their chained context may quote the URL or the request's headers.
        """
        failure: str | None = None
        started = time.monotonic()
        try:
            response = self._transport.send(method, url, params, json)
        except requests.Timeout:
            return _Retry(f"timeout (limit {self._timeout_text()})")
        except requests.ConnectionError:
            return _Retry("connection error")
        except requests.RequestException as exc:
            failure = type(exc).__name__
        if failure is not None:
            raise SourceError(self.source, f"request failed on {method} {shown}: {failure}")
        problem = self._read_body(response, started)
        if problem is not None:
            return _Retry(problem)

        status = response.status_code
        if status < 400:
            return response
        read = (self.error_reason or message_error)(response) or ApiError()
        if read.reason:
            raise SourceError(self.source, self.redact(read.reason))
        if status == 429 or read.rate_limited:
            wait = self._rate_limit_wait(response)
            return _Retry(
                f"rate limited (HTTP {status})",
                read.wait if wait is None else wait,
                said=self.redact(read.said)[:200],
                rate_limited=True,
            )
        if status >= 500:
            return _Retry(f"server error (HTTP {status})")
        said = self.redact(read.said)[:200]
        suffix = f" (the API says: {said})" if said else ""
        if status in (401, 403):
            hint = f": check {self.token_env}" if self.token_env else ""
            raise SourceError(self.source, f"authentication failed (HTTP {status}){hint}{suffix}")
        if status == 404:
            raise SourceError(self.source, f"not found (HTTP 404): {shown}{suffix}")
        raise SourceError(
            self.source, f"request failed (HTTP {status}) on {method} {shown}{suffix}"
        )

    def _read_body(self, response: requests.Response, started: float) -> str | None:
        """Read the whole body within the deadline; why not, or None once it is read.

        Each read returns what one socket read brings (`read1`), so a slow drip is
        noticed between bytes; a stall is the socket's read timeout; a connection that
        ends early is urllib3's protocol error.
        """
        chunks: list[bytes] = []
        problem: str | None = None
        raw = response.raw
        try:
            while True:
                if time.monotonic() - started > self.deadline:
                    problem = f"the answer took longer than {self.deadline:g} s (deadline)"
                    break
                chunk = raw.read1(_READ_SIZE, decode_content=True)
                if not chunk:
                    break
                chunks.append(chunk)
        except (requests.RequestException, urllib3_errors.HTTPError, OSError) as exc:
            problem = _body_problem(exc)
        finally:
            if problem is not None:
                response.close()
        if problem is not None:
            return problem
        response._content = b"".join(chunks)
        response._content_consumed = True
        raw.release_conn()  # back to the pool: the next page reuses the connection
        return None

    def _timeout_text(self) -> str:
        if isinstance(self.timeout, tuple):
            return f"connect {self.timeout[0]} s, read {self.timeout[1]} s"
        return f"{self.timeout} s"

    def _rate_limit_wait(self, response: requests.Response) -> float | None:
        """Seconds to wait, from Retry-After or the reset time; None to back off."""
        now = self.clock()
        retry_after = response.headers.get("retry-after")
        if retry_after:
            try:
                return max(0.0, float(retry_after))
            except ValueError:
                try:
                    when = email.utils.parsedate_to_datetime(retry_after)
                except (TypeError, ValueError):
                    when = None
                if when is not None:
                    return max(1.0, when.timestamp() - now)
        reset = response.headers.get("x-ratelimit-reset")
        if reset and response.headers.get("x-ratelimit-remaining", "0") == "0":
            try:
                # At least a second: the reset time has a one-second resolution.
                return max(1.0, float(reset) - now)
            except ValueError:
                pass
        return None

    def _backoff(self, attempt: int) -> float:
        delay = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        # Jitter spreads the retries of parallel runs apart.
        return delay * (0.5 + self.jitter() / 2)

    def _decode(self, response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            pass
        kind = response.headers.get("Content-Type") or "no Content-Type"
        opening = self.redact(response.content[:60].decode("utf-8", "replace"))
        shown = f"{kind}, {len(response.content)} bytes" + (f": {opening!r}" if opening else "")
        raise SourceError(
            self.source,
            f"malformed response body from {self._shown(response.url)} "
            f"(HTTP {response.status_code}, not JSON: {shown})",
        )


def _body_problem(error: BaseException) -> str:
    """Why a body could not be read, in a few words (never the error's text: it may quote
    the URL)."""
    if isinstance(error, urllib3_errors.ReadTimeoutError | TimeoutError):
        return "timeout while reading the body"
    return "connection broken while reading the body"


# --- auth ----------------------------------------------------------------------------------


class Auth:
    """How a source's requests authenticate: the headers they carry, and the variables an
    authentication error tells the user to check."""

    def headers(self, user: str | None, token: str | None) -> dict[str, str]:
        return {}

    def hint(self, env: SourceEnv) -> str | None:
        return env.token


class Bearer(Auth):
    """`Authorization: Bearer <token>`."""

    def headers(self, user: str | None, token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token else {}


class Basic(Auth):
    """`Authorization: Basic base64(<user>:<token>)`; an error names both variables."""

    def headers(self, user: str | None, token: str | None) -> dict[str, str]:
        if not (user and token):
            return {}
        return {"Authorization": f"Basic {base64.b64encode(f'{user}:{token}'.encode()).decode()}"}

    def hint(self, env: SourceEnv) -> str | None:
        return f"{env.user} and {env.token}"


@dataclass(frozen=True)
class HeaderAuth(Auth):
    """The token in a header of the API's own (`X-Api-Key: <token>`), after `prefix`."""

    name: str
    prefix: str = ""

    def headers(self, user: str | None, token: str | None) -> dict[str, str]:
        return {self.name: f"{self.prefix}{token}"} if token else {}


# --- the connector of an HTTP API ------------------------------------------------------------


_C = TypeVar("_C", bound="HttpConnector")


class HttpConnector(Connector):
    """A source behind an HTTP API: declares `auth`, `headers` and `error_reason`
    (besides `source`, `params_model`, `env`) and implements `fetch`; `from_settings`,
    the client and the paging come from here."""

    auth: ClassVar[Auth] = Bearer()
    headers: ClassVar[Mapping[str, str]] = {}
    # The vendor's error shape; None: the body's `message` (`message_error`).
    error_reason: ClassVar[ErrorReason | None] = None
    # What the vendor's host takes at once; None: `VENDOR_LIMITS` by host, else the default.
    host_limits: ClassVar[HostLimits | None] = None

    def __init__(self, client: HttpClient) -> None:
        self.client = client

    def query_concurrency(self) -> int:
        return self.client.limiter.limits.max_in_flight

    @classmethod
    def from_settings(cls: type[_C], settings: SourceSettings, **client_options: Any) -> _C:
        """Build from settings; `client_options` go to `HttpClient` (e.g. `sleep`, `max_attempts`)."""
        return cls(cls.http_client(settings, **client_options))

    @classmethod
    def http_client(
        cls,
        settings: SourceSettings,
        *,
        token: str | None = None,
        token_env: str | None = None,
        **client_options: Any,
    ) -> HttpClient:
        """The client of this source: its base URL, auth and error shape; the token
        (`token`, default the settings') is registered for redaction."""
        token = token or settings.token
        headers = {
            "Accept": "application/json",
            **cls.headers,
            **cls.auth.headers(settings.user, token),
        }
        return HttpClient(
            cls.source,
            settings.base_url or cls.env.default_base_url or "",
            headers=headers,
            secrets=[token, settings.token],
            token_env=token_env or cls.auth.hint(cls.env),
            error_reason=cls.error_reason,
            **{"limits": cls.host_limits, **client_options},
        )

    def records(self, query: Query) -> Iterator[Any]:
        """Every record of the query, page after page, fetching a page only when needed."""
        for page in self.client.paginate(query):
            yield from page
