"""Rate limits in each vendor's own shape, against the sandbox: the series comes out equal
to the series without the fault, or the source fails at once with one line saying why.

No test sleeps: the connectors get an injected `sleep` that records the waits.
"""

from __future__ import annotations

import pytest
from fault_sources import SOURCES, Sleeps, connector, fault_free, series

from okr_metrics.connectors.base import SourceError

ALL = list(SOURCES)
GITHUB, GA, HUBSPOT, SALESFORCE, JIRA = (
    SOURCES[name] for name in ("github", "google_analytics", "hubspot", "salesforce", "jira")
)


def one_line(error: SourceError, source: str) -> str:
    message = str(error)
    assert error.source == source and "\n" not in message
    return message


@pytest.mark.parametrize("name", ALL)
def test_a_429_with_retry_after_waits_as_told(sandbox, name):
    source = SOURCES[name]
    expected = fault_free(source, sandbox)
    sandbox.add_fault(path_prefix=source.path, status=429, retry_after=2, times=1)
    if name == "google_analytics":  # Google's own 429 names a quota: the concurrent one here
        sandbox.faults[-1].body = {
            "error": {"code": 429, "message": "Exhausted concurrent requests quota.",
                      "status": "RESOURCE_EXHAUSTED"}
        }  # fmt: skip
    sleeps = Sleeps()
    assert series(source, connector(source, sandbox, sleeps)) == expected
    assert sleeps == [2]


@pytest.mark.parametrize("name", ["github", "jira", "salesforce", "hubspot"])
def test_a_429_without_retry_after_backs_off(sandbox, name):
    source = SOURCES[name]
    expected = fault_free(source, sandbox)
    sandbox.add_fault(path_prefix=source.path, status=429, times=2)
    sleeps = Sleeps()
    assert series(source, connector(source, sandbox, sleeps)) == expected
    assert sleeps == [0.5, 1.0]


@pytest.mark.parametrize("status", [403, 429])
def test_github_primary_limit_waits_for_the_reset(sandbox, status):
    expected = fault_free(GITHUB, sandbox)
    sandbox.add_fault(path_prefix=GITHUB.path, status=status, ratelimit_reset_in=3, times=1)
    sleeps = Sleeps()
    assert series(GITHUB, connector(GITHUB, sandbox, sleeps)) == expected
    # Until x-ratelimit-reset (whole seconds, so 2 to 3 s from now), not the backoff.
    assert len(sleeps) == 1 and 1.0 <= sleeps[0] <= 3.0


@pytest.mark.parametrize("status", [403, 429])
def test_github_primary_limit_an_hour_away_fails_instead_of_sleeping(sandbox, status):
    sandbox.add_fault(path_prefix=GITHUB.path, status=status, ratelimit_reset_in=3600)
    sleeps = Sleeps()
    with pytest.raises(SourceError) as failure:
        series(GITHUB, connector(GITHUB, sandbox, sleeps, max_wait=300))
    message = one_line(failure.value, "github")
    assert f"rate limited (HTTP {status})" in message
    assert "more than max_wait 300 s" in message and "API rate limit exceeded" in message
    assert sleeps == [] and sandbox.request_count(GITHUB.path) == 1


SECONDARY = {
    "message": "You have exceeded a secondary rate limit. Please wait a few minutes before "
    "you try again. If you reach out to GitHub Support for help, please include the request "
    "ID 8C51:2E5A:1D0E1B4:1E8B5D1:6655A3C2.",
    "documentation_url": "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
    "status": "403",
}


def test_github_secondary_limit_waits_a_minute_then_reads_on(sandbox, monkeypatch):
    monkeypatch.setattr(GITHUB.connector_class, "page_size", 10)  # several pages
    expected = series(GITHUB, connector(GITHUB, sandbox, Sleeps()))
    pages = sandbox.request_count()
    sandbox.reset()
    assert pages > 1
    sandbox.add_fault(path_prefix="/repositories/", status=403, body=SECONDARY, times=1)
    sleeps = Sleeps()
    assert series(GITHUB, connector(GITHUB, sandbox, sleeps)) == expected
    # GitHub asks for at least a minute when no Retry-After comes with the limit.
    assert sleeps == [60.0]
    assert sandbox.request_count() == pages + 1


