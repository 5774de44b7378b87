"""The Google Analytics 4 connector's contract case: daily active users, over two report pages.

The pages are `tests/fixtures/google_analytics/run-report-active-users.json`: a report
of limit 4 over 2026-10-01..07, paged by `offset`, with no row for 2026-10-04 (a 0); the
recorded errors answer the injected failures of their status.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

from okr_metrics.connectors.base import SourceSettings
from okr_metrics.connectors.google_analytics.params import GoogleAnalyticsMetric

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "google_analytics"
JSON = {"Content-Type": "application/json; charset=UTF-8"}
STATUSES = {404: "NOT_FOUND", 500: "INTERNAL", 503: "UNAVAILABLE"}
OCT_1 = date(2026, 10, 1)


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


class GoogleAnalyticsCase:
    source = "google_analytics"
    http = True
    secret = "contract-secret-token"
    window = (OCT_1, date(2026, 10, 7))
    timezone = "America/Los_Angeles"  # the property's, as the report's metadata says
    page_size = 4  # the recording's `limit`

    def __init__(self) -> None:
        self.recording = load("run-report-active-users.json")

    def settings(self, url: str) -> SourceSettings:
        return SourceSettings(base_url=url, token=self.secret)

    def metric(self) -> GoogleAnalyticsMetric:
        return GoogleAnalyticsMetric(
            source="google_analytics",
            property=self.recording["property"],
            metric="activeUsers",
            filter={"platform": ("iOS", "Android")},
        )

    def records(self, url: str) -> tuple[list[dict], dict[date, float]]:
        path = f"/v1beta/properties/{self.recording['property']}:runReport"
        exchanges = [
            {
                "request": {"method": "POST", "path": path, "body": interaction["request"]},
                "response": {"headers": JSON, "body": interaction["response"]},
            }
            for interaction in self.recording["interactions"]
        ]
        users = [10012, 10234, 9876, 0, 8745, 10456, 10589]  # the rows; none on 10-04
        return exchanges, {OCT_1 + timedelta(days=i): float(n) for i, n in enumerate(users)}

    def no_records(self, url: str) -> tuple[list[dict], dict[date, float]]:
        (first, *_), expected = self.records(url)
        page = first["response"]["body"]
        # An empty report: its headers and metadata, no rows and (a zero) no rowCount.
        empty = {
            key: page[key] for key in ("dimensionHeaders", "metricHeaders", "metadata", "kind")
        }
        return [
            {"request": first["request"], "response": {"headers": JSON, "body": empty}}
        ], dict.fromkeys(expected, 0.0)

    def error_body(self, status: int, message: str) -> dict:
        """The recorded error of `status` (`errors.json`), else Google's shape of it."""
        recorded = {error["status"]: error["response"] for error in load("errors.json")["errors"]}
        return recorded.get(status) or {
            "error": {"code": status, "message": message, "status": STATUSES.get(status, "UNKNOWN")}
        }


CASE = GoogleAnalyticsCase()
