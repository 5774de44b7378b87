"""The HubSpot connector: against the reference-built fixtures and the sandbox."""

from __future__ import annotations

import json
import logging
import textwrap
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from pydantic import ValidationError
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from okr_metrics.connectors.base import SourceError, SourceSettings
from okr_metrics.connectors.hubspot.client import HubSpotConnector, filter_body
from okr_metrics.connectors.hubspot.params import HubSpotFilter, HubSpotMetric
from okr_metrics.connectors.kit import Record, SeriesRequest, Window
from okr_metrics.pipelines.definitions import load_definitions
from okr_metrics.pipelines.vocabulary.quarters import Quarter

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
    ],
)
def test_date_values_in_every_shape(text, zone, expected):
    record = Record("hubspot", {"closedate": text}, "deals", "7")
    assert Window(OCT_1, OCT_1, zone).day_of(record.moment("closedate", epoch="ms")) == expected


@pytest.mark.parametrize("text", ["", None])
def test_an_empty_date_is_a_missing_one(text):
    with pytest.raises(SourceError) as failure:
        Record("hubspot", {"closedate": text}, "deals", "7").moment("closedate", epoch="ms")
    assert str(failure.value) == "hubspot: deals 7: closedate is missing"


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
        SeriesRequest.of(metric(measure="sum", field="amount"), OCT_1, OCT_3, "Europe/Oslo")
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
    series = connect(httpserver.url_for("/")).daily_series(
        SeriesRequest.of(metric(), OCT_1, OCT_3, "Europe/Oslo")
    )
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
            SeriesRequest.of(metric(), OCT_1, OCT_3)
        )
    assert str(failure.value).startswith(
        "hubspot: authentication failed (HTTP 401): check HUBSPOT_ACCESS_TOKEN "
        "(the API says: Authentication credentials not found."
    )
    assert "pat-na1-secret" not in str(failure.value)


def test_replay_a_validation_error(httpserver):
    serve_error(httpserver, 400)
    with pytest.raises(SourceError) as failure:
        connect(httpserver.url_for("/")).daily_series(SeriesRequest.of(metric(), OCT_1, OCT_3))
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
        connector.daily_series(SeriesRequest.of(metric(), OCT_1, OCT_3))
    assert str(failure.value) == (
        "hubspot: gave up after 3 attempts on POST /crm/v3/objects/deals/search: "
        "last rate limited (HTTP 429) (the API says: policy TEN_SECONDLY_ROLLING: "
        "You have reached your ten_secondly_rolling limit.)"
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
    series = hubspot.daily_series(SeriesRequest.of(metric(tiny, **keys), OCT_1, OCT_3, zone))
    assert series["date"].tolist() == [OCT_1, OCT_2, OCT_3]
    assert values(series) == expected


def test_the_exact_request_body_in_new_york(sandbox, hubspot, tiny):
    hubspot.daily_series(
        SeriesRequest.of(
            metric(tiny, measure="sum", field="amount"), OCT_1, OCT_3, "America/New_York"
        )
    )
    # Midnight in New York (EDT, UTC-4) is 04:00Z: up to 10-04 04:00Z; from 10-01 00:00Z, where
    # a date property stores 10-01 (the days are kept client-side).
    assert sandbox.request_bodies() == [
        {
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": "dealstage", "operator": "EQ", "value": "closedwon"},
                        {"propertyName": "customer_segment", "operator": "EQ", "value": "smb"},
                        {"propertyName": "closedate", "operator": "GTE", "value": "1790812800000"},
                        {"propertyName": "closedate", "operator": "LT", "value": "1791086400000"},
                    ]
                }
            ],
            "properties": ["closedate", "amount"],
            "sorts": [{"propertyName": "closedate", "direction": "ASCENDING"}],
            "limit": 200,
        }
    ]
    assert ms(2026, 10, 1) == 1790812800000 and ms(2026, 10, 4, 4) == 1791086400000
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
    series = hubspot.daily_series(SeriesRequest.of(metric(tiny, filters=spec), OCT_1, OCT_3))
    assert values(series) == expected


