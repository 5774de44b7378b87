"""The Google Analytics 4 connector: against the reference-built fixtures and the sandbox."""

from __future__ import annotations

import json
import logging
import sys
import textwrap
import types
from dataclasses import FrozenInstanceError
from datetime import date, timedelta
from pathlib import Path

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from okr_metrics.connectors.base import SourceError, SourceSettings
from okr_metrics.connectors.google_analytics.client import (
    PAGE_SIZE,
    GoogleAnalyticsConnector,
    cast_value,
)
from okr_metrics.connectors.google_analytics.params import GoogleAnalyticsMetric
from okr_metrics.connectors.kit import SeriesRequest
from okr_metrics.connectors.sandbox import google_analytics as ga_sandbox

FIXTURES = Path(__file__).parents[1] / "fixtures" / "google_analytics"
OCT_1, OCT_2, OCT_3 = date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3)
REPORT = "/v1beta/properties/{}:runReport"


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def metric(property_id: str, name: str, **allowed: list[str]) -> GoogleAnalyticsMetric:
    return GoogleAnalyticsMetric(
        source="google_analytics", property=property_id, metric=name, filter=allowed
    )


def values(frame) -> list[float]:
    return frame["value"].tolist()


def connect(url: str, token: str = "ga-test-token", **options) -> GoogleAnalyticsConnector:
    return GoogleAnalyticsConnector.from_settings(
        SourceSettings(base_url=url, token=token), **options
    )


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def ga(sandbox, sleeps) -> GoogleAnalyticsConnector:
    """The connector on the sandbox, with a fixed backoff (0.5 s, 1 s, ...) and no real sleep."""
    settings = SourceSettings.from_env(
        GoogleAnalyticsConnector.env,
        {"GA_API_URL": sandbox.url, "GA_ACCESS_TOKEN": "sandbox-token"},
    )
    return GoogleAnalyticsConnector.from_settings(
        settings, sleep=sleeps, backoff_base=0.5, jitter=lambda: 1.0, max_attempts=3
    )


# --- settings ----------------------------------------------------------------------------------


def test_without_credentials_the_source_is_skipped():
    settings = SourceSettings.from_env(GoogleAnalyticsConnector.env, {})
    assert settings.base_url == "https://analyticsdata.googleapis.com"
    assert GoogleAnalyticsConnector.missing_settings(settings) == "GA_ACCESS_TOKEN not set"
    with_file = SourceSettings.from_env(
        GoogleAnalyticsConnector.env, {"GOOGLE_APPLICATION_CREDENTIALS": "/keys/sa.json"}
    )
    assert GoogleAnalyticsConnector.missing_settings(with_file) is None


def test_the_client_sends_a_bearer_token():
    connector = connect("https://analyticsdata.example.com/", token="ya29.t0ken")
    headers = connector.client.session.headers
    assert headers["Authorization"] == "Bearer ya29.t0ken"
    assert connector.client.base_url == "https://analyticsdata.example.com"
    assert connector.client.redact("x ya29.t0ken y") == "x *** y"


@pytest.mark.parametrize(
    ("text", "metric_type", "expected"),
    [
        ("10012", "TYPE_INTEGER", 10012.0),
        ("312.45161290322579", "TYPE_SECONDS", 312.45161290322579),
        ("1500.5", "TYPE_MILLISECONDS", 1500.5),
        ("0.625", "TYPE_FLOAT", 0.625),
        ("199.99", "TYPE_CURRENCY", 199.99),
        ("1e3", "TYPE_STANDARD", 1000.0),
    ],
)
def test_values_are_cast_by_their_metric_type(text, metric_type, expected):
    assert cast_value(text, metric_type) == expected


def test_an_integer_metric_with_a_fraction_is_refused():
    with pytest.raises(ValueError):
        cast_value("10.5", "TYPE_INTEGER")


# --- (a) the reference-built fixtures, replayed ---------------------------------------------------


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def serve_report(httpserver: HTTPServer, fixture: dict) -> None:
    """Serve each recorded page for the request whose `offset` it answers."""
    by_offset = {i["request"]["offset"]: i["response"] for i in fixture["interactions"]}

    def respond(request: Request) -> Response:
        body = json.loads(request.data)
        return Response(
            json.dumps(by_offset[body["offset"]]), 200, {"Content-Type": "application/json"}
        )

    httpserver.expect_request(
        REPORT.format(fixture["property"]), method="POST"
    ).respond_with_handler(respond)


def sent_bodies(httpserver: HTTPServer) -> list[dict]:
    return [json.loads(request.data) for request, _ in httpserver.log]


def quota_lines(caplog) -> list[tuple[int, str]]:
    """The connector's quota lines (level, text); each must come from `finish()`."""
    found = [
        r
        for r in caplog.records
        if r.name == "okr_metrics.google_analytics" and " quota after " in r.getMessage()
    ]
    assert all(record.funcName == "finish" for record in found)
    return [(record.levelno, record.getMessage()) for record in found]


def test_replay_two_pages_and_a_missing_day(httpserver, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="okr_metrics.google_analytics")
    fixture = load("run-report-active-users.json")
    serve_report(httpserver, fixture)
    monkeypatch.setattr(GoogleAnalyticsConnector, "page_size", 4)
    connector = connect(httpserver.url_for("/"))

    series = connector.daily_series(
        SeriesRequest.of(
            metric("123456789", "activeUsers", platform=["iOS", "Android"]),
            OCT_1,
            date(2026, 10, 7),
            "America/Los_Angeles",
        ),
    )

    assert series["date"].tolist() == [OCT_1 + timedelta(days=i) for i in range(7)]
    # Each day's users as GA counted them; 2026-10-04 has no row: a 0, not a gap.
    assert values(series) == [10012, 10234, 9876, 0, 8745, 10456, 10589]
    assert series["value"].dtype == float
    # The connector sent exactly the requests the fixture answers, offset by offset.
    assert sent_bodies(httpserver) == [i["request"] for i in fixture["interactions"]]
    assert quota_lines(caplog) == []  # logged once a property, at the end of the run
    connector.finish()
    # The last page's quota; the tokens of both pages (3 + 3).
    assert quota_lines(caplog) == [
        (
            logging.INFO,
            "google_analytics: property 123456789 quota after 1 report (6 tokens used): "
            "tokensPerDay 199871 left, tokensPerHour 39982 left, tokensPerProjectPerHour 13982 left",
        )
    ]
    assert not any("timezone" in message for message in caplog.messages)


