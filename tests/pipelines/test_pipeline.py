"""End to end: YAML definitions -> GitHub (the sandbox) -> Dagster -> the warehouse.

A tiny repository with hand-placed pull requests, issues and releases is scored for
2026-10-01..2026-10-05 through the real Dagster job; the expected numbers are worked
out by hand in the comments. Each test runs with the warehouse on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import shutil
import textwrap
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from okr_metrics.pipelines.cli.main import EXIT_OK, EXIT_SOURCE_FAILED, run_window
from okr_metrics.warehouse.store import Warehouse

DEFINITIONS = """\
quarter: 2026-Q4
objectives:
  - id: ship
    title: Ship steadily
    owner: eng
    key_results:
      - id: merged-prs
        title: 10 pull requests merged
        type: increase
        start: 0
        target: 10
        metric: {source: github, repo: acme/tiny, count: merged_pull_requests}
      - id: bugs-opened
        title: Bugs opened a day from 3 to 1
        type: decrease
        start: 3
        target: 1
        metric: {source: github, repo: acme/tiny, count: opened_issues, labels: [bug], aggregate: mean}
      - id: release
        title: First release out
        type: milestone
        metric: {source: github, repo: acme/tiny, count: releases}
  - id: support
    title: Support keeps up
    owner: support
    key_results:
      - id: tickets
        title: 100 tickets created
        type: increase
        start: 0
        target: 100
        metric: {source: jira, jql: project = SUP, count: created}
      - id: prs-daily
        title: At least one merge a day
        type: maintain_above
        target: 1
        metric: {source: github, repo: acme/tiny, count: merged_pull_requests, aggregate: latest}
