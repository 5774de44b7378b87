"""Bad data through the real pipeline: quarantined, never scored, and never blocking the rest.

The GitHub and GA4 connectors are real clients against the sandbox; to feed the
pipeline values no real API would send (negative counts, a share of 1.7, duplicated
dates, a date outside the window, garbage strings) their `daily_series` is scripted
for a few named series, and Jira answers 500 to every request.
"""

from __future__ import annotations

import shutil
import textwrap
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetCheckSeverity, AssetKey, DagsterInstance

from okr_metrics.connectors.base import Connector
from okr_metrics.connectors.github.client import GitHubConnector
from okr_metrics.connectors.google_analytics.client import GoogleAnalyticsConnector
from okr_metrics.pipelines.cli.main import EXIT_SOURCE_FAILED, run_window
from okr_metrics.pipelines.cli.scorecard import render_scorecard
from okr_metrics.pipelines.orchestration.definitions import JOB_NAME, build_definitions
from okr_metrics.pipelines.orchestration.schedules import partition_range_tags
from okr_metrics.warehouse.store import Warehouse

REPO = Path(__file__).resolve().parents[2]
FIRST, GOOD_LAST, BAD_DAY = date(2026, 10, 1), date(2026, 10, 5), date(2026, 10, 6)

DEFINITIONS = """\
quarter: 2026-Q4
objectives:
  - id: data
    title: Data quality
    owner: data
    key_results:
      - id: clean
        title: Clean counts
        type: increase
        start: 0
        target: 100
        metric: {source: github, repo: acme/clean, count: merged_pull_requests}
      - id: negative
        title: A count that goes negative
        type: increase
        start: 0
        target: 100
        metric: {source: github, repo: acme/negative, count: merged_pull_requests}
      - id: messy
        title: Duplicates, a stray date and garbage
        type: increase
        start: 0
        target: 100
        metric: {source: github, repo: acme/messy, count: merged_pull_requests}
      - id: engagement
        title: Engagement rate
        type: maintain_above
        target: 0.5
        metric: {source: google_analytics, property: "42", metric: engagementRate, aggregate: latest}
  - id: support
    title: Support
    owner: support
    key_results:
      - id: tickets
        title: Tickets created
        type: increase
        start: 0
        target: 100
        metric: {source: jira, jql: project = SUP, count: created}
      - id: bounded
        title: A declared bound
        type: increase
        start: 0
        target: 100
        metric:
          source: github
          repo: acme/bounded
          count: merged_pull_requests
          expect: {max: 10}
"""


def days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def scripted(bad: bool):
    """daily_series for the scripted repos/properties: 2 a day; bad values on BAD_DAY."""

    def github(self, request):
        metric, start, end = request.metric, request.start, request.end
        good = {d: 2.0 for d in days(start, end)}
        if not bad or BAD_DAY not in good:
            return pd.DataFrame({"date": list(good), "value": list(good.values())})
        rows = [(d, v) for d, v in good.items() if d != BAD_DAY]
        if metric.repo == "acme/negative":
            rows.append((BAD_DAY, -2.0))
        elif metric.repo == "acme/messy":
            rows += [(BAD_DAY, 2.0), (BAD_DAY, 3.0), (date(2026, 11, 30), 1.0), ("n/a", "abc")]
        elif metric.repo == "acme/bounded":
            rows.append((BAD_DAY, 11.0))
        else:
            rows.append((BAD_DAY, 2.0))
        return pd.DataFrame(rows, columns=["date", "value"])

    def google_analytics(self, request):
        start, end = request.start, request.end
        values = {d: 0.6 for d in days(start, end)}
        if bad and BAD_DAY in values:
            values[BAD_DAY] = 1.7
        return pd.DataFrame({"date": list(values), "value": list(values.values())})

    return github, google_analytics


@pytest.fixture
def quarantine(tmp_path, sandbox, monkeypatch, warehouse_url):
    defs = tmp_path / "okr_defs"
    defs.mkdir()
    (defs / "2026-Q4.yaml").write_text(textwrap.dedent(DEFINITIONS), encoding="utf-8")
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    for name, value in {
        "OKR_DEFS": str(defs),
        "OKR_WAREHOUSE_URL": warehouse_url,
        "DAGSTER_HOME": str(home),
        "GITHUB_API_URL": sandbox.url,
        "GITHUB_TOKEN": "quarantine-token",
        "GA_API_URL": sandbox.url,
        "GA_ACCESS_TOKEN": "quarantine-token",
        "JIRA_BASE_URL": sandbox.url,
        "JIRA_EMAIL": "qa@example.com",
        "JIRA_API_TOKEN": "quarantine-token",
        "OKR_HTTP_BACKOFF_SECONDS": "0.001",
        "OKR_HTTP_MAX_ATTEMPTS": "3",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)

    def script(bad: bool) -> None:
        github, google_analytics = scripted(bad)
        for connector, answer in (
            (GitHubConnector, github),
            (GoogleAnalyticsConnector, google_analytics),
        ):
            monkeypatch.setattr(connector, "daily_series", answer)
            # The base class's `fetch_shared` asks `daily_series` for each series of a query.
            monkeypatch.setattr(connector, "fetch_shared", Connector.fetch_shared)

    return script, Warehouse(warehouse_url)


