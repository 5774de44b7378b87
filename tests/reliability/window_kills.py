"""Window writes killed with SIGKILL: the writer, the checks and the kill loop.

Shared by tests/reliability/test_crashes.py (60 kills per database, in the suite) and
scripts/soak_kill.py (as many as asked). A forked child writes a window of kr_scores
(60 KRs x 31 days) and of metric_observations (40 series x 31 days) over and over, each
write with a new generation number in every row, and is killed at a random moment. After
each kill the window must hold exactly one generation (the last finished write's, or the
cut write's own) with the exact row count, kr_definitions (rebuilt in the kr_scores
write's transaction) must be that generation's, and the days around it must be
untouched; a last write must repair it.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from dataclasses import dataclass, field
from datetime import date, timedelta

import pandas as pd
from sqlalchemy import text

from okr_metrics.pipelines.scoring.rules import KR_SCORE_COLUMNS
from okr_metrics.warehouse.store import Warehouse

FIRST, LAST = date(2026, 10, 1), date(2026, 10, 31)
DAYS = pd.date_range(FIRST, LAST).date
BEFORE, AFTER = FIRST - timedelta(days=1), LAST + timedelta(days=1)
KRS = 60
SERIES = [f"github:count=releases;repo=acme/app-{number:02d}" for number in range(40)]
# The child's progress: the generation whose kr_scores write began, and ended; the same
# for observations.
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


def write_generation(warehouse: Warehouse, generation: int, progress=None) -> None:
    """Write the window's kr_scores, then its observations, as `generation`."""
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


# Built once, before the children fork: a child spends its time writing.
WINDOW_ROWS = (kr_rows(0), observation_rows(0))


def write_forever(url: str, progress, first_generation: int) -> None:
    """The child: write generation after generation until killed."""
    try:
        warehouse = Warehouse(url)
        generation = first_generation
        while True:
            write_generation(warehouse, generation, progress)
            generation += 1
    finally:
        os._exit(1)  # an error ends the child without running the parent's exit handlers


def generations(warehouse: Warehouse) -> dict[str, dict[tuple[float, str], int]]:
    """For the window and its neighbour days: how many rows of each (value, run id)."""
    queries = {
        "kr window": "SELECT value, run_id, COUNT(*) FROM kr_scores "
        "WHERE as_of BETWEEN :first AND :last GROUP BY value, run_id",
        "kr around": "SELECT value, run_id, COUNT(*) FROM kr_scores "
        "WHERE as_of NOT BETWEEN :first AND :last GROUP BY value, run_id",
        "obs window": "SELECT value, run_id, COUNT(*) FROM metric_observations "
        "WHERE date BETWEEN :first AND :last GROUP BY value, run_id",
        "obs around": "SELECT value, run_id, COUNT(*) FROM metric_observations "
        "WHERE date NOT BETWEEN :first AND :last GROUP BY value, run_id",
        # Rebuilt from kr_scores in the same transaction as each kr_scores write.
        "kr definitions": "SELECT 0.0, run_id, COUNT(*) FROM kr_definitions GROUP BY run_id",
    }
    found = {}
    with warehouse.engine.connect() as connection:
        for name, query in queries.items():
            rows = connection.execute(text(query), {"first": FIRST, "last": LAST}).all()
            found[name] = {(value, run_id): count for value, run_id, count in rows}
    return found


def one_generation(groups: dict[tuple[float, str], int], rows: int) -> int:
    """The window's one generation; fails on a mix, a gap or a duplicate."""
    assert len(groups) == 1, f"a mixed window: {groups}"
    ((value, run_id), count), *_ = groups.items()
    assert run_id == f"generation-{int(value)}", f"rows of two writes in one row: {groups}"
    assert count == rows, f"{count} rows in the window, not {rows}"
    return int(value)


