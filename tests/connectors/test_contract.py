"""The connector contract: every connector passes the same wire-level tests, on scripted pages.

The HTTP tests serve each source the pages its case scripts, with pytest-httpserver: no
fake API. A new source writes a fixture (recorded or written from the API's reference,
in `tests/fixtures/<source>/`) and a case, not a server. Each module in
`tests/connectors/cases/` (and in any folder listed in the environment variable
`OKR_CONTRACT_CASES`, for connectors that live in other packages) describes one source
to the suite with a module-level `CASE` object:

| attribute | what it is |
| --- | --- |
| `source` | the source's name in the registry |
| `http` | False for a source that calls no API (manual): the HTTP tests skip |
| `secret` | the token `settings()` carries; it must never leak |
| `settings(url)` | `SourceSettings` pointing at `url` (the test server) with `token=secret` |
| `metric()` | a `MetricParams` of the source, the one the scripted pages answer |
| `window` | `(start, end)`, the days asked for |
| `records(url)` | the window with records: `(exchanges, expected)`, the requests the connector must send, in order, each with the page that answers it (an API: at least two pages), and the expected daily series (`{date: value}`) |
| `no_records(url)` | the same for a window without any record |

Optional attributes: `timezone` (default "UTC": the definitions' time zone the series is
asked in), `page_size` (the connector's `page_size` that the scripted pages are cut to;
the suite sets it), `error_body(status, message)` (the API's error body, which the
injected failures answer with; default `{"message": message}`), `empty_is_zero`
(default True: a series with no records has a 0 on every day; False: no rows, as
manual check-ins), `token_env` (the variable an authentication error names; default
the connector's `env.token`). Sources without HTTP write their input in `records` and
`no_records` and return no exchanges; `seed_bad()` breaks one row and returns the
`file:line` the rejection must name with the series of the good rows, and
`seed_unreadable()` breaks the whole input and returns the `file:line` the error names.

An exchange is a dict in the shape of the request/response fixtures:

    {"request": {"method": "POST", "path": "/rest/api/3/search/jql",
                 "query": {...},   # the whole query, decoded; none: no query at all
                 "body": {...}},   # the JSON body, exactly; none: not checked
     "response": {"status": 200, "headers": {...},
                  "body": {...}}}  # JSON, or bytes/str sent as they are

Keys starting with `_` are notes. A request the script does not expect fails the test
with the server's account of it; so does a scripted request never sent.

Every connector call goes through `fetch`. The suite puts back the connector's class
attributes (the `page_size` it sets) after each test. HTTP backoff is set to a
millisecond, so nothing waits.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import logging
import os
import pkgutil
import sys
import traceback
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from okr_metrics.connectors.base import Connector, SeriesRequest, SourceError
from okr_metrics.connectors.registry import connected_sources

CASES_DIR = Path(__file__).parent / "cases"
EXTRA_CASES = "OKR_CONTRACT_CASES"
REQUIRED = ("source", "secret", "settings", "metric", "records", "no_records")
HOW_TO = "see docs/adding-a-connector.md"
DEFAULT_WINDOW = (date(2026, 10, 1), date(2026, 10, 10))
REQUEST_KEYS = {"method", "path", "query", "body"}
RESPONSE_KEYS = {"status", "headers", "body"}


# --- discovery -------------------------------------------------------------------------------


def _case_folders() -> list[Path]:
    extra = [Path(p) for p in os.environ.get(EXTRA_CASES, "").split(os.pathsep) if p]
    return [CASES_DIR, *extra]


def _discover() -> tuple[dict[str, Any], dict[str, str]]:
    """Every case module's CASE by module name, and the modules that failed to give one."""
    cases: dict[str, Any] = {}
    broken: dict[str, str] = {}
    for folder in _case_folders():
        for module in sorted(pkgutil.iter_modules([str(folder)]), key=lambda m: m.name):
            if module.ispkg or module.name.startswith("_"):
                continue
            path = folder / f"{module.name}.py"
            # A private name: case modules never shadow (or are shadowed by) real packages.
            qualified = f"okr_contract_cases.{module.name}"
            try:
                spec = importlib.util.spec_from_file_location(qualified, path)
                loaded = importlib.util.module_from_spec(spec)
                sys.modules[qualified] = loaded
                spec.loader.exec_module(loaded)
            except Exception as error:
                broken[str(path)] = f"cannot import: {type(error).__name__}: {error}"
                continue
            case = getattr(loaded, "CASE", None)
            missing = [name for name in REQUIRED if not hasattr(case, name)]
            if case is None:
                broken[str(path)] = "defines no module-level CASE"
            elif missing:
                broken[str(path)] = f"CASE lacks {', '.join(missing)}"
            elif module.name in cases:
                broken[str(path)] = f"a second case module named {module.name!r}"
            else:
                cases[module.name] = case
    return cases, broken


