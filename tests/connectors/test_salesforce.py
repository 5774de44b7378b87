"""The Salesforce connector: against fixtures written from Salesforce's API reference, and the sandbox."""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from pytest_httpserver import HTTPServer

from okr_metrics.connectors.base import SourceError, SourceSettings
from okr_metrics.connectors.kit import SeriesRequest, Window
from okr_metrics.connectors.salesforce.client import SalesforceConnector, build_soql
from okr_metrics.connectors.salesforce.params import SalesforceMetric

FIXTURES = Path(__file__).parents[1] / "fixtures" / "salesforce"
DATA = "/services/data/v62.0"
QUERY = f"{DATA}/query"
TOKEN = "00DXX0000001gPL!AQ4AQFakeSalesforceSessionToken"
OCT_1, OCT_2, OCT_3 = date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3)
SMB = "StageName = 'Closed Won' AND Segment__c = 'SMB'"
DASHBOARD = "StageName = 'Closed Won' AND Product__c = 'Analytics Dashboard'"


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def metric(**keys) -> SalesforceMetric:
    return SalesforceMetric(source="salesforce", **keys)


def values(frame) -> list[float]:
    return frame["value"].tolist()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def salesforce(sandbox, sleeps) -> SalesforceConnector:
    """The connector, pointed at the sandbox the way the environment would point it."""
    settings = SourceSettings.from_env(
        SalesforceConnector.env,
        {"SALESFORCE_INSTANCE_URL": sandbox.url, "SALESFORCE_ACCESS_TOKEN": TOKEN},
    )
    return SalesforceConnector.from_settings(settings, sleep=sleeps, jitter=lambda: 0.0)


# --- settings and the query ------------------------------------------------------------------------


def test_without_credentials_the_source_is_skipped():
    settings = SourceSettings.from_env(SalesforceConnector.env, {})
    assert SalesforceConnector.missing_settings(settings) == (
        "SALESFORCE_INSTANCE_URL, SALESFORCE_ACCESS_TOKEN not set"
    )


def test_the_client_sends_a_bearer_token_and_redacts_it():
    connector = SalesforceConnector.from_settings(
        SourceSettings(base_url="https://acme.my.salesforce.com/", token=TOKEN)
    )
    assert connector.client.session.headers["Authorization"] == f"Bearer {TOKEN}"
    assert connector.client.base_url == "https://acme.my.salesforce.com"
    assert connector.client.redact(f"x {TOKEN} y") == "x *** y"


def test_a_date_field_is_filtered_with_date_literals():
    assert build_soql("Opportunity", SMB, "CloseDate", "date", Window(OCT_1, OCT_3), "Amount") == (
        "SELECT CloseDate, Amount FROM Opportunity WHERE "
        "(StageName = 'Closed Won' AND Segment__c = 'SMB') "
        "AND CloseDate >= 2026-10-01 AND CloseDate <= 2026-10-03"
    )


def test_a_datetime_field_is_filtered_with_the_local_midnights_in_utc():
    window = Window(OCT_1, OCT_1, "America/Los_Angeles")
    assert build_soql("Lead", None, "CreatedDate", "datetime", window) == (
        "SELECT CreatedDate FROM Lead WHERE "
        "CreatedDate >= 2026-10-01T07:00:00Z AND CreatedDate < 2026-10-02T07:00:00Z"
    )


# --- (a) replaying the reference pages with pytest-httpserver --------------------------------------


def serve(httpserver: HTTPServer, path: str, name: str, **match) -> None:
    recorded = fixture(name)["response"]
    httpserver.expect_request(path, **match).respond_with_json(
        recorded["body"], status=recorded["status"], headers=recorded["headers"]
    )


@pytest.fixture
def replay(httpserver) -> SalesforceConnector:
    serve(httpserver, f"{DATA}/sobjects/Opportunity/describe", "describe-opportunity.json")
    serve(httpserver, f"{QUERY}/01gD0000002HU6KIAW-3", "query-page-2.json")
    return SalesforceConnector.from_settings(
        SourceSettings(base_url=httpserver.url_for("/"), token=TOKEN)
    )


