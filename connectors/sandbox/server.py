"""The sandbox: a local test double of the APIs the connectors call, on one 127.0.0.1 port.

`okr sandbox`, `okr demo` and the tests start a `Sandbox`. Each API module registers
its routes on the `Router` (`register(router, data)`), at the API's real paths and in its
real wire format, so a connector pointed at `sandbox.url` runs unchanged: the built-in
modules beside this one (`github.py`, `jira.py`, `google_analytics.py`, `salesforce.py`,
`hubspot.py`, on the shared base `api.py`) and those other packages add through the
entry point group `okr_metrics.sandboxes` (`registry.py`).

The sandbox also records every API request (for tests that count pages), injects
faults (5xx, 429 with Retry-After, 403 rate limits, malformed bodies, delays, and
transport faults: a connection reset, a body that stops halfway, stalls or drips) and
latency. Control endpoints, for tools that are not Python:

- `GET /_sandbox/requests`: the recorded requests (and the JSON body of those that had one)
- `POST /_sandbox/reset`: forget recorded requests, faults and latency
- `GET /_sandbox/faults`, `POST /_sandbox/faults` (add: `{"faults": [...], "latency_seconds": x}`),
  `DELETE /_sandbox/faults`
"""

from __future__ import annotations

import json
import logging
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit

from okr_metrics.connectors.sandbox.data import SandboxData
from okr_metrics.connectors.sandbox.registry import (
    RegistrarTarget,
    load_all,
    registrars,
)

logger = logging.getLogger("okr_metrics.sandbox")

CONTROL_PREFIX = "/_sandbox/"


@dataclass
class SandboxRequest:
    """What a route handler gets."""

    method: str
    path: str
    query: dict[str, str]  # the last value of each parameter
    query_items: list[tuple[str, str]]  # every parameter, in order
    headers: Mapping[str, str]  # case-insensitive
    body: Any  # decoded JSON, or None
    base_url: str  # scheme and host the client used (from the Host header)
    path_params: dict[str, str] = field(default_factory=dict)

    @property
    def token(self) -> str | None:
        """The credential of the Authorization header (after `Bearer`, `token`, `Basic`...)."""
        value = self.headers.get("Authorization")
        if not value:
            return None
        scheme, _, credential = value.strip().partition(" ")
        return credential.strip() or scheme


@dataclass
class SandboxResponse:
    """What a route handler returns: a status, a JSON body (or raw bytes/text) and headers."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    # How the answer travels when a transport fault is injected (`Fault.transport`).
    transport: str | None = None
    transport_seconds: float = 0.0
    # (root, served root): the JSON body's string values that start with `root` are sent
    # starting with `served root` instead (an API's own URLs, pointing at the server that
    # was asked); the body itself keeps `root`.
    served_root: tuple[str, str] | None = None

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        if self.body is None and self.status in (204, 304):
            return b""
        payload = json.dumps(self.body, separators=(",", ":")).encode()
        if self.served_root is None:
            return payload
        # Both roots as they are written within a JSON string, after its opening quote.
        root, served = (b'"' + json.dumps(value)[1:-1].encode() for value in self.served_root)
        if b"\\" + root not in payload:
            return payload.replace(root, served)
        # A quote within a string before `root` (`\"`) is kept: only strings that open
        # with `root` are served with the other.
        return re.sub(rb"(?<!\\)" + re.escape(root), served.replace(b"\\", rb"\\"), payload)


Handler = Callable[[SandboxRequest], SandboxResponse]
# Checks a request's credentials: None when they are fine, else the API's error response.
AuthCheck = Callable[[SandboxRequest], SandboxResponse | None]


def not_found(request: SandboxRequest) -> SandboxResponse:
    """The answer to a path no source serves (GitHub's shape, the most common REST one)."""
    return SandboxResponse(
        404,
        {
            "message": "Not Found",
            "documentation_url": "https://docs.github.com/rest",
            "status": "404",
        },
        {"Content-Type": "application/json; charset=utf-8"},
    )


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    auth: AuthCheck | None
    error_body: Callable[[int, str], Any] | None


class Router:
    """Routes a request to the handler registered for its method and path.

    Patterns are paths with `{name}` placeholders (one path segment each), e.g.
    `/repos/{owner}/{repo}/pulls`; the values land in `request.path_params`.
    """

    def __init__(self, fallback: Handler = not_found) -> None:
        self._routes: list[_Route] = []
        self.fallback = fallback

    def add(
        self,
        method: str,
        pattern: str,
        handler: Handler,
        *,
        auth: AuthCheck | None = None,
        error_body: Callable[[int, str], Any] | None = None,
    ) -> None:
        """Serve `method pattern` with `handler`, after `auth` accepts the request.

        `error_body(status, message)` shapes the body of an injected fault in the API's
        own error format (default: `{"message": ...}`).
        """
        parts = re.split(r"\{(\w+)\}", pattern)
        # Even items are literal text, odd items placeholder names.
        regex = "".join(
            re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts)
        )
        self._routes.append(
            _Route(method.upper(), re.compile(f"^{regex}$"), handler, auth, error_body)
        )

    def match(self, method: str, path: str) -> tuple[_Route, dict[str, str]] | None:
        for route in self._routes:
            found = route.pattern.match(path)
            if found and route.method == method.upper():
                return route, found.groupdict()
        return None

    def dispatch(self, request: SandboxRequest) -> SandboxResponse:
        matched = self.match(request.method, request.path)
        if matched is None:
            return self.fallback(request)
        route, request.path_params = matched
        if route.auth is not None:
            refused = route.auth(request)
            if refused is not None:
                return refused
        return route.handler(request)