CASES, BROKEN = _discover()
ALL = [pytest.param(case, id=name) for name, case in CASES.items()]
HTTP = [pytest.param(case, id=name) for name, case in CASES.items() if getattr(case, "http", True)]
NO_HTTP = [
    pytest.param(case, id=name) for name, case in CASES.items() if not getattr(case, "http", True)
]


def test_every_case_module_loads():
    assert not BROKEN, "broken contract case modules:\n" + "\n".join(
        f"  {path}: {problem}" for path, problem in BROKEN.items()
    )


def test_every_connected_source_has_a_case():
    covered = {case.source for case in CASES.values()}
    missing = sorted(set(connected_sources()) - covered)
    assert not missing, (
        f"no contract case for {', '.join(missing)}: add tests/connectors/cases/<source>.py "
        f"defining CASE, or list a connector package's case folder in {EXTRA_CASES} ({HOW_TO})"
    )


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch) -> None:
    monkeypatch.setenv("OKR_HTTP_BACKOFF_SECONDS", "0.001")
    monkeypatch.setenv("OKR_HTTP_MAX_ATTEMPTS", "4")
    monkeypatch.setenv("OKR_HTTP_MAX_WAIT_SECONDS", "5")


@pytest.fixture
def case(request, monkeypatch) -> Any:
    """The parametrized case, its connector's class attributes restored afterwards."""
    case = request.param
    source = connected_sources().get(case.source)
    if source is None:
        pytest.fail(
            f"case {case.source!r}: no such source with a connector in connectors/registry.py "
            f"({HOW_TO})"
        )
    connector_class = source.connector_class()
    for name, value in list(vars(connector_class).items()):
        if not name.startswith("_") and isinstance(value, int | float | str | bool | tuple):
            monkeypatch.setattr(connector_class, name, value)
    if getattr(case, "page_size", None) is not None:
        monkeypatch.setattr(connector_class, "page_size", case.page_size)
    return case


# --- the connector ---------------------------------------------------------------------------


def fetch(case, connector: Connector, start: date, end: date, *, rejected: bool = False) -> Any:
    """The one place the suite calls a connector: the case's series over start..end in the
    case's time zone (with `rejected`, the rows the connector refused while reading it)."""
    context = case.request_context() if hasattr(case, "request_context") else {}
    timezone = getattr(case, "timezone", "UTC")
    request = SeriesRequest.of(case.metric(), start, end, timezone, **context)
    if rejected:
        return connector.rejected_rows(request)
    return connector.daily_series(request)


def base_url(server: HTTPServer) -> str:
    return server.url_for("/").rstrip("/")


def connector_for(case, server: HTTPServer) -> Connector:
    """A connector built the way the Dagster assets build it, aimed at the test server."""
    connector_class = connected_sources()[case.source].connector_class()
    settings = case.settings(base_url(server))
    assert connector_class.missing_settings(settings) is None
    return connector_class.from_settings(settings)