@pytest.mark.parametrize(
    ("measure", "expected"),
    [
        ({"measure": "count"}, [2, 1, 2]),
        ({"measure": "sum", "field": "Amount"}, [1200.5, 800, 1250.25]),
    ],
)
def test_replay_follows_next_records_url(httpserver, replay, measure, expected):
    serve(httpserver, QUERY, "query-page-1.json")

    series = replay.daily_series(SeriesRequest.of(metric(where=SMB, **measure), OCT_1, OCT_3))

    assert series["date"].tolist() == [OCT_1, OCT_2, OCT_3]
    assert values(series) == expected  # the null Amount adds nothing
    requested = [(request.path, request.args.to_dict()) for request, _ in httpserver.log]
    select = "CloseDate, Amount" if measure["measure"] == "sum" else "CloseDate"
    assert requested == [
        (f"{DATA}/sobjects/Opportunity/describe", {}),
        (
            QUERY,
            {
                "q": f"SELECT {select} FROM Opportunity WHERE (StageName = 'Closed Won' AND "
                "Segment__c = 'SMB') AND CloseDate >= 2026-10-01 AND CloseDate <= 2026-10-03"
            },
        ),
        # The next batch exactly as given, with no parameters.
        (f"{QUERY}/01gD0000002HU6KIAW-3", {}),
    ]
    if measure["measure"] == "sum":
        assert requested[1][1]["q"] == fixture("query-page-1.json")["request"]["query"]["q"]


def test_replay_a_datetime_field_in_another_time_zone(httpserver, replay):
    recorded = fixture("query-created-date.json")
    serve(
        httpserver,
        QUERY,
        "query-created-date.json",
        query_string={"q": recorded["request"]["query"]["q"]},
    )
    series = replay.daily_series(
        SeriesRequest.of(metric(date_field="createddate"), OCT_1, OCT_2, "Europe/Berlin")
    )
    # 23:30 UTC on Oct 1 is 01:30 on Oct 2 in Berlin; 21:59:59 UTC on Oct 2 still Oct 2.
    assert values(series) == [1, 2]
    # The field's API spelling, from describe, in the query.
    assert httpserver.log[1][0].args["q"].startswith("SELECT CreatedDate FROM Opportunity WHERE")


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (
            400,
            "salesforce: request failed (HTTP 400) on GET /services/data/v62.0/query: "
            "MALFORMED_QUERY: ERROR at Row:1:Column:66 unexpected token: ')'",
        ),
        (
            401,
            "salesforce: authentication failed (HTTP 401): check SALESFORCE_ACCESS_TOKEN "
            "(INVALID_SESSION_ID: Session expired or invalid)",
        ),
        (
            403,
            "salesforce: the org's API request limit is used up (HTTP 403, REQUEST_LIMIT_EXCEEDED: "
            "TotalRequests Limit exceeded.); not retried: the limit frees up over the next 24 hours",
        ),
    ],
)
def test_replay_errors_are_one_line_and_not_retried(httpserver, replay, status, message):
    recorded = next(e for e in fixture("errors.json")["errors"] if e["status"] == status)
    httpserver.expect_request(QUERY).respond_with_json(
        recorded["body"], status=status, headers=recorded["headers"]
    )
    sleeps = Sleeps()
    replay.client.sleep = sleeps
    with pytest.raises(SourceError) as failure:
        replay.daily_series(SeriesRequest.of(metric(where=SMB), OCT_1, OCT_3))
    assert str(failure.value) == message
    assert sleeps == []
    assert sum(request.path == QUERY for request, _ in httpserver.log) == 1


# --- (b) hand-computed values against the sandbox ----------------------------------------------------

