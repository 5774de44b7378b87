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
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
from sqlalchemy import create_engine, select, text
from sqlalchemy.pool import NullPool

from okr_metrics.pipelines.scoring.rules import KR_SCORE_COLUMNS
from okr_metrics.warehouse.schema import kr_scores, metric_observations, objective_scores
from okr_metrics.warehouse.store import Warehouse

REPO = Path(__file__).resolve().parents[1]
FIRST, LAST = date(2026, 10, 1), date(2026, 10, 31)
DAYS = pd.date_range(FIRST, LAST).date
BEFORE, AFTER = FIRST - timedelta(days=1), LAST + timedelta(days=1)
KRS = 60
SERIES = [f"github:count=releases;repo=acme/app-{number:02d}" for number in range(40)]
KR_BEGUN, KR_DONE, OBS_BEGUN, OBS_DONE = range(4)


def kr_rows(generation: int, days=DAYS) -> pd.DataFrame:
    rows = [
        {
            **dict.fromkeys(KR_SCORE_COLUMNS),
            "quarter": "2026-Q4",
            "objective_id": f"objective-{number // 4}",
            "kr_id": f"kr-{number:02d}",
            "kr_title": f"Key result {number}",
            "as_of": day,
            "kr_type": "increase",
            "value": float(generation),
            "start": 0.0,
            "target": 100.0,
            "status": "on_track",
            "stale": False,
            "definition_hash": f"definition-{number}",
        }
        for number in range(KRS)
        for day in days
    ]
    return pd.DataFrame(rows, columns=KR_SCORE_COLUMNS)


def observation_rows(generation: int, days=DAYS) -> pd.DataFrame:
    return pd.DataFrame(
        [(key, day, float(generation)) for key in SERIES for day in days],
        columns=["metric_key", "date", "value"],
    )


WINDOW_ROWS = (kr_rows(0), observation_rows(0))


def write_generation(warehouse: Warehouse, generation: int, progress=None) -> None:
    run_id = f"generation-{generation}"
    scores, observations = WINDOW_ROWS
    if progress is not None:
        progress[KR_BEGUN] = generation
    warehouse.replace_kr_scores(scores.assign(value=float(generation)), FIRST, LAST, run_id)
    if progress is not None:
        progress[KR_DONE] = generation
        progress[OBS_BEGUN] = generation
    observations = observations.assign(value=float(generation))
    warehouse.replace_observations("github", observations, SERIES, FIRST, LAST, run_id)
    if progress is not None:
        progress[OBS_DONE] = generation


def write_forever(url: str, progress, first_generation: int) -> None:
    try:
        warehouse = Warehouse(url)
        generation = first_generation
        while True:
            write_generation(warehouse, generation, progress)
            generation += 1
    finally:
        os._exit(1)


def generations(warehouse: Warehouse) -> dict[str, dict[tuple[float, str], int]]:
    where = {"window": "BETWEEN :first AND :last", "around": "NOT BETWEEN :first AND :last"}
    found = {}
    with warehouse.engine.connect() as connection:
        for table, column in (("kr_scores", "as_of"), ("metric_observations", "date")):
            for part, condition in where.items():
                query = (
                    f"SELECT value, run_id, COUNT(*) FROM {table} "
                    f"WHERE {column} {condition} GROUP BY value, run_id"
                )
                rows = connection.execute(text(query), {"first": FIRST, "last": LAST}).all()
                found[f"{table} {part}"] = {(v, r): n for v, r, n in rows}
        query = "SELECT run_id, COUNT(*) FROM kr_definitions GROUP BY run_id"
        found["kr_definitions"] = dict(connection.execute(text(query)).all())
    return found


def one_generation(groups: dict[tuple[float, str], int], rows: int) -> int:
    if len(groups) != 1:
        raise AssertionError(f"a mixed window: {groups}")
    ((value, run_id), count), *_ = groups.items()
    if run_id != f"generation-{int(value)}" or count != rows:
        raise AssertionError(f"{count} rows of {run_id} (value {value}), expected {rows}")
    return int(value)


def soak_writes(url: str, kills: int, seed: int) -> None:
    fork = multiprocessing.get_context("fork")
    progress = fork.Array("q", [-1, -1, -1, -1], lock=False)
    warehouse = Warehouse(url)
    warehouse.replace_kr_scores(kr_rows(0, [BEFORE]), BEFORE, BEFORE, "generation-0")
    warehouse.replace_kr_scores(kr_rows(0, [AFTER]), AFTER, AFTER, "generation-0")
    warehouse.replace_observations(
        "github", observation_rows(0, [BEFORE, AFTER]), SERIES, BEFORE, AFTER, "generation-0"
    )
    write_generation(warehouse, 0)
    began = time.monotonic()
    write_generation(warehouse, 0)
    longest_delay = max(2 * (time.monotonic() - began), 0.02)
    around = {"kr_scores around": 2 * KRS, "metric_observations around": 2 * len(SERIES)}
    rng = random.Random(seed)
    kr_now, obs_now, next_generation = 0, 0, 1
    outcomes = {"old": 0, "new": 0}
    mid_write = 0
    started = time.monotonic()
    for number in range(1, kills + 1):
        warehouse.engine.dispose()
        child = fork.Process(target=write_forever, args=(url, progress, next_generation))
        child.start()
        deadline = time.monotonic() + 60
        while progress[KR_BEGUN] < next_generation:
            if child.exitcode is not None or time.monotonic() > deadline:
                raise AssertionError("the writer died or never began writing")
            time.sleep(0.001)
        time.sleep(rng.uniform(0, longest_delay))
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        kr_begun, kr_done, obs_begun, obs_done = progress[:]
        mid_write += kr_begun != kr_done or obs_begun != obs_done
        found = generations(warehouse)
        kr = one_generation(found["kr_scores window"], KRS * len(DAYS))
        obs = one_generation(found["metric_observations window"], len(SERIES) * len(DAYS))
        kr_old = kr_done if kr_done >= next_generation else kr_now
        if kr not in (kr_old, kr_begun):
            raise AssertionError(f"kr_scores holds generation {kr}, not {kr_old} or {kr_begun}")
        obs_old = obs_done if obs_done >= next_generation else obs_now
        obs_new = obs_begun if obs_begun >= next_generation else obs_now
        if obs not in (obs_old, obs_new):
            raise AssertionError(f"observations hold generation {obs}, not {obs_old} or {obs_new}")
        if kr_begun != kr_done:
            outcomes["new" if kr == kr_begun else "old"] += 1
        for name, rows in around.items():
            if found[name] != {(0.0, "generation-0"): rows}:
                raise AssertionError(f"{name} changed: {found[name]}")
        if found["kr_definitions"] != {f"generation-{kr}": KRS}:
            raise AssertionError(f"kr_definitions of another write: {found['kr_definitions']}")
        kr_now, obs_now = kr, obs
        next_generation = max(kr_begun, obs_begun) + 1
        if number % 100 == 0:
            print(f"  {number} kills, {mid_write} inside a write", flush=True)
    final = next_generation + 1
    with Warehouse(url) as again:
        write_generation(again, final)
        found = generations(again)
        assert one_generation(found["kr_scores window"], KRS * len(DAYS)) == final
        assert one_generation(found["metric_observations window"], len(SERIES) * len(DAYS)) == final
    elapsed = time.monotonic() - started
    print(
        f"writes on {again.engine.dialect.name}: {kills} kills in {elapsed:.0f}s, "
        f"{mid_write} inside a write, 0 mixed windows; cut kr_scores writes found "
        f"rolled back {outcomes['old']}, committed {outcomes['new']}; a re-run repaired it"
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
