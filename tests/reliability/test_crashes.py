"""Crashes: SIGKILL at random points of a warehouse write, and of a Dagster run mid-fetch.

A window write deletes the window's rows and inserts the new ones in one transaction
(`Warehouse._replace_window`, `replace_observations`). A child process writes a window
over and over, each time with a new generation number in every row (the value and the
run id), and is killed at a random moment; after each kill the window must hold exactly
one generation (the one before the write that was cut, or that write's own), with the
exact number of rows, `kr_definitions` (rebuilt in the kr_scores write's transaction)
must be that generation's, and the rows around the window must be untouched. A last write
repairs it. `scripts/soak_kill.py` runs the same loop for longer.

The Dagster run is killed while its `okr backfill` fetches from a slow sandbox: the run
stays STARTED in the instance until the next `okr` command marks it failed, and the next
run completes with the numbers of a run that was never interrupted.
"""

from __future__ import annotations

import random
import signal
import time

from dagster import DagsterEventType, DagsterRun, DagsterRunStatus
from okr_processes import OkrHome, assert_same_rows, backfill_args, clean_run, table_rows
from window_kills import kill_writes

from okr_metrics.pipelines.orchestration.runs import (
    PROCESS_TAG,
    dagster_instance,
    fail_interrupted_runs,
)
from okr_metrics.pipelines.settings import Settings

KILLS = 60  # per database; every one of them must land inside a write
RUN_FAILURE = DagsterEventType.RUN_FAILURE


def test_sigkill_mid_write_leaves_each_window_wholly_old_or_wholly_new(warehouse_url):
    found = kill_writes(warehouse_url, KILLS)
    print(
        f"{KILLS} kills, {found.mid_write} inside a write; kr_scores windows after a cut: "
        f"{found.outcomes}"
    )
    assert found.mid_write >= 50, f"only {found.mid_write} of {KILLS} kills landed inside a write"


# --- the Dagster run, killed while it fetches -------------------------------------------------

WINDOW = ("2026-10-01", "2026-10-06")


def _wait_for_requests(sandbox, count: int, process, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while sandbox.request_count() < count:
        if process.poll() is not None:
            raise AssertionError(f"okr ended before it was killed: {process.communicate()}")
        assert time.monotonic() < deadline, f"{sandbox.request_count()} requests, not {count}"
        time.sleep(0.01)


def _runs(home: OkrHome) -> list[DagsterRun]:
    """The instance's runs, oldest first."""
    with dagster_instance(Settings(dagster_home=str(home.dagster_home))) as instance:
        return list(reversed(instance.get_runs()))


def _failure_messages(home: OkrHome, run_id: str) -> list[str]:
    settings = Settings(dagster_home=str(home.dagster_home))
    with dagster_instance(settings) as instance:
        return [entry.message for entry in instance.all_logs(run_id, of_type=RUN_FAILURE)]


def test_a_backfill_killed_mid_fetch_is_marked_failed_and_the_next_run_matches_a_clean_one(
    sandbox, tmp_path_factory
):
    clean = clean_run(sandbox, tmp_path_factory.mktemp("clean"), *WINDOW)
    assert clean.requests >= 6  # room to kill after the second request and before the last
    root = tmp_path_factory.mktemp("killed")
    home = OkrHome(root, f"sqlite:///{root / 'warehouse.db'}", sandbox.url)
    sandbox.latency_seconds = 0.05  # slow enough to be caught mid-fetch
    process = home.okr(*backfill_args(*WINDOW))
    _wait_for_requests(sandbox, random.Random(7).randrange(2, clean.requests - 2), process)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL
    (killed,) = _runs(home)
    assert killed.tags[PROCESS_TAG].split(":")[1] == str(process.pid)
    # Dagster never learns that an in-process run's process died.
    assert killed.status == DagsterRunStatus.STARTED

    sandbox.reset()
    result = home.run(*backfill_args(*WINDOW))
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"run {killed.run_id} did not finish: its process (pid {process.pid})" in result.stderr
    assert [run.status for run in _runs(home)] == [
        DagsterRunStatus.FAILURE,
        DagsterRunStatus.SUCCESS,
    ]
    (message,) = _failure_messages(home, killed.run_id)
    assert f"the okr process (pid {process.pid}) running this run ended" in message
    assert_same_rows(table_rows(home.warehouse_url), clean.rows)
    with dagster_instance(Settings(dagster_home=str(home.dagster_home))) as instance:
        assert fail_interrupted_runs(instance) == []  # nothing left to mark