def test_replay_fractional_seconds_and_an_and_group(httpserver, monkeypatch, caplog):
    fixture = load("run-report-session-duration.json")
    serve_report(httpserver, fixture)
    monkeypatch.setattr(GoogleAnalyticsConnector, "page_size", 10_000)  # the recording's limit
    connector = connect(httpserver.url_for("/"))

    series = connector.daily_series(
        SeriesRequest.of(
            metric(
                "123456789",
                "averageSessionDuration",
                platform=["iOS", "Android"],
                country=["Norway"],
            ),
            OCT_1,
            OCT_3,
            "UTC",
        ),
    )

    assert values(series) == [312.45161290322579, 298.0625, 0.0]
    assert sent_bodies(httpserver) == [fixture["interactions"][0]["request"]]
    connector.finish()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    # The property reports Oslo days while the KR file says UTC; and few tokens are left.
    assert any("reports days in Europe/Oslo" in w and "timezone is UTC" in w for w in warnings)
    assert any("tokensPerDay 9870 left" in w for w in warnings)


def serve_error(httpserver: HTTPServer, status: int) -> dict:
    recorded = next(e for e in load("errors.json")["errors"] if e["status"] == status)
    httpserver.expect_request(REPORT.format("123456789"), method="POST").respond_with_response(
        Response(json.dumps(recorded["response"]), status, recorded["headers"])
    )
    return recorded


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (
            400,
            "google_analytics: request failed (HTTP 400) on POST /v1beta/properties/123456789:runReport "
            "(the API says: Field activeUser is not a valid metric.",
        ),
        (
            401,
            "google_analytics: authentication failed (HTTP 401): check GA_ACCESS_TOKEN "
            "(the API says: Request had invalid authentication credentials.",
        ),
        (
            403,
            "google_analytics: permission denied (HTTP 403): the account behind the credentials "
            "cannot read this property; give it at least Viewer access in GA (the API says: "
            "User does not have sufficient permissions for this property.",
        ),
    ],
)
def test_replay_google_error_bodies(httpserver, status, expected):
    serve_error(httpserver, status)
    connector = connect(httpserver.url_for("/"), token="ya29.a-secret-token")
    with pytest.raises(SourceError) as failure:
        connector.daily_series(SeriesRequest.of(metric("123456789", "activeUser"), OCT_1, OCT_3))
    message = str(failure.value)
    assert message.startswith(expected), message
    assert "\n" not in message and "ya29.a-secret-token" not in message
    assert len(httpserver.log) == 1  # never retried


def test_replay_resource_exhausted_fails_at_once_naming_the_quota(httpserver, sleeps):
    serve_error(httpserver, 429)
    connector = connect(
        httpserver.url_for("/"), sleep=sleeps, backoff_base=0.5, jitter=lambda: 1.0, max_attempts=3
    )
    with pytest.raises(SourceError) as failure:
        connector.daily_series(SeriesRequest.of(metric("123456789", "activeUsers"), OCT_1, OCT_3))
    assert str(failure.value) == (
        "google_analytics: the property's quota is used up: Exhausted property tokens per hour "
        "(HTTP 429 RESOURCE_EXHAUSTED); not retried: the quota refills within the hour "
        "(tokens per hour) or the day (tokens per day)"
    )
    # Retrying an hourly quota seconds later is in vain: one request, no wait.
    assert sleeps == [] and len(httpserver.log) == 1


# --- (b) hand-computed values against the sandbox ----------------------------------------------------

TINY = "100000001"
TINY_ROWS = [
    # 2026-10-01
    {"date": "2026-10-01", "platform": "iOS", "activeUsers": 100, "sessions": 10,
     "averageSessionDuration": 300},
    {"date": "2026-10-01", "platform": "Android", "activeUsers": 80, "sessions": 30,
     "averageSessionDuration": 200},
    {"date": "2026-10-01", "platform": "web", "activeUsers": 50, "sessions": 60,
     "averageSessionDuration": 90},
    {"date": "2026-10-01", "platform": "iOS", "eventName": "push_opt_in", "eventCount": 3},
    {"date": "2026-10-01", "platform": "Android", "eventName": "push_opt_in", "eventCount": 2},
    {"date": "2026-10-01", "platform": "iOS", "eventName": "push_prompt_shown", "eventCount": 5},
    {"date": "2026-10-01", "platform": "web", "eventName": "article_view", "eventCount": 7},
    # 2026-10-02: nothing at all was collected.
    # 2026-10-03: no push opt-in (an all-zero row), Android users only.
    {"date": "2026-10-03", "platform": "Android", "activeUsers": 120, "sessions": 40,
     "averageSessionDuration": 150.5},
    {"date": "2026-10-03", "platform": "iOS", "eventName": "push_opt_in", "eventCount": 0},
    {"date": "2026-10-03", "platform": "iOS", "eventName": "push_prompt_shown", "eventCount": 4},
]  # fmt: skip


@pytest.fixture
def tiny(sandbox) -> str:
    sandbox.data.google_analytics.set_rows(TINY, TINY_ROWS)
    return TINY


@pytest.mark.parametrize(
    ("name", "allowed", "expected"),
    [
        ("activeUsers", {"platform": ["iOS", "Android"]}, [180, 0, 120]),
        ("activeUsers", {}, [230, 0, 120]),
        ("activeUsers", {"platform": ["ios"]}, [0, 0, 0]),  # case-sensitive, as GA's events
        ("eventCount", {"eventName": ["push_opt_in"]}, [5, 0, 0]),
        ("eventCount", {"eventName": ["push_opt_in"], "platform": ["iOS"]}, [3, 0, 0]),
        ("eventCount", {"eventName": ["push_opt_in", "push_prompt_shown"]}, [10, 0, 4]),
        ("eventCount", {}, [17, 0, 4]),
        # Sessions-weighted: (300 * 10 + 200 * 30) / 40 = 225; Android alone on 10-03.
        ("averageSessionDuration", {"platform": ["iOS", "Android"]}, [225.0, 0, 150.5]),
    ],
)
def test_tiny_property(ga, tiny, name, allowed, expected):
    series = ga.daily_series(SeriesRequest.of(metric(tiny, name, **allowed), OCT_1, OCT_3))
    assert series["date"].tolist() == [OCT_1, OCT_2, OCT_3]
    assert values(series) == expected