def test_github_secondary_limit_mid_listing_fails_the_source_never_a_short_series(
    sandbox, monkeypatch
):
    monkeypatch.setattr(GITHUB.connector_class, "page_size", 10)
    # Page 1 arrives; every later page (under /repositories/) meets the secondary limit.
    sandbox.add_fault(path_prefix="/repositories/", status=403, body=SECONDARY)
    sleeps = Sleeps()
    with pytest.raises(SourceError) as failure:
        series(GITHUB, connector(GITHUB, sandbox, sleeps, max_wait=30))
    message = one_line(failure.value, "github")
    assert "rate limited (HTTP 403)" in message and "more than max_wait 30 s" in message
    assert "secondary rate limit" in message
    assert sleeps == []


def test_ga_tokens_per_hour_fail_at_once_with_the_budget_seen(sandbox):
    built = connector(GA, sandbox, Sleeps())
    series(GA, built)  # a first report: its propertyQuota shows the budget
    quota = built._quotas["424242"].quota["tokensPerHour"]
    sandbox.add_fault(path_prefix=GA.path, status=429)
    sleeps = Sleeps()
    built.client.sleep = sleeps
    with pytest.raises(SourceError) as failure:
        series(GA, built)
    message = one_line(failure.value, "google_analytics")
    assert message.startswith(
        "google_analytics: the property's quota is used up: Exhausted property tokens per hour "
        "(HTTP 429 RESOURCE_EXHAUSTED); not retried"
    )
    remaining, consumed = quota["remaining"], quota.get("consumed", 0)
    assert f"tokensPerHour {remaining} left after {consumed} used" in message
    assert sleeps == [] and sandbox.request_count(GA.path) == 2


def test_hubspot_ten_secondly_limit_is_retried(sandbox):
    expected = fault_free(HUBSPOT, sandbox)
    sandbox.add_fault(path_prefix=HUBSPOT.path, status=429, times=3)
    sleeps = Sleeps()
    assert series(HUBSPOT, connector(HUBSPOT, sandbox, sleeps)) == expected
    assert sleeps == [0.5, 1.0, 2.0]


def test_hubspot_ten_secondly_limit_that_persists_names_the_policy(sandbox):
    sandbox.add_fault(path_prefix=HUBSPOT.path, status=429)
    with pytest.raises(SourceError) as failure:
        series(HUBSPOT, connector(HUBSPOT, sandbox, Sleeps()))
    message = one_line(failure.value, "hubspot")
    assert "gave up after 4 attempts" in message and "policy TEN_SECONDLY_ROLLING" in message


def test_hubspot_daily_limit_fails_at_once(sandbox):
    daily = {
        "status": "error",
        "message": "You have reached your daily limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": "a9e7b1c4-2f0d-4e39-9d3b-5c8f1e2a7b60",
        "policyName": "DAILY",
        "groupName": "publicapi:private-app-api-calls-daily:9001",
    }
    sandbox.add_fault(path_prefix=HUBSPOT.path, status=429, body=daily)
    sleeps = Sleeps()
    with pytest.raises(SourceError) as failure:
        series(HUBSPOT, connector(HUBSPOT, sandbox, sleeps))
    assert one_line(failure.value, "hubspot") == (
        "hubspot: the account's daily API limit is used up (HTTP 429, policy DAILY: You have "
        "reached your daily limit.); not retried: it resets at midnight in the account's time zone"
    )
    assert sleeps == [] and sandbox.request_count(HUBSPOT.path) == 1


def test_salesforce_request_limit_exceeded_is_not_retried(sandbox):
    sandbox.add_fault(path_prefix=SALESFORCE.path, status=403, times=None)
    sandbox.faults[-1].body = [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    sleeps = Sleeps()
    with pytest.raises(SourceError) as failure:
        series(SALESFORCE, connector(SALESFORCE, sandbox, sleeps))
    assert one_line(failure.value, "salesforce") == (
        "salesforce: the org's API request limit is used up (HTTP 403, REQUEST_LIMIT_EXCEEDED: "
        "TotalRequests Limit exceeded.); not retried: the limit frees up over the next 24 hours"
    )
    assert sleeps == [] and sandbox.request_count(SALESFORCE.path) == 1


@pytest.mark.parametrize("name", ALL)
def test_a_wait_past_max_wait_fails_the_source_instead_of_sleeping(sandbox, name):
    source = SOURCES[name]
    sandbox.add_fault(path_prefix=source.path, status=429, retry_after=3600)
    sleeps = Sleeps()
    with pytest.raises(SourceError) as failure:
        series(source, connector(source, sandbox, sleeps, max_wait=120))
    message = one_line(failure.value, name)
    assert "the API asks to wait 3600 s, more than max_wait 120 s" in message
    assert sleeps == [] and sandbox.request_count(source.path) == 1
