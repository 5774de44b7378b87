"""The Salesforce connector's contract case: the sum of a field per day of a custom object."""

from __future__ import annotations

from datetime import date, timedelta

from okr_metrics.connectors.base import SourceSettings
from okr_metrics.connectors.salesforce.params import SalesforceMetric


class SalesforceCase:
    source = "salesforce"
    http = True
    # The describe call and the query (and its nextRecordsUrl batches) are all under it.
    path_prefix = "/services/data/v62.0/"
    secret = "contract-secret-token"
    window = (date(2026, 10, 1), date(2026, 10, 10))
    sobject = "Contract_Deal__c"

    def settings(self, sandbox) -> SourceSettings:
        return SourceSettings(base_url=sandbox.url, token=self.secret)

    def metric(self) -> SalesforceMetric:
        return SalesforceMetric(
            source="salesforce",
            object=self.sobject,
            where="Stage__c = 'Won'",
            date_field="Close_Date__c",
            measure="sum",
            field="Amount__c",
        )

    def seed(self, sandbox, records_per_day: int) -> dict[date, float]:
        start, end = self.window
        days = [start + timedelta(days=i) for i in range(-1, (end - start).days + 2)]
        records, expected = [], {}
        for day in days:
            inside = start <= day <= end
            amounts = [10.0 * (n + 1) for n in range(records_per_day)]
            records += [
                {"Stage__c": "Won", "Close_Date__c": day.isoformat(), "Amount__c": amount}
                for amount in amounts
            ]
            # Filtered out by `where`, whatever the day.
            records.append({"Stage__c": "Lost", "Close_Date__c": day.isoformat(), "Amount__c": 1e6})
            if inside:
                expected[day] = sum(amounts)
        self._set(sandbox, records)
        return expected

    def seed_empty(self, sandbox) -> None:
        self._set(sandbox, [])

    def page_size(self, sandbox, size: int) -> None:
        sandbox.data.salesforce.set_batch_size(size, self.sobject)

    def _set(self, sandbox, records: list[dict]) -> None:
        fields = {"Stage__c": "picklist", "Close_Date__c": "date", "Amount__c": "currency"}
        sandbox.data.salesforce.set_records(self.sobject, records, fields=fields)


CASE = SalesforceCase()
