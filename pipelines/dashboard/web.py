"""The live dashboard (`okr serve`): a read-only Starlette app over the warehouse.

Every request reads the warehouse afresh (nothing is cached but the engine's pooled
connections), so the pages are current after every run. Only GET (and POST /login)
is served. With a token (`OKR_DASHBOARD_TOKEN`), every request but /login and /healthz
needs it, as `Authorization: Bearer <token>` or the cookie /login sets; anything else
gets a bare 401. Built by `create_app`, served by uvicorn from `okr serve`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, quote

from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.datastructures import Secret
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from okr_metrics.pipelines.dashboard import board, pages
from okr_metrics.pipelines.vocabulary.quarters import Quarter
from okr_metrics.warehouse.store import Warehouse

log = logging.getLogger("okr_metrics.dashboard")

COOKIE_NAME = "okr_dashboard"
# Paths served without the token: the login form and the liveness probe (no data on either).
OPEN_PATHS = ("/login", "/healthz")
_MAX_LOGIN_BODY = 8192


def cookie_value(token: str) -> str:
    """What the login cookie holds: a keyed hash of the token, never the token itself."""
    return hmac.new(token.encode(), b"okr-dashboard-session", hashlib.sha256).hexdigest()


def _headers(nonce: str = "") -> dict[str, str]:
    """No caching (the pages are live), and nothing loaded from anywhere but the page."""
    script = f"'nonce-{nonce}'" if nonce else "'none'"
    return {
        "Cache-Control": "no-store",
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src {script}; "
            "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }


class TokenGate:
    """ASGI middleware: every request but OPEN_PATHS carries the token, or gets a 401."""

    def __init__(self, app: ASGIApp, token: Secret | None):
        self.app = app
        secret = str(token) if token is not None else ""
        self._token = secret.encode() if secret else None
        self._cookie = cookie_value(secret).encode() if secret else None

    def __repr__(self) -> str:  # the token stays out of every repr
        return f"TokenGate(required={self._token is not None})"

    def allows(self, request: Request) -> bool:
        if self._token is None:
            return True
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "bearer" and given:
            return hmac.compare_digest(given.strip().encode(), self._token)
        cookie = request.cookies.get(COOKIE_NAME)
        if cookie:
            assert self._cookie is not None
            return hmac.compare_digest(cookie.encode(), self._cookie)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if self.allows(request):
            await self.app(scope, receive, send)
            return
        response = Response(
            "401 Unauthorized\n",
            status_code=401,
            media_type="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="okr-dashboard"', **_headers()},
        )
        await response(scope, receive, send)


class Dashboard:
    """The pages, over one warehouse. `order`: objective and KR ids in the definitions' order."""

    def __init__(self, warehouse: Warehouse, order: Sequence[str] = ()):
        self.warehouse = warehouse
        self.order = list(order)

    def _view(self, connection: Any, request: Request, quarter: str | None = None) -> board.View:
        params = request.query_params
        return board.resolve_view(
            connection,
            quarter=quarter or params.get("quarter") or None,
            as_of=params.get("as_of") or None,
            team=params.get("team") or None,
        )

    def _page(self, request: Request, build: Callable[[Any, str], str]) -> Response:
        """Run `build(connection, nonce)` on a fresh connection; errors become short pages."""
        nonce = secrets.token_urlsafe(16)
        try:
            self.warehouse.ensure_schema()
            with self.warehouse.engine.connect() as connection:
                body = build(connection, nonce)
        except board.BadRequest as error:
            return self._message(400, "Bad request", str(error))
        except board.NotFound as error:
            return self._message(404, "Not found", str(error))
        except SQLAlchemyError as error:
            # The URL may hold a password: name the kind of failure only.
            log.error(f"dashboard: cannot read the warehouse ({type(error).__name__})")
            return self._message(503, "Warehouse unavailable", "The warehouse cannot be read now.")
        return HTMLResponse(body, headers=_headers(nonce))

    def _message(self, status: int, heading: str, message: str) -> Response:
        view = board.View(None, None)
        body = pages.page_html("message.html", view, "", heading=heading, message=message)
        return HTMLResponse(body, status_code=status, headers=_headers())

    # -- pages ----------------------------------------------------------------

    def overview(self, request: Request) -> Response:
        def build(connection: Any, nonce: str) -> str:
            view = self._view(connection, request)
            return pages.overview_html(board.load_overview(connection, view, self.order), nonce)

        return self._page(request, build)

    def key_result(self, request: Request) -> Response:
        quarter, kr_id = request.path_params["quarter"], request.path_params["kr_id"]

        def build(connection: Any, nonce: str) -> str:
            params = request.query_params
            as_of = board.parse_as_of(params.get("as_of") or None)
            board.parse_quarter(quarter)
            # The KR lives in the path's quarter: a day outside it is moved to its edge.
            if as_of is not None and not Quarter.parse(quarter).contains(as_of):
                as_of = None
            view = board.resolve_view(
                connection, quarter=quarter, as_of=as_of, team=params.get("team") or None
            )
            page = board.load_key_result(connection, view, kr_id, self.order)
            return pages.key_result_html(page, nonce)

        return self._page(request, build)

    def weekly(self, request: Request) -> Response:
        def build(connection: Any, nonce: str) -> str:
            view = self._view(connection, request)
            weekly = board.load_weekly(connection, view, self.order)
            return pages.page_html(
                "weekly.html", view, "/weekly", nonce, weekly=weekly, delta_week=timedelta(days=6)
            )

        return self._page(request, build)

    def alignment(self, request: Request) -> Response:
        def build(connection: Any, nonce: str) -> str:
            view = self._view(connection, request)
            overview, roots = board.load_alignment(connection, view, self.order)
            return pages.page_html(
                "alignment.html",
                view,
                "/alignment",
                nonce,
                overview=overview,
                roots=roots,
                kr_href=pages.Links(view).key_result,
            )

        return self._page(request, build)

    def quarters(self, request: Request) -> Response:
        def build(connection: Any, nonce: str) -> str:
            view = self._view(connection, request)
            quarters, calibration = board.load_quarters(connection, view, self.order)
            return pages.page_html(
                "quarters.html",
                view,
                "/quarters",
                nonce,
                quarters=quarters,
                calibration=calibration,
            )

        return self._page(request, build)


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no //host) may follow a login."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def create_app(
    warehouse: Warehouse | str,
    token: str | None = None,
    order: Sequence[str] = (),
) -> Starlette:
    """The dashboard over `warehouse` (a `Warehouse` or its URL); `token`: required on
    every request but /login and /healthz when given."""
    if isinstance(warehouse, str):
        warehouse = Warehouse(warehouse)
    dashboard = Dashboard(warehouse, order)
    gate_token = token or None

    def healthz(request: Request) -> Response:
        return PlainTextResponse("ok", headers={"Cache-Control": "no-store"})

    def login_form(request: Request, failed: bool = False, status: int = 200) -> Response:
        body = pages.page_html(
            "login.html",
            board.View(None, None),
            "/login",
            failed=failed,
            required=gate_token is not None,
            next=_safe_next(request.query_params.get("next")),
        )
        return HTMLResponse(body, status_code=status, headers=_headers())

    async def login(request: Request) -> Response:
        if request.method == "GET":
            return login_form(request)
        body = await request.body()
        fields = parse_qs(body[:_MAX_LOGIN_BODY].decode("utf-8", "replace"))
        given = (fields.get("token") or [""])[0]
        target = _safe_next((fields.get("next") or [""])[0])
        if gate_token is None:
            return RedirectResponse(target, status_code=303)
        if not hmac.compare_digest(given.encode(), gate_token.encode()):
            return login_form(request, failed=True, status=401)
        response = RedirectResponse(quote(target, safe="/?=&%"), status_code=303)
        response.set_cookie(
            COOKIE_NAME,
            cookie_value(gate_token),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    routes = [
        Route("/", dashboard.overview, methods=["GET"]),
        Route("/kr/{quarter}/{kr_id}", dashboard.key_result, methods=["GET"]),
        Route("/weekly", dashboard.weekly, methods=["GET"]),
        Route("/alignment", dashboard.alignment, methods=["GET"]),
        Route("/quarters", dashboard.quarters, methods=["GET"]),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    # A Secret, so that no repr of the middleware stack shows the token.
    app.add_middleware(TokenGate, token=Secret(gate_token) if gate_token else None)
    return app
