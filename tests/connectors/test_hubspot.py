"""The HubSpot connector: against the reference-built fixtures and the sandbox."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from connectors.base import SourceError, SourceSettings
from connectors.hubspot.client import HubSpotConnector, parse_moment
from connectors.hubspot.params import HubSpotMetric

FIXTURES = Path(__file__).parents[1] / "fixtures" / "hubspot"
OCT_1, OCT_2, OCT_3 = date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3)
UTC = timezone.utc
WON_SMB = (
    {"property": "dealstage", "operator": "EQ", "value": "closedwon"},
    {"property": "customer_segment", "operator": "EQ", "value": "smb"},
)


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def metric(object_name: str = "deals", filters=WON_SMB, **keys) -> HubSpotMetric:
    return HubSpotMetric(source="hubspot", object=object_name, filters=filters, **keys)


def values(frame) -> list[float]:
    return frame["value"].tolist()


def ms(*moment: int) -> int:
    """Epoch milliseconds of a UTC moment (year, month, day, hour...)."""
    return int(datetime(*moment, tzinfo=UTC).timestamp()) * 1000


def connect(url: str, token: str = "pat-na1-test", **options) -> HubSpotConnector:
    return HubSpotConnector.from_settings(SourceSettings(base_url=url, token=token), **options)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def hubspot(sandbox, sleeps) -> HubSpotConnector:
    """The connector on the sandbox, with a fixed backoff (0.5 s, 1 s, ...) and no real sleep."""
    settings = SourceSettings.from_env(
        HubSpotConnector.env, {"HUBSPOT_API_URL": sandbox.url, "HUBSPOT_ACCESS_TOKEN": "pat-na1-x"}
    )
    return HubSpotConnector.from_settings(
        settings, sleep=sleeps, backoff_base=0.5, jitter=lambda: 1.0, max_attempts=3
    )


# --- settings and parsing --------------------------------------------------------------------------


def test_without_a_token_the_source_is_skipped():
    settings = SourceSettings.from_env(HubSpotConnector.env, {})
    assert settings.base_url == "https://api.hubapi.com"
    assert HubSpotConnector.missing_settings(settings) == "HUBSPOT_ACCESS_TOKEN not set"


def test_the_client_sends_a_bearer_token():
    connector = connect("https://api.hubapi.com/", token="pat-na1-0123")
    assert connector.client.session.headers["Authorization"] == "Bearer pat-na1-0123"
    assert connector.client.base_url == "https://api.hubapi.com"
    assert connector.client.redact("x pat-na1-0123 y") == "x *** y"


@pytest.mark.parametrize(
    ("text", "zone", "expected"),
    [
        ("2026-10-15T09:12:33.123Z", "UTC", date(2026, 10, 15)),
        ("2026-10-15T23:30:00Z", "Europe/Oslo", date(2026, 10, 16)),
        (str(ms(2026, 10, 15, 2)), "America/New_York", date(2026, 10, 14)),  # epoch-ms string
        ("2026-10-15", "America/New_York", date(2026, 10, 15)),  # a date property: as it is
        ("", "UTC", None),
        (None, "UTC", None),
    ],
)
def test_date_values_in_every_shape(text, zone, expected):
    assert parse_moment(text, ZoneInfo(zone)) == expected


# --- (a) the reference-built fixtures, replayed ---------------------------------------------------


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def serve_search(httpserver: HTTPServer) -> dict:
    fixture = load("search-deals.json")
    by_after = {i["request"].get("after"): i["response"] for i in fixture["interactions"]}

    def respond(request: Request) -> Response:
        page = by_after[json.loads(request.data).get("after")]
        return Response(json.dumps(page), 200, {"Content-Type": "application/json;charset=utf-8"})

    httpserver.expect_request("/crm/v3/objects/deals/search", method="POST").respond_with_handler(
        respond
    )
    return fixture


def test_replay_two_pages_summed_in_oslo(httpserver, monkeypatch):
    fixture = serve_search(httpserver)
    monkeypatch.setattr(HubSpotConnector, "page_size", 3)
    connector = connect(httpserver.url_for("/"))

    series = connector.daily_series(
        metric(measure="sum", field="amount"), OCT_1, OCT_3, "Europe/Oslo"
    )

    # 22:30Z on 09-30 is 00:30 on 10-01 in Oslo; 21:59:59.999Z on 10-02 is still 10-02,
    # 22:00Z is 10-03. Null and empty amounts add nothing: 1250 + 830.50, 0, 0 + 2100.
    assert series["date"].tolist() == [OCT_1, OCT_2, OCT_3]
    assert values(series) == [2080.5, 0.0, 2100.0]
    sent = [json.loads(request.data) for request, _ in httpserver.log]
    assert sent == [i["request"] for i in fixture["interactions"]]


def test_replay_counted(httpserver, monkeypatch):
    serve_search(httpserver)
    monkeypatch.setattr(HubSpotConnector, "page_size", 3)
    series = connect(httpserver.url_for("/")).daily_series(metric(), OCT_1, OCT_3, "Europe/Oslo")
    assert values(series) == [2, 1, 2]


def serve_error(httpserver: HTTPServer, status: int) -> None:
    recorded = next(e for e in load("errors.json")["errors"] if e["status"] == status)
    httpserver.expect_request("/crm/v3/objects/deals/search", method="POST").respond_with_response(
        Response(json.dumps(recorded["response"]), status, recorded["headers"])
    )


def test_replay_an_authentication_error(httpserver):
    serve_error(httpserver, 401)
    with pytest.raises(SourceError) as failure:
        connect(httpserver.url_for("/"), token="pat-na1-secret").daily_series(
            metric(), OCT_1, OCT_3
        )
    assert str(failure.value).startswith(
        "hubspot: authentication failed (HTTP 401): check HUBSPOT_ACCESS_TOKEN "
        "(the API says: Authentication credentials not found."
    )
    assert "pat-na1-secret" not in str(failure.value)


def test_replay_a_validation_error(httpserver):
    serve_error(httpserver, 400)
    with pytest.raises(SourceError) as failure:
        connect(httpserver.url_for("/")).daily_series(metric(), OCT_1, OCT_3)
    assert str(failure.value) == (
        "hubspot: request failed (HTTP 400) on POST /crm/v3/objects/deals/search "
        "(the API says: There was a problem with the request.)"
    )


def test_replay_the_ten_secondly_limit_is_retried(httpserver, sleeps):
    serve_error(httpserver, 429)
    connector = connect(
        httpserver.url_for("/"), sleep=sleeps, backoff_base=0.5, jitter=lambda: 1.0, max_attempts=3
    )
    with pytest.raises(SourceError) as failure:
        connector.daily_series(metric(), OCT_1, OCT_3)
    assert str(failure.value) == (
        "hubspot: gave up after 3 attempts on POST /crm/v3/objects/deals/search: "
        "last rate limited (HTTP 429)"
    )
    assert sleeps == [0.5, 1.0]


# --- (b) hand-computed values against the sandbox ----------------------------------------------------

TINY = "2-1001"
TINY_DEALS = [
    {"id": "1", "dealstage": "closedwon", "customer_segment": "smb",
     "closedate": "2026-10-01T09:00:00.000Z", "amount": "500"},
    # 23:30Z on 10-01: 10-02 in Oslo, 10-01 in New York.
    {"id": "2", "dealstage": "closedwon", "customer_segment": "smb",
     "closedate": "2026-10-01T23:30:00.000Z", "amount": "250.5"},
    # Epoch milliseconds, as some properties and older records carry them; a null amount.
    {"id": "3", "dealstage": "closedwon", "customer_segment": "smb",
     "closedate": str(ms(2026, 10, 2, 12)), "amount": None},
    # 03:30Z on 10-03: 23:30 on 10-02 in New York; an empty amount.
    {"id": "4", "dealstage": "closedwon", "customer_segment": "smb",
     "closedate": "2026-10-03T03:30:00.000Z", "amount": ""},
    # Other segments and stages: never counted as won SMB deals.
    {"id": "5", "dealstage": "closedwon", "customer_segment": "mid_market",
     "closedate": "2026-10-02T10:00:00.000Z", "amount": "9000"},
    {"id": "6", "dealstage": "closedlost", "customer_segment": "smb",
     "closedate": "2026-10-02T11:00:00.000Z", "amount": "300"},
    {"id": "7", "dealstage": "appointmentscheduled", "customer_segment": "smb",
     "closedate": "2026-10-03T10:00:00.000Z", "amount": "1200"},
    # Outside the window in UTC; 01:00 on 10-01 in Oslo.
    {"id": "8", "dealstage": "closedwon", "customer_segment": "smb",
     "closedate": "2026-09-30T23:00:00.000Z", "amount": "40"},
    # Outside the window in UTC; 22:00 on 10-03 in New York.
    {"id": "9", "dealstage": "closedwon", "customer_segment": "smb",
     "closedate": datetime(2026, 10, 4, 2, tzinfo=UTC), "amount": "1000"},
]  # fmt: skip


@pytest.fixture
def tiny(sandbox) -> str:
    sandbox.data.hubspot.set_records(TINY, TINY_DEALS)
    return TINY


@pytest.mark.parametrize(
    ("zone", "measure", "expected"),
    [
        ("UTC", "count", [2, 1, 1]),
        ("Europe/Oslo", "count", [2, 2, 1]),
        ("America/New_York", "count", [2, 2, 1]),
        ("UTC", "sum", [750.5, 0, 0]),
        ("Europe/Oslo", "sum", [540, 250.5, 0]),
        ("America/New_York", "sum", [750.5, 0, 1000]),
    ],
)
def test_tiny_deals(hubspot, tiny, zone, measure, expected):
    keys = {"measure": measure, "field": "amount"} if measure == "sum" else {}
    series = hubspot.daily_series(metric(tiny, **keys), OCT_1, OCT_3, zone)
    assert series["date"].tolist() == [OCT_1, OCT_2, OCT_3]
    assert values(series) == expected


def test_the_exact_request_body_in_new_york(sandbox, hubspot, tiny):
    hubspot.daily_series(
        metric(tiny, measure="sum", field="amount"), OCT_1, OCT_3, "America/New_York"
    )
    # Midnight in New York (EDT, UTC-4) is 04:00Z: 10-01 04:00Z to 10-04 04:00Z.
    assert sandbox.request_bodies() == [
        {
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": "dealstage", "operator": "EQ", "value": "closedwon"},
                        {"propertyName": "customer_segment", "operator": "EQ", "value": "smb"},
                        {"propertyName": "closedate", "operator": "GTE", "value": "1790827200000"},
                        {"propertyName": "closedate", "operator": "LT", "value": "1791086400000"},
                    ]
                }
            ],
            "properties": ["closedate", "amount"],
            "sorts": [{"propertyName": "closedate", "direction": "ASCENDING"}],
            "limit": 200,
        }
    ]
    assert ms(2026, 10, 1, 4) == 1790827200000 and ms(2026, 10, 4, 4) == 1791086400000
    assert [(r.method, r.path) for r in sandbox.requests] == [
        ("POST", f"/crm/v3/objects/{tiny}/search")
    ]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ([("dealstage", "NEQ", "closedlost")], [2, 2, 2]),
        ([("dealstage", "IN", "closedlost, appointmentscheduled")], [0, 1, 1]),
        ([("dealstage", "NOT_IN", "closedwon")], [0, 1, 1]),
        ([("amount", "GT", 400)], [1, 1, 1]),
        ([("amount", "LTE", 300)], [1, 1, 0]),
        ([("amount", "HAS_PROPERTY", None)], [2, 2, 1]),
        ([("amount", "NOT_HAS_PROPERTY", None)], [0, 1, 1]),
        ([("dealstage", "EQ", "closedwon"), ("amount", "GTE", 250.5)], [2, 1, 0]),
    ],
)
def test_filter_operators(hubspot, tiny, filters, expected):
    spec = tuple({"property": p, "operator": o, "value": v} for p, o, v in filters)
    series = hubspot.daily_series(metric(tiny, filters=spec), OCT_1, OCT_3)
    assert values(series) == expected


def test_in_filters_send_values(sandbox, hubspot, tiny):
    spec = ({"property": "dealstage", "operator": "IN", "value": "closedwon,closedlost"},)
    hubspot.daily_series(metric(tiny, filters=spec), OCT_1, OCT_3)
    (body,) = sandbox.request_bodies()
    assert body["filterGroups"][0]["filters"][0] == {
        "propertyName": "dealstage",
        "operator": "IN",
        "values": ["closedwon", "closedlost"],
    }


CAPPED = "2-1003"


@pytest.fixture
def capped(sandbox) -> list[dict]:
    """13 won deals a day, 2026-10-01..10, on an object whose search pages through 50 only."""
    deals = [
        {
            "dealstage": "closedwon",
            "customer_segment": "smb",
            "closedate": datetime(2026, 10, day, tzinfo=UTC) + timedelta(minutes=97 * n + 5),
            "amount": "100",
        }
        for day in range(1, 11)
        for n in range(13)
    ]
    sandbox.data.hubspot.set_records(CAPPED, deals)
    sandbox.data.hubspot.set_result_cap(CAPPED, 50)
    return deals


def test_the_result_cap_splits_the_window_and_loses_no_row(sandbox, hubspot, capped, monkeypatch):
    monkeypatch.setattr(HubSpotConnector, "result_cap", 50)
    monkeypatch.setattr(HubSpotConnector, "page_size", 20)
    end = date(2026, 10, 10)
    series = hubspot.daily_series(metric(CAPPED), OCT_1, end)

    assert values(series) == [13.0] * 10
    assert sum(values(series)) == len(capped) == 130
    bodies = sandbox.request_bodies()
    windows = [
        tuple(int(f["value"]) for f in body["filterGroups"][0]["filters"][2:]) for body in bodies
    ]
    # The first search covers the whole window, then halves (and halves of halves) follow.
    assert windows[0] == (ms(2026, 10, 1), ms(2026, 10, 11))
    assert len(set(windows)) >= 3
    # Never a page at or past the cap: the sandbox (like HubSpot) would answer 400.
    assert all(int(body.get("after", 0)) < 50 for body in bodies)


def test_without_the_split_the_sandbox_answers_400_at_the_cap(
    sandbox, hubspot, capped, monkeypatch
):
    monkeypatch.setattr(HubSpotConnector, "page_size", 20)  # the connector's cap stays 10,000
    with pytest.raises(SourceError) as failure:
        hubspot.daily_series(metric(CAPPED), OCT_1, date(2026, 10, 10))
    assert "HTTP 400" in str(failure.value) and "50 results at most" in str(failure.value)
    assert [body.get("after") for body in sandbox.request_bodies()] == [None, "20", "40", "50"]


def search(sandbox, object_name: str, body: dict, token: str = "pat-na1-x") -> requests.Response:
    return requests.post(
        f"{sandbox.url}/crm/v3/objects/{object_name}/search",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )


def test_the_sandbox_speaks_hubspots_search(sandbox, tiny):
    response = search(
        sandbox,
        tiny,
        {
            "filterGroups": [
                {"filters": [{"propertyName": "dealstage", "operator": "EQ", "value": "closedwon"}]}
            ],
            "properties": ["amount"],
            "sorts": [{"propertyName": "closedate", "direction": "DESCENDING"}],
            "limit": 2,
        },
    )
    page = response.json()
    assert response.status_code == 200 and page["total"] == 7
    assert [r["id"] for r in page["results"]] == ["9", "4"]
    assert page["results"][0]["properties"] == {
        "amount": "1000",
        "createdate": "2026-10-04T02:00:00.000Z",
        "hs_lastmodifieddate": "2026-10-04T02:00:00.000Z",
        "hs_object_id": "9",
    }
    assert page["results"][0]["archived"] is False
    assert page["paging"]["next"]["after"] == "2"
    assert page["paging"]["next"]["link"].endswith(f"/crm/v3/objects/{tiny}/search?after=2")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"limit": 201}, "limit must be between 1 and 200"),
        ({"after": "10000"}, "10000 results at most"),
        (
            {"filterGroups": [{"filters": [{"propertyName": "x", "operator": "EQ"}]}]},
            "needs a value",
        ),
    ],
)
def test_the_sandbox_refuses_what_hubspot_refuses(sandbox, body, message):
    response = search(sandbox, "2-1004", body)
    assert response.status_code == 400
    assert (
        response.json()["category"] == "VALIDATION_ERROR" and message in response.json()["message"]
    )


def test_the_sandbox_refuses_a_missing_token(sandbox):
    response = requests.post(f"{sandbox.url}/crm/v3/objects/deals/search", json={}, timeout=5)
    assert response.status_code == 401
    assert response.json()["category"] == "INVALID_AUTHENTICATION"
    assert response.json()["message"].startswith("Authentication credentials not found.")


def test_generated_deals_fit_the_sample_definitions(sandbox, hubspot):
    start, end = date(2026, 10, 1), date(2026, 10, 31)
    won_smb = values(hubspot.daily_series(metric(), start, end))
    assert all(5 <= count <= 8 for count in won_smb)
    # A month in one windowed search (its pages), never one search a day.
    windows = {str(body["filterGroups"][0]["filters"][2:]) for body in sandbox.request_bodies()}
    assert len(windows) == 1 and sandbox.request_count() == -(-sum(won_smb) // 200)
    everything = values(hubspot.daily_series(metric(filters=()), start, end))
    assert all(total > won for total, won in zip(everything, won_smb, strict=True))


# --- (c) faults and bad input ---------------------------------------------------------------------


def test_the_ten_secondly_limit_is_retried_then_succeeds(sandbox, hubspot, tiny, sleeps):
    sandbox.add_fault(path_prefix="/crm/v3/objects/", status=429, times=2)
    series = hubspot.daily_series(metric(tiny), OCT_1, OCT_3)
    assert values(series) == [2, 1, 1]
    assert sleeps == [0.5, 1.0]
    assert sandbox.request_count("/crm/v3/objects/") == 3


def test_retry_after_is_honoured(sandbox, hubspot, tiny, sleeps):
    sandbox.add_fault(path_prefix="/crm/v3/objects/", status=429, retry_after=2, times=1)
    assert values(hubspot.daily_series(metric(tiny), OCT_1, OCT_3)) == [2, 1, 1]
    assert sleeps == [2.0]


def test_the_sandboxs_rate_limit_body_is_hubspots(sandbox):
    sandbox.add_fault(path_prefix="/crm/v3/objects/", status=429, times=1)
    body = search(sandbox, "deals", {}).json()
    assert body["policyName"] == "TEN_SECONDLY_ROLLING" and body["errorType"] == "RATE_LIMIT"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."


def test_a_bad_token_names_its_variable_and_never_leaks(sandbox, tiny, caplog):
    caplog.set_level(logging.DEBUG)
    connector = connect(sandbox.url, token="invalid-hubspot-token")
    with pytest.raises(SourceError) as failure:
        connector.daily_series(metric(tiny), OCT_1, OCT_3)
    assert str(failure.value).startswith(
        "hubspot: authentication failed (HTTP 401): check HUBSPOT_ACCESS_TOKEN"
    )
    assert "invalid-hubspot-token" not in str(failure.value)
    assert "invalid-hubspot-token" not in caplog.text


def test_the_token_never_reaches_errors_or_logs(sandbox, tiny, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "pat-na1-11111111-2222-3333-4444-555555555555"
    connector = connect(sandbox.url, token=secret, sleep=lambda s: None, max_attempts=2)
    sandbox.add_fault(path_prefix="/crm/v3/objects/", status=502)
    with pytest.raises(SourceError) as failure:
        connector.daily_series(metric(tiny), OCT_1, OCT_3)
    assert "HTTP 502" in str(failure.value)
    assert secret not in str(failure.value) and secret not in caplog.text


def test_a_sum_of_words_is_a_clear_error(sandbox, hubspot):
    sandbox.data.hubspot.set_records(
        "2-1005", [{"id": "77", "closedate": "2026-10-01T10:00:00Z", "amount": "lots"}]
    )
    with pytest.raises(SourceError) as failure:
        hubspot.daily_series(metric("2-1005", (), measure="sum", field="amount"), OCT_1, OCT_3)
    assert str(failure.value) == "hubspot: 2-1005 77: amount 'lots' is not a number"


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        (
            ({"property": "amount", "operator": "BETWEEN", "value": 1},),
            "hubspot: filter on amount: BETWEEN needs two values; use GTE and LTE filters",
        ),
        (
            tuple({"property": f"p{i}", "operator": "EQ", "value": "x"} for i in range(5)),
            "hubspot: at most 4 filters: HubSpot allows 6 in a search and the date window takes 2",
        ),
    ],
)
def test_filters_hubspot_cannot_take(hubspot, filters, message):
    with pytest.raises(SourceError) as failure:
        hubspot.daily_series(metric("2-1006", filters), OCT_1, OCT_3)
    assert str(failure.value) == message
