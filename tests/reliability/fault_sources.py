"""The five API sources aimed at the sandbox, one series each: what the fault tests share.

`SOURCES` names, per source, the connector, the variables that point it at the sandbox,
a metric the sandbox has data for and the path its requests take (where a fault is
injected). `connector(source, sandbox, sleeps)` builds the connector the way the Dagster
assets build it, with a fixed backoff (0.5 s, 1 s, 2 s...) and an injected `sleep` that
records the waits instead of waiting; `series(...)` fetches the metric's window. A fault
test compares the series of a run with a fault against the same series without one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from okr_metrics.connectors.base import Connector, SeriesRequest, SourceSettings
from okr_metrics.connectors.github.client import GitHubConnector
from okr_metrics.connectors.github.params import GitHubMetric
from okr_metrics.connectors.google_analytics.client import GoogleAnalyticsConnector
from okr_metrics.connectors.google_analytics.params import GoogleAnalyticsMetric
from okr_metrics.connectors.hubspot.client import HubSpotConnector
from okr_metrics.connectors.hubspot.params import HubSpotMetric
from okr_metrics.connectors.jira.client import JiraConnector
from okr_metrics.connectors.jira.params import JiraMetric
from okr_metrics.connectors.params import MetricParams
from okr_metrics.connectors.salesforce.client import SalesforceConnector
from okr_metrics.connectors.salesforce.params import SalesforceMetric
from okr_metrics.pipelines.settings import HttpSettings

FIRST, LAST = date(2026, 10, 1), date(2026, 10, 14)
# A few records a day, where the sandbox would generate two years of them: its searches
# through those take up to half a second, longer than the tests' read timeout.
HUBSPOT_OBJECT = "2-4242"
HUBSPOT_DEALS = [
    {
        "dealstage": "closedwon" if n % 3 else "closedlost",
        "closedate": datetime(2026, 9, 28, 7, tzinfo=timezone.utc) + timedelta(hours=5 * n),
        "amount": str(100 + 10 * n),
    }
    for n in range(100)
]
JIRA_ISSUES = [
    {
        "created": datetime(2026, 9, 28, 3, tzinfo=timezone.utc) + timedelta(hours=5 * n),
        "resolutiondate": datetime(2026, 9, 29, 9, tzinfo=timezone.utc) + timedelta(hours=5 * n),
    }
    for n in range(100)
]


class Sleeps(list):
    """An injected `sleep` that records the waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@dataclass(frozen=True)
class SandboxSource:
    name: str
    connector_class: type[Connector]
    env: dict[str, str]  # variable -> value; `{url}` is the sandbox's base URL
    metric: MetricParams
    path: str  # the prefix of the paths its requests take

    def settings(self, url: str) -> SourceSettings:
        environ = {name: value.format(url=url) for name, value in self.env.items()}
        return SourceSettings.from_env(self.connector_class.env, environ)


SOURCES = {
    source.name: source
    for source in (
        SandboxSource(
            "github",
            GitHubConnector,
            {"GITHUB_API_URL": "{url}", "GITHUB_TOKEN": "ghp_faultsToken"},
            GitHubMetric(source="github", repo="faults/sample", count="merged_pull_requests"),
            "/repos/faults/sample/",
        ),
        SandboxSource(
            "jira",
            JiraConnector,
            {"JIRA_BASE_URL": "{url}", "JIRA_EMAIL": "ops@example.com", "JIRA_API_TOKEN": "jt"},
            JiraMetric(source="jira", jql="project = FLT", count="created"),
            "/rest/api/3/search/jql",
        ),
        SandboxSource(
            "google_analytics",
            GoogleAnalyticsConnector,
            {"GA_API_URL": "{url}", "GA_ACCESS_TOKEN": "ya29.faults"},
            GoogleAnalyticsMetric(
                source="google_analytics", property="424242", metric="activeUsers"
            ),
            "/v1beta/properties/",
        ),
        SandboxSource(
            "salesforce",
            SalesforceConnector,
            {"SALESFORCE_INSTANCE_URL": "{url}", "SALESFORCE_ACCESS_TOKEN": "00Dfaults"},
            SalesforceMetric(source="salesforce", where="StageName = 'Closed Won'"),
            "/services/data/",
        ),
        SandboxSource(
            "hubspot",
            HubSpotConnector,
            {"HUBSPOT_API_URL": "{url}", "HUBSPOT_ACCESS_TOKEN": "pat-na1-faults"},
            HubSpotMetric(
                source="hubspot",
                object=HUBSPOT_OBJECT,
                filters=({"property": "dealstage", "operator": "EQ", "value": "closedwon"},),
            ),
            "/crm/v3/objects/",
        ),
    )
}


def connector(source: SandboxSource, sandbox: Any, sleeps: Sleeps, **options: Any) -> Connector:
    """The source's connector on the sandbox: backoff 0.5 s doubling, no jitter, no real sleep."""
    if source.name == "hubspot":
        sandbox.data.hubspot.set_records(HUBSPOT_OBJECT, HUBSPOT_DEALS)
    if source.name == "jira":
        sandbox.data.jira.set_issues("FLT", JIRA_ISSUES)
    # What OKR_HTTP_MAX_ATTEMPTS, OKR_HTTP_BACKOFF_SECONDS and OKR_HTTP_MAX_WAIT_SECONDS give.
    http = HttpSettings(max_attempts=4, backoff_seconds=0.5, max_wait_seconds=300.0)
    options = {**http.client_options(), "sleep": sleeps, "jitter": lambda: 1.0, **options}
    return source.connector_class.from_settings(source.settings(sandbox.url), **options)


def series(
    source: SandboxSource,
    built: Connector,
    first: date = FIRST,
    last: date = LAST,
    timezone: str = "UTC",
) -> dict[date, float]:
    frame = built.daily_series(SeriesRequest.of(source.metric, first, last, timezone))
    return dict(zip(frame["date"], frame["value"], strict=True))


def fault_free(source: SandboxSource, sandbox: Any) -> dict[date, float]:
    """The series without any fault (the sandbox's request log is cleared after)."""
    found = series(source, connector(source, sandbox, Sleeps()))
    sandbox.reset()
    return found
