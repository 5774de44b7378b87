"""Bodies that lie, scripted with pytest-httpserver: truncated JSON, an HTML page with
status 200, paging that loops back, records repeated across pages, a field renamed, and
a count that disagrees with the rows.

Each either gives the series the honest pages give (repeats count once) or fails the
source with one line naming what is wrong: never a short series.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from okr_metrics.connectors.base import SeriesRequest, SourceError, SourceSettings
from okr_metrics.connectors.github.client import GitHubConnector
from okr_metrics.connectors.github.params import GitHubMetric
from okr_metrics.connectors.google_analytics.client import GoogleAnalyticsConnector
from okr_metrics.connectors.google_analytics.params import GoogleAnalyticsMetric
from okr_metrics.connectors.hubspot.client import HubSpotConnector
from okr_metrics.connectors.hubspot.params import HubSpotMetric
from okr_metrics.connectors.jira.client import JiraConnector
from okr_metrics.connectors.jira.params import JiraMetric
from okr_metrics.connectors.salesforce.client import SalesforceConnector
from okr_metrics.connectors.salesforce.params import SalesforceMetric

OCT_1, OCT_3 = date(2026, 10, 1), date(2026, 10, 3)
OPTIONS = {"sleep": lambda seconds: None, "max_attempts": 2}


def settings(server: HTTPServer, **extra: str) -> SourceSettings:
    return SourceSettings(base_url=server.url_for("/").rstrip("/"), token="body-token", **extra)


def values(frame) -> list[float]:
    return frame["value"].tolist()


def json_response(body: Any, headers: dict | None = None) -> Response:
    return Response(json.dumps(body), 200, headers, content_type="application/json")


def one_line(failure: pytest.ExceptionInfo, source: str) -> str:
    message = str(failure.value)
    assert failure.value.source == source and "\n" not in message
    return message


# --- GitHub: Link header pages ---------------------------------------------------------------


def pull(number: int, merged: str | None, **fields: Any) -> dict:
    return {
        "number": number,
        "updated_at": "2026-10-03T23:00:00Z",
        "merged_at": merged,
        **fields,
    }


PULLS = [
    pull(1, "2026-10-01T10:00:00Z"),
    pull(2, "2026-10-02T10:00:00Z"),
    pull(3, None),
    pull(4, "2026-10-02T11:00:00Z"),
    pull(5, "2026-10-03T09:00:00Z"),
]
PULLS_PATH = "/repos/acme/app/pulls"


def serve_pulls(server: HTTPServer, pages: dict[int, list], links: dict[int, int | None]) -> None:
    """Page n (the `page` parameter, 1 when absent) with a Link to page `links[n]`."""

    def handler(request: Request) -> Response:
        page = int(request.args.get("page", 1))
        following = links.get(page)
        headers = {}
        if following is not None:
            query = "&".join(f"{k}={v}" for k, v in request.args.items() if k != "page")
            url = server.url_for(f"{PULLS_PATH}?{query}&page={following}")
            headers["Link"] = f'<{url}>; rel="next"'
        return json_response(pages[page], headers)

    server.expect_request(PULLS_PATH).respond_with_handler(handler)


def merged(server: HTTPServer) -> list[float]:
    connector = GitHubConnector.from_settings(settings(server), **OPTIONS)
    metric = GitHubMetric(source="github", repo="acme/app", count="merged_pull_requests")
    return values(connector.daily_series(SeriesRequest.of(metric, OCT_1, OCT_3)))


def test_github_honest_pages(httpserver):
    serve_pulls(httpserver, {1: PULLS[:3], 2: PULLS[3:]}, {1: 2})
    assert merged(httpserver) == [1, 2, 1]


def test_github_a_pull_repeated_on_the_next_page_counts_once(httpserver):
    # PR 2 was updated while the list was read: it shows up again at the top of page 2.
    serve_pulls(httpserver, {1: PULLS[:3], 2: [PULLS[1], *PULLS[3:]]}, {1: 2})
    assert merged(httpserver) == [1, 2, 1]


def test_github_a_link_back_to_the_first_page_is_a_loop(httpserver):
    serve_pulls(httpserver, {1: PULLS[:3], 2: PULLS[3:]}, {1: 2, 2: 1})
    with pytest.raises(SourceError) as failure:
        merged(httpserver)
    message = one_line(failure, "github")
    assert message.startswith("github: pagination loop: the API pointed back to a page already")
    assert f"(GET {PULLS_PATH}, after 3 pages)" in message
    # Page 1 again (its link names page=1), then page 2 again is refused: 3 requests.
    assert len(httpserver.log) == 3


def test_github_a_renamed_field_fails_naming_it(httpserver):
    renamed = [
        {**{k: v for k, v in p.items() if k != "merged_at"}, "mergedAt": None} for p in PULLS
    ]
    serve_pulls(httpserver, {1: renamed[:3], 2: renamed[3:]}, {1: 2})
    with pytest.raises(SourceError) as failure:
        merged(httpserver)
    assert one_line(failure, "github") == "github: pull request 1: merged_at is missing"


def test_github_truncated_json_fails_the_source(httpserver):
    httpserver.expect_request(PULLS_PATH).respond_with_data(
        '[{"number": 1, "merged_at": "2026-10-01T1', content_type="application/json"
    )
    with pytest.raises(SourceError) as failure:
        merged(httpserver)
    assert one_line(failure, "github").startswith(
        f"github: malformed response body from {PULLS_PATH} (HTTP 200, not JSON: "
        "application/json, 41 bytes:"
    )


def test_an_html_error_page_with_status_200_fails_the_source(httpserver):
    page = "<!DOCTYPE html>\n<html><head><title>Service Unavailable</title></head></html>"
    httpserver.expect_request(PULLS_PATH).respond_with_data(page, content_type="text/html")
    with pytest.raises(SourceError) as failure:
        merged(httpserver)
    assert one_line(failure, "github") == (
        f"github: malformed response body from {PULLS_PATH} (HTTP 200, not JSON: text/html, "
        f"{len(page)} bytes: '<!DOCTYPE html> <html><head><title>Service Unavailable</titl')"
    )


# --- Jira: nextPageToken ----------------------------------------------------------------------


def issue(key: str, created: str, resolved: str | None = None) -> dict:
    return {"id": key[4:], "key": key, "fields": {"created": created, "resolutiondate": resolved}}


ISSUES = [
    issue("SUP-1", "2026-09-20T09:00:00.000+0000", "2026-10-01T10:00:00.000+0000"),
    issue("SUP-2", "2026-09-21T09:00:00.000+0000", "2026-10-02T10:00:00.000+0000"),
    issue("SUP-3", "2026-09-22T09:00:00.000+0000", "2026-10-02T12:00:00.000+0000"),
    issue("SUP-4", "2026-09-23T09:00:00.000+0000", "2026-10-03T10:00:00.000+0000"),
]


def serve_jira(server: HTTPServer, pages: dict[str | None, dict]) -> None:
    server.expect_request("/rest/api/3/search/jql", method="POST").respond_with_handler(
        lambda request: json_response(pages[request.get_json().get("nextPageToken")])
    )


def resolved(server: HTTPServer) -> list[float]:
    connector = JiraConnector.from_settings(settings(server, user="ops@example.com"), **OPTIONS)
    metric = JiraMetric(source="jira", jql="project = SUP", count="resolved")
    return values(connector.daily_series(SeriesRequest.of(metric, OCT_1, OCT_3)))


def test_jira_a_repeated_issue_counts_once(httpserver):
    serve_jira(
        httpserver,
        {
            None: {"issues": ISSUES[:2], "nextPageToken": "b", "isLast": False},
            "b": {"issues": [ISSUES[1], *ISSUES[2:]], "isLast": True},
        },
    )
    assert resolved(httpserver) == [1, 2, 1]


def test_jira_a_token_back_to_an_earlier_page_is_a_loop(httpserver):
    serve_jira(
        httpserver,
        {
            None: {"issues": ISSUES[:1], "nextPageToken": "b", "isLast": False},
            "b": {"issues": ISSUES[1:2], "nextPageToken": "c", "isLast": False},
            "c": {"issues": ISSUES[2:3], "nextPageToken": "b", "isLast": False},
        },
    )
    with pytest.raises(SourceError) as failure:
        resolved(httpserver)
    assert "pagination loop" in one_line(failure, "jira") and len(httpserver.log) == 3


def test_jira_a_renamed_resolution_date_fails_naming_it(httpserver):
    renamed = [
        {**item, "fields": {"created": item["fields"]["created"], "resolved": "2026-10-01"}}
        for item in ISSUES
    ]
    serve_jira(httpserver, {None: {"issues": renamed, "isLast": True}})
    with pytest.raises(SourceError) as failure:
        resolved(httpserver)
    assert one_line(failure, "jira") == "jira: issue SUP-1: fields.resolutiondate is missing"


# --- HubSpot: the `after` cursor and `total` -----------------------------------------------------


def deal(number: int, closed: str, amount: str | None = "100") -> dict:
    return {"id": str(number), "properties": {"closedate": closed, "amount": amount}}


DEALS = [
    deal(1, "2026-10-01T09:00:00.000Z"),
    deal(2, "2026-10-02T09:00:00.000Z", "50"),
    deal(3, "2026-10-02T10:00:00.000Z", None),
    deal(4, "2026-10-03T09:00:00.000Z", "25"),
]


def serve_hubspot(server: HTTPServer, pages: dict[str | None, dict]) -> None:
    server.expect_request("/crm/v3/objects/deals/search", method="POST").respond_with_handler(
        lambda request: json_response(pages[request.get_json().get("after")])
    )


def page(results: list, total: int | None, after: str | None = None) -> dict:
    body: dict[str, Any] = {"results": results}
    if total is not None:
        body["total"] = total
    if after is not None:
        body["paging"] = {"next": {"after": after, "link": "https://api.hubapi.com/..."}}
    return body


def amounts(server: HTTPServer) -> list[float]:
    connector = HubSpotConnector.from_settings(settings(server), **OPTIONS)
    metric = HubSpotMetric(source="hubspot", measure="sum", field="amount")
    return values(connector.daily_series(SeriesRequest.of(metric, OCT_1, OCT_3)))


def test_hubspot_a_repeated_deal_counts_once(httpserver):
    serve_hubspot(
        httpserver, {None: page(DEALS[:2], 4, "Mg%3D%3D"), "Mg%3D%3D": page(DEALS[1:], 4)}
    )
    assert amounts(httpserver) == [100, 50, 25]


def test_hubspot_an_after_cursor_back_to_an_earlier_page_is_a_loop(httpserver):
    serve_hubspot(
        httpserver,
        {
            None: page(DEALS[:1], 4, "NTI1Cg%3D%3D"),
            "NTI1Cg%3D%3D": page(DEALS[1:2], 4, "ODAwCg%3D%3D"),
            "ODAwCg%3D%3D": page(DEALS[2:3], 4, "NTI1Cg%3D%3D"),
        },
    )
    with pytest.raises(SourceError) as failure:
        amounts(httpserver)
    assert "pagination loop" in one_line(failure, "hubspot") and len(httpserver.log) == 3


def test_hubspot_a_total_above_the_deals_listed_fails(httpserver):
    serve_hubspot(httpserver, {None: page(DEALS[:2], 4, "b"), "b": page(DEALS[3:], 4)})
    with pytest.raises(SourceError) as failure:
        amounts(httpserver)
    assert one_line(failure, "hubspot") == (
        "hubspot: the search of deals says total 4 but lists 3 distinct records"
    )


def test_hubspot_a_renamed_amount_fails_naming_it(httpserver):
    renamed = [{**d, "properties": {"closedate": d["properties"]["closedate"]}} for d in DEALS]
    serve_hubspot(httpserver, {None: page(renamed, 4)})
    with pytest.raises(SourceError) as failure:
        amounts(httpserver)
    assert one_line(failure, "hubspot") == "hubspot: deals 1: amount is missing"


# --- Google Analytics: rowCount -----------------------------------------------------------------


def report(rows: list[tuple[str, str]], row_count: int | None, rows_key: str = "rows") -> dict:
    body: dict[str, Any] = {
        "dimensionHeaders": [{"name": "date"}],
        "metricHeaders": [{"name": "activeUsers", "type": "TYPE_INTEGER"}],
        rows_key: [
            {"dimensionValues": [{"value": day}], "metricValues": [{"value": value}]}
            for day, value in rows
        ],
        "metadata": {"currencyCode": "USD", "timeZone": "UTC"},
        "kind": "analyticsData#runReport",
    }
    if row_count is not None:
        body["rowCount"] = row_count
    return body


ROWS = [("20261001", "230"), ("20261002", "0"), ("20261003", "120")]


def active_users(server: HTTPServer, body: dict) -> list[float]:
    """The series of a report whose first page is `body` (a later page has no rows)."""

    def handler(request: Request) -> Response:
        offset = request.get_json().get("offset", 0)
        return json_response(body if offset == 0 else {**body, "rows": []})

    server.expect_request("/v1beta/properties/42:runReport", method="POST").respond_with_handler(
        handler
    )
    connector = GoogleAnalyticsConnector.from_settings(settings(server), **OPTIONS)
    metric = GoogleAnalyticsMetric(source="google_analytics", property="42", metric="activeUsers")
    return values(connector.daily_series(SeriesRequest.of(metric, OCT_1, OCT_3)))


def test_ga_honest_report(httpserver):
    assert active_users(httpserver, report(ROWS, 3)) == [230, 0, 120]


def test_ga_a_row_count_above_the_rows_fails(httpserver):
    # A day left out would read as a 0: the report must hold every row it counts.
    with pytest.raises(SourceError) as failure:
        active_users(httpserver, report(ROWS[:2], 3))
    assert one_line(failure, "google_analytics") == (
        "google_analytics: the report of property 42 says rowCount 3 but its pages hold 2 rows"
    )


def test_ga_renamed_rows_fail(httpserver):
    with pytest.raises(SourceError) as failure:
        active_users(httpserver, report(ROWS, 3, rows_key="row"))
    assert "says rowCount 3 but its pages hold 0 rows" in one_line(failure, "google_analytics")


def test_ga_a_repeated_day_fails(httpserver):
    with pytest.raises(SourceError) as failure:
        active_users(httpserver, report([*ROWS[:2], ROWS[1]], 3))
    assert one_line(failure, "google_analytics") == (
        "google_analytics: the report lists 2026-10-02 twice"
    )


# --- Salesforce: totalSize and nextRecordsUrl ------------------------------------------------------

DESCRIBE = {
    "name": "Opportunity",
    "fields": [{"name": "CloseDate", "type": "date"}, {"name": "Amount", "type": "currency"}],
}
QUERY = "/services/data/v62.0/query"


def serve_salesforce(server: HTTPServer, pages: dict[str, dict]) -> None:
    server.expect_request("/services/data/v62.0/sobjects/Opportunity/describe").respond_with_json(
        DESCRIBE
    )
    server.expect_request(QUERY).respond_with_handler(
        lambda request: json_response(pages[request.path])
    )
    for path, body in pages.items():
        if path != QUERY:
            server.expect_request(path).respond_with_json(body)


def opportunity(day: str, amount: float | None) -> dict:
    return {"attributes": {"type": "Opportunity"}, "CloseDate": day, "Amount": amount}


OPPORTUNITIES = [
    opportunity("2026-10-01", 100.0),
    opportunity("2026-10-02", 50.0),
    opportunity("2026-10-03", None),
]


def summed(server: HTTPServer) -> list[float]:
    connector = SalesforceConnector.from_settings(settings(server), **OPTIONS)
    metric = SalesforceMetric(source="salesforce", measure="sum", field="Amount")
    return values(connector.daily_series(SeriesRequest.of(metric, OCT_1, OCT_3)))


def test_salesforce_honest_batches(httpserver):
    following = f"{QUERY}/01gD-2000"
    serve_salesforce(
        httpserver,
        {
            QUERY: {"totalSize": 3, "done": False, "nextRecordsUrl": following,
                    "records": OPPORTUNITIES[:2]},
            following: {"totalSize": 3, "done": True, "records": OPPORTUNITIES[2:]},
        },
    )  # fmt: skip
    assert summed(httpserver) == [100, 50, 0]


def test_salesforce_a_total_size_above_the_records_fails(httpserver):
    serve_salesforce(httpserver, {QUERY: {"totalSize": 5, "done": True, "records": OPPORTUNITIES}})
    with pytest.raises(SourceError) as failure:
        summed(httpserver)
    assert one_line(failure, "salesforce") == (
        "salesforce: the query of Opportunity says totalSize 5 but its pages hold 3 records"
    )


def test_salesforce_a_next_records_url_back_to_an_earlier_batch_is_a_loop(httpserver):
    second, third = f"{QUERY}/01gD-2000", f"{QUERY}/01gD-4000"
    serve_salesforce(
        httpserver,
        {
            QUERY: {"totalSize": 9, "done": False, "nextRecordsUrl": second,
                    "records": OPPORTUNITIES[:1]},
            second: {"totalSize": 9, "done": False, "nextRecordsUrl": third,
                     "records": OPPORTUNITIES[1:2]},
            third: {"totalSize": 9, "done": False, "nextRecordsUrl": second,
                    "records": OPPORTUNITIES[2:]},
        },
    )  # fmt: skip
    with pytest.raises(SourceError) as failure:
        summed(httpserver)
    assert "pagination loop" in one_line(failure, "salesforce")


def test_salesforce_a_renamed_sum_field_fails_naming_it(httpserver):
    renamed = [{"CloseDate": o["CloseDate"], "amount__c": o["Amount"]} for o in OPPORTUNITIES]
    serve_salesforce(httpserver, {QUERY: {"totalSize": 3, "done": True, "records": renamed}})
    with pytest.raises(SourceError) as failure:
        summed(httpserver)
    assert one_line(failure, "salesforce") == "salesforce: Opportunity: Amount is missing"