def test_in_filters_send_values(sandbox, hubspot, tiny):
    spec = ({"property": "dealstage", "operator": "IN", "value": "closedwon,closedlost"},)
    hubspot.daily_series(SeriesRequest.of(metric(tiny, filters=spec), OCT_1, OCT_3))
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
    series = hubspot.daily_series(SeriesRequest.of(metric(CAPPED), OCT_1, end))

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
        hubspot.daily_series(SeriesRequest.of(metric(CAPPED), OCT_1, date(2026, 10, 10)))
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
        (
            {
                "filterGroups": [
                    {"filters": [{"propertyName": "x", "operator": "BETWEEN", "value": "1"}]}
                ]
            },  # fmt: skip
            "The BETWEEN filter on x needs value and highValue.",
        ),
        (
            {
                "filterGroups": [
                    {"filters": [{"propertyName": "x", "operator": "IN", "value": "a,b"}]}
                ]
            },  # fmt: skip
            "The IN filter on x needs values.",
        ),
    ],
)
def test_the_sandbox_refuses_what_hubspot_refuses(sandbox, body, message):
    response = search(sandbox, "2-1004", body)
    assert response.status_code == 400
    assert (
        response.json()["category"] == "VALIDATION_ERROR" and message in response.json()["message"]
    )


def test_the_sandbox_compares_numbers_not_number_like_words(sandbox):
    words = ["150", "inf", "nan", "1_000", "Infinity", "99"]
    sandbox.data.hubspot.set_records(
        "2-1008", [{"id": str(i), "code": word} for i, word in enumerate(words, start=1)]
    )
    over_100 = {"propertyName": "code", "operator": "GT", "value": "100"}
    page = search(sandbox, "2-1008", {"filterGroups": [{"filters": [over_100]}]}).json()
    assert [r["id"] for r in page["results"]] == ["1"]  # 150; the words never compare


def test_the_sandbox_refuses_a_missing_token(sandbox):
    response = requests.post(f"{sandbox.url}/crm/v3/objects/deals/search", json={}, timeout=5)
    assert response.status_code == 401
    assert response.json()["category"] == "INVALID_AUTHENTICATION"
    assert response.json()["message"].startswith("Authentication credentials not found.")