@pytest.fixture
def no_support_tickets(sandbox):
    """The sandbox's SUP project without issues for the test, its own issues again after:
    the sandbox is shared by the tests of a worker."""
    sandbox.data.jira.set_issues("SUP", [])
    yield
    sandbox.data.jira.restore("SUP")


def rows_on(warehouse: Warehouse, day: date) -> dict[str, dict]:
    frame = warehouse.read_kr_scores(day, day)
    return {row["kr_id"]: row for row in frame.to_dict("records")}


def test_bad_rows_are_quarantined_and_the_rest_scores_as_before(
    quarantine, sandbox, no_support_tickets
):
    script, warehouse = quarantine
    script(bad=False)
    assert run_window(FIRST, GOOD_LAST).success
    good_day = rows_on(warehouse, GOOD_LAST)
    assert good_day["clean"]["value"] == 10  # 2 a day for five days

    # BAD_DAY: scripted bad values, and Jira answering 500 to everything.
    script(bad=True)
    sandbox.add_fault(path_prefix="/rest/api/3/", status=500)
    outcome = run_window(BAD_DAY, BAD_DAY)
    assert outcome.success, outcome.failure
    assert outcome.exit_code == EXIT_SOURCE_FAILED
    assert outcome.sources["jira"].startswith("failed: ")
    assert "quarantine-token" not in outcome.sources["jira"]
    assert outcome.rejected == {"github": 6, "google_analytics": 1}

    bad_day = rows_on(warehouse, BAD_DAY)
    # Every KR whose inputs are fine is scored exactly as a clean run would: 12 by day 6.
    assert bad_day["clean"]["value"] == 12 and not bad_day["clean"]["stale"]
    # The affected KRs keep their last good value, flagged stale; never a zero or partial sum.
    for kr_id in ("negative", "messy", "bounded"):
        assert bad_day[kr_id]["value"] == 10, kr_id
        assert bad_day[kr_id]["stale"] and bad_day[kr_id]["last_observed"] == GOOD_LAST
    assert bad_day["engagement"]["value"] == pytest.approx(0.6)
    assert bad_day["engagement"]["stale"]
    assert bad_day["tickets"]["stale"] and bad_day["tickets"]["value"] == 0

    rejected = warehouse.read_rejected()
    reasons = set(zip(rejected["date"], rejected["raw_value"], rejected["reason"], strict=True))
    assert reasons == {
        ("2026-10-06", "-2.0", "value >= 0 (a count): got '-2.0' on 2026-10-06"),
        ("2026-10-06", "2.0", "one row per date: got '2.0' on 2026-10-06"),
        ("2026-10-06", "3.0", "one row per date: got '3.0' on 2026-10-06"),
        ("2026-11-30", "1.0", "date within 2026-10-06..2026-10-06: got '1.0' on 2026-11-30"),
        ("n/a", "abc", "date is a calendar date: got 'abc' on n/a"),
        (
            "2026-10-06",
            "11.0",
            "expect_column_values_to_be_between(max_value=10.0): got '11.0' on 2026-10-06",
        ),
        ("2026-10-06", "1.7", "0 <= value <= 1 (a share): got '1.7' on 2026-10-06"),
    }
    assert set(rejected["run_id"]) == {outcome.run_id}

    # The scorecard says which sources failed and why.
    card = render_scorecard(warehouse)
    footer = card.split("Sources (newest run):")[1].splitlines()
    assert "  github: ok (6 rows failed validation) [2026-10-06..2026-10-06]" in footer
    (jira,) = [line for line in footer if line.startswith("  jira: failed: ")]
    assert "HTTP 500" in jira and "quarantine-token" not in card
    assert "stale (last data 2026-10-05)" in card

    # The same run again: the rejections are replaced, not duplicated.
    run_window(BAD_DAY, BAD_DAY)
    assert len(warehouse.read_rejected()) == len(rejected)


def test_the_dagster_check_shows_the_failure(quarantine, sandbox, no_support_tickets):
    script, _ = quarantine
    script(bad=True)
    job = build_definitions().resolve_job_def(JOB_NAME)
    with DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            instance=instance, tags=partition_range_tags(BAD_DAY, BAD_DAY), raise_on_error=False
        )
    assert result.success
    checks = {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}
    github = checks["github", "rows_pass_expectations"]
    assert not github.passed
    # A warning, as the README and the check's description say: never blocking.
    assert github.severity == AssetCheckSeverity.WARN
    spec = next(
        spec
        for spec in build_definitions()
        .get_assets_def(AssetKey(["observations", "github"]))
        .check_specs
        if spec.name == "rows_pass_expectations"
    )
    assert not spec.blocking and "never blocking" in spec.description
    assert github.metadata["rejected_rows"].value == 6
    failed = github.metadata["failed"].value
    assert failed["github:count=merged_pull_requests;repo=acme/negative"] == [
        {"expectation": "value >= 0 (a count)", "unexpected": 1, "examples": ["2026-10-06: '-2.0'"]}
    ]
    assert checks["jira", "rows_pass_expectations"].passed
    assert checks["jira", "fetched_without_errors"].passed
    assert checks["github", "fetched_without_errors"].passed
    # Scoring ran although a check failed.
    materialized = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert {"kr_scores", "objective_scores"} <= materialized