@dataclass
class Fault:
    """A failure the sandbox injects into requests whose path starts with `path_prefix`.

    `status` answers with that status instead of the real response (`retry_after`
    adds `Retry-After`; `ratelimit_reset_in` adds `x-ratelimit-remaining: 0` and an
    `x-ratelimit-reset` that many seconds ahead); `malformed` answers 200 (or
    `status`) with a body that is not JSON; `delay_seconds` waits before answering.
    `times` is how many requests it affects (None: all).

    `transport` breaks the answer (the real one, or the fault's) on the wire: `reset`
    closes the connection with a TCP reset before answering; `truncate` sends the
    headers and half the body, then closes; `stall` sends half the body, then waits
    `transport_seconds` before closing; `drip` sends the body one byte every
    `transport_seconds`.
    """

    path_prefix: str = "/"
    status: int | None = None
    retry_after: float | str | None = None
    ratelimit_reset_in: float | None = None
    malformed: bool = False
    delay_seconds: float = 0.0
    times: int | None = None
    method: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    transport: str | None = None
    transport_seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORT_FAULTS:
            raise ValueError(
                f"unknown transport fault {self.transport!r} (one of: "
                f"{', '.join(t for t in TRANSPORT_FAULTS if t)})"
            )

    @classmethod
    def from_json(cls, spec: Mapping[str, Any]) -> Fault:
        known = {f.name for f in fields(cls)}
        unknown = set(spec) - known
        if unknown:
            raise ValueError(f"unknown fault keys: {', '.join(sorted(unknown))}")
        return cls(**dict(spec))

    def applies_to(self, method: str, path: str) -> bool:
        return (
            path.startswith(self.path_prefix)
            and (self.method is None or self.method.upper() == method.upper())
            and (self.times is None or self.times > 0)
        )


TRANSPORT_FAULTS = (None, "reset", "truncate", "stall", "drip")


class RecordedRequest(NamedTuple):
    method: str
    path: str
    query: dict[str, str]