def test_generated_deals_fit_the_sample_definitions(sandbox, hubspot):
    start, end = date(2026, 10, 1), date(2026, 10, 31)
    won_smb = values(hubspot.daily_series(SeriesRequest.of(metric(), start, end)))
    assert all(5 <= count <= 8 for count in won_smb)
    # A month in one windowed search (its pages), never one search a day.
    windows = {str(body["filterGroups"][0]["filters"][2:]) for body in sandbox.request_bodies()}
    assert len(windows) == 1 and sandbox.request_count() == -(-sum(won_smb) // 200)
    everything = values(hubspot.daily_series(SeriesRequest.of(metric(filters=()), start, end)))
    assert all(total > won for total, won in zip(everything, won_smb, strict=True))


# --- (c) faults and bad input ---------------------------------------------------------------------


def test_the_ten_secondly_limit_is_retried_then_succeeds(sandbox, hubspot, tiny, sleeps):
    sandbox.add_fault(path_prefix="/crm/v3/objects/", status=429, times=2)
    series = hubspot.daily_series(SeriesRequest.of(metric(tiny), OCT_1, OCT_3))
    assert values(series) == [2, 1, 1]
    assert sleeps == [0.5, 1.0]
    assert sandbox.request_count("/crm/v3/objects/") == 3


def test_retry_after_is_honoured(sandbox, hubspot, tiny, sleeps):
    sandbox.add_fault(path_prefix="/crm/v3/objects/", status=429, retry_after=2, times=1)
    assert values(hubspot.daily_series(SeriesRequest.of(metric(tiny), OCT_1, OCT_3))) == [2, 1, 1]
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
        connector.daily_series(SeriesRequest.of(metric(tiny), OCT_1, OCT_3))
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
        connector.daily_series(SeriesRequest.of(metric(tiny), OCT_1, OCT_3))
    assert "HTTP 502" in str(failure.value)
    assert secret not in str(failure.value) and secret not in caplog.text


def test_a_sum_of_words_is_a_clear_error(sandbox, hubspot):
    sandbox.data.hubspot.set_records(
        "2-1005", [{"id": "77", "closedate": "2026-10-01T10:00:00Z", "amount": "lots"}]
    )
    with pytest.raises(SourceError) as failure:
        hubspot.daily_series(
            SeriesRequest.of(metric("2-1005", (), measure="sum", field="amount"), OCT_1, OCT_3)
        )
    assert str(failure.value) == "hubspot: 2-1005 77: amount 'lots' is not a number"


def test_more_filters_than_hubspot_takes(hubspot):
    filters = tuple({"property": f"p{i}", "operator": "EQ", "value": "x"} for i in range(5))
    with pytest.raises(SourceError) as failure:
        hubspot.daily_series(SeriesRequest.of(metric("2-1006", filters), OCT_1, OCT_3))
    assert str(failure.value) == (
        "hubspot: at most 4 filters: HubSpot allows 6 in a search and the date window takes 2"
    )


# --- (d) filter shapes: IN / NOT_IN lists, BETWEEN, HAS_PROPERTY, dates -------------------------

SHAPED = "2-1007"
# `contract_start` is a date property (HubSpot serves those as calendar days); id 4 has none.
SHAPED_DEALS = [
    {"id": "1", "closedate": "2026-10-01T09:00:00.000Z", "customer_segment": "smb",
     "industry": "Food, drink", "amount": "100", "contract_start": "2026-10-01"},
    {"id": "2", "closedate": "2026-10-01T15:00:00.000Z", "customer_segment": "mid-market",
     "industry": "retail", "amount": "500", "contract_start": "2026-10-05"},
    {"id": "3", "closedate": "2026-10-02T08:00:00.000Z", "customer_segment": "enterprise",
     "industry": "Food, drink", "amount": "1500", "contract_start": "2026-11-01"},
    {"id": "4", "closedate": "2026-10-02T10:00:00.000Z", "customer_segment": "smb",
     "industry": "software", "amount": "2500", "contract_start": None},
    {"id": "5", "closedate": "2026-10-02T20:00:00.000Z", "customer_segment": "mid-market",
     "industry": "Food", "amount": "5000", "contract_start": "2026-10-04"},
    {"id": "6", "closedate": "2026-10-03T11:00:00.000Z", "customer_segment": "enterprise",
     "industry": "Food", "amount": None, "contract_start": "2026-09-30"},
    {"id": "7", "closedate": "2026-10-03T12:00:00.000Z", "customer_segment": "enterprise",
     "industry": "software", "amount": "50", "contract_start": "2026-10-10"},
]  # fmt: skip
SMB_OR_MID = [2, 2, 0]  # ids 1, 2 | 4, 5 | none
SMB_OR_MID_AMOUNT = [600, 7500, 0]


@pytest.fixture
def shaped(sandbox) -> str:
    sandbox.data.hubspot.set_records(SHAPED, SHAPED_DEALS)
    return SHAPED


def counted(hubspot, *filters: dict, **keys) -> list[float]:
    return values(
        hubspot.daily_series(
            SeriesRequest.of(metric(SHAPED, filters=filters, **keys), OCT_1, OCT_3)
        )
    )


def summed(hubspot, *filters: dict) -> list[float]:
    return counted(hubspot, *filters, measure="sum", field="amount")


@pytest.mark.parametrize(
    "spec",
    [
        {"value": ["smb", "mid-market"]},
        {"values": ["smb", "mid-market"]},
        {"value": "smb, mid-market"},  # the older comma string
        {"value": "smb,mid-market"},
    ],
)
def test_in_takes_a_list_or_a_comma_string(sandbox, hubspot, shaped, spec):
    segment = {"property": "customer_segment", "operator": "IN", **spec}
    assert counted(hubspot, segment) == SMB_OR_MID
    assert summed(hubspot, segment) == SMB_OR_MID_AMOUNT
    sent = {
        "propertyName": "customer_segment",
        "operator": "IN",
        "values": ["smb", "mid-market"],
    }
    assert [body["filterGroups"][0]["filters"][0] for body in sandbox.request_bodies()] == [
        sent,
        sent,
    ]


def test_not_in_takes_a_list(hubspot, shaped):
    segment = {
        "property": "customer_segment",
        "operator": "NOT_IN",
        "values": ["smb", "mid-market"],
    }
    assert counted(hubspot, segment) == [0, 1, 2]  # ids 3 | 6, 7
    assert summed(hubspot, segment) == [0, 1500, 50]  # id 6 has no amount


@pytest.mark.parametrize(
    ("operator", "spec", "expected"),
    [
        # A list keeps a value holding a comma whole: ids 1 | 3.
        ("IN", {"values": ["Food, drink"]}, [1, 1, 0]),
        ("IN", {"value": ["Food, drink", "retail"]}, [2, 1, 0]),  # ids 1, 2 | 3
        ("NOT_IN", {"values": ["Food, drink"]}, [1, 2, 2]),  # ids 2 | 4, 5 | 6, 7
        # The comma string is split: `Food` and `drink`, ids 5 | 6.
        ("IN", {"value": "Food, drink"}, [0, 1, 1]),
    ],
)
def test_a_value_holding_a_comma_needs_a_list(sandbox, hubspot, shaped, operator, spec, expected):
    assert counted(hubspot, {"property": "industry", "operator": operator, **spec}) == expected


def test_a_value_holding_a_comma_is_sent_whole(sandbox, hubspot, shaped):
    counted(
        hubspot, {"property": "industry", "operator": "IN", "values": ["Food, drink", "retail"]}
    )
    (body,) = sandbox.request_bodies()
    assert body["filterGroups"][0]["filters"][0]["values"] == ["Food, drink", "retail"]


def test_between_on_a_number_includes_both_ends(sandbox, hubspot, shaped):
    amount = {"property": "amount", "operator": "BETWEEN", "value": 500, "high_value": 2500}
    assert counted(hubspot, amount) == [1, 2, 0]  # ids 2 (500) | 3, 4 (2500)
    assert summed(hubspot, amount) == [500, 4000, 0]
    assert sandbox.request_bodies()[0]["filterGroups"][0]["filters"][0] == {
        "propertyName": "amount",
        "operator": "BETWEEN",
        "value": "500",
        "highValue": "2500",
    }


def test_between_on_a_date_property_sends_epoch_ms(sandbox, hubspot, shaped):
    start = {
        "property": "contract_start",
        "operator": "BETWEEN",
        "value": "2026-10-01",
        "high_value": "2026-10-05",
    }
    # 10-01 (id 1) and 10-05 (id 2) are both ends; 10-04 (id 5) is inside; 09-30 (id 6),
    # 10-10 (id 7), 11-01 (id 3) outside; id 4 has no contract_start.
    assert counted(hubspot, start) == [2, 1, 0]
    (body,) = sandbox.request_bodies()
    assert body["filterGroups"][0]["filters"][0] == {
        "propertyName": "contract_start",
        "operator": "BETWEEN",
        "value": str(ms(2026, 10, 1)),
        "highValue": str(ms(2026, 10, 5)),
    }
    assert ms(2026, 10, 1) == 1790812800000 and ms(2026, 10, 5) == 1791158400000


def test_between_iso_datetimes_with_offsets(sandbox, hubspot, shaped):
    # 12:00Z on 10-01 to 09:00+01:00 (08:00Z) on 10-02: ids 2 | 3 (at the upper end).
    closed = {
        "property": "closedate",
        "operator": "BETWEEN",
        "value": "2026-10-01T12:00:00Z",
        "high_value": "2026-10-02T09:00:00+01:00",
    }
    assert counted(hubspot, closed) == [1, 1, 0]
    (body,) = sandbox.request_bodies()
    sent = body["filterGroups"][0]["filters"][0]
    assert (sent["value"], sent["highValue"]) == (
        str(ms(2026, 10, 1, 12)),
        str(ms(2026, 10, 2, 8)),
    )


def test_a_date_as_a_single_value(sandbox, hubspot, shaped):
    # On or after 10-05: ids 2 | 3 | 7.
    on_or_after = {"property": "contract_start", "operator": "GTE", "value": "2026-10-05"}
    assert counted(hubspot, on_or_after) == [1, 1, 1]
    # Before 10-01: id 6 only.
    before = {"property": "contract_start", "operator": "LT", "value": "2026-10-01"}
    assert counted(hubspot, before) == [0, 0, 1]
    assert [b["filterGroups"][0]["filters"][0]["value"] for b in sandbox.request_bodies()] == [
        "1791158400000",
        "1790812800000",
    ]


@pytest.mark.parametrize(
    ("property_name", "operator", "expected"),
    [
        ("contract_start", "HAS_PROPERTY", [2, 2, 2]),  # all but id 4
        ("contract_start", "NOT_HAS_PROPERTY", [0, 1, 0]),  # id 4
        ("amount", "HAS_PROPERTY", [2, 3, 1]),  # all but id 6
        ("amount", "NOT_HAS_PROPERTY", [0, 0, 1]),  # id 6
    ],
)
def test_has_property_takes_no_value(sandbox, hubspot, shaped, property_name, operator, expected):
    assert counted(hubspot, {"property": property_name, "operator": operator}) == expected
    (body,) = sandbox.request_bodies()
    assert body["filterGroups"][0]["filters"][0] == {
        "propertyName": property_name,
        "operator": operator,
    }


def test_shapes_combine(hubspot, shaped):
    filters = (
        {"property": "customer_segment", "operator": "IN", "value": ["smb", "mid-market"]},
        {"property": "amount", "operator": "BETWEEN", "value": 500, "high_value": 5000},
        {"property": "contract_start", "operator": "HAS_PROPERTY"},
    )
    # IN: 1, 2 | 4, 5; BETWEEN drops 1 (100); HAS_PROPERTY drops 4.
    assert counted(hubspot, *filters) == [1, 1, 0]
    assert summed(hubspot, *filters) == [500, 5000, 0]


@pytest.mark.parametrize(
    ("spec", "body"),
    [
        ({"operator": "EQ", "value": True}, {"value": "true"}),
        ({"operator": "GT", "value": 2.5}, {"value": "2.5"}),
        ({"operator": "EQ", "value": "2026-10-01"}, {"value": "1790812800000"}),
        ({"operator": "EQ", "value": date(2026, 10, 1)}, {"value": "1790812800000"}),
        ({"operator": "LT", "value": "2026-10-01T12:00:00"}, {"value": "1790856000000"}),  # UTC
        ({"operator": "LT", "value": "2026-10-01T12:00:00.250Z"}, {"value": "1790856000250"}),
        ({"operator": "GTE", "value": "2026-10-01T14:00:00+02:00"}, {"value": "1790856000000"}),
        (
            {"operator": "GTE", "value": datetime(2026, 10, 1, 12, tzinfo=UTC)},
            {"value": "1790856000000"},
        ),  # fmt: skip
        # Words stay words, dates inside the token operators too.
        ({"operator": "CONTAINS_TOKEN", "value": "2026-10-01"}, {"value": "2026-10-01"}),
        ({"operator": "NEQ", "value": "Q4 2026-10"}, {"value": "Q4 2026-10"}),
        ({"operator": "IN", "value": [1, 2.5, True]}, {"values": ["1", "2.5", "true"]}),
        ({"operator": "IN", "value": 7}, {"values": ["7"]}),
        ({"operator": "IN", "values": ["2026-10-01", "x"]}, {"values": ["1790812800000", "x"]}),
        ({"operator": "NOT_IN", "value": " a ,, b "}, {"values": ["a", "b"]}),
        ({"operator": "HAS_PROPERTY", "value": None}, {}),
    ],
)
def test_filter_bodies(spec, body):
    assert filter_body(HubSpotFilter(property="p", **spec)) == {
        "propertyName": "p",
        "operator": spec["operator"],
        **body,
    }
    assert ms(2026, 10, 1, 12) == 1790856000000


# --- (e) metric keys: old shapes keep theirs ------------------------------------------------------


def key_of(*filters: dict) -> str:
    return metric(filters=filters).metric_key()


def test_sample_keys_and_dumps_are_unchanged():
    # The sample definitions' HubSpot KR, keyed as before lists, BETWEEN and dates came.
    assert metric().metric_key() == (
        'hubspot:filters={"operator": "EQ", "property": "dealstage", "value": "closedwon"},'
        '{"operator": "EQ", "property": "customer_segment", "value": "smb"}'
    )
    # What the KR's definition hash is built from: no new keys.
    assert [f.model_dump(mode="json") for f in metric().filters] == list(WON_SMB)


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ({"operator": "IN", "value": "smb, mid_market"}, '"value": "smb, mid_market"'),
        ({"operator": "IN", "value": "smb,mid_market"}, '"value": "smb,mid_market"'),
        ({"operator": "IN", "value": 5}, '"value": 5'),
        ({"operator": "GT", "value": 400}, '"value": 400'),
        ({"operator": "EQ", "value": True}, '"value": true'),
        ({"operator": "GTE", "value": "2026-10-01"}, '"value": "2026-10-01"'),
    ],
)
def test_older_shapes_keep_their_key_text(spec, key):
    assert key_of({"property": "p", **spec}) == (
        f'hubspot:filters={{"operator": "{spec["operator"]}", "property": "p", {key}}}'
    )