"""

PULLS = [
    {"created_at": "2026-09-28T09:00:00Z", "merged_at": "2026-10-02T10:00:00Z"},
    {"created_at": "2026-10-01T09:00:00Z", "merged_at": "2026-10-02T15:00:00Z"},
    {"created_at": "2026-10-02T09:00:00Z", "merged_at": "2026-10-03T09:00:00Z"},
    # Closed without merging: never counted.
    {"created_at": "2026-10-03T09:00:00Z", "closed_at": "2026-10-04T09:00:00Z"},
    {"created_at": "2026-10-04T09:00:00Z", "merged_at": "2026-10-05T23:59:59Z"},
    # Merged after the window: must not leak into any row up to 2026-10-05.
    {"created_at": "2026-10-05T09:00:00Z", "merged_at": "2026-10-06T01:00:00Z"},
]
ISSUES = [
    {"created_at": "2026-10-01T08:00:00Z", "labels": ["bug"]},
    {"created_at": "2026-10-01T09:00:00Z", "labels": ["bug", "performance"]},
    {"created_at": "2026-10-03T12:00:00Z", "labels": ["enhancement"]},
    {"created_at": "2026-10-04T12:00:00Z", "labels": ["bug"], "closed_at": "2026-10-05T10:00:00Z"},
]
RELEASES = [
    {"created_at": "2026-10-02T08:00:00Z", "published_at": "2026-10-03T10:00:00Z"},
    {"created_at": "2026-10-01T08:00:00Z", "published_at": None},  # a draft
]

FIRST, LAST = date(2026, 10, 1), date(2026, 10, 5)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def pipeline(tmp_path, sandbox, monkeypatch, warehouse_url):
    """Environment for in-process runs: sandbox GitHub, scratch warehouse and Dagster home.

    Every test runs twice: with the warehouse on SQLite and on PostgreSQL (`warehouse_url`).
    """
    defs = tmp_path / "okr_defs"
    defs.mkdir()
    (defs / "2026-Q4.yaml").write_text(textwrap.dedent(DEFINITIONS), encoding="utf-8")
    sandbox.data.github.set_repo("acme/tiny", pulls=PULLS, issues=ISSUES, releases=RELEASES)
    url = warehouse_url
    monkeypatch.setenv("OKR_DEFS", str(defs))
    monkeypatch.setenv("OKR_WAREHOUSE_URL", url)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.setenv("GITHUB_API_URL", sandbox.url)
    monkeypatch.setenv("GITHUB_TOKEN", "test-token-123")
    monkeypatch.setenv("OKR_HTTP_BACKOFF_SECONDS", "0.01")
    for name in ("JIRA_BASE_URL", "JIRA_EMAIL", "JIRA_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "dagster").mkdir()
    shutil.copyfile(REPO / "dagster.yaml", tmp_path / "dagster" / "dagster.yaml")
    return Warehouse(url)


def kr_table(warehouse: Warehouse) -> dict[tuple[str, date], dict]:
    frame = warehouse.read_kr_scores()
    return {(row["kr_id"], row["as_of"]): row for row in frame.to_dict("records")}


def test_materializes_a_range_and_scores_by_hand(pipeline):
    outcome = run_window(FIRST, LAST)
    assert outcome.success and outcome.exit_code == EXIT_OK
    assert outcome.sources == {
        "github": "ok",
        "jira": "skipped: JIRA_BASE_URL, JIRA_API_TOKEN, JIRA_EMAIL not set",
    }

    rows = kr_table(pipeline)
    assert len(rows) == 5 * 5  # five KRs, five days
    assert {row["run_id"] for row in rows.values()} == {outcome.run_id}

    # merged PRs a day: 10-01 0, 10-02 2, 10-03 1, 10-04 0 (closed unmerged), 10-05 1 (23:59:59Z).
    merged = [rows["merged-prs", date(2026, 10, d)] for d in range(1, 6)]
    assert [r["value"] for r in merged] == [0, 2, 3, 3, 4]  # running sum
    assert [r["progress"] for r in merged] == pytest.approx([0, 0.2, 0.3, 0.3, 0.4])
    assert [r["status"] for r in merged] == ["on_track"] * 5  # first 7 days: grace
    assert merged[-1]["expected_progress"] == pytest.approx(5 / 92)
    assert merged[-1]["forecast_method"] == "run_rate"
    assert merged[-1]["forecast_value"] == pytest.approx(4 / 5 * 92)  # 73.6
    assert merged[-1]["forecast_score"] == 1.0
    assert not any(r["stale"] for r in merged)
    assert merged[-1]["last_observed"] == LAST

    # bug issues opened a day: 2, 0, 0, 1, 0; mean as of each day: 2, 1, 2/3, 3/4, 3/5.
    bugs = [rows["bugs-opened", date(2026, 10, d)] for d in range(1, 6)]
    assert [r["value"] for r in bugs] == pytest.approx([2, 1, 2 / 3, 0.75, 0.6])
    # decrease 3 -> 1: progress = (value - 3) / (1 - 3); as of 10-05 (0.6 - 3) / -2 = 1.2.
    assert bugs[0]["progress"] == pytest.approx(0.5)
    assert bugs[-1]["progress"] == pytest.approx(1.2)
    assert bugs[-1]["score"] == 1.0 and bugs[-1]["status"] == "achieved"

    # The draft never counts; the release is published 10-03.
    release = [rows["release", date(2026, 10, d)] for d in range(1, 6)]
    assert [r["value"] for r in release] == [0, 0, 1, 1, 1]
    assert [r["status"] for r in release] == [
        "on_track",
        "on_track",
        "achieved",
        "achieved",
        "achieved",
    ]

    # Days with at least one merge among 0, 2, 1, 0, 1: 3 of 5; value is the latest day's 1.
    daily = rows["prs-daily", LAST]
    assert daily["value"] == 1 and daily["score"] == pytest.approx(0.6)
    assert daily["status"] == "off_track"

    # Jira has no credentials: no data, flagged stale, never zero.
    tickets = rows["tickets", LAST]
    assert tickets["status"] == "no_data" and pd.isna(tickets["value"]) and tickets["stale"]

    objectives = pipeline.read_objective_scores(LAST, LAST).set_index("objective_id")
    # ship: mean of 0.4, 1.0, 1.0 = 0.8; worst status on_track.
    assert objectives.loc["ship", "score"] == pytest.approx(0.8)
    assert objectives.loc["ship", "coverage"] == 1.0
    assert objectives.loc["ship", "status"] == "on_track"
    # support: only prs-daily has data (0.6, off_track); half the weight has data.
    assert objectives.loc["support", "score"] == pytest.approx(0.6)
    assert objectives.loc["support", "coverage"] == 0.5
    assert objectives.loc["support", "status"] == "off_track"


def test_reruns_replace_rows_and_nightly_matches_the_backfill(pipeline, sandbox):
    first = run_window(FIRST, LAST)
    before = kr_table(pipeline)
    assert pipeline.count_rows("metric_observations") == 3 * 5  # three GitHub series

    # The nightly run for 10-05 re-pulls 10-03..10-05 only.
    nightly = run_window(date(2026, 10, 3), LAST)
    after = kr_table(pipeline)
    assert len(after) == len(before) == 25
    assert pipeline.count_rows("objective_scores") == 10
    assert pipeline.count_rows("metric_observations") == 15
    for key, row in after.items():
        expected_run = nightly.run_id if key[1] >= date(2026, 10, 3) else first.run_id
        assert row["run_id"] == expected_run
        for column in ("value", "progress", "score", "status", "stale", "forecast_value"):
            same = row[column] == before[key][column]
            assert same or (pd.isna(row[column]) and pd.isna(before[key][column])), (key, column)
    # One windowed query per series: each is a single page for five days.
    assert sandbox.request_count("/repos/acme/tiny/") == 3 * 2


def test_a_failing_source_keeps_the_last_value_flagged_stale(pipeline, sandbox):
    run_window(FIRST, LAST)
    sandbox.add_fault(path_prefix="/repos/acme/tiny/", status=500)
    outcome = run_window(date(2026, 10, 6), date(2026, 10, 6))
    assert outcome.success
    assert outcome.exit_code == EXIT_SOURCE_FAILED
    assert outcome.sources["github"].startswith("failed: ")
    assert "test-token-123" not in outcome.sources["github"]
    merged = kr_table(pipeline)["merged-prs", date(2026, 10, 6)]
    assert merged["stale"] and merged["value"] == 4  # carried, not zeroed
    assert merged["last_observed"] == LAST
