"""The `okr` command: runs, backfills, scorecards, exit codes, and `okr demo` in a subprocess."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from dagster import build_schedule_context

from okr_metrics.connectors.registry import connected_sources
from okr_metrics.pipelines.cli.main import EXIT_OK, EXIT_SOURCE_FAILED, EXIT_USAGE, main
from okr_metrics.pipelines.definitions import load_definitions
from okr_metrics.pipelines.orchestration.definitions import JOB_NAME, build_definitions
from okr_metrics.pipelines.settings import Settings
from okr_metrics.pipelines.vocabulary.quarters import Quarter
from okr_metrics.warehouse.store import Warehouse

REPO = Path(__file__).resolve().parents[2]
# Every registered source's variables, from its connector's `env` (tests/conftest.py also
# clears them before every test).
SOURCE_ENV = tuple(
    name for source in connected_sources().values() for name in source.connector_class().env.names()
)


@pytest.fixture
def workspace(tmp_path, sandbox, monkeypatch, warehouse_url) -> Warehouse:
    """The sample definitions, GitHub on the sandbox, a scratch warehouse and Dagster home.

    The warehouse is SQLite or PostgreSQL: each test using it runs on both (`warehouse_url`).
    """
    for name in SOURCE_ENV:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    url = warehouse_url
    monkeypatch.setenv("OKR_DEFS", str(REPO / "okr_defs"))
    monkeypatch.setenv("OKR_WAREHOUSE_URL", url)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("GITHUB_API_URL", sandbox.url)
    monkeypatch.setenv("GITHUB_TOKEN", "sandbox-token")
    return Warehouse(url)


def kr_count(quarter: Quarter) -> int:
    return sum(1 for _ in load_definitions(REPO / "okr_defs").for_quarter(quarter).key_results)


def test_backfill_a_quarter_in_one_run(workspace, caplog):
    caplog.set_level("INFO", logger="okr_metrics")
    assert main(["backfill", "2026-Q3"]) == EXIT_OK
    scores = workspace.read_kr_scores(quarter="2026-Q3")
    assert scores["as_of"].nunique() == 92
    assert scores["as_of"].min() == date(2026, 7, 1) and scores["as_of"].max() == date(2026, 9, 30)
    assert len(scores) == 92 * kr_count(Quarter(2026, 3))
    assert scores["run_id"].nunique() == 1
    github = scores[scores["kr_id"] == "dashboard-merged-prs"]
    assert github["value"].notna().all() and not github["stale"].any()
    jira = scores[scores["kr_id"] == "support-tickets-created"]
    assert (jira["status"] == "no_data").all() and jira["stale"].all()
    assert "source github: ok" in caplog.messages
    assert (
        "source jira: skipped: JIRA_BASE_URL, JIRA_API_TOKEN, JIRA_EMAIL not set" in caplog.messages
    )


def test_run_twice_leaves_row_counts_unchanged(workspace):
    assert main(["run", "--date", "2026-10-20"]) == EXIT_OK
    counts = [
        workspace.count_rows(t) for t in ("kr_scores", "objective_scores", "metric_observations")
    ]
    assert counts[0] == 3 * kr_count(Quarter(2026, 4))  # 10-18..10-20, the trailing window
    assert main(["run", "--date", "2026-10-20"]) == EXIT_OK
    again = [
        workspace.count_rows(t) for t in ("kr_scores", "objective_scores", "metric_observations")
    ]
    assert again == counts


def test_scorecard_formats(workspace, capsys):
    assert main(["run", "--date", "2026-10-20", "--trailing-days", "1"]) == EXIT_OK
    capsys.readouterr()
    assert main(["scorecard", "--format", "json"]) == EXIT_OK
    card = json.loads(capsys.readouterr().out)
    assert card["quarter"] == "2026-Q4" and card["as_of"] == "2026-10-20"
    q4 = load_definitions(REPO / "okr_defs").for_quarter(Quarter(2026, 4))
    assert [o["objective_id"] for o in card["objectives"]] == [o.id for o in q4.objectives]
    assert main(["scorecard", "--format", "csv", "--as-of", "2026-10-20"]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("quarter,as_of,objective_id,kr_id")
    assert len(lines) == 1 + kr_count(Quarter(2026, 4))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["backfill", "2025-Q2"], "no definitions for 2025-Q2 (expected"),
        (["backfill", "--from", "2026-10-05", "--to", "2026-10-01"], "is after --to"),
        (["backfill"], "give a QUARTER"),
        (["run", "--date", "2999-01-01"], "the newest day that can be scored"),
        (["scorecard"], "no scores in the warehouse"),
    ],
)
def test_usage_errors_exit_2_with_one_line(workspace, capsys, argv, message):
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_nightly_schedule_targets_yesterday_and_the_trailing_days(monkeypatch):
    monkeypatch.delenv("OKR_TRAILING_DAYS", raising=False)
    defs = build_definitions()
    schedule = defs.resolve_schedule_def("nightly")
    assert schedule.cron_schedule == "0 2 * * *" and schedule.execution_timezone == "UTC"
    assert schedule.job_name == JOB_NAME
    context = build_schedule_context(
        scheduled_execution_time=datetime(2026, 11, 3, 2, 0, tzinfo=UTC)
    )
    (request,) = schedule.evaluate_tick(context).run_requests
    assert request.tags["dagster/asset_partition_range_start"] == "2026-10-31"
    assert request.tags["dagster/asset_partition_range_end"] == "2026-11-02"
    # The trailing days are read once, with the other settings, when the code location loads.
    one_day = build_definitions(Settings.from_env({"OKR_TRAILING_DAYS": "1"}))
    (request,) = one_day.resolve_schedule_def("nightly").evaluate_tick(context).run_requests
    assert request.tags["dagster/asset_partition_range_start"] == "2026-11-02"


def test_dagster_definitions_validate(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    shutil.copyfile(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_okr_demo_subprocess(tmp_path, warehouse_url):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in SOURCE_ENV and key not in ("OKR_DEFS", "DAGSTER_HOME")
    }
    env["OKR_WAREHOUSE_URL"] = warehouse_url
    result = subprocess.run(
        [str(Path(sys.executable).parent / "okr"), "demo"],
        cwd=REPO,
        env={
            **env,
            "DAGSTER_HOME": str(tmp_path / "dagster"),
            "OKR_REPORTS_DIR": str(tmp_path / "reports"),
        },
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    definitions = load_definitions(REPO / "okr_defs")
    quarter = Quarter.containing(yesterday)
    if definitions.for_quarter(quarter) is None:
        quarter = max(q for q in definitions.files if q.start <= yesterday)
    okr_file = definitions.for_quarter(quarter)
    for objective in okr_file.objectives:
        assert f"{objective.id}: {objective.title}" in result.stdout
        for key_result in objective.key_results:
            assert f"  {key_result.id} " in result.stdout
    # The okr/report asset wrote the quarter's overview as of the run's last day.
    report = (tmp_path / "reports" / f"{quarter}.html").read_text(encoding="utf-8")
    for _, key_result in okr_file.key_results:
        assert f'data-kr-id="{key_result.id}"' in report
    scores = Warehouse(env["OKR_WAREHOUSE_URL"]).read_kr_scores(quarter=str(quarter))
    last = min(yesterday, quarter.end)
    days = (last - quarter.start).days + 1
    assert len(scores) == days * kr_count(quarter)
    assert scores["as_of"].min() == quarter.start and scores["as_of"].max() == last
    # Every source answers through the sandbox: every KR has a value on the last day,
    # and every API-fed KR has one on every day (manual check-ins start on their first day).
    newest = scores[scores["as_of"] == last]
    assert newest["value"].notna().all() and (newest["status"] != "no_data").all()
    assert not newest["stale"].any()
    sources = {kr.id: kr.sources for _, kr in okr_file.key_results}
    fed = scores[scores["kr_id"].map(lambda kr_id: "manual" not in sources[kr_id])]
    assert fed["value"].notna().all()
    assert set().union(*sources.values()) <= {
        line.split(":")[0].removeprefix("source ")
        for line in result.stderr.splitlines()
        if line.startswith("source ") and line.endswith(": ok")
    }
    assert "sandbox-token" not in result.stdout + result.stderr
    # Only the project speaks: every line is one of the project's own progress lines.
    speakers = "|".join([*sorted(set().union(*sources.values())), "demo", "run", "source"])
    own = re.compile(rf"^(({speakers})\b|(kr_scores|objective_scores|kr_alerts|kr_final_scores): )")
    assert [line for line in result.stderr.splitlines() if not own.match(line)] == []


def test_the_outcome_lines_come_from_source_runs(workspace, caplog, monkeypatch):
    """What the run recorded in `source_runs` is what `okr` prints, and its exit code."""
    caplog.set_level("INFO", logger="okr_metrics")
    record = Warehouse.record_source_run

    def doctored(self, run_id, source, start, end, status, reason, rejected_rows):
        if source == "github":
            status, reason, rejected_rows = "failed", "doctored in source_runs", 4
        record(self, run_id, source, start, end, status, reason, rejected_rows)

    monkeypatch.setattr(Warehouse, "record_source_run", doctored)
    assert main(["run", "--date", "2026-10-20", "--trailing-days", "1"]) == EXIT_SOURCE_FAILED
    assert (
        "source github: failed: doctored in source_runs (4 rows failed validation; "
        "see rejected_observations)" in caplog.messages
    )
    assert "source jira: skipped: JIRA_BASE_URL, JIRA_API_TOKEN, JIRA_EMAIL not set" in (
        caplog.messages
    )
    runs = workspace.latest_source_runs()
    assert set(runs["source"]) >= {"github", "jira"}
    (line,) = [m for m in caplog.messages if m.startswith("run ") and m.endswith(": done")]
    assert set(runs["run_id"]) == {line.split()[1].rstrip(":")}


DEMO_DEFINITIONS = """\
quarter: {quarter}
objectives:
  - id: demo
    title: A small demo
    owner: eng
    key_results:
      - id: releases
        title: Ship 6 releases
        type: increase
        start: 0
        target: 6
        metric: {{source: github, repo: acme/mobile-app, count: releases, aggregate: sum}}
      - id: tickets
        title: 95% of tickets resolved within 2 hours
        type: increase
        start: 0.8
        target: 0.95
        metric:
          source: jira
          jql: project = SUP AND issuetype = "Support Ticket"
          measure: resolved_within
          hours: 2
