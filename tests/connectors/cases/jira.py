"""The Jira connector's contract case: issues created per day in one sandbox project."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from okr_metrics.connectors.base import SourceSettings
from okr_metrics.connectors.jira.client import JiraConnector
from okr_metrics.connectors.jira.params import JiraMetric


class JiraCase:
    source = "jira"
    http = True
    path_prefix = "/rest/api/3/search/jql"
    secret = "contract-secret-token"
    user = "contract@example.com"
    window = (date(2026, 10, 1), date(2026, 10, 10))
    project = "CTR"

    def settings(self, sandbox) -> SourceSettings:
        return SourceSettings(base_url=sandbox.url, token=self.secret, user=self.user)

    def metric(self) -> JiraMetric:
        return JiraMetric(source="jira", jql=f"project = {self.project}", count="created")

    def seed(self, sandbox, records_per_day: int) -> dict[date, float]:
        start, end = self.window
        days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
        spacing = timedelta(hours=23) / max(records_per_day, 1)
        issues = [
            {
                "created": at(day) + n * spacing,
                "resolutiondate": at(day) + n * spacing + timedelta(hours=1),
            }
            for day in days
            for n in range(records_per_day)
        ]
        # Never counted: created the day before the window and the day after it (the
        # connector's query reaches beyond the window; the client keeps the exact days).
        issues.append({"created": at(start) - timedelta(hours=1)})
        issues.append({"created": at(end) + timedelta(days=1)})
        sandbox.data.jira.set_issues(self.project, issues)
        return {day: float(records_per_day) for day in days}

    def seed_empty(self, sandbox) -> None:
        sandbox.data.jira.set_issues(self.project, [])

    def page_size(self, sandbox, size: int) -> None:
        # Sent as `maxResults`; the suite puts the class attribute back after each test.
        JiraConnector.page_size = size


def at(day: date) -> datetime:
    """00:30 UTC on `day`."""
    return datetime.combine(day, time(0, 30), tzinfo=timezone.utc)


CASE = JiraCase()
