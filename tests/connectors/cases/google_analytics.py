"""The Google Analytics 4 connector's contract case: events of one sandbox property."""

from __future__ import annotations

from datetime import date, timedelta

from okr_metrics.connectors.base import SourceSettings
from okr_metrics.connectors.google_analytics.client import GoogleAnalyticsConnector
from okr_metrics.connectors.google_analytics.params import GoogleAnalyticsMetric


class GoogleAnalyticsCase:
    source = "google_analytics"
    http = True
    path_prefix = "/v1beta/properties/"
    secret = "contract-secret-token"
    window = (date(2026, 10, 1), date(2026, 10, 10))
    property_id = "900000001"

    def settings(self, sandbox) -> SourceSettings:
        return SourceSettings(base_url=sandbox.url, token=self.secret)

    def metric(self) -> GoogleAnalyticsMetric:
        return GoogleAnalyticsMetric(
            source="google_analytics",
            property=self.property_id,
            metric="eventCount",
            filter={"eventName": ("contract_event",)},
        )

    def seed(self, sandbox, records_per_day: int) -> dict[date, float]:
        days = self._days()
        rows = [
            {"date": day, "platform": "iOS", "eventName": "contract_event", "eventCount": 1}
            for day in days
            for _ in range(records_per_day)
        ]
        # Never counted: another event, and the event the day before the window.
        rows += [{"date": day, "eventName": "other_event", "eventCount": 5} for day in days]
        rows.append(
            {
                "date": days[0] - timedelta(days=1),
                "eventName": "contract_event",
                "eventCount": 9,
            }
        )
        sandbox.data.google_analytics.set_rows(self.property_id, rows)
        return {day: float(records_per_day) for day in days}

    def seed_empty(self, sandbox) -> None:
        sandbox.data.google_analytics.set_rows(self.property_id, [])

    def page_size(self, sandbox, size: int) -> None:
        # A report has one row a day: `size` days a page. The suite restores the attribute.
        GoogleAnalyticsConnector.page_size = size

    def _days(self) -> list[date]:
        start, end = self.window
        return [start + timedelta(days=i) for i in range((end - start).days + 1)]


CASE = GoogleAnalyticsCase()