"""


def test_okr_demo_swaps_resources_and_leaves_the_environment_alone(
    tmp_path, monkeypatch, caplog, capsys
):
    quarter = Quarter.containing(datetime.now(UTC).date() - timedelta(days=1))
    defs = tmp_path / "okr_defs"
    defs.mkdir()
    (defs / f"{quarter}.yaml").write_text(DEMO_DEFINITIONS.format(quarter=quarter))
    for name in SOURCE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OKR_DEFS", str(defs))
    monkeypatch.setenv("OKR_WAREHOUSE_URL", f"sqlite:///{tmp_path / 'warehouse.db'}")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    # The environment aims GitHub elsewhere: only the swapped resources reach the sandbox.
    monkeypatch.setenv("GITHUB_API_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("GITHUB_TOKEN", "not-for-the-demo")
    caplog.set_level("INFO", logger="okr_metrics")
    # pipelines/validation switches Great Expectations' analytics off through its own
    # variable (setdefault); everything else must be as it was.
    ignored = {"GX_ANALYTICS_ENABLED"}
    before = {key: value for key, value in os.environ.items() if key not in ignored}
    assert main(["demo"]) == EXIT_OK
    assert {key: value for key, value in os.environ.items() if key not in ignored} == before
    assert "source github: ok" in caplog.messages and "source jira: ok" in caplog.messages
    out = capsys.readouterr().out
    assert "demo: A small demo" in out and "  releases " in out
    assert "not-for-the-demo" not in out + caplog.text


LAZY_IMPORT = """
import sys

