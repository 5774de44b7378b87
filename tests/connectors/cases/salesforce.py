"""The Salesforce connector's contract case: the sum of Amount per CloseDate, in two batches.

The exchanges are `tests/fixtures/salesforce/`'s describe call and the two batches of
its query (the second fetched at the first's `nextRecordsUrl`); the recorded errors
answer the injected failures of their status.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from okr_metrics.connectors.base import SourceSettings
from okr_metrics.connectors.salesforce.params import SalesforceMetric

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "salesforce"
OCT_1, OCT_2, OCT_3 = date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3)
CODES = {404: "NOT_FOUND", 429: "REQUEST_LIMIT_EXCEEDED", 503: "SERVER_UNAVAILABLE"}


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


class SalesforceCase:
    source = "salesforce"
    http = True
    secret = "contract-secret-token"
    window = (OCT_1, OCT_3)
    page_size = None  # Salesforce picks the batch size

    def settings(self, url: str) -> SourceSettings:
        return SourceSettings(base_url=url, token=self.secret)

    def metric(self) -> SalesforceMetric:
        return SalesforceMetric(
            source="salesforce",
            object="Opportunity",
            where="StageName = 'Closed Won' AND Segment__c = 'SMB'",
            date_field="CloseDate",
            measure="sum",
            field="Amount",
        )

    def records(self, url: str) -> tuple[list[dict], dict[date, float]]:
        exchanges = [
            load(name)
            for name in ("describe-opportunity.json", "query-page-1.json", "query-page-2.json")
        ]
        # Hand-computed in the fixtures' README: a null Amount adds nothing.
        return exchanges, {OCT_1: 1200.5, OCT_2: 800.0, OCT_3: 1250.25}

    def no_records(self, url: str) -> tuple[list[dict], dict[date, float]]:
        describe, query = load("describe-opportunity.json"), load("query-page-1.json")
        empty = {**query["response"], "body": {"totalSize": 0, "done": True, "records": []}}
        return [describe, {"request": query["request"], "response": empty}], dict.fromkeys(
            (OCT_1, OCT_2, OCT_3), 0.0
        )

    def error_body(self, status: int, message: str) -> list[dict]:
        """The recorded error of `status` (`errors.json`), else Salesforce's shape of it."""
        recorded = {error["status"]: error["body"] for error in load("errors.json")["errors"]}
        return recorded.get(status) or [
            {"message": message, "errorCode": CODES.get(status, "UNKNOWN_EXCEPTION")}
        ]


CASE = SalesforceCase()
