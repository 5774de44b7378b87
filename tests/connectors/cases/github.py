"""The GitHub connector's contract case: merged pull requests of one sandbox repository."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from okr_metrics.connectors.base import SourceSettings
from okr_metrics.connectors.github.client import GitHubConnector
from okr_metrics.connectors.github.params import GitHubMetric


class GitHubCase:
    source = "github"
    http = True
    # GitHub's `Link` headers send later pages to /repositories/{id}/pulls: fault every path.
    path_prefix = "/"
    secret = "contract-secret-token"
    window = (date(2026, 10, 1), date(2026, 10, 10))
    repo = "acme/contract"

    def settings(self, sandbox) -> SourceSettings:
        return SourceSettings(base_url=sandbox.url, token=self.secret)

    def metric(self) -> GitHubMetric:
        return GitHubMetric(source="github", repo=self.repo, count="merged_pull_requests")

    def seed(self, sandbox, records_per_day: int) -> dict[date, float]:
        start, end = self.window
        days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
        spacing = timedelta(hours=23) / max(records_per_day, 1)
        pulls = [
            {
                "created_at": at(day) - timedelta(days=1),
                "merged_at": at(day) + n * spacing,
            }
            for day in days
            for n in range(records_per_day)
        ]
        # Never counted: merged the day before the window; closed without merging.
        pulls.append(
            {
                "created_at": at(start) - timedelta(days=3),
                "merged_at": at(start) - timedelta(hours=2),
            }
        )
        pulls.append({"created_at": at(start), "closed_at": at(start) + timedelta(hours=5)})
        sandbox.data.github.set_repo(self.repo, pulls=pulls)
        return {day: float(records_per_day) for day in days}

    def seed_empty(self, sandbox) -> None:
        sandbox.data.github.set_repo(self.repo)

    def page_size(self, sandbox, size: int) -> None:
        # The suite puts the connector's class attributes back after each test.
        GitHubConnector.page_size = size


def at(day: date) -> datetime:
    """00:30 UTC on `day`."""
    return datetime.combine(day, time(0, 30), tzinfo=timezone.utc)


CASE = GitHubCase()
