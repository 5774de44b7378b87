"""The HTTP client every connector shares, and the paginators of the APIs they call.

A connector builds one `HttpClient` in `from_settings` (base URL, auth header, the
token as a secret) and declares which `Paginator` its endpoint uses. The client owns
what all sources need alike: timeouts, retries with backoff, rate limits, one-line
`SourceError`s, and redaction of secrets in every message it emits.

Paginators (the shapes of dlt's rest_client paginators):

| class | API | where the next page is |
| --- | --- | --- |
| `LinkHeaderPaginator` | GitHub | `Link: <url>; rel="next"`, followed as given |
| `NextTokenPaginator` | Jira (`/rest/api/3/search/jql`) | `nextPageToken` in the body, sent back as a parameter |
| `OffsetPaginator` | GA4 (`runReport`) | `offset` + `limit` in the request, `rowCount` in the body |
| `NextUrlPaginator` | Salesforce (`query`) | `nextRecordsUrl` in the body |
| `AfterCursorPaginator` | HubSpot (CRM search) | `paging.next.after` in the body, sent back as `after` |
"""

from __future__ import annotations

import email.utils
import json as jsonlib
import logging
import os
import random
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import urlsplit

import requests

from okr_metrics.connectors.base import SourceError

logger = logging.getLogger("okr_metrics.http")

USER_AGENT = "okr-metrics/0.1 (+https://github.com/okr-metrics)"
REDACTED = "***"

Records = Callable[[Any], list]


class _RedactSecrets(logging.Filter):
    """Replaces the secrets of live clients in log records of the transport under `requests`.

    urllib3 logs every request line (path and query) at DEBUG: a token in a URL would
    otherwise reach the logs.
    """

    def __init__(self) -> None:
        super().__init__()
        self.clients: weakref.WeakSet[HttpClient] = weakref.WeakSet()

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = {secret for client in list(self.clients) for secret in client._secrets}
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
    first), and fails when an API sends the same next page twice, which would
    otherwise loop forever.
    """

    def __init__(self) -> None:
        self.source = "http"
        self._seen: set[str] = set()

    def reset(self, source: str) -> None:
        self.source = source
        self._seen = set()

    def first_request(self, request: PageRequest) -> PageRequest:
        """The first page's request (a paginator may add its parameters to it)."""
        return request

    def next_request(
        self, response: requests.Response, data: Any, request: PageRequest
    ) -> PageRequest | None:
        """The next page's request, or None after the last page."""
        following = self._next(response, data, request)
        if following is None:
            return None
        key = jsonlib.dumps(
            [following.url, dict(following.params or {}), following.json],
            sort_keys=True,
            default=str,
        )
        if key in self._seen:
            raise SourceError(
                self.source, f"pagination loop: the API sent the same next page twice ({key})"
            )
        self._seen.add(key)
        return following

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
    """GitHub: follow `Link: <...>; rel="next"` exactly as given.

    GitHub rewrites the next URL (to `/repositories/{id}/...`) and carries every query
    parameter in it, so the URL is never rebuilt and no parameter is added.
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


def _lookup(data: Any, path: str) -> Any:
    """The value at a dotted path (`paging.next.after`) of a JSON body, or None."""
    for part in path.split("."):
        if not isinstance(data, Mapping):
            return None
        data = data.get(part)
    return data


def _with_value(
    request: PageRequest, where: Literal["params", "json"], name: str, value: Any
) -> PageRequest:
    if where == "params":
        return replace(request, params={**(request.params or {}), name: value})
    return replace(request, json={**(request.json or {}), name: value})


class NextTokenPaginator(Paginator):
    """Jira: the body's `nextPageToken`, sent back as the `nextPageToken` parameter.

    The last page has no token (Jira also says `isLast: true`).
    """

    def __init__(
        self,
        token_path: str = "nextPageToken",
        param: str = "nextPageToken",
        where: Literal["params", "json"] = "params",
        last_path: str | None = "isLast",
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
        token = _lookup(data, self.token_path)
        if token in (None, "") or (self.last_path and _lookup(data, self.last_path) is True):
            return None
        return _with_value(request, self.where, self.param, token)


class AfterCursorPaginator(NextTokenPaginator):
    """HubSpot: `paging.next.after` in the body, sent back as `after` (in the JSON body of a search)."""

    def __init__(
        self,
        token_path: str = "paging.next.after",
        param: str = "after",
        where: Literal["params", "json"] = "json",
    ) -> None:
        super().__init__(token_path, param, where, last_path=None)


class NextUrlPaginator(Paginator):
    """Salesforce: the body's `nextRecordsUrl` (a path on the instance) until `done`."""

    def __init__(self, url_path: str = "nextRecordsUrl", done_path: str | None = "done") -> None:
        super().__init__()
        self.url_path, self.done_path = url_path, done_path

    def _next(
        self, response: requests.Response, data: Any, request: PageRequest
    ) -> PageRequest | None:
        url = _lookup(data, self.url_path)
        if not url or (self.done_path and _lookup(data, self.done_path) is True):
            return None
        return PageRequest(request.method, url, params=None, json=request.json)


