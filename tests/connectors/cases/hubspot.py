"""The HubSpot connector's contract case: won SMB deals' amounts, over two reference pages.

The pages are `tests/fixtures/hubspot/search-deals.json`: a search in Europe/Oslo of
limit 3, paged by `after`; the recorded errors answer the injected failures of their
status.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from okr_metrics.connectors.base import SourceSettings
from okr_metrics.connectors.hubspot.params import HubSpotMetric

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hubspot"
SEARCH = "/crm/v3/objects/deals/search"
JSON = {"Content-Type": "application/json;charset=utf-8"}
OCT_1, OCT_2, OCT_3 = date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3)
CATEGORIES = {404: "OBJECT_NOT_FOUND", 500: "INTERNAL_ERROR", 503: "INTERNAL_ERROR"}


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


class HubSpotCase:
    source = "hubspot"
    http = True
    secret = "contract-secret-token"
    window = (OCT_1, OCT_3)
    timezone = "Europe/Oslo"  # the recording's window is Oslo's days
    page_size = 3  # the recording's `limit`

    def settings(self, url: str) -> SourceSettings:
        return SourceSettings(base_url=url, token=self.secret)

    def metric(self) -> HubSpotMetric:
        return HubSpotMetric(
            source="hubspot",
            object="deals",
            filters=(
                {"property": "dealstage", "operator": "EQ", "value": "closedwon"},
                {"property": "customer_segment", "operator": "EQ", "value": "smb"},
            ),
            measure="sum",
            field="amount",
        )

    def records(self, url: str) -> tuple[list[dict], dict[date, float]]:
        exchanges = [
            {
                "request": {"method": "POST", "path": SEARCH, "body": interaction["request"]},
                "response": {"headers": JSON, "body": interaction["response"]},
            }
            for interaction in load("search-deals.json")["interactions"]
        ]
        # 22:30Z on 09-30 is 10-01 in Oslo; null and empty amounts add nothing.
        return exchanges, {OCT_1: 2080.5, OCT_2: 0.0, OCT_3: 2100.0}

    def no_records(self, url: str) -> tuple[list[dict], dict[date, float]]:
        (first, *_), _ = self.records(url)
        empty = {"headers": JSON, "body": {"total": 0, "results": []}}
        return [{"request": first["request"], "response": empty}], dict.fromkeys(
            (OCT_1, OCT_2, OCT_3), 0.0
        )

    def error_body(self, status: int, message: str) -> dict:
        """The recorded error of `status` (`errors.json`), else HubSpot's shape of it."""
        recorded = {error["status"]: error["response"] for error in load("errors.json")["errors"]}
        return recorded.get(status) or {
            "status": "error",
            "message": message,
            "correlationId": "00000000-0000-4000-8000-000000000000",
            "category": CATEGORIES.get(status, "ERROR"),
        }


CASE = HubSpotCase()