def test_the_exact_request_body(sandbox, ga, tiny):
    ga.daily_series(
        SeriesRequest.of(
            metric(tiny, "eventCount", eventName=["push_opt_in"], platform=["iOS", "Android"]),
            OCT_1,
            OCT_3,
            "UTC",
        ),
    )
    assert [(r.method, r.path) for r in sandbox.requests] == [
        ("POST", f"/v1beta/properties/{tiny}:runReport")
    ]
    assert sandbox.request_bodies() == [
        {
            "dateRanges": [{"startDate": "2026-10-01", "endDate": "2026-10-03"}],
            "dimensions": [{"name": "date"}],
            "metrics": [{"name": "eventCount"}],
            "keepEmptyRows": True,
            "orderBys": [{"dimension": {"dimensionName": "date"}}],
            "returnPropertyQuota": True,
            "dimensionFilter": {
                "andGroup": {
                    "expressions": [
                        {
                            "filter": {
                                "fieldName": "eventName",
                                "inListFilter": {"values": ["push_opt_in"], "caseSensitive": True},
                            }
                        },
                        {
                            "filter": {
                                "fieldName": "platform",
                                "inListFilter": {
                                    "values": ["iOS", "Android"],
                                    "caseSensitive": True,
                                },
                            }
                        },
                    ]
                }
            },
            "offset": 0,
            "limit": PAGE_SIZE,
        }
    ]


def report(sandbox, property_id: str, **body) -> dict:
    request = {
        "dateRanges": [{"startDate": "2026-10-01", "endDate": "2026-10-03"}],
        "dimensions": [{"name": "date"}],
        "metrics": [{"name": "eventCount"}],
        "dimensionFilter": {
            "filter": {"fieldName": "eventName", "stringFilter": {"value": "push_opt_in"}}
        },
        **body,
    }
    response = requests.post(
        f"{sandbox.url}{REPORT.format(property_id)}",
        json=request,
        headers={"Authorization": "Bearer sandbox-token"},
        timeout=5,
    )
    return response.json()


def test_the_sandbox_leaves_out_all_zero_rows_unless_asked(sandbox, tiny):
    plain = report(sandbox, tiny)
    assert [row["dimensionValues"][0]["value"] for row in plain["rows"]] == ["20261001"]
    assert plain["rowCount"] == 1 and "propertyQuota" not in plain
    kept = report(sandbox, tiny, keepEmptyRows=True, returnPropertyQuota=True)
    assert [row["dimensionValues"][0]["value"] for row in kept["rows"]] == ["20261001", "20261003"]
    assert [row["metricValues"][0]["value"] for row in kept["rows"]] == ["5", "0"]
    assert kept["metricHeaders"] == [{"name": "eventCount", "type": "TYPE_INTEGER"}]
    assert kept["kind"] == "analyticsData#runReport"
    assert kept["metadata"] == {"currencyCode": "USD", "timeZone": "UTC"}
    assert kept["propertyQuota"]["concurrentRequests"] == {"remaining": 10}
    empty = report(sandbox, tiny, dateRanges=[{"startDate": "2026-10-02", "endDate": "2026-10-02"}])
    assert "rows" not in empty and "rowCount" not in empty  # proto3 JSON leaves out zeros


def test_non_additive_users_are_never_summed_across_days(sandbox, ga, tiny):
    series = ga.daily_series(
        SeriesRequest.of(metric(tiny, "activeUsers", platform=["Android"]), OCT_1, OCT_3)
    )
    # Per day, as GA counts them; the KR's `aggregate` decides what to make of them.
    assert values(series) == [80, 0, 120]
    (body,) = sandbox.request_bodies()
    assert body["dimensions"] == [{"name": "date"}] and "metricAggregations" not in body


def test_a_missing_day_is_zero_in_a_long_window(ga, tiny):
    series = ga.daily_series(
        SeriesRequest.of(metric(tiny, "activeUsers"), date(2026, 9, 29), date(2026, 10, 5), "UTC")
    )
    assert values(series) == [0, 0, 230, 0, 120, 0, 0]


def test_offset_paging_over_generated_data(sandbox, ga, monkeypatch):
    monkeypatch.setattr(GoogleAnalyticsConnector, "page_size", 25)
    start, end = date(2026, 7, 1), date(2026, 9, 30)
    series = ga.daily_series(
        SeriesRequest.of(
            metric("123456789", "activeUsers", platform=["iOS", "Android"]), start, end
        )
    )
    expected: dict[date, float] = {}
    for fact in sandbox.data.google_analytics.facts("123456789"):
        if start <= fact.day <= end and fact.dimensions.get("platform") in ("iOS", "Android"):
            expected[fact.day] = expected.get(fact.day, 0) + fact.metrics.get("activeUsers", 0)
    assert len(series) == 92
    assert values(series) == [expected[day] for day in series["date"]]
    assert [body["offset"] for body in sandbox.request_bodies()] == [0, 25, 50, 75]


def test_a_quarter_is_one_request(sandbox, ga):
    series = ga.daily_series(
        SeriesRequest.of(
            metric("123456789", "eventCount", eventName=["onboarding_complete"]),
            date(2026, 7, 1),
            date(2026, 9, 30),
        ),
    )
    assert len(series) == 92 and (series["value"] > 0).all()
    assert sandbox.request_count() == 1  # one windowed report, never one a day


def test_a_short_page_does_not_end_the_report(sandbox, ga, tiny, monkeypatch):
    # GA may send fewer rows than `limit` (it caps a page): paging goes on to rowCount.
    monkeypatch.setattr("okr_metrics.connectors.sandbox.google_analytics.MAX_ROWS", 1)
    series = ga.daily_series(SeriesRequest.of(metric(tiny, "activeUsers"), OCT_1, OCT_3))
    assert values(series) == [230, 0, 120]
    assert [body["offset"] for body in sandbox.request_bodies()] == [0, 1]


def test_generated_sample_data_fits_the_sample_definitions(ga):
    def mean(name: str, start: date, end: date, **allowed) -> float:
        series = ga.daily_series(SeriesRequest.of(metric("123456789", name, **allowed), start, end))
        return sum(values(series)) / len(series)

    q3, q4 = (date(2026, 7, 1), date(2026, 7, 14)), (date(2026, 10, 1), date(2026, 10, 14))
    mobile = {"platform": ["iOS", "Android"]}
    assert 8_000 <= mean("activeUsers", *q3, **mobile) <= 9_500
    assert 9_500 <= mean("activeUsers", *q4, **mobile) <= 11_000
    assert 290 <= mean("averageSessionDuration", *q4, **mobile) <= 350

    def rate(numerator: str, denominator: str) -> float:
        return mean("eventCount", *q4, eventName=[numerator]) / mean(
            "eventCount", *q4, eventName=[denominator]
        )

    assert 0.55 <= rate("push_opt_in", "push_prompt_shown") <= 0.65
    assert 0.62 <= rate("onboarding_complete", "onboarding_start") <= 0.8
    assert 0.3 <= rate("article_helpful", "article_view") <= 0.4


# --- (c) faults and credentials ---------------------------------------------------------------------