TINY = [
    {
        "Stage__c": "Won",
        "Close_Date__c": "2026-10-01",
        "Amount__c": 100,
        "Opened_At__c": "2026-10-01T23:30:00Z",
    },
    {
        "Stage__c": "Won",
        "Close_Date__c": "2026-10-01",
        "Amount__c": None,
        "Opened_At__c": "2026-10-02T00:30:00Z",
    },
    {
        "Stage__c": "Won",
        "Close_Date__c": "2026-10-02",
        "Amount__c": 250.5,
        "Opened_At__c": "2026-10-02T12:00:00Z",
    },
    {
        "Stage__c": "Lost",
        "Close_Date__c": "2026-10-02",
        "Amount__c": 9999,
        "Opened_At__c": "2026-10-02T12:00:00Z",
    },
    # Closed after the window; opened on Oct 3 in UTC, Oct 4 in Berlin.
    {
        "Stage__c": "Won",
        "Close_Date__c": "2026-10-04",
        "Amount__c": 50,
        "Opened_At__c": "2026-10-03T22:30:00Z",
    },
    # Closed before the window; opened on Sep 30 in UTC, Oct 1 in Berlin.
    {
        "Stage__c": "Won",
        "Close_Date__c": "2026-09-30",
        "Amount__c": 70,
        "Opened_At__c": "2026-09-30T22:30:00Z",
    },
]
TINY_TYPES = {
    "Stage__c": "picklist",
    "Close_Date__c": "date",
    "Amount__c": "currency",
    "Opened_At__c": "datetime",
}


@pytest.fixture
def tiny(sandbox) -> str:
    sandbox.data.salesforce.set_records("Tiny_Deal__c", TINY, fields=TINY_TYPES)
    sandbox.data.salesforce.set_batch_size(None, "Tiny_Deal__c")
    return "Tiny_Deal__c"


@pytest.mark.parametrize(
    ("keys", "zone", "expected"),
    [
        ({"date_field": "Close_Date__c"}, "UTC", [2, 1, 0]),
        # A date field names its day: no time zone moves it.
        ({"date_field": "Close_Date__c"}, "Pacific/Auckland", [2, 1, 0]),
        (
            {"date_field": "Close_Date__c", "measure": "sum", "field": "Amount__c"},
            "UTC",
            [100, 250.5, 0],
        ),
        ({"date_field": "Opened_At__c"}, "UTC", [1, 2, 1]),
        ({"date_field": "Opened_At__c"}, "Europe/Berlin", [1, 3, 0]),
    ],
)
def test_tiny_object(salesforce, tiny, keys, zone, expected):
    series = salesforce.daily_series(
        SeriesRequest.of(metric(object=tiny, where="Stage__c = 'Won'", **keys), OCT_1, OCT_3, zone)
    )
    assert series["date"].tolist() == [OCT_1, OCT_2, OCT_3]
    assert values(series) == expected


def test_the_sandbox_received_the_exact_query(sandbox, salesforce, tiny):
    salesforce.daily_series(
        SeriesRequest.of(
            metric(
                object="tiny_deal__c",
                where="Stage__c = 'Won'",
                date_field="close_date__c",
                measure="sum",
                field="amount__c",
            ),
            OCT_1,
            OCT_3,
        ),
    )
    salesforce.daily_series(
        SeriesRequest.of(
            metric(object=tiny, where="Stage__c = 'Won'", date_field="Opened_At__c"),
            OCT_1,
            OCT_3,
            "Europe/Berlin",
        ),
    )
    queries = [r.query["q"] for r in sandbox.requests if r.path == QUERY]
    assert queries == [
        # API names from describe, whatever the definitions' spelling.
        "SELECT Close_Date__c, Amount__c FROM Tiny_Deal__c WHERE (Stage__c = 'Won') "
        "AND Close_Date__c >= 2026-10-01 AND Close_Date__c <= 2026-10-03",
        "SELECT Opened_At__c FROM Tiny_Deal__c WHERE (Stage__c = 'Won') "
        "AND Opened_At__c >= 2026-09-30T22:00:00Z AND Opened_At__c < 2026-10-03T22:00:00Z",
    ]
    # One describe for the object, however many metrics use it.
    assert sandbox.request_count(f"{DATA}/sobjects/") == 1