class OffsetPaginator(Paginator):
    """GA4: `offset` and `limit` in the request; stops at the body's total or a short page."""

    def __init__(
        self,
        limit: int,
        offset_param: str = "offset",
        limit_param: str = "limit",
        total_path: str | None = "rowCount",
        records_path: str = "rows",
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
        records = _lookup(data, self.records_path) or []
        self.offset += self.limit
        total = _lookup(data, self.total_path) if self.total_path else None
        if len(records) < self.limit or (total is not None and self.offset >= int(total)):
            return None
        return _with_value(request, self.where, self.offset_param, self.offset)


# --- the client -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Retry:
    """An attempt failed in a way worth retrying; `wait` is None for plain backoff."""

    problem: str
    wait: float | None = None


class HttpClient:
    """A `requests.Session` with a base URL, timeouts, retries, rate limits and redaction.

    `secrets` are values (tokens) that must never appear in a message; the value of an
    `Authorization` header is always one. `token_env` names the variable an
    authentication error tells the user to check. `error_reason(response)` lets a source
    read its own error bodies first: it returns a one-line reason to fail with at once
    (never retried), or None for the usual handling.
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
        max_attempts: int | None = None,
        backoff_base: float | None = None,
        backoff_max: float = 60.0,
        max_wait: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
        session: requests.Session | None = None,
        error_reason: Callable[[requests.Response], str | None] | None = None,
    ) -> None:
        self.source = source
        self.error_reason = error_reason
        self.base_url = base_url.rstrip("/")
        self.token_env = token_env
        self.timeout = timeout
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
        self.session = session or requests.Session()
        self.session.headers.update({"User-Agent": USER_AGENT, **(headers or {})})
        found = [s for s in secrets if s]
        authorization = self.session.headers.get("Authorization")
        if authorization:
            found.append(authorization)
            found.append(authorization.partition(" ")[2])
        # Longest first, so a secret that contains another is replaced whole.
        self._secrets = sorted({s for s in found if s}, key=len, reverse=True)
        _TRANSPORT_REDACTION.clients.add(self)

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
            outcome = self._attempt(method, url, shown, params, json)
            if isinstance(outcome, requests.Response):
                return outcome
            problem = self.redact(outcome.problem)
            if attempt >= self.max_attempts:
                raise SourceError(
                    self.source,
                    f"gave up after {attempt} attempts on {method} {shown}: last {problem}",
                )
            wait = outcome.wait if outcome.wait is not None else self._backoff(attempt)
            if wait > self.max_wait:
                raise SourceError(
                    self.source,
                    f"{problem} on {method} {shown}: the API asks to wait {wait:.0f} s, "
                    f"more than max_wait {self.max_wait:.0f} s",
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
            self.sleep(wait)

    def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """`request`, returning the decoded JSON body."""
        return self._decode(self.request(method, path, params=params, json=json))

    def paginate(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        paginator: Paginator | None = None,
        records: Records | None = None,
    ) -> Iterator[list]:
        """Yield each page's records (a list), fetching the next page only when asked.

        `records` picks the records out of a page's JSON body (default: the body, which
        must then be a list). Stop iterating to stop fetching.
        """
        paginator = paginator or SinglePagePaginator()
        paginator.reset(self.source)
        page_request: PageRequest | None = paginator.first_request(
            PageRequest(method, path, params=params, json=json)
        )
        while page_request is not None:
            response = self.request(
                page_request.method,
                page_request.url,
                params=page_request.params,
                json=page_request.json,
            )
            data = self._decode(response)
            page = records(data) if records else data
            if not isinstance(page, list):
                raise SourceError(
                    self.source,
                    f"unexpected response body from {self._shown(response.url)}: expected a list of records",
                )
            yield page
            page_request = paginator.next_request(response, data, page_request)

    def redact(self, text: str) -> str:
        """`text` with every secret replaced by `***`, on one line."""
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return " ".join(text.split())

    def close(self) -> None:
        self.session.close()

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

    def _attempt(
        self, method: str, url: str, shown: str, params: Mapping[str, Any] | None, json: Any
    ) -> requests.Response | _Retry:
        """The response, or why to retry; raises `SourceError` for a failure not worth retrying.

        Errors of `requests` are turned into outcomes outside their `except` blocks: their
        text and their chained context may quote the URL or the request's headers.
        """
        failure: str | None = None
        try:
            response = self.session.request(
                method, url, params=params, json=json, timeout=self.timeout
            )
        except requests.Timeout:
            return _Retry(f"timeout (limit {self._timeout_text()})")
        except requests.ConnectionError:
            return _Retry("connection error")
        except requests.RequestException as exc:
            failure = type(exc).__name__
        if failure is not None:
            raise SourceError(self.source, f"request failed on {method} {shown}: {failure}")

        status = response.status_code
        if status < 400:
            return response
        reason = self.error_reason(response) if self.error_reason else None
        if reason:
            raise SourceError(self.source, self.redact(reason))
        if self._is_rate_limited(response):
            return _Retry(f"rate limited (HTTP {status})", self._rate_limit_wait(response))
        if status >= 500:
            return _Retry(f"server error (HTTP {status})")
        said = self._api_message(response)
        suffix = f" (the API says: {said})" if said else ""
        if status in (401, 403):
            hint = f": check {self.token_env}" if self.token_env else ""
            raise SourceError(self.source, f"authentication failed (HTTP {status}){hint}{suffix}")
        if status == 404:
            raise SourceError(self.source, f"not found (HTTP 404): {shown}{suffix}")
        raise SourceError(
            self.source, f"request failed (HTTP {status}) on {method} {shown}{suffix}"
        )

    def _timeout_text(self) -> str:
        if isinstance(self.timeout, tuple):
            return f"connect {self.timeout[0]} s, read {self.timeout[1]} s"
        return f"{self.timeout} s"

    def _is_rate_limited(self, response: requests.Response) -> bool:
        if response.status_code == 429:
            return True
        if response.status_code != 403:
            return False
        headers = response.headers
        if headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers:
            return True
        # GitHub's secondary rate limit: a 403 that says so in its body.
        return "rate limit" in self._api_message(response).lower()

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

    def _api_message(self, response: requests.Response) -> str:
        """A short error text from the body (GitHub, Jira, Google, Salesforce, HubSpot shapes)."""
        try:
            body = response.json()
        except ValueError:
            return ""
        message: Any = None
        if isinstance(body, list) and body and isinstance(body[0], Mapping):
            message = body[0].get("message")
        elif isinstance(body, Mapping):
            message = body.get("message") or body.get("errorMessages")
            error = body.get("error")
            if not message and isinstance(error, Mapping):
                message = error.get("message")
            elif not message and isinstance(error, str):
                message = body.get("error_description") or error
        if isinstance(message, list):
            message = "; ".join(str(m) for m in message)
        return self.redact(str(message))[:200] if message else ""

    def _decode(self, response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            pass
        raise SourceError(self.source, f"malformed response body from {self._shown(response.url)}")