def seed(warehouse: Warehouse) -> None:
    """Generation 0 in the window, and rows on the day before and after it (never written again)."""
    around = [BEFORE, AFTER]
    warehouse.replace_kr_scores(kr_rows(0, around), BEFORE, BEFORE, "generation-0")
    warehouse.replace_kr_scores(kr_rows(0, [AFTER]), AFTER, AFTER, "generation-0")
    warehouse.replace_observations(
        "github", observation_rows(0, around), SERIES, BEFORE, AFTER, "generation-0"
    )
    write_generation(warehouse, 0)


@dataclass
class KillOutcome:
    kills: int
    mid_write: int = 0  # kills that landed inside a write
    # Cut kr_scores writes found rolled back (old) or committed (new).
    outcomes: dict[str, int] = field(default_factory=lambda: {"old": 0, "new": 0})
    dialect: str = ""


def kill_writes(
    url: str, kills: int, seed_number: int = 13, progress_every: int = 0
) -> KillOutcome:
    """Kill `kills` window writes at random moments, checking the window after each, then
    repair it with a last write; an AssertionError names the first mixed window."""
    fork = multiprocessing.get_context("fork")
    progress = fork.Array("q", [-1, -1, -1, -1], lock=False)
    warehouse = Warehouse(url)
    seed(warehouse)
    started = time.monotonic()
    write_generation(warehouse, 0)
    # Kill anywhere in the next two writes of both tables.
    longest_delay = max(2 * (time.monotonic() - started), 0.02)
    around = {"kr around": 2 * KRS, "obs around": 2 * len(SERIES)}
    assert generations(warehouse)["kr around"] == {(0.0, "generation-0"): 2 * KRS}

    rng = random.Random(seed_number)
    kr_now, obs_now, next_generation = 0, 0, 1
    outcomes = {"old": 0, "new": 0}
    mid_write = 0
    for number in range(1, kills + 1):
        warehouse.engine.dispose()  # the child must not inherit an open connection
        child = fork.Process(target=write_forever, args=(url, progress, next_generation))
        child.start()
        deadline = time.monotonic() + 60
        while progress[KR_BEGUN] < next_generation:
            assert child.exitcode is None, "the writer died on its own"
            assert time.monotonic() < deadline, "the writer never began writing"
            time.sleep(0.001)
        time.sleep(rng.uniform(0, longest_delay))
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        assert child.exitcode == -signal.SIGKILL
        kr_begun, kr_done, obs_begun, obs_done = progress[:]
        mid_write += kr_begun != kr_done or obs_begun != obs_done

        found = generations(warehouse)
        kr = one_generation(found["kr window"], KRS * len(DAYS))
        obs = one_generation(found["obs window"], len(SERIES) * len(DAYS))
        # Old: the last write that finished before the kill; new: the write it cut.
        kr_old = kr_done if kr_done >= next_generation else kr_now
        assert kr in (kr_old, kr_begun), (kr, kr_old, kr_begun)
        obs_old = obs_done if obs_done >= next_generation else obs_now
        obs_new = obs_begun if obs_begun >= next_generation else obs_now
        assert obs in (obs_old, obs_new), (obs, obs_old, obs_new)
        if kr_begun != kr_done:
            outcomes["new" if kr == kr_begun else "old"] += 1
        for name, rows in around.items():
            assert found[name] == {(0.0, "generation-0"): rows}, f"{name}: {found[name]}"
        assert found["kr definitions"] == {(0.0, f"generation-{kr}"): KRS}, found
        kr_now, obs_now = kr, obs
        next_generation = max(kr_begun, obs_begun) + 1
        if progress_every and number % progress_every == 0:
            print(f"  {number} kills, {mid_write} inside a write", flush=True)

    # A re-run repairs whatever the last kill left, and nothing is left locked.
    final = next_generation + 1
    with Warehouse(url) as again:
        write_generation(again, final)
        found = generations(again)
        assert one_generation(found["kr window"], KRS * len(DAYS)) == final
        assert one_generation(found["obs window"], len(SERIES) * len(DAYS)) == final
        if again.engine.dialect.name == "sqlite":
            with again.engine.connect() as connection:
                assert connection.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    return KillOutcome(kills, mid_write, outcomes, again.engine.dialect.name)