def test_exhausted_concurrent_requests_are_retried_then_succeed(sandbox, ga, tiny, sleeps):
    concurrent = {
        "error": {
            "code": 429,
            "message": "Exhausted concurrent requests quota.",
            "status": "RESOURCE_EXHAUSTED",
        }
    }
    sandbox.add_fault(path_prefix="/v1beta/properties/", status=429, times=2, body=concurrent)
    series = ga.daily_series(SeriesRequest.of(metric(tiny, "activeUsers"), OCT_1, OCT_3))
    assert values(series) == [230, 0, 120]
    assert sleeps == [0.5, 1.0]  # backoff: Google sends no Retry-After
    assert sandbox.request_count("/v1beta/properties/") == 3


def test_the_sandboxs_quota_error_is_googles(sandbox, tiny):
    sandbox.add_fault(path_prefix="/v1beta/properties/", status=429, times=1)
    response = requests.post(
        f"{sandbox.url}{REPORT.format(tiny)}",
        json={},
        headers={"Authorization": "Bearer sandbox-token"},
        timeout=5,
    )
    assert response.status_code == 429 and "Retry-After" not in response.headers
    assert response.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert response.json()["error"]["code"] == 429


def test_a_bad_token_names_its_variable_and_never_leaks(sandbox, tiny, caplog):
    caplog.set_level(logging.DEBUG)
    connector = connect(sandbox.url, token="invalid-ga-token")
    with pytest.raises(SourceError) as failure:
        connector.daily_series(SeriesRequest.of(metric(tiny, "activeUsers"), OCT_1, OCT_3))
    assert str(failure.value).startswith(
        "google_analytics: authentication failed (HTTP 401): check GA_ACCESS_TOKEN (the API says: "
        "Request had invalid authentication credentials."
    )
    assert "invalid-ga-token" not in caplog.text


def test_a_property_the_account_cannot_read(sandbox, ga):
    sandbox.data.google_analytics.set_rows("100000002", [])
    sandbox.data.google_analytics.deny("100000002")
    with pytest.raises(SourceError, match=r"permission denied \(HTTP 403\)"):
        ga.daily_series(SeriesRequest.of(metric("100000002", "activeUsers"), OCT_1, OCT_3))


def test_an_unknown_metric_is_the_apis_400(ga, tiny):
    with pytest.raises(SourceError) as failure:
        ga.daily_series(SeriesRequest.of(metric(tiny, "activeUser"), OCT_1, OCT_3))
    assert "HTTP 400" in str(failure.value) and "activeUser is not a valid metric" in str(
        failure.value
    )