def test_small_batches_are_followed_to_the_end(sandbox, salesforce, tiny):
    sandbox.data.salesforce.set_batch_size(2, tiny)
    try:
        series = salesforce.daily_series(
            SeriesRequest.of(
                metric(object=tiny, date_field="Close_Date__c"),
                date(2026, 9, 1),
                date(2026, 10, 31),
            )
        )
    finally:
        sandbox.data.salesforce.set_batch_size(None, tiny)
    assert sum(values(series)) == 6
    batches = [r.path for r in sandbox.requests if r.path.startswith(QUERY)]
    assert len(batches) == 3
    assert batches[1].startswith(f"{QUERY}/01g") and batches[1].endswith("-2")
    assert batches[2].endswith("-4")


def test_a_field_that_is_no_date_is_refused(salesforce, tiny):
    with pytest.raises(
        SourceError, match=r"date_field Stage__c of Tiny_Deal__c is a picklist field"
    ):
        salesforce.daily_series(
            SeriesRequest.of(metric(object=tiny, date_field="Stage__c"), OCT_1, OCT_3)
        )
    with pytest.raises(SourceError, match=r"field Stage__c .* `measure: sum` needs a number"):
        salesforce.daily_series(
            SeriesRequest.of(
                metric(object=tiny, date_field="Close_Date__c", measure="sum", field="Stage__c"),
                OCT_1,
                OCT_3,
            ),
        )
    with pytest.raises(SourceError, match=r"Tiny_Deal__c has no field Closed__c"):
        salesforce.daily_series(
            SeriesRequest.of(metric(object=tiny, date_field="Closed__c"), OCT_1, OCT_3)
        )


def test_an_unknown_object_is_not_found(salesforce):
    with pytest.raises(SourceError) as failure:
        salesforce.daily_series(SeriesRequest.of(metric(object="Nothing__c"), OCT_1, OCT_3))
    assert str(failure.value) == (
        "salesforce: not found (HTTP 404): /services/data/v62.0/sobjects/Nothing__c/describe "
        "(NOT_FOUND: The requested resource does not exist)"
    )


# --- (c) the sample definitions on generated opportunities --------------------------------------------


def expected_days(records, where, start, end, amount=False):
    totals = defaultdict(float)
    for record in records:
        if all(record[name] == value for name, value in where.items()):
            day = date.fromisoformat(record["CloseDate"])
            if amount:
                totals[day] += record["Amount"] or 0.0
            else:
                totals[day] += 1
    return [totals[start + timedelta(days=i)] for i in range((end - start).days + 1)]


def test_a_quarter_of_the_sample_kr_is_one_query(sandbox, salesforce):
    start, end = date(2026, 7, 1), date(2026, 9, 30)
    opportunities = sandbox.data.salesforce.records("Opportunity")
    smb = {"StageName": "Closed Won", "Segment__c": "SMB"}
    dashboard = {"StageName": "Closed Won", "Product__c": "Analytics Dashboard"}

    revenue = salesforce.daily_series(
        SeriesRequest.of(metric(where=SMB, measure="sum", field="Amount"), start, end)
    )
    customers = salesforce.daily_series(SeriesRequest.of(metric(where=DASHBOARD), start, end))

    assert values(revenue) == pytest.approx(
        expected_days(opportunities, smb, start, end, amount=True)
    )
    assert values(customers) == expected_days(opportunities, dashboard, start, end)
    # A quarter is one query a metric (each fits one batch of 2000), not one a day.
    assert sandbox.request_count(QUERY) == 2
    # The data the sample definitions need: SMB wins every day, some without an Amount,
    # a few dashboard wins a day, and other deals the conditions must filter out.
    smb_wins = expected_days(opportunities, smb, start, end)
    assert all(4 <= count <= 12 for count in smb_wins)
    assert any(r["Amount"] is None for r in opportunities if r["Segment__c"] == "SMB")
    assert 0.8 <= sum(values(customers)) / 92 <= 2
    assert {r["StageName"] for r in opportunities} > {"Closed Won", "Closed Lost"}


