"""Soak test: SIGKILL warehouse writes, and `okr backfill` runs, many more times than the suite.

    .venv/bin/python scripts/soak_kill.py --kills 1000
    bash .ci/postgres.sh run .venv/bin/python scripts/soak_kill.py --kills 1000 \\
        --url "$OKR_TEST_POSTGRES_URL"      # or any other empty scratch database
    .venv/bin/python scripts/soak_kill.py --kills 0 --backfill-kills 10

Writes: a forked child writes a window of kr_scores (60 KRs x 31 days) and of
metric_observations (40 series x 31 days) over and over, each write with a new generation
number in every row, and is killed at a random moment. After each kill the window must
hold exactly one generation (the last finished write's, or the cut write's own) with the
exact row count, kr_definitions (rebuilt in the same transaction) must be the same
generation's, and the days around it must be untouched; a last write must repair it.
The figures printed: kills, kills that landed inside a write, and how many cut kr_scores
writes were found rolled back (old) or committed (new).

Backfills: `okr backfill` against a slow sandbox, killed after a random number of API
requests, again and again on one Dagster home and warehouse; then one run to the end,
whose rows must equal a clean run's, and every killed run must be marked failed.

The suite runs the same checks 60 times per database (tests/reliability/test_crashes.py).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from sqlalchemy import create_engine, select
from sqlalchemy.pool import NullPool

from okr_metrics.warehouse.schema import kr_scores, metric_observations, objective_scores

REPO = Path(__file__).resolve().parents[1]
# The writer, its checks and the kill loop are the suite's own (tests/reliability).
sys.path.insert(0, str(REPO / "tests" / "reliability"))
from window_kills import kill_writes  # noqa: E402


def soak_writes(url: str, kills: int, seed: int) -> None:
    started = time.monotonic()
    found = kill_writes(url, kills, seed, progress_every=100)
    elapsed = time.monotonic() - started
    print(
        f"writes on {found.dialect}: {kills} kills in {elapsed:.0f}s, "
        f"{found.mid_write} inside a write, 0 mixed windows; cut kr_scores writes found "
        f"rolled back {found.outcomes['old']}, committed {found.outcomes['new']}; "
        "a re-run repaired it"
    )


# --- backfills -------------------------------------------------------------------------------

WINDOW = ("2026-10-01", "2026-10-06")
RUN_COLUMNS = {"run_id", "computed_at", "collected_at"}
KEYS = {
    "kr_scores": ["quarter", "kr_id", "as_of"],
    "objective_scores": ["quarter", "objective_id", "as_of"],
    "metric_observations": ["metric_key", "date"],
}


def okr_env(sandbox_url: str, home: Path, warehouse_url: str) -> dict[str, str]:
    from okr_metrics.connectors.registry import connected_sources

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OKR_", "DAGSTER_"))}
    for source in connected_sources().values():
        names = source.connector_class().env
        for name in names.names():
            env.pop(name, None)
        if names.base_url:
            env[names.base_url] = sandbox_url
        if names.token:
            env[names.token] = f"token-{source.name}"
        if names.user:
            env[names.user] = "okr@example.com"
    env.update(
        OKR_DEFS=str(REPO / "okr_defs"),
        OKR_WAREHOUSE_URL=warehouse_url,
        DAGSTER_HOME=str(home),
        OKR_HTTP_BACKOFF_SECONDS="0.05",
    )
    return env


def table_rows(url: str) -> dict[str, pd.DataFrame]:
    engine = create_engine(url, poolclass=NullPool)
    frames = {}
    with engine.connect() as connection:
        for table in (kr_scores, objective_scores, metric_observations):
            result = connection.execute(select(table))
            frame = pd.DataFrame(result.all(), columns=list(result.keys()))
            frame = frame.drop(columns=[c for c in frame.columns if c in RUN_COLUMNS])
            frames[table.name] = frame.sort_values(KEYS[table.name]).reset_index(drop=True)
    engine.dispose()
    return frames


def soak_backfills(kills: int, seed: int) -> None:
    from okr_metrics.connectors.sandbox import Sandbox
    from okr_metrics.pipelines.orchestration.runs import dagster_instance
    from okr_metrics.pipelines.settings import Settings

    okr = str(Path(sys.executable).parent / "okr")
    args = [okr, "backfill", "--from", WINDOW[0], "--to", WINDOW[1]]
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as scratch, Sandbox() as sandbox:
        root = Path(scratch)
        clean_url = f"sqlite:///{root / 'clean.db'}"
        clean_env = okr_env(sandbox.url, root / "clean", clean_url)
        subprocess.run(args, cwd=REPO, env=clean_env, check=True, capture_output=True)
        requests = sandbox.request_count()
        url = f"sqlite:///{root / 'killed.db'}"
        env = okr_env(sandbox.url, root / "killed", url)
        started = time.monotonic()
        for number in range(1, kills + 1):
            sandbox.reset()
            sandbox.latency_seconds = 0.05
            at = rng.randrange(1, requests - 1)
            process = subprocess.Popen(
                args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            while sandbox.request_count() < at:
                if process.poll() is not None:
                    raise AssertionError(f"okr ended (exit {process.returncode}) before the kill")
                time.sleep(0.01)
            process.send_signal(signal.SIGKILL)
            process.wait()
            print(f"  backfill {number} killed after {at} of {requests} requests", flush=True)
        sandbox.reset()
        final = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True)
        if final.returncode != 0:
            raise AssertionError(final.stderr[-3000:])
        found, expected = table_rows(url), table_rows(clean_url)
        for name, frame in expected.items():
            pd.testing.assert_frame_equal(found[name], frame, check_dtype=False, obj=name)
        with dagster_instance(Settings(dagster_home=str(root / "killed"))) as instance:
            statuses = [run.status.value for run in instance.get_runs()]
        if statuses.count("FAILURE") != kills or statuses.count("SUCCESS") != 1:
            raise AssertionError(f"run statuses after the kills: {statuses}")
        elapsed = time.monotonic() - started
        print(
            f"backfills: {kills} killed mid-fetch in {elapsed:.0f}s, each marked failed; "
            f"the next run's rows equal a clean run's"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=500, help="warehouse writes to kill")
    parser.add_argument("--url", default=None, help="warehouse URL (default: a scratch SQLite)")
    parser.add_argument("--backfill-kills", type=int, default=0, help="okr backfills to kill")
    parser.add_argument("--seed", type=int, default=13)
    options = parser.parse_args()
    if options.kills:
        with tempfile.TemporaryDirectory() as scratch:
            url = options.url or f"sqlite:///{Path(scratch) / 'warehouse.db'}"
            soak_writes(url, options.kills, options.seed)
    if options.backfill_kills:
        soak_backfills(options.backfill_kills, options.seed)


if __name__ == "__main__":
    main()