def test_the_token_never_reaches_errors_or_logs(sandbox, tiny, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "ya29.c0-very-secret-token"
    connector = connect(sandbox.url, token=secret, sleep=lambda s: None, max_attempts=2)
    sandbox.add_fault(path_prefix="/v1beta/properties/", status=503)
    with pytest.raises(SourceError) as failure:
        connector.daily_series(SeriesRequest.of(metric(tiny, "activeUsers"), OCT_1, OCT_3))
    assert "HTTP 503" in str(failure.value)
    assert secret not in str(failure.value) and secret not in repr(failure.value)
    assert secret not in caplog.text
    assert all(secret not in record.getMessage() for record in caplog.records)


def test_a_service_account_needs_google_auth(monkeypatch):
    monkeypatch.setitem(sys.modules, "google.auth", None)
    connector = GoogleAnalyticsConnector.from_settings(
        SourceSettings(base_url="https://ga.example.com", credentials_file="/keys/sa.json")
    )
    with pytest.raises(SourceError) as failure:
        connector.daily_series(SeriesRequest.of(metric("1", "activeUsers"), OCT_1, OCT_3))
    assert str(failure.value) == (
        "google_analytics: install google-auth to use GOOGLE_APPLICATION_CREDENTIALS"
    )


@pytest.fixture
def fake_google_auth(monkeypatch) -> dict:
    """A stand-in for google-auth: records what it was asked, hands out a fixed token."""
    asked: dict = {}

    class Credentials:
        token = None

        def refresh(self, request) -> None:
            asked["refreshed_with"] = request
            self.token = "ya29.from-the-service-account"

    def load_credentials_from_file(path, scopes=None):
        if not Path(path).exists():
            raise FileNotFoundError(f"File {path} was not found.")
        asked.update(path=path, scopes=scopes)
        return Credentials(), "project-1"

    google = types.ModuleType("google")
    auth = types.ModuleType("google.auth")
    transport = types.ModuleType("google.auth.transport")
    transport_requests = types.ModuleType("google.auth.transport.requests")
    transport_requests.Request = lambda: "transport-request"
    auth.load_credentials_from_file = load_credentials_from_file
    auth.transport = transport
    transport.requests = transport_requests
    google.auth = auth
    for name, module in {
        "google": google,
        "google.auth": auth,
        "google.auth.transport": transport,
        "google.auth.transport.requests": transport_requests,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    return asked


def test_a_service_account_file_gives_the_token(sandbox, tiny, tmp_path, fake_google_auth):
    key = tmp_path / "sa.json"
    key.write_text("{}")
    settings = SourceSettings.from_env(
        GoogleAnalyticsConnector.env,
        {"GA_API_URL": sandbox.url, "GOOGLE_APPLICATION_CREDENTIALS": str(key)},
    )
    connector = GoogleAnalyticsConnector.from_settings(settings)
    series = connector.daily_series(SeriesRequest.of(metric(tiny, "activeUsers"), OCT_1, OCT_3))
    assert values(series) == [230, 0, 120]
    assert fake_google_auth["scopes"] == ["https://www.googleapis.com/auth/analytics.readonly"]
    assert connector.client.session.headers["Authorization"] == (
        "Bearer ya29.from-the-service-account"
    )
    assert connector.client.token_env == "GOOGLE_APPLICATION_CREDENTIALS"


def test_an_unreadable_service_account_file_is_one_line(tmp_path, fake_google_auth):
    connector = GoogleAnalyticsConnector.from_settings(
        SourceSettings(
            base_url="https://ga.example.com", credentials_file=str(tmp_path / "no.json")
        )
    )
    with pytest.raises(SourceError) as failure:
        connector.daily_series(SeriesRequest.of(metric("1", "activeUsers"), OCT_1, OCT_3))
    assert str(failure.value) == (
        "google_analytics: cannot get an access token from GOOGLE_APPLICATION_CREDENTIALS "
        "(FileNotFoundError); check that it names a readable service-account key file"
    )


# --- (d) filters: string matches, case, not, lists, metric filters --------------------------------

PAGES = "100000003"
PAGE_ROWS = [
    # 2026-10-01: 45 views in 22 sessions.
    {"date": "2026-10-01", "pagePath": "/pricing", "country": "Norway", "platform": "web",
     "screenPageViews": 10, "sessions": 4},
    {"date": "2026-10-01", "pagePath": "/pricing/teams", "country": "France", "platform": "web",
     "screenPageViews": 5, "sessions": 2},
    {"date": "2026-10-01", "pagePath": "/Pricing", "country": "Spain", "platform": "iOS",
     "screenPageViews": 3, "sessions": 1},
    {"date": "2026-10-01", "pagePath": "/blog/pricing-update", "country": "Norway",
     "platform": "Android", "screenPageViews": 7, "sessions": 3},
    {"date": "2026-10-01", "pagePath": "/docs", "country": "Germany", "platform": "web",
     "screenPageViews": 20, "sessions": 12},
    # 2026-10-02: 3 views in 3 sessions.
    {"date": "2026-10-02", "pagePath": "/pricing", "country": "Norway", "platform": "web",
     "screenPageViews": 1, "sessions": 1},
    {"date": "2026-10-02", "pagePath": "/docs", "country": "Germany", "platform": "web",
     "screenPageViews": 2, "sessions": 2},
    # 2026-10-03: 10 views in 9 sessions, none from Norway.
    {"date": "2026-10-03", "pagePath": "/pricing/teams", "country": "France", "platform": "web",
     "screenPageViews": 6, "sessions": 5},
    {"date": "2026-10-03", "pagePath": "/blog/pricing-update", "country": "Spain",
     "platform": "iOS", "screenPageViews": 4, "sessions": 4},
    # Events: their rows have no page, no country and no views.
    {"date": "2026-10-01", "eventName": "sign_up", "eventCount": 2},
    {"date": "2026-10-01", "eventName": "signup", "eventCount": 3},
    {"date": "2026-10-01", "eventName": "Sign_Up", "eventCount": 5},
    {"date": "2026-10-01", "eventName": "signup_start", "eventCount": 7},
    {"date": "2026-10-02", "eventName": "sign-up", "eventCount": 11},
    {"date": "2026-10-02", "eventName": "signup", "eventCount": 13},
    {"date": "2026-10-03", "eventName": "Sign_Up", "eventCount": 17},
    {"date": "2026-10-03", "eventName": "sign_up", "eventCount": 19},
]  # fmt: skip


@pytest.fixture
def pages(sandbox) -> str:
    sandbox.data.google_analytics.set_rows(PAGES, PAGE_ROWS)
    return PAGES


def ga_metric(property_id: str, name: str, filter=None, metric_filter=None):  # noqa: A002
    return GoogleAnalyticsMetric.model_validate(
        {
            "source": "google_analytics",
            "property": property_id,
            "metric": name,
            "filter": filter or {},
            "metric_filter": metric_filter or {},
        }
    )


@pytest.mark.parametrize(
    ("name", "where", "expected"),
    [
        # "/blog/pricing-update" contains "/pricing" too; "/Pricing" differs in case.
        ("screenPageViews", {"pagePath": {"contains": "/pricing"}}, [22, 1, 10]),
        (
            "screenPageViews",
            {"pagePath": {"contains": "/pricing", "case_sensitive": False}},
            [25, 1, 10],
        ),
        ("screenPageViews", {"pagePath": {"begins_with": "/pricing"}}, [15, 1, 6]),
        ("screenPageViews", {"pagePath": {"ends_with": "-update"}}, [7, 0, 4]),
        ("screenPageViews", {"pagePath": {"exact": "/pricing"}}, [10, 1, 0]),
        ("screenPageViews", {"pagePath": {"exact": "/PRICING"}}, [0, 0, 0]),
        (
            "screenPageViews",
            {"pagePath": {"exact": "/PRICING", "case_sensitive": False}},
            [13, 1, 0],
        ),
        # Full: the whole value matches ("/docs" only); partial: somewhere (the blog too).
        ("screenPageViews", {"pagePath": {"full_regexp": "/(blog|docs)"}}, [20, 2, 0]),
        ("screenPageViews", {"pagePath": {"partial_regexp": "^/(blog|docs)"}}, [27, 2, 4]),
        ("eventCount", {"eventName": {"full_regexp": "sign_?up"}}, [5, 13, 19]),
        (
            "eventCount",
            {"eventName": {"full_regexp": "sign_?up", "case_sensitive": False}},
            [10, 13, 36],
        ),
        ("eventCount", {"eventName": {"partial_regexp": "sign_?up"}}, [12, 13, 19]),
        # A regexp class such as \D keeps its meaning when matching regardless of case.
        (
            "eventCount",
            {"eventName": {"full_regexp": r"SIGN\Wup", "case_sensitive": False}},
            [0, 11, 0],
        ),
        # Lists: case-sensitive as written, or not when asked.
        ("screenPageViews", {"country": ["Norway"]}, [17, 1, 0]),
        ("screenPageViews", {"country": ["norway"]}, [0, 0, 0]),
        ("screenPageViews", {"country": {"in": ["norway"], "case_sensitive": False}}, [17, 1, 0]),
        # not: rows without a country (the events) carry no views.
        ("screenPageViews", {"country": {"not": ["France", "Spain"]}}, [37, 3, 0]),
        # "/Pricing" has no lowercase "pricing": it stays, with "/docs".
        ("screenPageViews", {"pagePath": {"not": {"contains": "pricing"}}}, [23, 2, 0]),
        (
            "screenPageViews",
            {"pagePath": {"all": [{"begins_with": "/pricing"}, {"not": {"exact": "/pricing"}}]}},
            [5, 0, 6],
        ),
        (
            "screenPageViews",
            {"pagePath": {"any": [{"exact": "/docs"}, {"ends_with": "teams"}]}},
            [25, 2, 6],
        ),
        # Two dimensions: both required.
        (
            "screenPageViews",
            {"pagePath": {"contains": "/pricing"}, "platform": ["web"]},
            [15, 1, 6],
        ),
    ],
)
def test_dimension_filters(ga, pages, name, where, expected):
    series = ga.daily_series(SeriesRequest.of(ga_metric(pages, name, filter=where), OCT_1, OCT_3))
    assert values(series) == expected


@pytest.mark.parametrize(
    ("where", "having", "expected"),
    [
        # Daily sessions are 22, 3 and 9; views 45, 3 and 10. A failing day reads 0.
        ({}, {"sessions": {"gte": 5}}, [45, 0, 10]),
        ({}, {"sessions": {"lt": 5}}, [0, 3, 0]),
        ({}, {"sessions": {"lte": 3.5}}, [0, 3, 0]),  # a doubleValue
        ({}, {"sessions": {"gt": 9}}, [45, 0, 0]),
        ({}, {"sessions": {"eq": 9}}, [0, 0, 10]),
        ({}, {"sessions": {"between": [3, 9]}}, [0, 3, 10]),  # both ends included
        ({}, {"sessions": {"not": {"eq": 22}}}, [0, 3, 10]),
        ({}, {"sessions": {"any": [{"lt": 4}, {"gt": 20}]}}, [45, 3, 0]),
        ({}, {"screenPageViews": {"gt": 10}}, [45, 0, 0]),  # on the metric itself
        ({}, {"sessions": {"gte": 5}, "screenPageViews": {"lte": 10}}, [0, 0, 10]),
        # After the dimension filter: Norway's sessions are 7 on 10-01, 1 on 10-02.
        ({"country": ["Norway"]}, {"sessions": {"gte": 5}}, [17, 0, 0]),
    ],
)
def test_metric_filters(ga, pages, where, having, expected):
    series = ga.daily_series(
        SeriesRequest.of(
            ga_metric(pages, "screenPageViews", filter=where, metric_filter=having), OCT_1, OCT_3
        )
    )
    assert values(series) == expected


def test_the_exact_filter_expressions(sandbox, ga, pages):
    ga.daily_series(
        SeriesRequest.of(
            ga_metric(
                pages,
                "screenPageViews",
                filter={
                    "pagePath": {"contains": "/pricing"},
                    "eventName": {"full_regexp": "sign_?up", "case_sensitive": False},
                    "country": {"not": ["France", "Spain"]},
                    "platform": {"any": [{"begins_with": "i"}, {"exact": "web"}]},
                },
                metric_filter={"sessions": {"gte": 10}, "engagementRate": {"between": [0.25, 1]}},
            ),
            OCT_1,
            OCT_3,
        ),
    )
    (body,) = sandbox.request_bodies()

    def string(field, match, value, case_sensitive=True):
        return {
            "filter": {
                "fieldName": field,
                "stringFilter": {
                    "matchType": match,
                    "value": value,
                    "caseSensitive": case_sensitive,
                },
            }
        }

    assert body["dimensionFilter"] == {
        "andGroup": {
            "expressions": [
                string("pagePath", "CONTAINS", "/pricing"),
                string("eventName", "FULL_REGEXP", "sign_?up", case_sensitive=False),
                {
                    "notExpression": {
                        "filter": {
                            "fieldName": "country",
                            "inListFilter": {"values": ["France", "Spain"], "caseSensitive": True},
                        }
                    }
                },
                {
                    "orGroup": {
                        "expressions": [
                            string("platform", "BEGINS_WITH", "i"),
                            string("platform", "EXACT", "web"),
                        ]
                    }
                },
            ]
        }
    }
    assert body["metricFilter"] == {
        "andGroup": {
            "expressions": [
                {
                    "filter": {
                        "fieldName": "sessions",
                        "numericFilter": {
                            "operation": "GREATER_THAN_OR_EQUAL",
                            "value": {"int64Value": "10"},
                        },
                    }
                },
                {
                    "filter": {
                        "fieldName": "engagementRate",
                        "betweenFilter": {
                            "fromValue": {"doubleValue": 0.25},
                            "toValue": {"int64Value": "1"},
                        },
                    }
                },
            ]
        }
    }
    # The metric filter names a metric the report does not return: GA allows it.
    assert body["metrics"] == [{"name": "screenPageViews"}]


def test_without_a_metric_filter_the_body_has_none(sandbox, ga, pages):
    ga.daily_series(SeriesRequest.of(ga_metric(pages, "screenPageViews"), OCT_1, OCT_3))
    (body,) = sandbox.request_bodies()
    assert "metricFilter" not in body and "dimensionFilter" not in body


# --- the sandbox's own filter evaluation and its 400s ------------------------------------------


def test_a_string_filter_is_case_insensitive_by_default_as_in_ga(sandbox, tiny):
    # GA's default `caseSensitive` is false; the connector always sends it.
    upper = {"filter": {"fieldName": "eventName", "stringFilter": {"value": "PUSH_OPT_IN"}}}
    assert [row["metricValues"][0]["value"] for row in report(sandbox, tiny, dimensionFilter=upper)["rows"]] == ["5"]  # fmt: skip
    exact = {**upper["filter"], "stringFilter": {"value": "PUSH_OPT_IN", "caseSensitive": True}}
    assert "rows" not in report(sandbox, tiny, dimensionFilter={"filter": exact})


def post_report(sandbox, body: dict) -> requests.Response:
    return requests.post(
        f"{sandbox.url}{REPORT.format(PAGES)}",
        json={
            "dateRanges": [{"startDate": "2026-10-01", "endDate": "2026-10-03"}],
            "dimensions": [{"name": "date"}],
            "metrics": [{"name": "screenPageViews"}],
            **body,
        },
        headers={"Authorization": "Bearer sandbox-token"},
        timeout=5,
    )


def page_filter(**spec) -> dict:
    return {"filter": {"fieldName": "pagePath", **spec}}


def sessions_filter(**spec) -> dict:
    return {"filter": {"fieldName": "sessions", **spec}}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"dimensionFilter": {}}, "needs exactly one of andGroup, orGroup, notExpression or filter"),
        ({"dimensionFilter": {"orGroup": {"expressions": []}}}, "must be a non-empty list"),
        ({"dimensionFilter": {"xorGroup": {}}}, "Unknown name 'xorGroup'"),
        (
            {"dimensionFilter": page_filter(stringFilter={"matchType": "STARTS_WITH", "value": "/"})},
            "Invalid value 'STARTS_WITH' for matchType",
        ),
        (
            {"dimensionFilter": page_filter(stringFilter={"matchType": "FULL_REGEXP", "value": "(/"})},
            "invalid regular expression '(/'",
        ),
        (
            {"dimensionFilter": page_filter(stringFilter={"value": "/", "caseSensitive": "yes"})},
            "caseSensitive must be a boolean",
        ),
        ({"dimensionFilter": page_filter(inListFilter={"values": []})}, "values must not be empty"),
        (
            {"dimensionFilter": page_filter(inListFilter={"values": ["/"]}, stringFilter={})},
            "needs exactly one kind of filter",
        ),
        (
            {"dimensionFilter": page_filter(inListFilter={"values": ["/"], "ignoreCase": True})},
            "Unknown name 'ignoreCase'",
        ),
        ({"dimensionFilter": sessions_filter(inListFilter={"values": ["1"]})}, "is a metric"),
        (
            {"metricFilter": page_filter(stringFilter={"value": "/"})},
            "Field pagePath is not a valid metric",
        ),
        (
            {"metricFilter": sessions_filter(stringFilter={"value": "1"})},
            "stringFilter is not a filter for sessions here",
        ),
        (
            {"metricFilter": sessions_filter(numericFilter={"operation": "GREATER", "value": {"int64Value": "1"}})},
            "Invalid value 'GREATER' for operation",
        ),
        (
            {"metricFilter": sessions_filter(numericFilter={"operation": "EQUAL", "value": {}})},
            "must be a NumericValue",
        ),
        (
            {"metricFilter": sessions_filter(numericFilter={"operation": "EQUAL", "value": {"int64Value": "1.5"}})},
            "invalid NumericValue",
        ),
        (
            {"metricFilter": sessions_filter(betweenFilter={"fromValue": {"doubleValue": 1}})},
            "toValue must be a NumericValue",
        ),
    ],
)  # fmt: skip
def test_malformed_filters_are_googles_400(sandbox, pages, body, says):
    response = post_report(sandbox, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == 400 and error["status"] == "INVALID_ARGUMENT"
    assert says in error["message"], error["message"]


def test_the_sandbox_evaluates_a_metric_filter_on_aggregated_rows(sandbox, pages):
    # By country, over the three days: Norway 18 views in 8 sessions, France 11 in 7,
    # Spain 7 in 5, Germany 22 in 14; sessions >= 7 and not above 10 keeps two countries.
    body = {
        "dimensions": [{"name": "country"}],
        "metricFilter": {
            "andGroup": {
                "expressions": [
                    sessions_filter(
                        numericFilter={"operation": "GREATER_THAN_OR_EQUAL", "value": {"int64Value": "7"}}
                    ),
                    {"notExpression": sessions_filter(numericFilter={"operation": "GREATER_THAN", "value": {"doubleValue": 10}})},
                ]
            }
        },
    }  # fmt: skip
    answer = post_report(sandbox, body).json()
    rows = {r["dimensionValues"][0]["value"]: r["metricValues"][0]["value"] for r in answer["rows"]}
    assert rows == {"France": "11", "Norway": "18"}
    assert answer["rowCount"] == 2


# --- validation: the linter's file:line messages --------------------------------------------------

KR_HEAD = """\
quarter: 2026-Q4
objectives:
  - id: growth
    title: Grow
    key_results:
      - id: pricing-views
        title: Pricing page views
        type: increase
        start: 0
        target: 100
        metric:
          source: google_analytics
          property: "123456789"
          metric: screenPageViews
"""


def lint(tmp_path: Path, keys: str) -> tuple[Path, list[str]]:
    from okr_metrics.pipelines.definitions import load_definitions

    path = tmp_path / "2026-Q4.yaml"
    path.write_text(KR_HEAD + textwrap.indent(textwrap.dedent(keys), " " * 10), encoding="utf-8")
    return path, [str(problem) for problem in load_definitions(path).errors]


WHERE = "objectives[growth].key_results[pricing-views].metric"


@pytest.mark.parametrize(
    ("keys", "line", "message"),
    [
        (
            "filter:\n  pagePath: /pricing\n",
            16,
            "filter.pagePath: use a list of values or one of {exact, begins_with, ends_with, "
            "contains, full_regexp, partial_regexp, in, not, any, all}: got '/pricing'",
        ),
        (
            "filter:\n  platform: [iOS]\n  pagePath: {starts_with: /pricing}\n",
            17,
            "filter.pagePath: unknown match type 'starts_with' (known: exact, begins_with, "
            "ends_with, contains, full_regexp, partial_regexp, in, not, any, all)",
        ),
        (
            "filter:\n  pagePath: {contains: /pricing, begins_with: /p}\n",
            16,
            "filter.pagePath: one match type per mapping, found contains and begins_with: "
            "combine several with all: [...] or any: [...]",
        ),
        (
            "filter:\n  eventName: {full_regexp: 'sign_(up'}\n",
            16,
            "filter.eventName: full_regexp: invalid regular expression 'sign_(up': missing ), "
            "unterminated subpattern at position 5",
        ),
        (
            "filter:\n  pagePath: {partial_regexp: '^/blog(?!/drafts)'}\n",
            16,
            "filter.pagePath: partial_regexp: '(?!' in '^/blog(?!/drafts)' is not RE2, GA4's "
            "regular expression syntax (no lookaround, atomic groups or backreferences)",
        ),
        (
            "filter:\n  pagePath: {contains: /pricing, case_sensitive: 'no'}\n",
            16,
            "filter.pagePath: case_sensitive: use true or false, got 'no'",
        ),
        (
            "filter:\n  country: {not: [France], case_sensitive: false}\n",
            16,
            "filter.country: put case_sensitive beside the match inside not, not beside not",
        ),
        (
            "filter:\n  appVersion: {exact: 1.10}\n",
            16,
            'filter.appVersion: exact: use a non-empty string (quote numbers: "1.10"), got 1.1',
        ),
        (
            "filter:\n  country: {not: [France, 44]}\n",
            16,
            'filter.country: not: values are strings (quote numbers: "1.10"), got 44',
        ),
        ("filter:\n  country: []\n", 16, "filter.country: list at least one value, got []"),
        (
            "filter:\n  pagePath: {any: [{begins_with: /a}, {ends_with: ''}]}\n",
            16,
            "filter.pagePath: any[1].ends_with: use a non-empty string (quote numbers: "
            "\"1.10\"), got ''",
        ),
        (
            "filter:\n  page path: [/]\n",
            15,
            "filter: 'page path' is not a GA4 dimension API name (letters, digits, _ and :)",
        ),
        (
            "metric_filter:\n  sessions: 10\n",
            16,
            "metric_filter.sessions: use one of {eq, lt, lte, gt, gte, between, not, any, all} "
            "(e.g. {gte: 10}): got 10",
        ),
        (
            "metric_filter:\n  sessions: {ge: 10}\n",
            16,
            "metric_filter.sessions: unknown comparison 'ge' (known: eq, lt, lte, gt, gte, "
            "between, not, any, all)",
        ),
        (
            "metric_filter:\n  sessions: {gte: '10'}\n",
            16,
            "metric_filter.sessions: gte: use a number, got '10'",
        ),
        (
            "metric_filter:\n  sessions: {between: [10, 1]}\n",
            16,
            "metric_filter.sessions: between: use [low, high] (both included, low <= high), "
            "got [10, 1]",
        ),
    ],
)
def test_bad_filters_name_file_line_and_shape(tmp_path, keys, line, message):
    path, errors = lint(tmp_path, keys)
    assert errors == [f"{path}:{line}: {WHERE}.{message}"]


def test_every_filter_shape_loads(tmp_path):
    path, errors = lint(
        tmp_path,
        """\
        filter:
          platform: [iOS, Android]
          pagePath: {contains: /pricing}
          eventName: {full_regexp: "sign_?up", case_sensitive: false}
          country: {not: [France, Spain]}
          deviceCategory: {in: [mobile], case_sensitive: false}
          pageTitle: {any: [{begins_with: Pricing}, {not: {ends_with: Draft}}]}
        metric_filter:
          sessions: {gte: 10}
          engagementRate: {between: [0.2, 0.9]}
        """,
    )
    assert errors == []


# --- metric keys: unchanged for lists, canonical for the rest ------------------------------------


def test_the_key_of_a_list_filter_is_unchanged():
    plain = metric("123456789", "activeUsers", platform=["iOS", "Android"])
    assert plain.metric_key() == (
        'google_analytics:filter={"platform":["iOS","Android"]};metric=activeUsers;'
        "property=123456789"
    )
    # And its dump (the KR's definition hash) has no trace of the new keys.
    assert plain.model_dump(mode="json") == {
        "source": "google_analytics",
        "aggregate": None,
        "expect": None,
        "property": "123456789",
        "metric": "activeUsers",
        "filter": {"platform": ["iOS", "Android"]},
    }


def test_the_sample_definitions_keep_their_keys():
    from okr_metrics.pipelines.definitions import load_definitions
    from okr_metrics.pipelines.vocabulary.quarters import Quarter

    q4 = load_definitions(Path(__file__).parents[2] / "okr_defs").for_quarter(Quarter(2026, 4))
    keys = {key for key in q4.series_by_key() if key.startswith("google_analytics:")}
    assert 'google_analytics:filter={"eventName":["push_opt_in"]};metric=eventCount;property=123456789' in keys  # fmt: skip
    assert 'google_analytics:filter={"platform":["iOS","Android"]};metric=averageSessionDuration;property=123456789' in keys  # fmt: skip


def test_one_query_one_key_and_new_keys_say_what_they_filter():
    listed = ga_metric("1", "eventCount", filter={"eventName": ["a"]})
    spelled = ga_metric("1", "eventCount", filter={"eventName": {"in": ["a"], "case_sensitive": True}})  # fmt: skip
    assert listed.metric_key() == spelled.metric_key()
    assert listed == spelled
    loose = ga_metric("1", "eventCount", filter={"eventName": {"in": ["a"], "case_sensitive": False}})  # fmt: skip
    assert loose.metric_key() != listed.metric_key()
    having = ga_metric(
        "1",
        "screenPageViews",
        filter={"pagePath": {"contains": "/pricing", "case_sensitive": False}},
        metric_filter={"sessions": {"gte": 10}},
    )
    assert having.metric_key() == (
        'google_analytics:filter={"pagePath":{"case_sensitive":false,"contains":"/pricing"}};'
        'metric=screenPageViews;metric_filter={"sessions":{"gte":10}};property=1'
    )
    # Parsed conditions are frozen and hashable.
    assert len({*having.filter.values(), *having.metric_filter.values()}) == 2
    with pytest.raises(FrozenInstanceError):
        having.filter["pagePath"].value = "/other"


# --- the quota: one line per property, at the end of the run -------------------------------------


def test_one_quota_line_per_property_from_finish(sandbox, ga, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="okr_metrics.google_analytics")
    # A fixed clock, so that no hour or day turns over between the reports.
    monkeypatch.setattr(ga_sandbox, "time", types.SimpleNamespace(time=lambda: 1_790_000_000.0))
    sandbox.data.google_analytics.set_rows("100000011", TINY_ROWS)
    sandbox.data.google_analytics.set_rows("100000012", TINY_ROWS)

    ga.daily_series(SeriesRequest.of(metric("100000011", "activeUsers"), OCT_1, OCT_3))
    ga.daily_series(SeriesRequest.of(metric("100000012", "eventCount"), OCT_1, OCT_3))
    ga.daily_series(
        SeriesRequest.of(metric("100000011", "eventCount", eventName=["push_opt_in"]), OCT_1, OCT_3)
    )
    assert quota_lines(caplog) == []
    ga.finish()

    # Each tiny report costs the sandbox 1 token of each kind.
    assert quota_lines(caplog) == [
        (
            logging.INFO,
            "google_analytics: property 100000011 quota after 2 reports (2 tokens used): "
            "tokensPerDay 199998 left, tokensPerHour 39998 left, tokensPerProjectPerHour 13998 left",
        ),
        (
            logging.INFO,
            "google_analytics: property 100000012 quota after 1 report (1 tokens used): "
            "tokensPerDay 199999 left, tokensPerHour 39999 left, tokensPerProjectPerHour 13999 left",
        ),
    ]
    ga.finish()  # a second run's finish starts afresh: nothing new to say
    assert len(quota_lines(caplog)) == 2


def test_a_low_daily_quota_is_a_warning_at_the_end(sandbox, ga, monkeypatch, caplog):
    monkeypatch.setattr(ga_sandbox, "QUOTAS", {**ga_sandbox.QUOTAS, "tokensPerDay": 5_000})
    sandbox.data.google_analytics.set_rows("100000013", TINY_ROWS)
    ga.daily_series(SeriesRequest.of(metric("100000013", "activeUsers"), OCT_1, OCT_3))
    ga.finish()
    assert quota_lines(caplog) == [
        (
            logging.WARNING,
            "google_analytics: property 100000013 quota after 1 report (1 tokens used): "
            "tokensPerDay 4999 left, tokensPerHour 39999 left, tokensPerProjectPerHour 13999 left",
        )
    ]


# --- records the mapping cannot read -------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            {"dimensionValues": [], "metricValues": [{"value": "3"}]},
            "google_analytics: report row: dimensionValues.0.value is missing",
        ),
        (
            {
                "dimensionValues": [{"value": "2026-10-01T10:00:00Z"}],
                "metricValues": [{"value": "3"}],
            },
            "google_analytics: report row 2026-10-01T10:00:00Z: dimensionValues.0.value "
            "'2026-10-01T10:00:00Z' is not a date",
        ),
        (
            {"dimensionValues": [{"value": "20261001"}], "metricValues": [{"value": "many"}]},
            "google_analytics: report row 20261001: metricValues.0.value 'many' "
            "is not a TYPE_INTEGER number",
        ),
    ],
)
def test_a_row_without_a_readable_day_is_one_line(sandbox, ga, tiny, row, message):
    # The sandbox answers the report with a hand-written page of one broken row.
    page = {
        "metricHeaders": [{"name": "activeUsers", "type": "TYPE_INTEGER"}],
        "rows": [row],
        "rowCount": 1,
    }
    sandbox.add_fault(path_prefix=REPORT.format(tiny), status=200, body=page)
    with pytest.raises(SourceError) as failure:
        ga.daily_series(SeriesRequest.of(metric(tiny, "activeUsers"), OCT_1, OCT_3))
    assert str(failure.value) == message