def test_small_batches_over_a_quarter(sandbox, salesforce):
    start, end = date(2026, 7, 1), date(2026, 9, 30)
    sandbox.data.salesforce.set_batch_size(200, "Opportunity")
    try:
        salesforce.daily_series(
            SeriesRequest.of(metric(where=SMB, measure="sum", field="Amount"), start, end)
        )
    finally:
        sandbox.data.salesforce.set_batch_size(None, "Opportunity")
    opportunities = sandbox.data.salesforce.records("Opportunity")
    matched = sum(
        1
        for r in opportunities
        if r["StageName"] == "Closed Won"
        and r["Segment__c"] == "SMB"
        and "2026-07-01" <= r["CloseDate"] <= "2026-09-30"
    )
    assert sandbox.request_count(QUERY) == math.ceil(matched / 200)


def test_two_sandboxes_generate_the_same_opportunities():
    from okr_metrics.connectors.sandbox.data import SandboxData
    from okr_metrics.connectors.sandbox.salesforce import SalesforceSandboxData

    now = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)
    first = SalesforceSandboxData(SandboxData(now)).records("Opportunity")
    second = SalesforceSandboxData(SandboxData(now)).records("Opportunity")
    assert first == second
    closed = [r for r in first if r["StageName"].startswith("Closed")]
    assert max(r["CloseDate"] for r in closed) <= "2026-11-01"


# --- (d) the sandbox's wire format --------------------------------------------------------------------


def query(sandbox, soql: str, token: str | None = TOKEN, **headers):
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.get(f"{sandbox.url}{QUERY}", params={"q": soql}, headers=headers, timeout=5)


def test_sandbox_records_carry_their_attributes(sandbox, tiny):
    body = query(
        sandbox,
        "SELECT Id, Close_Date__c, Amount__c, Opened_At__c FROM Tiny_Deal__c WHERE Stage__c = 'Lost'",
    ).json()
    assert body["totalSize"] == 1 and body["done"] is True and "nextRecordsUrl" not in body
    (record,) = body["records"]
    assert record["attributes"] == {
        "type": "Tiny_Deal__c",
        "url": f"{DATA}/sobjects/Tiny_Deal__c/{record['Id']}",
    }
    assert record["Close_Date__c"] == "2026-10-02"
    assert record["Amount__c"] == 9999.0
    assert record["Opened_At__c"] == "2026-10-02T12:00:00.000+0000"


def test_sandbox_honours_the_query_options_header(sandbox):
    body = query(
        sandbox,
        "SELECT Id FROM Opportunity WHERE CloseDate >= 2026-01-01 AND CloseDate <= 2026-03-31",
        **{"Sforce-Query-Options": "batchSize=250"},
    ).json()
    assert len(body["records"]) == 250 and body["done"] is False
    assert body["nextRecordsUrl"].startswith(f"{QUERY}/01g") and body["nextRecordsUrl"].endswith(
        "-250"
    )


@pytest.mark.parametrize(
    ("soql", "code", "said"),
    [
        (
            "SELECT Id FROM Opportunity WHERE StageName = 'A' OR StageName = 'B'",
            "MALFORMED_QUERY",
            "unexpected token: 'OR'",
        ),
        ("SELECT COUNT() FROM Opportunity", "MALFORMED_QUERY", "unexpected token: 'COUNT'"),
        (
            "SELECT Id FROM Opportunity WHERE CloseDate >= '2026-10-01'",
            "INVALID_FIELD",
            "must be of type date and should not be enclosed in quotes",
        ),
        (
            "SELECT Id FROM Opportunity WHERE CreatedDate >= 2026-10-01",
            "INVALID_FIELD",
            "must be of type dateTime",
        ),
        (
            "SELECT Nope__c FROM Opportunity",
            "INVALID_FIELD",
            "No such column 'Nope__c' on entity 'Opportunity'",
        ),
        ("SELECT Id FROM Nothing__c", "INVALID_TYPE", "sObject type 'Nothing__c' is not supported"),
    ],
)
def test_sandbox_answers_soql_errors_in_salesforce_shape(sandbox, soql, code, said):
    answer = query(sandbox, soql)
    assert answer.status_code == 400
    (error,) = answer.json()
    assert set(error) == {"message", "errorCode"}
    assert error["errorCode"] == code and said in error["message"]
    assert "ERROR at Row:1:Column:" in error["message"]