reads = []
watched = sys.argv[1:]
AUDITED = ("open", "os.listdir", "os.scandir", "sqlite3.connect")

def audit(event, args):
    if event in AUDITED and args and args[0] is not None:
        path = str(args[0])
        if any(path.startswith(prefix) for prefix in watched):
            reads.append((event, path))

sys.addaudithook(audit)

import okr_metrics.connectors.registry as registry

def no_entry_points(*args, **kwargs):
    raise AssertionError("entry points queried")

real_entry_points, registry.entry_points = registry.entry_points, no_entry_points

import okr_metrics.pipelines.orchestration.definitions as module

assert reads == [], reads
print("imported")
# Dagster asks: only now are the settings read, and the bad one fails in one line.
registry.entry_points = real_entry_points
from okr_metrics.pipelines.settings import SettingsError

try:
    module.defs()
except SettingsError as error:
    print(error)
"""


def test_importing_the_code_location_reads_nothing(tmp_path):
    """No definitions file, warehouse or entry point is touched until Dagster asks for `defs`.

    The definitions are real (a read would show as an audited open or listing), the
    warehouse and Dagster home would be created in a folder that must stay missing, and
    OKR_TRAILING_DAYS is bad: settings read at import would fail it.
    """
    defs = tmp_path / "okr_defs"
    shutil.copytree(REPO / "okr_defs", defs)
    missing = tmp_path / "missing"
    env = {
        **os.environ,
        "OKR_DEFS": str(defs),
        "OKR_WAREHOUSE_URL": f"sqlite:///{missing / 'warehouse.db'}",
        "OKR_TRAILING_DAYS": "abc",
        "DAGSTER_HOME": str(missing / "dagster"),
    }
    result = subprocess.run(
        [sys.executable, "-c", LAZY_IMPORT, str(defs), str(missing)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines() == [
        "imported",
        "OKR_TRAILING_DAYS must be a whole number of days, got 'abc'",
    ]
    assert not missing.exists()