_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class Sandbox:
    """The sandbox server. `Sandbox().start()` serves in a daemon thread; `.url` is its base URL.

    `sources` are the API modules' registrars, as functions or `"module:function"`
    (`"okr_metrics.connectors.sandbox.github:register"`; default: every built-in API and
    every `okr_metrics.sandboxes` entry point); `data` the sample data (default:
    generated up to now).
    """

    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        *,
        data: SandboxData | None = None,
        sources: Iterable[RegistrarTarget] | None = None,
    ) -> None:
        self.data = data or SandboxData()
        self.router = Router()
        for register in registrars() if sources is None else load_all(sources):
            register(self.router, self.data)
        self.requests: list[RecordedRequest] = []
        self._bodies: list[Any] = []  # the JSON body of each recorded request (None: none)
        self.faults: list[Fault] = []
        self.latency_seconds = 0.0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._server = ThreadingHTTPServer((host, port), _handler_class(self))
        self._server.daemon_threads = True

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> Sandbox:
        """Serve in a daemon thread and return at once."""
        if self._thread is None:
            # A short poll interval makes `stop()` quick.
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"sandbox:{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (what `okr sandbox` runs)."""
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- test controls --------------------------------------------------------------------

    def add_fault(self, fault: Fault | None = None, /, **spec: Any) -> Fault:
        """Inject a fault: `add_fault(path_prefix="/repos", status=500, times=2)`."""
        fault = fault or Fault(**spec)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()
            self.latency_seconds = 0.0

    def reset(self) -> None:
        """Forget recorded requests, faults and latency (not the data)."""
        with self._lock:
            self.requests.clear()
            self._bodies.clear()
            self.faults.clear()
            self.latency_seconds = 0.0

    def request_bodies(self, path_prefix: str | None = None) -> list[Any]:
        """The decoded JSON bodies of the recorded requests (whose path starts with `path_prefix`)."""
        with self._lock:
            return [
                body
                for recorded, body in zip(self.requests, self._bodies, strict=True)
                if path_prefix is None or recorded.path.startswith(path_prefix)
            ]

    def request_count(self, path_prefix: str | None = None) -> int:
        """How many API requests arrived (whose path starts with `path_prefix`)."""
        with self._lock:
            return sum(
                1 for r in self.requests if path_prefix is None or r.path.startswith(path_prefix)
            )

    # -- serving --------------------------------------------------------------------------

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        """Answer one request: control endpoints, then faults and latency, then the routes."""
        if request.path.startswith(CONTROL_PREFIX):
            return self._control(request)
        with self._lock:
            self.requests.append(RecordedRequest(request.method, request.path, dict(request.query)))
            self._bodies.append(request.body)
            latency = self.latency_seconds
            fault = next(
                (f for f in self.faults if f.applies_to(request.method, request.path)), None
            )
            if fault is not None and fault.times is not None:
                fault.times -= 1
        delay = latency + (fault.delay_seconds if fault else 0.0)
        if delay > 0:
            time.sleep(delay)
        if fault is not None and (fault.status is not None or fault.malformed):
            response = self._fault_response(request, fault)
        else:
            response = self.router.dispatch(request)
        if fault is not None and fault.transport:
            response.transport = fault.transport
            response.transport_seconds = fault.transport_seconds
        return response

    def _fault_response(self, request: SandboxRequest, fault: Fault) -> SandboxResponse:
        status = fault.status or 200
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if fault.retry_after is not None:
            retry_after = fault.retry_after
            headers["Retry-After"] = (
                str(int(retry_after)) if isinstance(retry_after, int | float) else str(retry_after)
            )
        if fault.ratelimit_reset_in is not None:
            headers["x-ratelimit-limit"] = "5000"
            headers["x-ratelimit-remaining"] = "0"
            headers["x-ratelimit-used"] = "5000"
            headers["x-ratelimit-reset"] = str(int(time.time() + fault.ratelimit_reset_in))
        headers.update(fault.headers)
        if fault.malformed:
            return SandboxResponse(status, b'{"message": "truncated', headers)
        if fault.body is not None:
            return SandboxResponse(status, fault.body, headers)
        matched = self.router.match(request.method, request.path)
        shape = matched[0].error_body if matched and matched[0].error_body else _default_error_body
        return SandboxResponse(status, shape(status, _fault_message(status, fault)), headers)

    def _control(self, request: SandboxRequest) -> SandboxResponse:
        name = request.path[len(CONTROL_PREFIX) :].strip("/")
        if (request.method, name) == ("GET", "requests"):
            with self._lock:
                recorded = [
                    {**r._asdict(), **({"body": body} if body is not None else {})}
                    for r, body in zip(self.requests, self._bodies, strict=True)
                ]
            return SandboxResponse(200, {"count": len(recorded), "requests": recorded})
        if (request.method, name) == ("POST", "reset"):
            self.reset()
            return SandboxResponse(200, {"reset": True})
        if name == "faults":
            if request.method == "GET":
                with self._lock:
                    return SandboxResponse(
                        200,
                        {
                            "faults": [asdict(f) for f in self.faults],
                            "latency_seconds": self.latency_seconds,
                        },
                    )
            if request.method == "DELETE":
                self.clear_faults()
                return SandboxResponse(200, {"faults": [], "latency_seconds": 0.0})
            if request.method == "POST":
                return self._add_faults(request.body)
        return SandboxResponse(
            404, {"message": f"unknown sandbox control {request.method} {request.path}"}
        )

    def _add_faults(self, body: Any) -> SandboxResponse:
        if isinstance(body, list):
            body = {"faults": body}
        elif isinstance(body, Mapping) and "faults" not in body and "latency_seconds" not in body:
            body = {"faults": [body]}
        if not isinstance(body, Mapping):
            return SandboxResponse(400, {"message": "expected a JSON object or list of faults"})
        try:
            added = [Fault.from_json(spec) for spec in body.get("faults") or []]
        except (TypeError, ValueError) as exc:
            return SandboxResponse(400, {"message": str(exc)})
        with self._lock:
            self.faults.extend(added)
            if "latency_seconds" in body:
                self.latency_seconds = float(body["latency_seconds"] or 0.0)
        return SandboxResponse(200, {"added": len(added), "latency_seconds": self.latency_seconds})


