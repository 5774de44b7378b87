"""What the sandbox's API modules share: replies, refusals, credentials, data, timestamps.

An API module (`github.py`, `jira.py`, ...) describes one vendor to the sandbox:

- `Api(content_type, error_body)`: the vendor's wire conventions. `api.reply(body)` is a
  JSON reply with the vendor's `Content-Type`; `api.error(status, message)` its error
  body (`error_body(status, message)`, or `error_body(status, message, code)` for APIs
  whose errors carry a code); `api.add(router, method, pattern, handler, auth=...)`
  serves a route whose handler may raise `ApiError` / `BadRequest` instead of building
  the refusal itself, and whose injected faults answer in the vendor's error body.
- `token_problem(request, scheme=...)`: why a request's credentials are refused
  (`"missing"`, `"invalid"`) or None; the token `invalid` (and, where the API says so,
  `invalid-...`) stands for a revoked one. `basic_credentials(request)` decodes basic auth.
- `ApiData`: the base of an API's data object, one per `SandboxData`
  (`GitHubSandboxData.of(data)` is `data.source("github", GitHubSandboxData)`), with the
  sandbox's horizon (`now`), the first day of sample data and a lock; `cached` makes an
  item (a property, a CRM object) on first use, `replace` sets one.
- `Limits`: a page size that tests lower, for every request or per key (a project, an
  object).
- `timestamp(moment, ...)` writes the ISO 8601 variants the vendors use;
  `parse_moment(value)` reads what tests hand to `set_...` (naive: UTC).

A new API module, in short (served once `registry.py` names it, or an entry point does):

    PAGERDUTY = Api(JSON_UTF8, lambda status, message: {"error": {"message": message}})

    class PagerDutySandboxData(ApiData):
        name = "pagerduty"  # sandbox.data.pagerduty

        def incidents(self, service: str) -> list[dict]:
            return self.cached(service, lambda: generate(service, self.first_day, self.now))

    def check_auth(request):
        return None if token_problem(request) is None else PAGERDUTY.error(401, "Unauthorized")

    def register(router, data):
        pagerduty = PagerDutySandboxData.of(data)

        def incidents(request):
            if "service_ids[]" not in request.query:
                raise BadRequest("service_ids[] is required")
            return PAGERDUTY.reply({"incidents": pagerduty.incidents(request.query["service_ids[]"])})

        PAGERDUTY.add(router, "GET", "/incidents", incidents, auth=check_auth)
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any, ClassVar, Literal, TypeVar

from okr_metrics.connectors.sandbox.data import SandboxData
from okr_metrics.connectors.sandbox.server import (
    AuthCheck,
    Handler,
    Router,
    SandboxRequest,
    SandboxResponse,
)

JSON_UTF8 = "application/json; charset=utf-8"

D = TypeVar("D", bound="ApiData")
V = TypeVar("V")


# --- refusals -------------------------------------------------------------------------------


class ApiError(Exception):
    """A request the API refuses: the status, the message of its error body and, for APIs
    whose errors carry one (Salesforce's `errorCode`), the code; `headers` go with the
    answer, and `body` replaces the error body (a refusal of another shape)."""

    status: int = 400

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.headers = headers
        self.body = body
        if status is not None:
            self.status = status


class BadRequest(ApiError):
    """A request the API answers with 400 (a malformed query, an unknown field...)."""


class Api:
    """One vendor's wire conventions: the `Content-Type` of its replies and its error body."""

    def __init__(self, content_type: str, error_body: Callable[..., Any]) -> None:
        self.content_type = content_type
        self.error_body = error_body

    def reply(
        self, body: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> SandboxResponse:
        """A JSON reply; `headers` come after (and may replace) the `Content-Type`."""
        return SandboxResponse(status, body, {"Content-Type": self.content_type, **(headers or {})})

    def error(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> SandboxResponse:
        """The vendor's error body for `status` and `message` (and `code`, when given)."""
        body = (
            self.error_body(status, message)
            if code is None
            else self.error_body(status, message, code)
        )
        return self.reply(body, status, headers)

    def refusal(self, refused: ApiError) -> SandboxResponse:
        """The answer to a refused request: its body, or the error body of its message."""
        if refused.body is not None:
            return self.reply(refused.body, refused.status, refused.headers)
        return self.error(
            refused.status, refused.message, code=refused.code, headers=refused.headers
        )

    def add(
        self,
        router: Router,
        method: str,
        pattern: str,
        handler: Handler,
        *,
        auth: AuthCheck | None = None,
    ) -> None:
        """Serve a route whose handler may raise `ApiError`; faults answer in `error_body`."""

        def handle(request: SandboxRequest) -> SandboxResponse:
            try:
                return handler(request)
            except ApiError as refused:
                return self.refusal(refused)

        router.add(method, pattern, handle, auth=auth, error_body=self.error_body)


# --- credentials ----------------------------------------------------------------------------


def basic_credentials(request: SandboxRequest) -> tuple[str, str]:
    """The `(user, password)` of a basic Authorization header; empty strings when the header
    is missing, of another scheme or not base64 of `user:password`."""
    scheme, _, credential = (request.headers.get("Authorization") or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        decoded = base64.b64decode(credential.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    user, _, password = decoded.partition(":")
    return user, password


def token_problem(
    request: SandboxRequest,
    *,
    scheme: Literal["bearer", "basic"] | None = None,
    invalid_prefix: bool = False,
) -> Literal["missing", "invalid"] | None:
    """Why the request's credentials are refused, or None when they are accepted.

    Without `scheme`, any Authorization header carries a token (`request.token`); with
    `"bearer"`, only `Bearer <token>`; with `"basic"`, only basic auth with a user and a
    password (the token). The token `invalid` is refused as a revoked one, and with
    `invalid_prefix` so is any `invalid-...`.
    """
    if scheme == "basic":
        user, token = basic_credentials(request)
        if not user or not token:
            return "missing"
    elif scheme == "bearer":
        given, _, token = (request.headers.get("Authorization") or "").strip().partition(" ")
        token = token.strip()
        if given.lower() != "bearer" or not token:
            return "missing"
    else:
        found = request.token
        if found is None:
            return "missing"
        token = found
    if token == "invalid" or (invalid_prefix and token.startswith("invalid-")):
        return "invalid"
    return None


# --- data -----------------------------------------------------------------------------------


class ApiData:
    """The base of an API's data object: one per `SandboxData`, made on first use by `of`.

    `now` is the sandbox's horizon (nothing happens after it) and `first_day` the first
    day of generated sample data; `cached(key, make)` keeps the API's items (a property,
    a CRM object) by key, each made on first use.
    """

    name: ClassVar[str]  # the attribute tests read it under: `sandbox.data.<name>`

    def __init__(self, data: SandboxData) -> None:
        self.data = data
        self.now: datetime = data.now
        self.first_day: date = data.first_day
        self._lock = threading.RLock()
        self._items: dict[Hashable, Any] = {}

    @classmethod
    def of(cls: type[D], data: SandboxData) -> D:
        """The API's data object of `data` (created on first use)."""
        return data.source(cls.name, cls)

    def cached(self, key: Hashable, make: Callable[[], V]) -> V:
        """The item of `key`, made by `make()` on first use (outside the lock: generating
        a year of sample data takes a while; two threads that race agree on the result)."""
        with self._lock:
            found = self._items.get(key)
        if found is None:
            made = make()
            with self._lock:
                found = self._items.setdefault(key, made)
        return found

    def replace(self, key: Hashable, item: V) -> V:
        """Make `item` the item of `key` (what a test sets)."""
        with self._lock:
            self._items[key] = item
        return item


class Listings:
    """The matched, sorted items of a paged listing, worked out on its first page and
    reused by the pages after it (a quarter's listing is thousands of items, read a
    hundred at a time; filtering and sorting them for every page made the sandbox, not
    the client, the slow side of a benchmark).

    A first page always works them out again, so what a test changes between two
    readings shows; `key` names the listing without its paging (a key that changes
    with the data itself, as Jira's project versions, may pass `first_page=False`
    always).
    """

    def __init__(self, size: int = 32) -> None:
        self._items: OrderedDict[Hashable, list[Any]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def items(
        self, key: Hashable, first_page: bool, work_out: Callable[[], list[Any]]
    ) -> list[Any]:
        if not first_page:
            with self._lock:
                found = self._items.get(key)
                if found is not None:
                    self._items.move_to_end(key)
                    return found
        found = work_out()
        with self._lock:
            self._items[key] = found
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return found


class Limits:
    """A size (of a page, a batch) with a default and, set by tests, overrides: one for
    every request or one per key (case-insensitive)."""

    def __init__(self, default: int) -> None:
        self.default = default
        self.size = default
        self._by_key: dict[str, int] = {}

    def set(self, size: int | None, key: str | None = None) -> None:
        """The size for requests about `key` (or for all); None: back to the default."""
        if key is None:
            self.size = size or self.default
        elif size is None:
            self._by_key.pop(key.casefold(), None)
        else:
            self._by_key[key.casefold()] = size

    def of(self, *keys: str) -> int:
        """The size of a request about `keys`: the smallest of their overrides, else the size."""
        found = [self._by_key[k.casefold()] for k in keys if k.casefold() in self._by_key]
        return min(found) if found else self.size


# --- timestamps -----------------------------------------------------------------------------


def timestamp(
    moment: datetime, *, zone: tzinfo = timezone.utc, millis: bool = False, z: bool = True
) -> str:
    """`moment` in `zone` as `2026-10-15T09:12:33`, then `.123` with `millis`, then `Z`
    (`z`, for UTC) or the numeric offset (`+0000`, `+0530`)."""
    return _timestamp(moment, zone, millis, z)


@lru_cache(maxsize=1 << 17)
def _timestamp(moment: datetime, zone: tzinfo, millis: bool, z: bool) -> str:
    # Kept: a sandbox serves the same records' instants page after page, run after run.
    local = moment.astimezone(zone)
    text = local.isoformat(timespec="milliseconds" if millis else "seconds")
    # `isoformat` ends in the offset as `+05:30` (or `+05:53:28` in a zone's early years).
    if text[-6] in "+-" and text[-3] == ":":
        return text[:-6] + "Z" if z else text[:-3] + text[-2:]
    text = text[: -len("+00:00:00")]
    if z:
        return text + "Z"
    offset = local.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    seconds = abs(int(offset.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{text}{sign}{hours:02d}{minutes:02d}" + (f"{seconds:02d}" if seconds else "")


_BASIC_OFFSET = re.compile(r"([+-]\d{2})(\d{2})$")


def parse_moment(value: str | datetime) -> datetime:
    """An aware datetime from a datetime (naive: UTC) or ISO 8601 text (`...Z`,
    `...+05:30`, `...+0530`; no offset: UTC). Raises ValueError for other text."""
    if isinstance(value, str):
        text = value.strip()
        text = text[:-1] + "+00:00" if text.endswith("Z") else _BASIC_OFFSET.sub(r"\1:\2", text)
        value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
