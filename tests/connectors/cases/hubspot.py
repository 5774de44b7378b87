"""The HubSpot connector's contract case: won records of a custom object in the sandbox."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from okr_metrics.connectors.base import SourceSettings
from okr_metrics.connectors.hubspot.client import HubSpotConnector
from okr_metrics.connectors.hubspot.params import HubSpotMetric


class HubSpotCase:
    source = "hubspot"
    http = True
    path_prefix = "/crm/v3/objects/"
    secret = "contract-secret-token"
    window = (date(2026, 10, 1), date(2026, 10, 10))
    object_name = "2-9001"  # a custom object of its own, so the sample deals stay as they are

    def settings(self, sandbox) -> SourceSettings:
        return SourceSettings(base_url=sandbox.url, token=self.secret)

    def metric(self) -> HubSpotMetric:
        return HubSpotMetric(
            source="hubspot",
            object=self.object_name,
            filters=({"property": "dealstage", "operator": "EQ", "value": "closedwon"},),
            date_property="closedate",
            measure="count",
        )

    def seed(self, sandbox, records_per_day: int) -> dict[date, float]:
        days = self._days()
        spacing = timedelta(hours=23) / max(records_per_day, 1)
        records = [
            {"dealstage": "closedwon", "closedate": at(day) + n * spacing}
            for day in days
            for n in range(records_per_day)
        ]
        # Never counted: a lost record each day, a won one just before the window.
        records += [{"dealstage": "closedlost", "closedate": at(day)} for day in days]
        records.append({"dealstage": "closedwon", "closedate": at(days[0]) - timedelta(hours=1)})
        sandbox.data.hubspot.set_records(self.object_name, records)
        return {day: float(records_per_day) for day in days}

    def seed_empty(self, sandbox) -> None:
        sandbox.data.hubspot.set_records(self.object_name, [])

    def page_size(self, sandbox, size: int) -> None:
        # The suite puts the connector's class attributes back after each test.
        HubSpotConnector.page_size = size

    def _days(self) -> list[date]:
        start, end = self.window
        return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def at(day: date) -> datetime:
    """00:30 UTC on `day`."""
    return datetime.combine(day, time(0, 30), tzinfo=timezone.utc)


CASE = HubSpotCase()