def _default_error_body(status: int, message: str) -> Any:
    return {"message": message}


def _fault_message(status: int, fault: Fault) -> str:
    if status == 429 or fault.ratelimit_reset_in is not None or fault.retry_after is not None:
        return "API rate limit exceeded"
    if status >= 500:
        return _REASONS.get(status, "Server Error")
    return _REASONS.get(status, "Error")


def _handler_class(sandbox: Sandbox) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        # HTTP/1.1 keeps connections alive between a client's pages.
        protocol_version = "HTTP/1.1"
        server_version = "okr-metrics-sandbox"
        # TCP_NODELAY: the headers and the body are two writes, and with Nagle's algorithm
        # the body waits for the client's delayed ACK of the headers (about 40 ms a request).
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            self._serve()

        do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

        def _serve(self) -> None:
            split = urlsplit(self.path)
            query_items = parse_qsl(split.query, keep_blank_values=True)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                self._send(SandboxResponse(400, {"message": "Problems parsing JSON"}))
                return
            host = self.headers.get("Host") or f"{sandbox.url.split('://', 1)[1]}"
            request = SandboxRequest(
                method=self.command,
                path=split.path or "/",
                query=dict(query_items),
                query_items=query_items,
                headers=self.headers,
                body=body,
                base_url=f"http://{host}",
            )
            try:
                response = sandbox.handle(request)
            except Exception:  # a bug in a handler must not kill the server
                logger.exception("sandbox handler failed on %s %s", self.command, split.path)
                response = SandboxResponse(500, {"message": "sandbox handler failed"})
            try:
                self._send(response)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up waiting (its timeout)

        def _send(self, response: SandboxResponse) -> None:
            payload = response.encoded()
            if response.transport == "reset":
                # SO_LINGER 0: close() sends a TCP reset instead of a clean end.
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.close_connection = True
                return
            self.send_response(response.status, _REASONS.get(response.status))
            headers = {"Content-Type": "application/json; charset=utf-8", **response.headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command == "HEAD":
                return
            if response.transport is None:
                self.wfile.write(payload)
                return
            self.close_connection = True
            half = payload[: len(payload) // 2]
            try:
                if response.transport == "drip":
                    for byte in range(len(payload)):
                        self.wfile.write(payload[byte : byte + 1])
                        self.wfile.flush()
                        time.sleep(response.transport_seconds)
                    return
                self.wfile.write(half)
                self.wfile.flush()
                if response.transport == "stall":
                    time.sleep(response.transport_seconds)
            except OSError:  # the client gave up on the answer: what the fault is for
                pass

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            # The request line only: never headers (they carry tokens).
            logger.debug("%s - %s", self.address_string(), format % args)

    return _Handler
