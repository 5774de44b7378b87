"""The Jira connector's contract case: resolved support tickets, over two reference pages.

The pages are `tests/fixtures/jira/search-jql-page-{1,2}.json` (request and response, as
served): a first page with `nextPageToken`, the last with `isLast`. Their issues resolve
two a day, 2026-10-01 to 2026-10-03 in UTC (see the fixtures' README).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from okr_metrics.connectors.base import SourceSettings
from okr_metrics.connectors.jira.params import JiraMetric

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "jira"
OCT_1, OCT_2, OCT_3 = date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3)


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


class JiraCase:
    source = "jira"
    http = True
    secret = "contract-secret-token"
    user = "contract@example.com"
    window = (OCT_1, OCT_3)
    page_size = 100  # the pages' `maxResults`

    def settings(self, url: str) -> SourceSettings:
        return SourceSettings(base_url=url, token=self.secret, user=self.user)

    def metric(self) -> JiraMetric:
        return JiraMetric(
            source="jira", jql='project = SUP AND issuetype = "Support Ticket"', count="resolved"
        )

    def records(self, url: str) -> tuple[list[dict], dict[date, float]]:
        pages = [load("search-jql-page-1.json"), load("search-jql-page-2.json")]
        return pages, {OCT_1: 2.0, OCT_2: 2.0, OCT_3: 2.0}

    def no_records(self, url: str) -> tuple[list[dict], dict[date, float]]:
        first = load("search-jql-page-1.json")
        empty = {**first["response"], "body": {"issues": [], "isLast": True}}
        return [{"request": first["request"], "response": empty}], dict.fromkeys(
            (OCT_1, OCT_2, OCT_3), 0.0
        )

    def error_body(self, status: int, message: str) -> dict:
        """Jira's error body (`jql-error-400.json`)."""
        return {"errorMessages": [message], "errors": {}}


CASE = JiraCase()