def test_has_property_is_keyed_without_a_value():
    assert (
        key_of({"property": "p", "operator": "HAS_PROPERTY"})
        == key_of({"property": "p", "operator": "HAS_PROPERTY", "value": None})
        == 'hubspot:filters={"operator": "HAS_PROPERTY", "property": "p"}'
    )


def test_list_shapes_share_the_comma_strings_key():
    comma = key_of({"property": "s", "operator": "IN", "value": "smb,mid_market"})
    assert key_of({"property": "s", "operator": "IN", "value": ["smb", "mid_market"]}) == comma
    assert key_of({"property": "s", "operator": "IN", "values": ["smb", "mid_market"]}) == comma


def test_different_filters_get_different_keys():
    keys = [
        key_of({"property": "s", "operator": "IN", "value": "a,b"}),
        key_of({"property": "s", "operator": "IN", "values": ["a,b"]}),
        key_of({"property": "s", "operator": "IN", "values": ["a", "b", "c"]}),
        key_of({"property": "s", "operator": "NOT_IN", "values": ["a", "b"]}),
        key_of({"property": "s", "operator": "IN", "values": [" a", "b"]}),
        key_of({"property": "a", "operator": "BETWEEN", "value": 1, "high_value": 5}),
        key_of({"property": "a", "operator": "BETWEEN", "value": 1, "high_value": 6}),
        key_of({"property": "a", "operator": "GTE", "value": 1}),
    ]
    assert len(set(keys)) == len(keys)
    assert keys[1] == 'hubspot:filters={"operator": "IN", "property": "s", "values": ["a,b"]}'
    assert keys[5] == (
        'hubspot:filters={"high_value": 5, "operator": "BETWEEN", "property": "a", "value": 1}'
    )