def window(case) -> tuple[date, date]:
    return getattr(case, "window", DEFAULT_WINDOW)


def days(case) -> list[date]:
    start, end = window(case)
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def series_of(case, server: HTTPServer) -> pd.DataFrame:
    """The connector's series of the case's window; a request the script did not expect
    fails the test with the server's account of it."""
    connector = connector_for(case, server)
    start, end = window(case)
    try:
        return fetch(case, connector, start, end)
    finally:
        server.check_assertions()


def as_dict(series: pd.DataFrame) -> dict[date, float]:
    return dict(zip(series["date"], series["value"], strict=True))


# --- scripted pages --------------------------------------------------------------------------


def script(case, server: HTTPServer, scenario: str) -> tuple[list[dict], dict[date, float]]:
    """The case's exchanges and expected series of `scenario` (`records`, `no_records`)."""
    exchanges, expected = getattr(case, scenario)(base_url(server))
    for number, exchange in enumerate(exchanges, start=1):
        problem = _exchange_problem(exchange)
        if problem:
            pytest.fail(f"case {case.source!r}, {scenario}(), exchange {number}: {problem}")
    return list(exchanges), dict(expected)


def _exchange_problem(exchange: Any) -> str | None:
    if not isinstance(exchange, dict) or not isinstance(exchange.get("request"), dict):
        return "an exchange is a dict with a `request` dict and a `response` dict"
    request, response = exchange["request"], exchange.get("response", {})
    unknown = {k for k in request if not k.startswith("_")} - REQUEST_KEYS
    unknown |= {k for k in response if not k.startswith("_")} - RESPONSE_KEYS
    if unknown:
        return f"unknown keys {sorted(unknown)} (request: {sorted(REQUEST_KEYS)}, response: {sorted(RESPONSE_KEYS)})"
    if not request.get("method") or not str(request.get("path", "")).startswith("/"):
        return "the request needs a `method` and a `path` starting with /"
    return None


def response_of(answer: dict) -> Response:
    """A scripted response: JSON unless the body is bytes or text."""
    body = answer.get("body")
    headers = dict(answer.get("headers") or {})
    if not isinstance(body, bytes | str):
        body = json.dumps(body)
        headers.setdefault("Content-Type", "application/json")
    return Response(body, answer.get("status", 200), headers)


def expect(server: HTTPServer, exchange: dict, answer: dict | None = None, *, once=True) -> None:
    """Expect the exchange's request (once, or with `once=False` any number of times) and
    answer it with its response, or with `answer`. Pages numbered in advance are fetched
    side by side, so the requests may arrive in any order; the same request expected
    several times is answered in the order expected."""
    request = exchange["request"]
    matcher: dict[str, Any] = {
        "method": request["method"].upper(),
        "query_string": request.get("query") or "",
    }
    if "body" in request:
        matcher["json"] = request["body"]
    if once:
        handler = server.expect_oneshot_request(request["path"], **matcher)
    else:
        handler = server.expect_request(request["path"], **matcher)
    handler.respond_with_response(response_of(answer or exchange.get("response", {})))


def serve(
    server: HTTPServer, exchanges: list[dict], *, first_answered: tuple[dict, ...] = ()
) -> None:
    """Serve the exchanges in order; the first request is answered with `first_answered`,
    one by one, before it gets its page (the failures a connector must retry)."""
    for answer in first_answered:
        expect(server, exchanges[0], answer)
    for exchange in exchanges:
        expect(server, exchange)


def assert_all_sent(server: HTTPServer, exchanges: list[dict], extra: int = 0) -> None:
    unsent = [h.matcher for h in server.oneshot_handlers]
    assert not unsent, f"the connector never sent these scripted requests: {unsent}"
    assert len(server.log) == len(exchanges) + extra


def error_answer(case, status: int, message: str, **headers: str) -> dict:
    """An injected failure: `status` with the API's error body."""
    error_body = getattr(case, "error_body", None)
    body = error_body(status, message) if error_body else {"message": message}
    return {"status": status, "headers": headers, "body": body}


