"""`okr health` and `okr purge-runs` on a real Dagster instance and a real warehouse (SQLite).

Runs are added to the instance as the scheduler records them (the `dagster/schedule_name`
tag and the partition range); `source_runs` and `kr_scores` rows are written through
`Warehouse`, as a run writes them.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterRun, DagsterRunStatus

from okr_metrics.pipelines.cli.main import main
from okr_metrics.pipelines.cli.upkeep import health_checks
from okr_metrics.pipelines.orchestration.runs import dagster_instance
from okr_metrics.pipelines.orchestration.upkeep import purge_runs
from okr_metrics.pipelines.scoring.rules import KR_SCORE_COLUMNS
from okr_metrics.pipelines.settings import Settings
from okr_metrics.warehouse.store import Warehouse

AS_OF = date(2026, 10, 20)
TODAY = date(2026, 10, 21)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in ("DAGSTER_PG_URL", "DAGSTER_PG_HOST", "DAGSTER_PG_USER", "DAGSTER_PG_DB"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "dagster").mkdir()
    return Settings(
        warehouse_url=f"sqlite:///{tmp_path / 'warehouse.db'}",
        dagster_home=str(tmp_path / "dagster"),
    )


def add_run(settings: Settings, status: DagsterRunStatus, schedule: str | None = "nightly") -> str:
    run_id = str(uuid.uuid4())
    tags = {"dagster/asset_partition_range_end": AS_OF.isoformat()}
    if schedule:
        tags["dagster/schedule_name"] = schedule
    with dagster_instance(settings) as instance:
        instance.add_run(DagsterRun(job_name="okr_job", run_id=run_id, status=status, tags=tags))
    return run_id


def write_scores(settings: Settings, run_id: str, as_of: date = AS_OF) -> None:
    rows = []
    for kr_id, stale in (("releases", False), ("tickets", True)):
        row = dict.fromkeys(KR_SCORE_COLUMNS)
        row.update(
            quarter="2026-Q4",
            objective_id="ship",
            kr_id=kr_id,
            kr_title=kr_id,
            as_of=as_of,
            kr_type="increase",
            start=0.0,
            target=6.0,
            value=3.0,
            progress=0.5,
            score=0.5,
            expected_progress=0.2,
            status="on_track",
            stale=stale,
            definition_hash=f"{kr_id}-def",
        )
        rows.append(row)
    with Warehouse(settings.warehouse_url) as warehouse:
        frame = pd.DataFrame(rows, columns=KR_SCORE_COLUMNS)
        warehouse.replace_kr_scores(frame, as_of, as_of, run_id)


def record(settings: Settings, run_id: str, source: str, status: str, reason: str | None = None):
    with Warehouse(settings.warehouse_url) as warehouse:
        warehouse.record_source_run(run_id, source, AS_OF, AS_OF, status, reason, 0)


def lines(settings: Settings, max_age_days: int = 2, today: date = TODAY) -> list[str]:
    return [str(check) for check in health_checks(settings, max_age_days, today)]


def test_a_good_night_is_healthy(settings):
    run_id = add_run(settings, DagsterRunStatus.SUCCESS)
    add_run(settings, DagsterRunStatus.FAILURE, schedule=None)  # an `okr run` by hand
    record(settings, run_id, "github", "ok")
    record(settings, run_id, "hubspot", "skipped", "HUBSPOT_ACCESS_TOKEN is not set")
    write_scores(settings, run_id)
    found = lines(settings)
    assert found[0].startswith(f"ok     nightly run {run_id} for 2026-10-20 (")
    assert found[0].endswith("): SUCCESS")
    assert found[1:] == [
        f"ok     source github ok in run {run_id}",
        f"ok     source hubspot skipped in run {run_id}: HUBSPOT_ACCESS_TOKEN is not set",
        "ok     newest scores for 2026-10-20, 1 day(s) old (at most 2)",
        "note   1 of 2 KRs stale on 2026-10-20",
    ]


def test_a_failed_nightly_run_and_a_failed_source_fail_the_check(settings):
    good = add_run(settings, DagsterRunStatus.SUCCESS)
    record(settings, good, "github", "ok")
    write_scores(settings, good)
    time.sleep(0.01)
    failed = add_run(settings, DagsterRunStatus.FAILURE)
    record(settings, failed, "jira", "failed", "401 Unauthorized (check JIRA_API_TOKEN)")
    found = lines(settings)
    assert found[0].startswith(f"FAILED nightly run {failed} for 2026-10-20")
    assert found[0].endswith(": FAILURE")
    assert found[1] == (
        f"FAILED source jira failed in run {failed}: 401 Unauthorized (check JIRA_API_TOKEN)"
    )
    # A run still in progress is not the newest finished one.
    add_run(settings, DagsterRunStatus.STARTED)
    assert lines(settings)[0].startswith(f"FAILED nightly run {failed}")


def test_scores_older_than_the_limit_fail_the_check(settings):
    run_id = add_run(settings, DagsterRunStatus.SUCCESS)
    write_scores(settings, run_id)
    assert "ok     newest scores for 2026-10-20, 2 day(s) old (at most 2)" in lines(
        settings, today=date(2026, 10, 22)
    )
    assert "FAILED newest scores for 2026-10-20, 3 day(s) old (at most 2)" in lines(
        settings, today=date(2026, 10, 23)
    )
    assert "ok     newest scores for 2026-10-20, 3 day(s) old (at most 3)" in lines(
        settings, max_age_days=3, today=date(2026, 10, 23)
    )


def test_without_a_nightly_run_each_sources_newest_outcome_counts(settings):
    assert lines(settings) == [
        "note   no finished nightly run yet (is the schedule on?)",
        "FAILED kr_scores holds no scores yet",
    ]
    record(settings, "by-hand", "github", "failed", "404 Not Found: acme/gone")
    assert "FAILED source github failed in run by-hand: 404 Not Found: acme/gone" in lines(settings)


def test_okr_health_exits_1_and_says_why(settings, monkeypatch, capsys):
    monkeypatch.setenv("OKR_WAREHOUSE_URL", settings.warehouse_url)
    monkeypatch.setenv("DAGSTER_HOME", settings.dagster_home)
    run_id = add_run(settings, DagsterRunStatus.CANCELED)
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    write_scores(settings, run_id, as_of=yesterday)
    assert main(["health"]) == 1
    out = capsys.readouterr().out
    assert f"FAILED nightly run {run_id}" in out and ": CANCELED" in out
    assert f"ok     newest scores for {yesterday}, 1 day(s) old (at most 2)" in out

    ok = add_run(settings, DagsterRunStatus.SUCCESS)
    write_scores(settings, ok, as_of=yesterday)
    assert main(["health", "--max-age-days", "1"]) == 0
    with pytest.raises(SystemExit) as usage:
        main(["health", "--max-age-days", "0"])
    assert usage.value.code == 2
    assert "expected at least 1 day, got 0" in capsys.readouterr().err


def test_an_unreachable_warehouse_is_one_failed_line(settings, tmp_path):
    broken = Settings(
        # Nothing listens on port 1: the connection is refused at once.
        warehouse_url="postgresql+psycopg2://okr:s3cret@127.0.0.1:1/okr",
        dagster_home=settings.dagster_home,
    )
    found = lines(broken)
    assert found[1].startswith("FAILED warehouse unreadable: OperationalError: ")
    assert len(found) == 2
    assert "s3cret" not in found[1]


def test_purge_runs_deletes_old_finished_runs_with_their_events_and_logs(settings):
    home = Path(settings.dagster_home)
    old_done = add_run(settings, DagsterRunStatus.SUCCESS)
    old_running = add_run(settings, DagsterRunStatus.STARTED)
    with dagster_instance(settings) as instance:
        instance.report_engine_event("worked", instance.get_run_by_id(old_done))
        assert instance.all_logs(old_done)
    for run_id in (old_done, old_running):
        (home / "storage" / run_id / "compute_logs").mkdir(parents=True)
        (home / "storage" / run_id / "compute_logs" / "step.out").write_text("output")
    time.sleep(0.05)
    cutoff = datetime.now(UTC)
    time.sleep(0.05)
    new_done = add_run(settings, DagsterRunStatus.FAILURE)

    assert purge_runs(settings, cutoff) == 1
    with dagster_instance(settings) as instance:
        left = {run.run_id for run in instance.get_runs()}
        assert instance.all_logs(old_done) == []
    assert left == {old_running, new_done}
    assert not (home / "storage" / old_done).exists()
    assert (home / "storage" / old_running / "compute_logs" / "step.out").exists()
    assert purge_runs(settings, cutoff) == 0


def test_okr_purge_runs_prints_what_it_deleted(settings, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", settings.dagster_home)
    add_run(settings, DagsterRunStatus.SUCCESS)
    assert main(["purge-runs", "--older-than-days", "30"]) == 0
    assert capsys.readouterr().out.startswith("deleted 0 finished run(s) created before ")
    with dagster_instance(settings) as instance:
        assert len(instance.get_runs()) == 1