def test_filters_are_frozen_and_hashable():
    item = HubSpotFilter(property="s", operator="IN", value=["a", "b"])
    assert item.value == ("a", "b") and hash(item) == hash(HubSpotFilter(**item.model_dump()))
    with pytest.raises(ValidationError):
        item.value = "c"  # type: ignore[misc]
    assert len({metric(filters=(item,)), metric(filters=(item,))}) == 1


# --- (f) the linter: each bad shape at its file and line --------------------------------------------

KR_FILE = """\
quarter: 2026-Q4
objectives:
  - id: sales
    title: Sell
    key_results:
      - id: won
        title: Won deals
        type: increase
        start: 0
        target: 10
        metric:
          source: hubspot
          filters:
            - {{property: dealstage, operator: EQ, value: closedwon}}
            - {filter}
"""
WHERE = "objectives[sales].key_results[won].metric.filters[1]"
LIST_SHAPE = "takes a list of values: `value: [a, b]` or `values: [a, b]`"


def write_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "2026-Q4.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def lint(tmp_path: Path, text: str) -> list[str]:
    return [str(problem) for problem in load_definitions(write_file(tmp_path, text)).errors]


@pytest.mark.parametrize(
    ("filter_yaml", "message"),
    [
        ("{property: s, operator: IN}", f"IN {LIST_SHAPE}"),
        ("{property: s, operator: IN, value: []}", f"IN {LIST_SHAPE}"),
        ("{property: s, operator: NOT_IN, value: ' , '}", f"NOT_IN {LIST_SHAPE}"),
        ("{property: s, operator: IN, value: [a, ''], }", f"IN {LIST_SHAPE}, none of them empty"),
        ("{property: s, operator: IN, value: [a], values: [b]}", f"IN {LIST_SHAPE}, not both"),
        (
            "{property: s, operator: IN, values: [a], high_value: b}",
            f"IN {LIST_SHAPE}, not `high_value`",
        ),  # fmt: skip
        ("{property: a, operator: BETWEEN, value: 1}", "BETWEEN takes `value` and `high_value`"),
        (
            "{property: a, operator: BETWEEN, high_value: 1}",
            "BETWEEN takes `value` and `high_value`",
        ),  # fmt: skip
        (
            "{property: a, operator: BETWEEN, value: [1, 5]}",
            "BETWEEN takes `value` and `high_value`, one value each (not a list)",
        ),
        (
            "{property: a, operator: BETWEEN, values: [1, 5]}",
            "BETWEEN takes `value` and `high_value`, not `values`",
        ),
        (
            "{property: a, operator: BETWEEN, value: 9, high_value: 1}",
            "BETWEEN takes `value` and `high_value`, `value` not above `high_value` "
            "(got 9 above 1)",
        ),
        (
            "{property: d, operator: BETWEEN, value: 2026-10-05, high_value: 2026-10-01}",
            "BETWEEN takes `value` and `high_value`, `value` not above `high_value` "
            "(got 2026-10-05 above 2026-10-01)",
        ),
        ("{property: a, operator: HAS_PROPERTY, value: x}", "HAS_PROPERTY takes no value"),
        (
            "{property: a, operator: NOT_HAS_PROPERTY, values: [x]}",
            "NOT_HAS_PROPERTY takes no value",
        ),  # fmt: skip
        ("{property: a, operator: EQ}", "EQ takes one value: `value: x`"),
        (
            "{property: a, operator: EQ, value: [a, b]}",
            "EQ takes one value, not a list (for a list use IN: `values: [a, b]`)",
        ),
        (
            "{property: a, operator: NEQ, values: [a, b]}",
            "NEQ takes one value: `value: x`, not `values` "
            "(for a list use NOT_IN: `values: [a, b]`)",
        ),
        (
            "{property: a, operator: CONTAINS_TOKEN, value: [a]}",
            "CONTAINS_TOKEN takes one value, not a list",
        ),  # fmt: skip
        (
            "{property: a, operator: LT, value: 3, high_value: 4}",
            "LT takes one value: `value: x`, not `high_value` (for a range use BETWEEN)",
        ),
        (
            "{property: d, operator: GTE, value: 2026-02-30}",
            "`2026-02-30` is not a date: write YYYY-MM-DD, or an ISO datetime such as "
            "2026-10-01T12:00:00Z",
        ),
        (
            "{property: d, operator: IN, value: '2026-10-01, 2026-10-01T25:00Z'}",
            "`2026-10-01T25:00Z` is not a date: write YYYY-MM-DD, or an ISO datetime such as "
            "2026-10-01T12:00:00Z",
        ),
    ],
)
def test_the_linter_names_each_bad_shape(tmp_path, filter_yaml, message):
    path = tmp_path / "2026-Q4.yaml"
    assert lint(tmp_path, KR_FILE.format(filter=filter_yaml)) == [f"{path}:15: {WHERE}: {message}"]


