"""Concurrency: two `okr` commands at once, on one fresh Dagster home and one warehouse.

Two backfills of overlapping windows run as separate processes, started together on
SQLite and on PostgreSQL warehouses: both exit 0, and the warehouse holds exactly the rows
of one uninterrupted backfill of the two windows together (no duplicate, none lost).
Both set up the Dagster home's SQLite storage at the same moment, which Dagster does not
guard: `DagsterStorageFromEnv` takes a file lock for it (without the lock, one of them
died in `CREATE TABLE runs`). The storage race itself is hit harder, and cheaply, by
several processes opening a fresh instance at one signal, and a process killed while it
holds the lock must not block the next one.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from okr_processes import REPO, OkrHome, assert_same_rows, backfill_args, clean_run, table_rows

from okr_metrics.pipelines.orchestration.storage import LOCK_FILE, storage_setup_lock
from okr_metrics.warehouse.store import Warehouse

FIRST_WINDOW = ("2026-10-01", "2026-10-04")
SECOND_WINDOW = ("2026-10-03", "2026-10-06")
BOTH = ("2026-10-01", "2026-10-06")


def test_two_overlapping_backfills_at_once(sandbox, warehouse_url, tmp_path_factory):
    clean = clean_run(sandbox, tmp_path_factory.mktemp("clean"), *BOTH)
    root = tmp_path_factory.mktemp("concurrent")
    home = OkrHome(root, warehouse_url, sandbox.url)
    first = home.okr(*backfill_args(*FIRST_WINDOW))
    second = home.okr(*backfill_args(*SECOND_WINDOW))
    outputs = [process.communicate(timeout=600) for process in (first, second)]
    for process, (_, stderr) in zip((first, second), outputs, strict=True):
        assert process.returncode == 0, stderr[-3000:]
        assert "Traceback" not in stderr
    assert_same_rows(table_rows(warehouse_url), clean.rows)
    # Each run recorded its own sources once.
    with Warehouse(warehouse_url) as warehouse:
        for _, stderr in outputs:
            run_id = stderr.strip().splitlines()[-1].split()[1].rstrip(":")
            recorded = warehouse.source_runs(run_id)
            assert sorted(row["status"] for row in recorded) == ["ok"] * 6, recorded


# Each process loads Dagster, says so, then waits for the go file: all of them create the
# storage of the instance in $DAGSTER_HOME (this project's dagster.yaml) in the same few
# milliseconds.
OPEN_INSTANCE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from dagster import DagsterInstance

    go = Path(sys.argv[1])
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.002)
    with DagsterInstance.get() as instance:
        print(len(instance.get_runs()))
    """
)
PROCESSES, ROUNDS = 6, 1


def test_processes_opening_a_fresh_dagster_home_at_once_all_succeed(tmp_path):
    failures = []
    for round_number in range(ROUNDS):
        home, go = tmp_path / f"home-{round_number}", tmp_path / f"go-{round_number}"
        home.mkdir()
        shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", OPEN_INSTANCE, str(go)],
                env={**os.environ, "DAGSTER_HOME": str(home)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(PROCESSES)
        ]
        for process in processes:
            assert process.stdout.readline() == "ready\n"
        go.touch()
        for process in processes:
            stdout, stderr = process.communicate(timeout=300)
            if process.returncode != 0 or stdout.strip() != "0":
                failures.append(stderr.strip().splitlines()[-1:])
    assert failures == []


def hold_the_lock(home: str, held) -> None:
    """The child: take the storage lock, say so, and wait to be killed."""
    try:
        with storage_setup_lock(home):
            held.set()
            time.sleep(600)
    finally:
        os._exit(1)


def test_a_process_killed_while_setting_up_the_storage_does_not_block_the_next(tmp_path):
    fork = multiprocessing.get_context("fork")
    held = fork.Event()
    child = fork.Process(target=hold_the_lock, args=(str(tmp_path), held))
    child.start()
    assert held.wait(60)
    with open(tmp_path / LOCK_FILE, "a+b") as handle:
        with pytest.raises(BlockingIOError):
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # free at once