@pytest.mark.parametrize("token", [None, "invalid"])
def test_sandbox_refuses_a_missing_or_bad_session(sandbox, token):
    answer = query(sandbox, "SELECT Id FROM Opportunity", token=token)
    assert answer.status_code == 401
    assert answer.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]


# --- (e) faults ----------------------------------------------------------------------------------------


def test_request_limit_exceeded_is_not_retried(sandbox, salesforce, tiny, sleeps):
    limit = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    sandbox.add_fault(path_prefix=QUERY, status=403, body=limit, headers={"Retry-After": "60"})
    with pytest.raises(SourceError) as failure:
        salesforce.daily_series(
            SeriesRequest.of(metric(object=tiny, date_field="Close_Date__c"), OCT_1, OCT_3)
        )
    assert "REQUEST_LIMIT_EXCEEDED" in str(failure.value) and "not retried" in str(failure.value)
    assert sandbox.request_count(QUERY) == 1
    assert sleeps == []


def test_429_and_server_errors_are_retried(sandbox, salesforce, tiny, sleeps):
    sandbox.add_fault(path_prefix=QUERY, status=429, retry_after=2, times=1)
    sandbox.add_fault(path_prefix=QUERY, status=503, times=1)
    series = salesforce.daily_series(
        SeriesRequest.of(
            metric(object=tiny, where="Stage__c = 'Won'", date_field="Close_Date__c"), OCT_1, OCT_3
        )
    )
    assert values(series) == [2, 1, 0]
    assert sleeps == [2.0, 1.0]  # Retry-After, then the second backoff step
    assert sandbox.request_count(QUERY) == 3


def test_an_expired_session_names_the_variable_and_never_the_token(sandbox, tiny, sleeps, caplog):
    caplog.set_level(logging.DEBUG)
    connector = SalesforceConnector.from_settings(
        SourceSettings(base_url=sandbox.url, token=TOKEN), sleep=sleeps
    )
    sandbox.add_fault(path_prefix=QUERY, status=401)
    with pytest.raises(SourceError) as failure:
        connector.daily_series(
            SeriesRequest.of(metric(object=tiny, date_field="Close_Date__c"), OCT_1, OCT_3)
        )
    assert str(failure.value) == (
        "salesforce: authentication failed (HTTP 401): check SALESFORCE_ACCESS_TOKEN "
        "(INVALID_SESSION_ID: Session expired or invalid)"
    )
    assert TOKEN not in repr(failure.value) and TOKEN not in caplog.text
    assert any(record.name.startswith("urllib3") for record in caplog.records)


# --- records the mapping cannot read -------------------------------------------------------------


@pytest.mark.parametrize(
    ("close_date", "message"),
    [
        (None, "salesforce: Tiny_Deal__c a0X000000000009: Close_Date__c is missing"),
        (
            "someday",
            "salesforce: Tiny_Deal__c a0X000000000009: Close_Date__c 'someday' is not a timestamp",
        ),
    ],
)
def test_a_record_without_a_readable_date_is_one_line(
    sandbox, salesforce, tiny, close_date, message
):
    # The sandbox describes the object, then answers the query with a hand-written page.
    page = {
        "totalSize": 1,
        "done": True,
        "records": [{"Id": "a0X000000000009", "Close_Date__c": close_date, "Amount__c": 10.0}],
    }
    sandbox.add_fault(path_prefix=QUERY, status=200, body=page)
    with pytest.raises(SourceError) as failure:
        salesforce.daily_series(
            SeriesRequest.of(metric(object=tiny, date_field="Close_Date__c"), OCT_1, OCT_3)
        )
    assert str(failure.value) == message