@pytest.mark.parametrize(
    ("filter_yaml", "key", "message"),
    [
        (
            "{property: a, operator: IN, values: a}",
            "values",
            "`values` takes a list: `values: [a, b]`",
        ),  # fmt: skip
        (
            "{property: a, operator: IN, value: [a, [b]]}",
            "value",
            "a list item must be one value (text, a number, a date)",
        ),
        (
            "{property: a, operator: EQ, value: {x: 1}}",
            "value",
            "expected a value (text, a number, a date) or a list of values",
        ),
    ],
)
def test_the_linter_names_a_bad_value_type(tmp_path, filter_yaml, key, message):
    path = tmp_path / "2026-Q4.yaml"
    assert lint(tmp_path, KR_FILE.format(filter=filter_yaml)) == [
        f"{path}:15: {WHERE}.{key}: {message}"
    ]


def test_the_linter_points_at_a_block_filter(tmp_path):
    text = KR_FILE.format(filter="{property: s, operator: IN, values: [smb]}") + textwrap.indent(
        "- property: amount\n  operator: BETWEEN\n  value: 100\n", " " * 12
    )
    path = tmp_path / "2026-Q4.yaml"
    assert lint(tmp_path, text) == [
        f"{path}:16: objectives[sales].key_results[won].metric.filters[2]: "
        "BETWEEN takes `value` and `high_value`"
    ]


