"""The HTTP half of the kit: the client (retries, rate limits, errors, redaction), the
paginators, the vendors' error shapes, and `HttpConnector` (auth, paging a declaration)."""

from __future__ import annotations

import base64
import email.utils
import json
import logging
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import ClassVar, Literal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from okr_metrics.connectors.base import SourceEnv, SourceError, SourceSettings
from okr_metrics.connectors.http import (
    DEFAULT_LIMITS,
    ApiError,
    Basic,
    Bearer,
    HeaderAuth,
    HostLimits,
    HttpClient,
    HttpConnector,
    LinkHeaderPaginator,
    NewestFirst,
    NextTokenPaginator,
    NextUrlPaginator,
    OffsetPaginator,
    Paginator,
    Query,
    numbered_pages,
    said_in,
    vendor_limits,
)
from okr_metrics.connectors.kit import Record, SeriesRequest, daily_counts
from okr_metrics.connectors.params import MetricParams

FIXTURES = Path(__file__).parents[1] / "fixtures"
TOKEN = "ghp_s3cr3tT0kenValue42"
NOW = 1_800_000_000.0


class Sleeps(list):
    """An injected `sleep` that records the waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(httpserver: HTTPServer, sleeps: Sleeps) -> HttpClient:
    return make_client(httpserver, sleeps)


def make_client(httpserver: HTTPServer, sleeps: Sleeps, **options) -> HttpClient:
    options = {
        "headers": {"Authorization": f"Bearer {TOKEN}"},
        "secrets": [TOKEN],
        "token_env": "GITHUB_TOKEN",
        "sleep": sleeps,
        "clock": lambda: NOW,
        "jitter": lambda: 0.0,
        **options,
    }
    return HttpClient("github", httpserver.url_for("/"), **options)


def json_response(body, status: int = 200, headers: dict | None = None) -> Response:
    return Response(
        json.dumps(body), status=status, headers=headers, content_type="application/json"
    )


def sequence(*responses: Response):
    """A handler answering with each response in turn (the last one again when exhausted)."""
    remaining = list(responses)

    def handler(request: Request) -> Response:
        return remaining.pop(0) if len(remaining) > 1 else remaining[0]

    return handler


# --- retries -------------------------------------------------------------------------------


def test_retries_server_errors_then_succeeds(httpserver, client, sleeps, caplog):
    httpserver.expect_request("/flaky").respond_with_handler(
        sequence(
            json_response({"message": "Server Error"}, 500),
            json_response({"message": "Bad Gateway"}, 502),
            json_response({"ok": True}),
        )
    )
    with caplog.at_level(logging.WARNING, logger="okr_metrics.http"):
        assert client.request_json("GET", "/flaky") == {"ok": True}
    # Exponential backoff: 1 s then 2 s, scaled by the jitter into [0.5, 1].
    assert sleeps == [0.5, 1.0]
    retries = [r for r in caplog.records if r.name == "okr_metrics.http"]
    assert len(retries) == 2
    assert "HTTP 500" in retries[0].getMessage() and "retrying in 0.5 s" in retries[0].getMessage()


def test_backoff_grows_and_gives_up_with_the_last_problem(httpserver, sleeps):
    client = make_client(httpserver, sleeps, max_attempts=4, jitter=lambda: 1.0)
    httpserver.expect_request("/down").respond_with_json({"message": "Unavailable"}, status=503)
    with pytest.raises(SourceError) as failure:
        client.request("GET", "/down")
    assert sleeps == [1.0, 2.0, 4.0]
    assert str(failure.value) == (
        "github: gave up after 4 attempts on GET /down: last server error (HTTP 503)"
    )


def test_429_waits_retry_after_seconds(httpserver, client, sleeps):
    httpserver.expect_request("/limited").respond_with_handler(
        sequence(
            json_response({"message": "slow down"}, 429, {"Retry-After": "7"}),
            json_response([1, 2]),
        )
    )
    assert client.request_json("GET", "/limited") == [1, 2]
    assert sleeps == [7.0]


def test_429_waits_until_a_retry_after_date(httpserver, client, sleeps):
    later = email.utils.formatdate(NOW + 12, usegmt=True)
    httpserver.expect_request("/limited").respond_with_handler(
        sequence(json_response({}, 429, {"Retry-After": later}), json_response([]))
    )
    client.request("GET", "/limited")
    assert sleeps == [12.0]


def quota_403(response) -> ApiError:
    """A vendor whose 403 with no requests left is a rate limit (its error shape says so)."""
    limited = response.status_code == 403 and response.headers.get("x-ratelimit-remaining") == "0"
    return ApiError(said_in(response, "message"), rate_limited=limited)


def test_403_the_error_shape_calls_a_rate_limit_waits_until_reset(httpserver, sleeps):
    client = make_client(httpserver, sleeps, error_reason=quota_403)
    exhausted = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 42)}
    httpserver.expect_request("/repos/a/b/pulls").respond_with_handler(
        sequence(
            json_response({"message": "API rate limit exceeded for user ID 1."}, 403, exhausted),
            json_response([]),
        )
    )
    assert client.request_json("GET", "/repos/a/b/pulls") == []
    assert sleeps == [42.0]


def test_429_without_hints_backs_off(httpserver, client, sleeps):
    httpserver.expect_request("/limited").respond_with_handler(
        sequence(json_response({}, 429), json_response([]))
    )
    client.request("GET", "/limited")
    assert sleeps == [0.5]


def test_a_wait_beyond_max_wait_fails_instead_of_hanging(httpserver, client, sleeps):
    httpserver.expect_request("/limited").respond_with_json(
        {"message": "rate limited"}, status=429, headers={"Retry-After": "3600"}
    )
    with pytest.raises(SourceError) as failure:
        client.request("GET", "/limited")
    assert sleeps == []
    message = str(failure.value)
    assert "rate limited (HTTP 429)" in message
    assert "3600 s" in message and "max_wait 300 s" in message


def test_timeouts_are_retried_then_fail_clearly(httpserver, sleeps):
    client = make_client(httpserver, sleeps, timeout=(1, 0.1), max_attempts=2)

    def slow(request: Request) -> Response:
        time.sleep(0.25)
        return json_response([])

    httpserver.expect_request("/slow").respond_with_handler(slow)
    with pytest.raises(SourceError) as failure:
        client.request("GET", "/slow")
    assert len(sleeps) == 1
    assert str(failure.value) == (
        "github: gave up after 2 attempts on GET /slow: last timeout (limit connect 1 s, read 0.1 s)"
    )


def test_connection_errors_are_retried_then_fail_clearly(sleeps):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = HttpClient(
        "github",
        f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        max_attempts=3,
        sleep=sleeps,
    )
    with pytest.raises(SourceError) as failure:
        client.request("GET", "/anything", params={"access_token": TOKEN})
    assert len(sleeps) == 2
    assert "gave up after 3 attempts on GET /anything: last connection error" in str(failure.value)
    # Nothing of the request (its URL, its headers) hangs off the error.
    assert failure.value.__cause__ is None and failure.value.__context__ is None
    assert TOKEN not in "".join(traceback.format_exception(failure.value))


# --- errors that are not retried --------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_authentication_errors_name_the_token_variable(httpserver, client, sleeps, status):
    httpserver.expect_request("/user").respond_with_json(
        {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"},
        status=status,
    )
    with pytest.raises(SourceError) as failure:
        client.request("GET", "/user")
    assert str(failure.value).startswith(
        f"github: authentication failed (HTTP {status}): check GITHUB_TOKEN"
    )
    assert "Bad credentials" in str(failure.value)
    assert sleeps == []


def test_not_found_names_the_path(httpserver, client):
    httpserver.expect_request("/repos/acme/gone/pulls").respond_with_json(
        {"message": "Not Found"}, status=404
    )
    with pytest.raises(SourceError) as failure:
        client.request("GET", "/repos/acme/gone/pulls", params={"per_page": 100})
    assert failure.value.source == "github"
    assert failure.value.reason.startswith("not found (HTTP 404): /repos/acme/gone/pulls")


def test_other_client_errors_quote_the_api(httpserver, client):
    errors = json.loads((FIXTURES / "github" / "errors.json").read_text())
    recorded = next(i for i in errors if i["status"] == 422)
    httpserver.expect_request("/labels").respond_with_json(recorded["response"], status=422)
    with pytest.raises(SourceError) as failure:
        client.request("POST", "/labels", json={"name": "x", "color": "nope"})
    assert str(failure.value) == (
        "github: request failed (HTTP 422) on POST /labels (the API says: Validation Failed)"
    )


def test_malformed_json_is_a_clear_error(httpserver, client):
    httpserver.expect_request("/broken").respond_with_data(
        '[{"number": 1', content_type="application/json"
    )
    with pytest.raises(SourceError) as failure:
        client.request_json("GET", "/broken")
    assert str(failure.value) == (
        "github: malformed response body from /broken "
        """(HTTP 200, not JSON: application/json, 13 bytes: '[{"number": 1')"""
    )


# --- redaction --------------------------------------------------------------------------------


def test_the_token_never_leaks_even_when_the_server_echoes_it(httpserver, sleeps, caplog):
    client = make_client(httpserver, sleeps, max_attempts=2)

    def echo(status: int):
        def handler(request: Request) -> Response:
            said = f"you sent {request.headers.get('Authorization')} to {request.full_path}"
            return json_response({"message": said}, status, {"Retry-After": "1"})

        return handler

    caplog.set_level(logging.DEBUG)
    messages = []
    for status in (401, 404, 422, 429, 500):
        path = f"/echo/{status}/{TOKEN}"
        httpserver.expect_request(path).respond_with_handler(echo(status))
        with pytest.raises(SourceError) as failure:
            client.request("GET", path, params={"q": TOKEN})
        messages.append(str(failure.value))
        assert "***" in str(failure.value)
        assert failure.value.__cause__ is None
        assert TOKEN not in "".join(traceback.format_exception(failure.value))
    assert all(TOKEN not in message for message in messages)
    # Every log line of this process (the test server's own access log aside).
    ours = [r for r in caplog.records if not r.name.startswith("werkzeug")]
    assert any(r.name.startswith("urllib3") for r in ours)
    assert all(TOKEN not in r.getMessage() for r in ours)
    assert "you sent *** to /echo/401/***" in messages[0]
    assert "retrying" in caplog.text


# --- pagination --------------------------------------------------------------------------------


def test_link_header_pages_are_followed_as_given_and_fetched_lazily(httpserver, client):
    def page(number: int, next_path: str | None) -> Response:
        headers = {"Link": f'<{httpserver.url_for(next_path)}>; rel="next"'} if next_path else {}
        return json_response([{"n": number}], 200, headers)

    httpserver.expect_request("/repos/a/b/issues").respond_with_response(
        page(1, "/repositories/7/issues?per_page=1&page=2")
    )
    httpserver.expect_request("/repositories/7/issues").respond_with_handler(
        lambda request: page(
            int(request.args["page"]),
            "/repositories/7/issues?per_page=1&page=3" if request.args["page"] == "2" else None,
        )
    )
    pages = client.paginate(
        Query("GET", "/repos/a/b/issues", params={"per_page": 1}, paginator=LinkHeaderPaginator())
    )
    assert next(pages) == [{"n": 1}]
    assert len(httpserver.log) == 1  # the next page is fetched only when asked for
    assert list(pages) == [[{"n": 2}], [{"n": 3}]]
    queries = [request.query_string.decode() for request, _ in httpserver.log]
    assert queries == ["per_page=1", "per_page=1&page=2", "per_page=1&page=3"]


def test_a_repeated_next_link_is_a_loop(httpserver, client):
    again = httpserver.url_for("/items?page=2")
    httpserver.expect_request("/items").respond_with_json(
        [{"n": 1}], headers={"Link": f'<{again}>; rel="next"'}
    )
    with pytest.raises(SourceError, match="pagination loop"):
        list(client.paginate(Query("GET", "/items", paginator=LinkHeaderPaginator())))


def test_links_to_another_host_are_not_followed(httpserver, client):
    httpserver.expect_request("/items").respond_with_json(
        [{"n": 1}], headers={"Link": '<https://evil.example.com/items?page=2>; rel="next"'}
    )
    with pytest.raises(SourceError, match="refusing to follow a link to another host"):
        list(client.paginate(Query("GET", "/items", paginator=LinkHeaderPaginator())))


def test_next_token_paginator_jira_shape(httpserver, client):
    pages = {
        None: {"issues": [{"key": "A-1"}, {"key": "A-2"}], "nextPageToken": "t2", "isLast": False},
        "t2": {"issues": [{"key": "A-3"}], "nextPageToken": "t3"},
        "t3": {"issues": [{"key": "A-4"}], "isLast": True},
    }
    httpserver.expect_request("/rest/api/3/search/jql").respond_with_handler(
        lambda request: json_response(pages[request.args.get("nextPageToken")])
    )
    found = client.paginate(
        Query(
            "GET",
            "/rest/api/3/search/jql",
            params={"jql": "project = A", "maxResults": 2},
            paginator=NextTokenPaginator("nextPageToken", "nextPageToken", last_path="isLast"),
            records=lambda body: body["issues"],
        ),
    )
    assert [issue["key"] for page in found for issue in page] == ["A-1", "A-2", "A-3", "A-4"]
    assert all(request.args["jql"] == "project = A" for request, _ in httpserver.log)


def test_next_token_paginator_detects_a_repeated_token(httpserver, client):
    httpserver.expect_request("/search").respond_with_json(
        {"issues": [{"key": "A-1"}], "nextPageToken": "same"}
    )
    with pytest.raises(SourceError, match="pagination loop"):
        list(
            client.paginate(
                Query(
                    "GET",
                    "/search",
                    paginator=NextTokenPaginator("nextPageToken", "nextPageToken"),
                    records=lambda b: b["issues"],
                ),
            )
        )


def test_offset_paginator_ga4_shape(httpserver, client):
    rows = [{"dimensionValues": [{"value": f"2026100{i}"}]} for i in range(1, 6)]

    def run_report(request: Request) -> Response:
        body = request.get_json()
        offset, limit = body["offset"], body["limit"]
        return json_response({"rows": rows[offset : offset + limit], "rowCount": len(rows)})

    httpserver.expect_request("/v1beta/properties/1:runReport", method="POST").respond_with_handler(
        run_report
    )
    found = client.paginate(
        Query(
            "POST",
            "/v1beta/properties/1:runReport",
            json={"metrics": [{"name": "activeUsers"}]},
            paginator=OffsetPaginator(limit=2, records_path="rows", total_path="rowCount"),
            records=lambda body: body.get("rows", []),
        ),
    )
    assert sum(len(page) for page in found) == 5
    offsets = [request.get_json()["offset"] for request, _ in httpserver.log]
    assert offsets == [0, 2, 4]


def test_next_url_paginator_salesforce_shape(httpserver, client):
    base = "/services/data/v61.0/query"
    httpserver.expect_request(base).respond_with_json(
        {"done": False, "records": [{"Id": "1"}], "nextRecordsUrl": f"{base}/01gX-2000"}
    )
    httpserver.expect_request(f"{base}/01gX-2000").respond_with_json(
        {"done": True, "records": [{"Id": "2"}]}
    )
    found = client.paginate(
        Query(
            "GET",
            base,
            params={"q": "SELECT Id FROM Opportunity"},
            paginator=NextUrlPaginator("nextRecordsUrl", done_path="done"),
            records=lambda body: body["records"],
        ),
    )
    assert [r["Id"] for page in found for r in page] == ["1", "2"]
    assert httpserver.log[1][0].query_string == b""


def test_after_cursor_paginator_hubspot_shape(httpserver, client):
    pages = {
        None: {"results": [{"id": "1"}], "paging": {"next": {"after": "1"}}},
        "1": {"results": [{"id": "2"}], "paging": {"next": {"after": "2"}}},
        "2": {"results": [{"id": "3"}]},
    }
    httpserver.expect_request("/crm/v3/objects/deals/search", method="POST").respond_with_handler(
        lambda request: json_response(pages[request.get_json().get("after")])
    )
    found = client.paginate(
        Query(
            "POST",
            "/crm/v3/objects/deals/search",
            json={"filterGroups": [], "limit": 1},
            paginator=NextTokenPaginator("paging.next.after", "after", where="json"),
            records=lambda body: body["results"],
        ),
    )
    assert [r["id"] for page in found for r in page] == ["1", "2", "3"]
    assert [request.get_json().get("after") for request, _ in httpserver.log] == [None, "1", "2"]


def test_paginator_base_class_needs_a_next_rule():
    with pytest.raises(NotImplementedError):
        Paginator().next_request(None, None, None)  # type: ignore[arg-type]


# --- the vendor's error shape -------------------------------------------------------------------


def test_an_error_shape_reason_fails_at_once(httpserver, sleeps):
    def shape(response) -> ApiError:
        if response.status_code == 403 and said_in(response, "error.status") == "DENIED":
            return ApiError(reason=f"denied (HTTP 403): ask for access to {TOKEN}")
        return ApiError(said_in(response, "error.message"))

    client = make_client(httpserver, sleeps, error_reason=shape)
    httpserver.expect_request("/denied").respond_with_json(
        {"error": {"status": "DENIED", "message": "no"}}, status=403, headers={"Retry-After": "1"}
    )
    httpserver.expect_request("/bad").respond_with_json(
        {"error": {"status": "INVALID", "message": "no such field"}}, status=400
    )
    with pytest.raises(SourceError) as denied:
        client.request("GET", "/denied")
    assert str(denied.value) == "github: denied (HTTP 403): ask for access to ***"
    with pytest.raises(SourceError) as bad:
        client.request("GET", "/bad")
    assert (
        str(bad.value)
        == "github: request failed (HTTP 400) on GET /bad (the API says: no such field)"
    )
    assert sleeps == []


def test_without_an_error_shape_a_403_is_not_a_rate_limit(httpserver, client, sleeps):
    httpserver.expect_request("/limited").respond_with_json(
        {"message": "API rate limit exceeded"}, status=403, headers={"Retry-After": "1"}
    )
    with pytest.raises(SourceError, match=r"authentication failed \(HTTP 403\)"):
        client.request("GET", "/limited")
    assert sleeps == []


@pytest.mark.parametrize(
    ("body", "paths", "said"),
    [
        ({"message": "Not Found"}, ("message",), "Not Found"),
        ({"errorMessages": ["a", "b"], "errors": {}}, ("message", "errorMessages"), "a; b"),
        ({"errorMessages": [], "errors": {"jql": "x"}}, ("message", "errorMessages"), ""),
        ([{"message": "Session expired", "errorCode": "X"}], ("0.message",), "Session expired"),
        ({"error": {"message": "bad"}}, ("message", "error.message"), "bad"),
        ("not json", ("message",), ""),
    ],
)
def test_said_in_reads_the_first_text_found(httpserver, body, paths, said):
    if isinstance(body, str):
        httpserver.expect_request("/e").respond_with_data(body, status=400)
    else:
        httpserver.expect_request("/e").respond_with_json(body, status=400)
    assert said_in(requests.get(httpserver.url_for("/e"), timeout=5), *paths) == said


# --- the connector of an HTTP API --------------------------------------------------------------


class PagedMetric(MetricParams):
    source: Literal["paged"]


class PagedConnector(HttpConnector):
    """A declaration of the least an HTTP source says."""

    source: ClassVar[str] = "paged"
    params_model: ClassVar[type[MetricParams]] = PagedMetric
    env: ClassVar[SourceEnv] = SourceEnv(
        base_url="PAGED_URL", token="PAGED_TOKEN", user="PAGED_USER"
    )

    def fetch(self, request):
        query = Query("GET", "/items", LinkHeaderPaginator(), stop=lambda page: len(page) < 2)
        moments = (
            Record(self.source, item, "item", item.get("id")).moment("at")
            for item in self.records(query)
        )
        return daily_counts(request.window, moments)


@pytest.mark.parametrize(
    ("auth", "header", "hint"),
    [
        (Bearer(), ("Authorization", f"Bearer {TOKEN}"), "PAGED_TOKEN"),
        (
            Basic(),
            ("Authorization", "Basic " + base64.b64encode(f"bot:{TOKEN}".encode()).decode()),
            "PAGED_USER and PAGED_TOKEN",
        ),
        (HeaderAuth("X-Api-Key"), ("X-Api-Key", TOKEN), "PAGED_TOKEN"),
    ],
)
def test_the_declared_auth_builds_the_client(monkeypatch, auth, header, hint):
    monkeypatch.setattr(PagedConnector, "auth", auth)
    connector = PagedConnector.from_settings(
        SourceSettings(base_url="https://api.example.com/", token=TOKEN, user="bot"), max_attempts=2
    )
    client = connector.client
    assert client.session.headers[header[0]] == header[1]
    assert client.session.headers["Accept"] == "application/json"
    assert (client.base_url, client.token_env, client.max_attempts) == (
        "https://api.example.com",
        hint,
        2,
    )
    assert client.redact(f"a {header[1]} b") == "a *** b"


def test_records_stop_when_the_query_says_so_and_the_metric_is_checked(httpserver):
    pages = {
        None: (
            [{"id": 1, "at": "2026-10-01T10:00:00Z"}, {"id": 2, "at": "2026-10-02T23:30:00Z"}],
            "2",
        ),
        "2": ([{"id": 3, "at": "2026-10-02T01:00:00+02:00"}], "3"),
        "3": ([{"id": 4, "at": "2026-10-02T02:00:00Z"}], None),
    }

    def handler(request: Request) -> Response:
        items, following = pages[request.args.get("page")]
        link = {"Link": f'<{httpserver.url_for("/items")}?page={following}>; rel="next"'}
        return json_response(items, headers=link if following else {})

    httpserver.expect_request("/items").respond_with_handler(handler)
    connector = PagedConnector.from_settings(
        SourceSettings(base_url=httpserver.url_for("/"), token=TOKEN)
    )
    request = SeriesRequest.of(
        PagedMetric(source="paged"), date(2026, 10, 1), date(2026, 10, 3), "Europe/Oslo"
    )
    series = connector.daily_series(request)
    assert dict(zip(series["date"], series["value"], strict=True)) == {
        date(2026, 10, 1): 1.0,
        date(2026, 10, 2): 1.0,  # 01:00 +02:00 is 2026-10-01T23:00Z, Oslo's 2 October
        date(2026, 10, 3): 1.0,  # 23:30Z is 01:30 on 3 October in Oslo
    }
    assert len(httpserver.log) == 2  # the short second page stopped the reading
    with pytest.raises(TypeError, match="PagedConnector needs a PagedMetric, not OtherMetric"):
        connector.daily_series(
            SeriesRequest.of(OtherMetric(source="other"), date(2026, 10, 1), date(2026, 10, 1))
        )


class OtherMetric(MetricParams):
    source: Literal["other"]


def test_an_unreadable_record_is_one_line_naming_record_field_and_value(httpserver):
    httpserver.expect_request("/items").respond_with_json([{"id": 9, "at": "yesterday"}])
    connector = PagedConnector.from_settings(SourceSettings(base_url=httpserver.url_for("/")))
    request = SeriesRequest.of(PagedMetric(source="paged"), date(2026, 10, 1), date(2026, 10, 1))
    with pytest.raises(SourceError) as failure:
        connector.daily_series(request)
    assert str(failure.value) == "paged: item 9: at 'yesterday' is not a timestamp"


# --- several requests at once: the per-host limiter and page fan-out ----------------------------


class Gauge:
    """Counts the requests a server is answering at once (each held `seconds`)."""

    def __init__(self, seconds: float = 0.05) -> None:
        self.seconds = seconds
        self.lock = threading.Lock()
        self.now = self.most = 0
        self.starts: list[float] = []

    def __call__(self, respond):
        def handler(request: Request) -> Response:
            with self.lock:
                self.now += 1
                self.most = max(self.most, self.now)
                self.starts.append(time.monotonic())
            try:
                time.sleep(self.seconds)
                return respond(request)
            finally:
                with self.lock:
                    self.now -= 1

        return handler


@pytest.fixture
def threaded_server() -> Iterator[Callable[[], HTTPServer]]:
    """Fresh servers answering requests on threads of their own (each its own host:port,
    so its own limiter)."""
    started: list[HTTPServer] = []

    def start() -> HTTPServer:
        server = HTTPServer(threaded=True)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.clear()
        server.stop()


def run_at_once(calls: list[Callable[[], object]]) -> list[object]:
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return [future.result() for future in [pool.submit(call) for call in calls]]


def test_clients_of_one_host_share_its_limit_of_requests_in_flight(threaded_server):
    server = threaded_server()
    gauge = Gauge(0.1)
    server.expect_request("/items").respond_with_handler(gauge(lambda r: json_response([1])))
    limits = HostLimits(max_in_flight=3)
    # Two clients of the same host and limits, on six threads: never more than three out.
    first = HttpClient("github", server.url_for("/"), limits=limits, max_attempts=1)
    second = HttpClient("jira", server.url_for("/"), limits=HostLimits(3), max_attempts=1)
    assert second.limiter is first.limiter
    # A source naming other limits keeps its own on that host (one sandbox, every API).
    other = HttpClient("hubspot", server.url_for("/"), limits=HostLimits(2), max_attempts=1)
    assert other.limiter is not first.limiter
    assert other.limiter.limits.max_in_flight == 2
    calls = [lambda c=client: c.request_json("GET", "/items") for client in [first, second] * 6]
    assert run_at_once(calls) == [[1]] * 12
    assert gauge.most == 3  # side by side, and within the host's limit
    assert first.limiter.most_in_flight == 3 and first.limiter.in_flight == 0


def test_a_per_second_budget_spaces_the_requests(threaded_server):
    server = threaded_server()
    gauge = Gauge(0.0)
    server.expect_request("/search").respond_with_handler(gauge(lambda r: json_response({})))
    client = HttpClient(
        "hubspot",
        server.url_for("/"),
        limits=HostLimits(max_in_flight=8, per_second=20),
        max_attempts=1,
    )
    began = time.monotonic()
    run_at_once([lambda: client.request_json("POST", "/search")] * 8)
    # 20 a second, spaced evenly: the k-th request to arrive came k / 20 s after the start
    # or later, not in a burst of eight.
    arrived = sorted(start - began for start in gauge.starts)
    assert len(arrived) == 8
    assert all(at >= k / 20 - 0.002 for k, at in enumerate(arrived)), arrived


def test_a_per_hour_budget_waits_for_the_oldest_request_to_age(threaded_server):
    server = threaded_server()
    server.expect_request("/items").respond_with_json([])
    sleeps = Sleeps()
    client = HttpClient(
        "github",
        server.url_for("/"),
        limits=HostLimits(max_in_flight=1, per_hour=2),
        sleep=sleeps,
        max_attempts=1,
    )
    for _ in range(3):
        client.request_json("GET", "/items")
    # The third request of the hour waits until the first is an hour old.
    assert len(sleeps) == 1 and 3590 < sleeps[0] <= 3600


def test_a_rate_limit_holds_its_own_host_and_never_another(threaded_server):
    limited, other = threaded_server(), threaded_server()
    limited.expect_request("/slow").respond_with_handler(
        sequence(
            json_response({"message": "slow down"}, 429, {"Retry-After": "1"}), json_response(1)
        )
    )
    limited.expect_request("/later").respond_with_json(2)
    other_gauge = Gauge(0.0)
    other.expect_request("/fast").respond_with_handler(other_gauge(lambda r: json_response(3)))
    waiting = HttpClient("github", limited.url_for("/"))
    beside = HttpClient("github", limited.url_for("/"))
    elsewhere = HttpClient("jira", other.url_for("/"))
    began = time.monotonic()
    finished: dict[str, float] = {}

    def timed(name: str, call: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            value = call()
            finished[name] = time.monotonic() - began
            return value

        return run

    def later() -> object:
        time.sleep(0.3)  # once the first request is sleeping out the 429
        return beside.request_json("GET", "/later")

    results = run_at_once(
        [
            timed("limited", lambda: waiting.request_json("GET", "/slow")),
            timed("beside", later),
            timed("elsewhere", lambda: [elsewhere.request_json("GET", "/fast") for _ in range(5)]),
        ]
    )
    assert results == [1, 2, [3] * 5]
    assert finished["limited"] >= 1.0
    # The other request to the limited host waited for the hold; the other host did not.
    assert finished["beside"] >= 1.0
    assert finished["elsewhere"] < 0.9 and len(other_gauge.starts) == 5


def github_list(server: HTTPServer, items: list[int], per_page: int, *, last: bool = True):
    """A GitHub-shaped list endpoint: `page`/`per_page`, next and last links (rewritten
    to /repositories/7/...), each answer held a little so pages overlap."""
    gauge = Gauge(0.05)

    def respond(request: Request) -> Response:
        page = int(request.args.get("page", 1))
        pages = max(1, -(-len(items) // per_page))
        links = []

        def url(number: int) -> str:
            return server.url_for(f"/repositories/7/issues?per_page={per_page}&page={number}")

        if page < pages:
            links.append(f'<{url(page + 1)}>; rel="next"')
            if last:
                links.append(f'<{url(pages)}>; rel="last"')
        headers = {"Link": ", ".join(links)} if links else {}
        return json_response(items[(page - 1) * per_page : page * per_page], 200, headers)

    server.expect_request("/repos/a/b/issues").respond_with_handler(gauge(respond))
    server.expect_request("/repositories/7/issues").respond_with_handler(gauge(respond))
    return gauge


def listing(per_page: int) -> Query:
    return Query("GET", "/repos/a/b/issues", LinkHeaderPaginator(), params={"per_page": per_page})


def test_numbered_pages_are_fetched_side_by_side_and_give_what_page_by_page_gives(
    threaded_server,
):
    items = list(range(1, 48))
    numbered, chained = threaded_server(), threaded_server()
    fanned = github_list(numbered, items, per_page=5)
    followed = github_list(chained, items, per_page=5, last=False)  # no rel="last": one by one
    limits = HostLimits(max_in_flight=4)
    pages = list(HttpClient("github", numbered.url_for("/"), limits=limits).paginate(listing(5)))
    one_by_one = list(
        HttpClient("github", chained.url_for("/"), limits=limits).paginate(listing(5))
    )
    assert pages == one_by_one == [items[i : i + 5] for i in range(0, 47, 5)]
    assert len(numbered.log) == len(chained.log) == 10
    assert followed.most == 1
    assert fanned.most == 4  # pages 2..10 side by side, four at a time
    queries = sorted(request.query_string.decode() for request, _ in numbered.log[1:])
    assert queries == sorted(f"per_page=5&page={page}" for page in range(2, 11))


def test_a_list_that_grew_while_read_is_read_to_its_new_end(threaded_server):
    server = threaded_server()
    items = list(range(1, 12))
    # The first page names page 3 as the last; page 3 then names a fourth.
    first = json_response(
        items[:3],
        headers={
            "Link": f'<{server.url_for("/l?page=2")}>; rel="next", '
            f'<{server.url_for("/l?page=3")}>; rel="last"'
        },
    )
    server.expect_request("/l", query_string="").respond_with_response(first)
    server.expect_request("/l", query_string="page=2").respond_with_json(items[3:6])
    server.expect_request("/l", query_string="page=3").respond_with_response(
        json_response(items[6:9], headers={"Link": f'<{server.url_for("/l?page=4")}>; rel="next"'})
    )
    server.expect_request("/l", query_string="page=4").respond_with_json(items[9:])
    client = HttpClient("github", server.url_for("/"))
    assert list(client.paginate(Query("GET", "/l", LinkHeaderPaginator()))) == [
        [1, 2, 3],
        [4, 5, 6],
        [7, 8, 9],
        [10, 11],
    ]


def test_the_loop_guard_holds_across_numbered_pages(threaded_server):
    server = threaded_server()
    links = (
        f'<{server.url_for("/l?page=2")}>; rel="next", <{server.url_for("/l?page=3")}>; rel="last"'
    )
    server.expect_request("/l", query_string="").respond_with_json([1], headers={"Link": links})
    server.expect_request("/l", query_string="page=2").respond_with_json([2])
    # The last page points back to page 2, already read.
    server.expect_request("/l", query_string="page=3").respond_with_json(
        [3], headers={"Link": f'<{server.url_for("/l?page=2")}>; rel="next"'}
    )
    client = HttpClient("github", server.url_for("/"))
    pages = client.paginate(Query("GET", "/l", LinkHeaderPaginator()))
    assert [next(pages), next(pages), next(pages)] == [[1], [2], [3]]
    with pytest.raises(SourceError, match="pagination loop"):
        next(pages)


def test_a_numbered_page_that_fails_fails_the_query_after_the_pages_before_it(
    threaded_server, sleeps
):
    server = threaded_server()
    links = (
        f'<{server.url_for("/l?page=2")}>; rel="next", <{server.url_for("/l?page=4")}>; rel="last"'
    )
    server.expect_request("/l", query_string="").respond_with_json([1], headers={"Link": links})
    server.expect_request("/l", query_string="page=2").respond_with_json([2])
    server.expect_request("/l", query_string="page=3").respond_with_json({"message": "gone"}, 404)
    server.expect_request("/l", query_string="page=4").respond_with_json([4])
    client = HttpClient("github", server.url_for("/"), sleep=sleeps)
    pages = client.paginate(Query("GET", "/l", LinkHeaderPaginator()))
    assert [next(pages), next(pages)] == [[1], [2]]
    with pytest.raises(SourceError, match=r"not found \(HTTP 404\): /l \(the API says: gone\)"):
        next(pages)


# --- newest-first lists: the pages the stamps say they need, side by side -----------------------

T0 = datetime(2026, 9, 30, 12, 0, tzinfo=timezone.utc)


def stamp(item) -> datetime | None:
    value = item.get("updated_at")
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def newest_first_list(
    server: HTTPServer,
    stamps: list[datetime],
    per_page: int,
    *,
    last: bool = True,
    hold: float = 0.05,
    failing: int | None = None,
) -> tuple[Gauge, list[int]]:
    """A GitHub-shaped list of items stamped `stamps` (newest first): `page`/`per_page`,
    next and last links to /repositories/7/pulls, each answer held `hold` s; page
    `failing` answers 404. Returns the gauge of requests at once and the pages asked."""
    gauge = Gauge(hold)
    asked: list[int] = []
    items = [
        {"id": number, "updated_at": moment.strftime("%Y-%m-%dT%H:%M:%SZ")}
        for number, moment in enumerate(stamps, start=1)
    ]
    pages = max(1, -(-len(items) // per_page))

    def respond(request: Request) -> Response:
        page = int(request.args.get("page", 1))
        asked.append(page)
        if page == failing:
            return json_response({"message": "gone"}, 404)

        def url(number: int) -> str:
            return server.url_for(f"/repositories/7/pulls?per_page={per_page}&page={number}")

        links = []
        if page < pages:
            links.append(f'<{url(page + 1)}>; rel="next"')
            if last:
                links.append(f'<{url(pages)}>; rel="last"')
        headers = {"Link": ", ".join(links)} if links else {}
        return json_response(items[(page - 1) * per_page : page * per_page], 200, headers)

    server.expect_request("/repos/a/b/pulls").respond_with_handler(gauge(respond))
    server.expect_request("/repositories/7/pulls").respond_with_handler(gauge(respond))
    return gauge, asked


def newest_first(since: datetime, per_page: int = 5) -> Query:
    return Query(
        "GET",
        "/repos/a/b/pulls",
        LinkHeaderPaginator(),
        params={"per_page": per_page},
        stop=NewestFirst(stamp, since),
    )


# One item an hour, newest first: page p (of 5) holds the items T0 - 5(p-1)h .. T0 - (5p-1)h.
HOURLY = [T0 - timedelta(hours=i) for i in range(100)]
# Page 7 (T0-30h .. T0-34h) is the first to end before T0-32h30: pages 1 to 7 are needed.
HOURLY_SINCE = T0 - timedelta(hours=32, minutes=30)


def at(hours: float) -> dict:
    """An item stamped `hours` after T0."""
    return {"updated_at": (T0 + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")}


def test_the_stop_rule_ends_after_the_page_that_reaches_since():
    rule = NewestFirst(stamp, T0)
    assert rule([at(2), at(1), at(0)]) is False  # T0 itself is not before T0
    assert rule([at(2), at(1), at(-1)]) is True
    assert rule([at(2), at(-1), {"updated_at": None}]) is True  # the last stamped item decides
    assert rule([{"updated_at": None}]) is False  # nothing stamped: read on
    assert rule([]) is True
    assert rule.span([{}, at(2), at(1), at(-1), {}]) == (
        T0 + timedelta(hours=2),
        T0 - timedelta(hours=1),
    )
    assert rule.span([{}]) is None


def test_the_estimate_goes_by_the_slower_pace_less_a_margin():
    rule = NewestFirst(stamp, HOURLY_SINCE)
    span = lambda page: (HOURLY[5 * (page - 1)], HOURLY[5 * page - 1])  # noqa: E731
    # After page 1 (4 h a page so far), 28.5 h to go: 7.1 pages, less 40%: 4, and the next.
    assert rule.pages_ahead([span(1)]) == 1 + 4
    # After page 5: the last four pages took 5 h each (slower than the 4.8 h of all five);
    # 8.5 h to go: 1.7 pages, less 40%: 1, and the next.
    assert rule.pages_ahead([span(p) for p in range(1, 6)]) == 1 + 1
    # After page 6, 3.5 h to go: less than a page, the next one only.
    assert rule.pages_ahead([span(p) for p in range(1, 7)]) == 1
    # No pace to go by (one moment on the whole page), or no stamp: the next page only.
    assert rule.pages_ahead([(T0, T0)]) == 1
    assert rule.pages_ahead([None]) == 1


def test_a_newest_first_list_asks_side_by_side_exactly_the_pages_it_needs(threaded_server):
    numbered, chained = threaded_server(), threaded_server()
    fanned, asked = newest_first_list(numbered, HOURLY, per_page=5)
    followed, asked_one_by_one = newest_first_list(chained, HOURLY, per_page=5, last=False)
    limits = HostLimits(max_in_flight=4)
    client = HttpClient("github", numbered.url_for("/"), limits=limits)
    pages = list(client.paginate(newest_first(HOURLY_SINCE)))
    one_by_one = list(
        HttpClient("github", chained.url_for("/"), limits=limits).paginate(
            newest_first(HOURLY_SINCE)
        )
    )
    assert pages == one_by_one
    assert [len(page) for page in pages] == [5] * 7
    assert [item["id"] for page in pages for item in page] == list(range(1, 36))
    # Pages 1 to 7 and none after: asked side by side (four at once after page 1), while
    # the list without rel="last" is read one page after another.
    assert sorted(asked) == sorted(asked_one_by_one) == list(range(1, 8))
    assert fanned.most == 4 and followed.most == 1
    assert client.limiter.most_in_flight == 4


def test_a_burst_that_fools_the_estimate_loses_nothing_and_asks_a_bounded_few_more(
    threaded_server,
):
    # Page 1 is a burst (a minute apart), then one item a day: page 1's pace promises
    # thousands of pages to go, page 3 (days 6 to 10) already ends before day 7.5.
    stamps = [T0 - timedelta(minutes=i) for i in range(5)]
    stamps += [T0 - timedelta(days=day) for day in range(1, 50)]
    since = T0 - timedelta(days=7, hours=12)
    server = threaded_server()
    gauge, asked = newest_first_list(server, stamps, per_page=5, hold=0.1)
    client = HttpClient("github", server.url_for("/"), limits=HostLimits(max_in_flight=4))
    pages = list(client.paginate(newest_first(since)))
    assert [item["id"] for page in pages for item in page] == list(range(1, 16))
    # After page 1, the next four at once (the host's limit); after page 2 (2.5 days a
    # page), no more: pages 4 and 5 were asked for nothing, at most in-flight - 1.
    assert sorted(asked) == [1, 2, 3, 4, 5]
    assert gauge.most == 4


def test_newest_first_lists_read_at_once_stay_within_the_hosts_limit(threaded_server):
    server = threaded_server()
    gauge, asked = newest_first_list(server, HOURLY, per_page=2, hold=0.02)
    client = HttpClient("github", server.url_for("/"), limits=HostLimits(max_in_flight=3))
    since = T0 - timedelta(hours=60, minutes=30)  # 31 pages of 2 a reading

    def read() -> list:
        return [item["id"] for page in client.paginate(newest_first(since, 2)) for item in page]

    assert run_at_once([read, read]) == [list(range(1, 63))] * 2
    assert sorted(asked) == sorted(list(range(1, 32)) * 2)
    assert gauge.most == 3 and client.limiter.most_in_flight == 3


def test_a_failing_page_fails_a_newest_first_list_after_the_pages_before_it(
    threaded_server, sleeps
):
    server = threaded_server()
    newest_first_list(server, HOURLY, per_page=5, failing=4)
    client = HttpClient("github", server.url_for("/"), sleep=sleeps)
    pages = client.paginate(newest_first(HOURLY_SINCE))
    assert [len(next(pages)) for _ in range(3)] == [5, 5, 5]
    with pytest.raises(SourceError) as failure:
        next(pages)
    assert str(failure.value) == (
        "github: not found (HTTP 404): /repositories/7/pulls (the API says: gone)"
    )


def test_a_stop_rule_of_its_own_reads_one_page_after_another(threaded_server):
    server = threaded_server()
    gauge, asked = newest_first_list(server, HOURLY, per_page=5)
    query = Query(
        "GET",
        "/repos/a/b/pulls",
        LinkHeaderPaginator(),
        params={"per_page": 5},
        stop=lambda page: page[-1]["id"] >= 20,
    )
    pages = list(HttpClient("github", server.url_for("/")).paginate(query))
    assert [item["id"] for page in pages for item in page] == list(range(1, 21))
    assert asked == [1, 2, 3, 4] and gauge.most == 1


@pytest.mark.parametrize(
    "following, last, expected",
    [
        ("https://h/r?per_page=5&page=2", "https://h/r?per_page=5&page=4", [2, 3, 4]),
        ("https://h/r?page=2&q=a%3Ab", "https://h/r?page=3&q=a%3Ab", [2, 3]),
        ("https://h/r?page=2", "https://h/other?page=4", None),  # another path
        ("https://h/r?page=2&after=x", "https://h/r?page=4&after=y", None),  # two differ
        ("https://h/r?cursor=ab", "https://h/r?cursor=cd", None),  # not numbers
        ("https://h/r?page=3", "https://h/r?page=3", None),  # nothing between
    ],
)
def test_numbered_pages_only_from_links_that_differ_in_one_number(following, last, expected):
    found = numbered_pages(following, last)
    if expected is None:
        assert found is None
    else:
        assert found is not None and found[0] == following and found[-1] == last
        assert [int(parse_qs(urlsplit(url).query)["page"][0]) for url in found] == expected


@pytest.mark.parametrize(
    "url, limits",
    [
        ("https://api.github.com", HostLimits(max_in_flight=8)),
        ("https://analyticsdata.googleapis.com", HostLimits(max_in_flight=10)),
        ("https://api.hubapi.com", HostLimits(max_in_flight=4, per_second=4)),
        ("https://acme.atlassian.net", HostLimits(max_in_flight=4)),
        ("https://acme.my.salesforce.com", HostLimits(max_in_flight=5)),
        ("https://github.example.com/api/v3", DEFAULT_LIMITS),
    ],
)
def test_each_vendor_host_gets_its_published_limits(url, limits):
    assert vendor_limits(url) == limits


def test_a_connector_may_declare_its_hosts_limits(threaded_server):
    class Throttled(PagedConnector):
        host_limits = HostLimits(max_in_flight=2, per_second=3)

    declared = Throttled.http_client(SourceSettings(base_url=threaded_server().url_for("/")))
    assert declared.limiter.limits == HostLimits(max_in_flight=2, per_second=3)
    plain = PagedConnector.http_client(SourceSettings(base_url=threaded_server().url_for("/")))
    assert plain.limiter.limits == DEFAULT_LIMITS


def test_the_environment_is_read_once_per_host_and_used_as_requests_uses_it(
    httpserver, sleeps, tmp_path, monkeypatch
):
    """`~/.netrc` and the proxy variables, read for the first request to a host, still
    apply to every request, as requests applies them: a netrc entry signs requests that
    carry no other credentials, a host in NO_PROXY is reached directly."""
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine {httpserver.host} login robot password s3cret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # a closed port
    monkeypatch.setenv("NO_PROXY", httpserver.host)
    seen = []

    def handler(request: Request) -> Response:
        seen.append(request.headers.get("Authorization"))
        return json_response({"ok": True})

    httpserver.expect_request("/signed").respond_with_handler(handler)
    client = make_client(httpserver, sleeps, headers={}, secrets=[])
    for _ in range(3):
        assert client.request("GET", "/signed").json() == {"ok": True}
    basic = "Basic " + base64.b64encode(b"robot:s3cret").decode()
    assert seen == [basic] * 3

    netrc.write_text("machine elsewhere.example login robot password s3cret\n")
    unsigned = make_client(httpserver, sleeps, headers={}, secrets=[])
    unsigned.request("GET", "/signed")
    assert seen[-1] is None
    bearer = make_client(httpserver, sleeps)  # its own header, netrc having nothing
    bearer.request("GET", "/signed")
    assert seen[-1] == f"Bearer {TOKEN}"


def test_redirects_are_followed_as_requests_follows_them(httpserver, client):
    """A moved resource is read where it went; a 303 turns a POST into a GET without its
    body; a 307 repeats the POST with its body; the token stays on its own host."""
    seen: list[tuple[str, str, bytes, str | None]] = []

    def landing(request: Request) -> Response:
        seen.append(
            (request.method, request.path, request.get_data(), request.headers.get("Authorization"))
        )
        return json_response({"at": request.path})

    httpserver.expect_request("/moved").respond_with_response(
        Response(status=301, headers={"Location": "/here"})
    )
    httpserver.expect_request("/search", method="POST").respond_with_response(
        Response(status=303, headers={"Location": "/results?page=1"})
    )
    httpserver.expect_request("/retry-here", method="POST").respond_with_response(
        Response(status=307, headers={"Location": "/kept"})
    )
    elsewhere = httpserver.url_for("/away").replace("localhost", "127.0.0.1")
    httpserver.expect_request("/leave").respond_with_response(
        Response(status=302, headers={"Location": elsewhere})
    )
    for path in ("/here", "/results", "/kept", "/away"):
        httpserver.expect_request(path).respond_with_handler(landing)

    assert client.request_json("GET", "/moved") == {"at": "/here"}
    assert client.request_json("POST", "/search", json={"q": 1}) == {"at": "/results"}
    assert client.request_json("POST", "/retry-here", json={"q": 2}) == {"at": "/kept"}
    assert client.request_json("GET", "/leave") == {"at": "/away"}
    bearer = f"Bearer {TOKEN}"
    assert seen == [
        ("GET", "/here", b"", bearer),
        ("GET", "/results", b"", bearer),
        ("POST", "/kept", b'{"q": 2}', bearer),
        ("GET", "/away", b"", None),  # another host: never the token
    ]


def test_a_redirect_loop_fails_the_request_in_one_line(httpserver, client):
    httpserver.expect_request("/loop").respond_with_response(
        Response(status=302, headers={"Location": "/loop"})
    )
    with pytest.raises(SourceError) as caught:
        client.request("GET", "/loop")
    assert str(caught.value) == "github: request failed on GET /loop: TooManyRedirects"
    assert len(httpserver.log) == 31  # the request and 30 redirects, as requests follows


def test_plain_http_goes_through_the_proxy_the_environment_names(httpserver, sleeps, monkeypatch):
    """HTTP_PROXY carries every request to a plain-HTTP API, its whole URL on the request
    line, as requests sends it; the API's own host is never looked up."""
    monkeypatch.setenv("HTTP_PROXY", httpserver.url_for("/").rstrip("/"))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    seen = []

    def handler(request: Request) -> Response:
        seen.append((request.host, request.path, request.args.get("page")))
        return json_response({"ok": True})

    httpserver.expect_request("/v1/things").respond_with_handler(handler)
    client = HttpClient("github", "http://api.example.invalid/v1", max_attempts=1)
    assert client.request_json("GET", "/things", params={"page": 2}) == {"ok": True}
    assert seen == [("api.example.invalid", "/v1/things", "2")]