FAILURES = {
    "401": lambda case: error_answer(case, 401, "Bad credentials"),
    "404": lambda case: error_answer(case, 404, "Not Found"),
    "malformed": lambda case: {
        "headers": {"Content-Type": "application/json"},
        "body": b'{"message": "truncated',
    },
    "503": lambda case: error_answer(case, 503, "Service Unavailable"),
    "429": lambda case: error_answer(case, 429, "API rate limit exceeded", **{"Retry-After": "0"}),
}


def failure(case, server: HTTPServer, kind: str) -> SourceError:
    """The SourceError the connector raises when every request meets the failure `kind`."""
    exchanges, _ = script(case, server, "records")
    expect(server, exchanges[0], FAILURES[kind](case), once=False)
    with pytest.raises(SourceError) as raised:
        series_of(case, server)
    return raised.value


# --- secrets ---------------------------------------------------------------------------------


def secrets_of(case, server: HTTPServer) -> list[str]:
    """The secret and, for basic auth, the encoded `user:secret` the header carries."""
    settings = case.settings(base_url(server))
    found = [case.secret]
    if settings.user:
        found.append(base64.b64encode(f"{settings.user}:{case.secret}".encode()).decode())
    return found


def assert_no_secret(case, server, error: BaseException | None, caplog) -> None:
    texts = {"log records": caplog.text}
    for record in caplog.records:
        texts[f"log record {record.name}"] = f"{record.getMessage()} {record.args!r}"
    if error is not None:
        texts.update(
            {
                "str(error)": str(error),
                "repr(error)": repr(error),
                "the traceback": "".join(traceback.format_exception(error)),
            }
        )
    for secret in secrets_of(case, server):
        leaked = [where for where, text in texts.items() if secret in text]
        assert not leaked, f"the token leaked into {', '.join(leaked)}"


def assert_one_line(error: SourceError, case) -> str:
    message = str(error)
    assert error.source == case.source
    assert "\n" not in message, f"a SourceError is one line: {message!r}"
    return message


# --- every source ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", ALL, indirect=True)
def test_several_pages_give_every_record(case, httpserver):
    exchanges, expected = script(case, httpserver, "records")
    http = getattr(case, "http", True)
    if http:
        assert len(exchanges) > 1, f"case {case.source!r}: records() must script several pages"
    serve(httpserver, exchanges)
    series = series_of(case, httpserver)
    assert as_dict(series) == pytest.approx(expected)
    if getattr(case, "empty_is_zero", True):
        assert list(series["date"]) == days(case)
    if http:
        assert_all_sent(httpserver, exchanges)


@pytest.mark.parametrize("case", ALL, indirect=True)
def test_no_records(case, httpserver):
    exchanges, expected = script(case, httpserver, "no_records")
    serve(httpserver, exchanges)
    series = series_of(case, httpserver)
    if getattr(case, "empty_is_zero", True):
        assert as_dict(series) == {day: 0.0 for day in days(case)} == expected
    else:
        assert series.empty and not expected
    assert list(series.columns) == ["date", "value"]
    assert_all_sent(httpserver, exchanges)


@pytest.mark.parametrize("case", ALL, indirect=True)
def test_the_series_shape(case, httpserver):
    exchanges, _ = script(case, httpserver, "records")
    serve(httpserver, exchanges)
    series = series_of(case, httpserver)
    start, end = window(case)
    assert list(series.columns) == ["date", "value"]
    assert series["value"].dtype == "float64"
    assert all(type(day) is date for day in series["date"]), "dates are datetime.date"
    listed = list(series["date"])
    assert listed == sorted(set(listed)), "one row per day, in order"
    assert all(start <= day <= end for day in listed)
    if getattr(case, "empty_is_zero", True):
        assert listed == days(case)


# --- sources that call an API ----------------------------------------------------------------