def test_the_linter_takes_every_good_shape(tmp_path):
    filters = [
        "{property: s, operator: IN, value: [smb, mid-market]}",
        "{property: s, operator: NOT_IN, values: ['Food, drink', retail]}",
        "{property: a, operator: BETWEEN, value: 500, high_value: 5000}",
        "{property: d, operator: BETWEEN, value: 2026-10-01, high_value: 2026-10-01T12:00:00Z}",
    ]
    text = KR_FILE.format(filter=filters[0]).replace(
        "            - {property: dealstage, operator: EQ, value: closedwon}\n",
        "".join(f"            - {item}\n" for item in filters[1:]),
    )
    definitions = load_definitions(write_file(tmp_path, text))
    assert definitions.errors == []
    okr_file = definitions.for_quarter(Quarter(2026, 4))
    (key,) = okr_file.series_by_key()
    assert key == (
        "hubspot:filters="
        '{"operator": "NOT_IN", "property": "s", "values": ["Food, drink", "retail"]},'
        '{"high_value": 5000, "operator": "BETWEEN", "property": "a", "value": 500},'
        '{"high_value": "2026-10-01T12:00:00Z", "operator": "BETWEEN", "property": "d", '
        '"value": "2026-10-01"},'
        '{"operator": "IN", "property": "s", "value": "smb,mid-market"}'
    )


# --- records the mapping cannot read -------------------------------------------------------------


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({"closedate": None}, "hubspot: 2-1001 77: closedate is missing"),
        ({}, "hubspot: 2-1001 77: closedate is missing"),
        ({"closedate": "tomorrow"}, "hubspot: 2-1001 77: closedate 'tomorrow' is not a timestamp"),
    ],
)
def test_a_record_without_a_readable_date_is_one_line(sandbox, hubspot, tiny, properties, message):
    # The sandbox answers the search with a hand-written page of one broken record.
    page = {"total": 1, "results": [{"id": "77", "properties": properties}]}
    sandbox.add_fault(path_prefix=f"/crm/v3/objects/{tiny}/search", status=200, body=page)
    with pytest.raises(SourceError) as failure:
        hubspot.daily_series(SeriesRequest.of(metric(tiny), OCT_1, OCT_3))
    assert str(failure.value) == message