@pytest.mark.parametrize("case", HTTP, indirect=True)
def test_a_rate_limit_is_waited_out(case, httpserver, caplog):
    caplog.set_level(logging.DEBUG)
    exchanges, expected = script(case, httpserver, "records")
    serve(httpserver, exchanges, first_answered=(FAILURES["429"](case),))
    assert as_dict(series_of(case, httpserver)) == pytest.approx(expected)
    assert_all_sent(httpserver, exchanges, extra=1)
    assert_no_secret(case, httpserver, None, caplog)


@pytest.mark.parametrize("case", HTTP, indirect=True)
def test_server_errors_are_retried(case, httpserver, caplog):
    caplog.set_level(logging.DEBUG)
    exchanges, expected = script(case, httpserver, "records")
    crash = error_answer(case, 500, "Internal Server Error")
    serve(httpserver, exchanges, first_answered=(crash, crash))
    assert as_dict(series_of(case, httpserver)) == pytest.approx(expected)
    assert_all_sent(httpserver, exchanges, extra=2)
    assert_no_secret(case, httpserver, None, caplog)


@pytest.mark.parametrize("case", HTTP, indirect=True)
def test_a_rejected_token_names_its_variable(case, httpserver):
    message = assert_one_line(failure(case, httpserver, "401"), case)
    token_env = getattr(case, "token_env", None) or (
        connected_sources()[case.source].connector_class().env.token
    )
    assert "authentication" in message.lower()
    assert token_env and token_env in message


@pytest.mark.parametrize("case", HTTP, indirect=True)
def test_not_found_is_a_clear_error(case, httpserver):
    message = assert_one_line(failure(case, httpserver, "404"), case)
    assert "not found" in message.lower() or "404" in message


@pytest.mark.parametrize("case", HTTP, indirect=True)
def test_a_malformed_body_is_a_clear_error(case, httpserver):
    message = assert_one_line(failure(case, httpserver, "malformed"), case)
    assert "malformed" in message.lower()


@pytest.mark.parametrize("case", HTTP, indirect=True)
def test_persistent_server_errors_give_up(case, httpserver):
    message = assert_one_line(failure(case, httpserver, "503"), case)
    assert "503" in message


@pytest.mark.parametrize("kind", FAILURES)
@pytest.mark.parametrize("case", HTTP, indirect=True)
def test_the_token_never_leaks(case, httpserver, caplog, kind):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    error = failure(case, httpserver, kind)
    assert any(record.name.startswith("urllib3") for record in caplog.records), (
        "expected urllib3's DEBUG request lines in the captured logs"
    )
    assert_no_secret(case, httpserver, error, caplog)


# --- sources without an API ------------------------------------------------------------------


@pytest.mark.parametrize("case", NO_HTTP, indirect=True)
def test_a_bad_row_costs_one_row_and_names_its_file_and_line(case, httpserver):
    if not hasattr(case, "seed_bad"):
        pytest.skip(f"{case.source}: the case has no seed_bad")
    where, good = case.seed_bad()
    connector = connector_for(case, httpserver)
    start, end = window(case)
    assert as_dict(fetch(case, connector, start, end)) == good
    refused = fetch(case, connector, start, end, rejected=True)
    reasons = [reason for frame in refused.values() for reason in frame["reason"]]
    assert len(reasons) == 1 and reasons[0].startswith(f"{where}: "), reasons
    assert "\n" not in reasons[0] and case.secret not in reasons[0]


@pytest.mark.parametrize("case", NO_HTTP, indirect=True)
def test_an_unreadable_input_names_its_file_and_line(case, httpserver):
    if not hasattr(case, "seed_unreadable"):
        pytest.skip(f"{case.source}: the case has no seed_unreadable")
    where = case.seed_unreadable()
    with pytest.raises(SourceError) as raised:
        series_of(case, httpserver)
    message = assert_one_line(raised.value, case)
    assert where in message
