"""Benchmark: scoring a quarter of 1,000 key results (92,000 KR-days), in KR-days per second.

Not a test: it prints figures. It makes a realistic quarter (2026-Q4, 92 days): 1,000 KRs
of every type and aggregate (counts summed, gauges read `latest`, `mean` and `mean_7d`,
`min`/`max`, ratios of two series, manual check-ins), whose stored series miss a day
now and then, and scores every KR on every day of the quarter with `score_key_results`,
then rolls the rows up with `score_objectives`, as a quarter's backfill does. The
baseline, run in the same process on the same inputs, is the scoring as it was before
it was vectorised (KR by KR, then KR-day by KR-day in Python), kept verbatim in
benchmarks/scoring_reference.py; the benchmark also checks that both give the same
rows (strings, flags and dates equal; floats within 1e-12 of the baseline's, relative
to the value or, below 1, absolute: the two sum a window's points in different orders).

Peak memory is the tracemalloc peak of one call (numpy and pandas allocate through it),
measured apart from the timings.

With `--backfill`, it measures a whole run instead: a quarter file of 1,000 KRs (every
non-manual metric of the sample definitions, the GitHub ones spread over 60
repositories) is backfilled for 2026-Q3 (92 days) against the sandbox, served by an
`okr sandbox` process of its own, and the backfill process's peak resident memory is
printed (target: under 400 MiB), with the peak while each step ran, then the tracemalloc
peak of each scoring step run again on the backfilled warehouse.

    python benchmarks/scoring.py                 # target: >= 1,000,000 KR-days/s
    python benchmarks/scoring.py --krs 4000 --repeat 5
    python benchmarks/scoring.py --backfill      # target: peak RSS < 400 MiB
"""

from __future__ import annotations

import argparse
import gc
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from okr_metrics.pipelines.scoring.rules import (
    KeyResultInput,
    ObjectiveInput,
    score_key_results,
    score_objectives,
)
from okr_metrics.pipelines.vocabulary.quarters import Quarter

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scoring_reference  # noqa: E402  (the baseline, next to this file)

QUARTER = Quarter(2026, 4)
TARGET_RATE = 1_000_000
TARGET_BACKFILL_MIB = 400
KRS_PER_OBJECTIVE = 4
REPO = Path(__file__).resolve().parents[1]
BACKFILL_QUARTER = Quarter(2026, 3)
RUN_PEAK = "peak RSS of the backfill: "

# (share of KRs, kr_type, aggregate, is_ratio, is_checkin): a quarter file's usual mix.
MIX = [
    (0.22, "increase", "sum", False, False),  # counts: releases, deals, tickets closed
    (0.08, "decrease", "sum", False, False),
    (0.10, "increase", "latest", False, False),  # gauges: active users, MRR
    (0.06, "decrease", "latest", False, False),
    (0.06, "increase", "mean", False, False),
    (0.06, "increase", "mean_7d", False, False),
    (0.04, "decrease", "mean_7d", False, False),
    (0.04, "decrease", "max", False, False),
    (0.10, "maintain_above", "min", False, False),  # uptime, SLOs
    (0.04, "maintain_below", "max", False, False),
    (0.03, "maintain_between", "mean_7d", False, False),  # response times in a band
    (0.02, "baseline", "latest", False, False),  # measured, never scored
    (0.06, "increase", "sum", True, False),  # conversion and completion rates
    (0.04, "increase", "mean_7d", True, False),
    (0.04, "maintain_above", "mean_7d", True, False),
    (0.04, "milestone", "latest", False, True),  # manual check-ins
    (0.02, "decrease", "latest", False, True),
]


def quarter_inputs(
    krs: int, seed: int = 15
) -> tuple[list[ObjectiveInput], list[KeyResultInput], pd.DataFrame]:
    """Objectives, KRs and their stored observations (as the warehouse returns them:
    sorted by metric key and date, dates as `date`), deterministic for a seed."""
    rng = np.random.default_rng(seed)
    days = QUARTER.days
    dates = [QUARTER.start + timedelta(days=offset) for offset in range(days)]
    shares = np.array([share for share, *_ in MIX])
    kinds = rng.choice(len(MIX), size=krs, p=shares / shares.sum())
    key_results, series = [], {}
    for index, kind in enumerate(kinds):
        _, kr_type, aggregate, is_ratio, is_checkin = MIX[kind]
        kr_id = f"kr-{index:04d}"
        level = 10 ** rng.uniform(0, 5)
        if is_ratio:
            starts = rng.poisson(level, size=days).astype(float) + 1
            completions = rng.binomial(starts.astype(int), rng.uniform(0.4, 0.9)).astype(float)
            keys = {"numerator_key": f"{kr_id}.done", "denominator_key": f"{kr_id}.started"}
            series[keys["numerator_key"]] = completions
            series[keys["denominator_key"]] = starts
            start, target = 0.5, 0.8
        else:
            keys = {"metric_key": f"{kr_id}.value"}
            if aggregate == "sum":
                values = rng.poisson(rng.uniform(0.2, 20), size=days).astype(float)
            elif kr_type.startswith("maintain"):
                values = 99.0 + rng.normal(0.6, 0.4, size=days)
            else:
                trend = rng.uniform(-0.3, 0.6) * level / days
                values = level + trend * np.arange(days) + rng.normal(0, level * 0.02, days)
            if is_checkin:  # a check-in every week or two
                values[rng.random(days) > 0.12] = np.nan
            series[keys["metric_key"]] = values
            daily_mean = float(np.nanmean(values))
            total = daily_mean * days if aggregate == "sum" else daily_mean
            start, target = (0.0, total * 1.1) if kr_type == "increase" else (total * 1.2, total)
            if kr_type.startswith("maintain"):
                start, target = None, 99.5 if kr_type == "maintain_above" else 99.9
            elif kr_type == "milestone":
                start, target = None, daily_mean * 1.05
        kinds = {}
        if kr_type == "maintain_between":
            target, kinds["low"], kinds["high"] = None, 99.2, 100.2
        elif kr_type == "baseline":
            start, target = None, None
        if rng.random() < 0.15:
            kinds["commitment"] = "committed"
        if kr_type in ("increase", "decrease") and rng.random() < 0.1:
            middle = QUARTER.start + timedelta(days=45)
            kinds["checkpoints"] = ((middle, start + (target - start) * 0.3),)
        if aggregate == "sum" and not is_ratio and rng.random() < 0.1:
            kinds["carried"] = float(rng.integers(0, 500))  # a running total
        key_results.append(
            KeyResultInput(
                kr_id=kr_id,
                objective_id=f"objective-{index // KRS_PER_OBJECTIVE:03d}",
                title=f"Key result {index}",
                owner=f"team-{index % 12:02d}",
                kr_type=kr_type,
                start=start,
                target=target,
                weight=float(rng.choice([1.0, 1.0, 2.0])),
                aggregate=aggregate,
                tracks_staleness=not is_checkin,
                definition_hash=f"{index:016x}",
                **keys,
                **kinds,
            )
        )
    objectives = [
        ObjectiveInput(f"objective-{index:03d}", f"Objective {index}", "product", None)
        for index in range((krs + KRS_PER_OBJECTIVE - 1) // KRS_PER_OBJECTIVE)
    ]
    rows = []
    for key in sorted(series):
        values = series[key]
        # A source fails now and then: about 3% of the days have no row.
        kept = ~np.isnan(values) & (rng.random(days) > 0.03)
        rows.extend((key, dates[offset], float(values[offset])) for offset in np.flatnonzero(kept))
    observations = pd.DataFrame(rows, columns=["metric_key", "date", "value"])
    return objectives, key_results, observations


def timed(function: Callable[[], object], repeat: int) -> float:
    """The best of `repeat` runs, in CPU seconds of this process (scoring runs on one
    core; wall time would count the other processes of a shared machine)."""
    times = []
    for _ in range(repeat):
        gc.collect()
        started = time.process_time()
        function()
        times.append(time.process_time() - started)
    return min(times)


def peak_mib(function: Callable[[], object]) -> float:
    gc.collect()
    tracemalloc.start()
    function()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def differences(new: pd.DataFrame, old: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(differences, notes) between two score frames: no differences, the same rows.

    Floats differ when they are further apart than 1e-12 times the larger of the
    baseline's value and 1; the notes count the floats within that but not equal.
    """
    if list(new.columns) != list(old.columns) or len(new) != len(old):
        return [f"shape {new.shape} vs {old.shape}"], []
    found, notes = [], []
    for column in new.columns:
        a, b = new[column], old[column]
        if pd.api.types.is_float_dtype(b):
            x, y = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
            both_missing = np.isnan(x) & np.isnan(y)
            exact = (x == y) | both_missing
            close = np.isclose(x, y, rtol=1e-12, atol=1e-12) | both_missing
            if not close.all():
                found.append(f"{column}: {int((~close).sum())} values differ beyond 1e-12")
            elif not exact.all():
                furthest = np.nanmax(np.abs(x - y) / np.maximum(np.abs(y), 1.0))
                notes.append(
                    f"{column}: {int((~exact).sum())} values within {furthest:.0e}, not equal"
                )
        elif a.dtype != b.dtype or not a.equals(b):
            found.append(f"{column}: {int((a != b).sum())} values differ")
    return found, notes


# ---------------------------------------------------------------------------
# --backfill: a whole run's memory


def backfill_definitions(krs: int) -> dict:
    """A quarter file of `krs` KRs made of the sample definitions' metrics."""
    templates = []
    for sample in sorted((REPO / "okr_defs").glob("*.yaml")):
        for objective in yaml.safe_load(sample.read_text())["objectives"]:
            templates += [kr for kr in objective["key_results"] if "manual" not in str(kr)]
    objectives = []
    for index in range(krs):
        kr = yaml.safe_load(yaml.safe_dump(templates[index % len(templates)]))
        kr["id"], kr["title"] = f"kr-{index:04d}", f"Key result {index}"
        kr.pop("checkpoints", None)  # dated in their own quarter
        if kr["metric"].get("source") == "github":
            kr["metric"]["repo"] = f"acme/service-{index % 60:02d}"
        if index % KRS_PER_OBJECTIVE == 0:
            objectives.append(
                {
                    "id": f"objective-{index // KRS_PER_OBJECTIVE:03d}",
                    "title": f"Objective {index // KRS_PER_OBJECTIVE}",
                    "owner": f"team-{index % 12:02d}",
                    "key_results": [],
                }
            )
        objectives[-1]["key_results"].append(kr)
    return {"quarter": str(BACKFILL_QUARTER), "timezone": "UTC", "objectives": objectives}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def backfill(krs: int) -> int:
    """Backfill a quarter of `krs` KRs against the sandbox in a child process and print
    its peak resident memory (the sandbox runs in a process of its own)."""
    okr = str(Path(sys.executable).with_name("okr"))
    with tempfile.TemporaryDirectory() as work:
        defs = Path(work) / "okr_defs"
        defs.mkdir()
        (defs / f"{BACKFILL_QUARTER}.yaml").write_text(yaml.safe_dump(backfill_definitions(krs)))
        port = free_port()
        sandbox = subprocess.Popen(
            [okr, "sandbox", "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert sandbox.stdout is not None
            sandbox.stdout.readline()  # "sandbox serving ..." once it listens
            env = {
                **os.environ,
                "OKR_DEFS": str(defs),
                "OKR_WAREHOUSE_URL": f"sqlite:///{work}/warehouse.db",
                "DAGSTER_HOME": str(Path(work) / "dagster"),
            }
            (Path(work) / "dagster").mkdir()
            (Path(work) / "dagster" / "dagster.yaml").write_bytes(
                (REPO / "dagster.yaml").read_bytes()
            )
            started = time.perf_counter()
            child = subprocess.run(
                [sys.executable, __file__, "--backfill-child", f"http://127.0.0.1:{port}"],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            seconds = time.perf_counter() - started
        finally:
            sandbox.terminate()
            sandbox.wait()
    print(child.stdout, end="")
    peaks = [line for line in child.stdout.splitlines() if line.startswith(RUN_PEAK)]
    if child.returncode != 0 or not peaks:
        print("the backfill failed")
        return 1
    peak = float(peaks[-1].removeprefix(RUN_PEAK).split()[0])
    verdict = "met" if peak < TARGET_BACKFILL_MIB else "NOT met"
    print(
        f"backfill of {krs:,} KRs x {BACKFILL_QUARTER.days} days ({BACKFILL_QUARTER}) "
        f"against the sandbox: {seconds:.1f} s, peak RSS {peak:.0f} MiB "
        f"(target < {TARGET_BACKFILL_MIB} MiB: {verdict})"
    )
    return 0 if peak < TARGET_BACKFILL_MIB else 1


class ResidentMemory:
    """The process's peak resident memory while each watched function runs (a thread
    reads /proc/self/statm every 10 ms; "other": outside them)."""

    def __init__(self) -> None:
        self.peaks: dict[str, float] = {}
        self.step = "other"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._page_mib = os.sysconf("SC_PAGE_SIZE") / 2**20

    def watch(self, module: object, names: list[str]) -> None:
        for name in names:
            function = getattr(module, name)

            def watched(*args, _function=function, _name=name, **kwargs):
                outer, self.step = self.step, _name
                try:
                    return _function(*args, **kwargs)
                finally:
                    self.step = outer

            setattr(module, name, watched)

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            with open("/proc/self/statm") as statm:
                resident = int(statm.read().split()[1]) * self._page_mib
            self.peaks[self.step] = max(self.peaks.get(self.step, 0.0), resident)

    def __enter__(self) -> ResidentMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def backfill_child(sandbox_url: str) -> int:
    """The backfill itself (`okr backfill` for the quarter), then each scoring step
    again under tracemalloc, to show where its memory goes."""
    from okr_metrics.connectors.registry import connected_sources
    from okr_metrics.pipelines.cli.main import run_window
    from okr_metrics.pipelines.definitions import load_definitions
    from okr_metrics.pipelines.jobs import score
    from okr_metrics.pipelines.orchestration import assets
    from okr_metrics.pipelines.settings import Settings
    from okr_metrics.warehouse.store import Warehouse

    for source in connected_sources().values():
        env = source.connector_class().env
        for name, value in (
            (env.base_url, sandbox_url),
            (env.token, "bench-token"),
            (env.user, "bench@example.com"),
        ):
            if name:
                os.environ[name] = value
        if env.credentials_file:
            os.environ.pop(env.credentials_file, None)
    first, last = BACKFILL_QUARTER.start, BACKFILL_QUARTER.end
    with ResidentMemory() as memory:
        memory.watch(assets, ["collect_source", "compute_kr_scores", "compute_objective_scores"])
        memory.watch(assets, ["record_alerts"])
        outcome = run_window(first, last)
    if not outcome.success:
        print(f"backfill failed: {outcome.failure}")
        return 1
    # The kernel's high-water mark of the process, before the steps below add theirs.
    with open("/proc/self/status") as status:
        high_water = next(line for line in status if line.startswith("VmHWM:"))
    print(f"{RUN_PEAK}{int(high_water.split()[1]) / 1024:.0f} MiB (VmHWM)")
    print("peak resident memory while each step of the run ran (MiB):")
    for step, peak in memory.peaks.items():
        print(f"  {step:<26} {peak:>7.0f}")
    settings = Settings.from_env()
    definitions = load_definitions(settings.definitions_path)
    okr_file = definitions.for_quarter(BACKFILL_QUARTER)
    assert okr_file is not None
    with Warehouse(settings.warehouse_url) as warehouse:
        objectives, key_results = score.scoring_inputs(okr_file)
        keys = okr_file.series_by_key().keys()
        steps: list[tuple[str, Callable[[], object]]] = [
            ("read_observations", lambda: warehouse.read_observations(keys, first, last)),
        ]
        observations = warehouse.read_observations(keys, first, last)
        days = [first + timedelta(days=offset) for offset in range(BACKFILL_QUARTER.days)]
        steps.append(
            (
                "score_key_results",
                lambda: score_key_results(key_results, BACKFILL_QUARTER, observations, days),
            )
        )
        rows = score_key_results(key_results, BACKFILL_QUARTER, observations, days)
        steps.append(
            ("replace_kr_scores", lambda: warehouse.replace_kr_scores(rows, first, last, "bench"))
        )
        steps.append(("read_kr_scores", lambda: warehouse.read_kr_scores(first, last)))
        kr_rows = warehouse.read_kr_scores(first, last)
        steps.append(
            ("score_objectives", lambda: score_objectives(objectives, key_results, kr_rows))
        )
        print(
            f"{len(key_results):,} KRs, {len(observations):,} observations, {len(rows):,} KR-days"
        )
        for name, step in steps:
            print(f"  {name:<20} tracemalloc peak {peak_mib(step):>7.1f} MiB")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--krs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of the new code")
    parser.add_argument("--backfill", action="store_true", help="measure a whole run's memory")
    parser.add_argument("--backfill-child", metavar="SANDBOX_URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.backfill_child:
        return backfill_child(args.backfill_child)
    if args.backfill:
        return backfill(args.krs)

    objectives, key_results, observations = quarter_inputs(args.krs)
    as_of_days = [QUARTER.start + timedelta(days=offset) for offset in range(QUARTER.days)]
    kr_days = len(key_results) * len(as_of_days)

    def new() -> pd.DataFrame:
        return score_key_results(key_results, QUARTER, observations, as_of_days)

    def old() -> pd.DataFrame:
        return scoring_reference.score_key_results(key_results, QUARTER, observations, as_of_days)

    new_rows, old_rows = new(), old()
    kr_rows = score_objectives(objectives, key_results, new_rows)
    old_objectives = scoring_reference.score_objectives(objectives, key_results, old_rows)
    problems, notes = differences(new_rows, old_rows)
    objective_problems, objective_notes = differences(kr_rows, old_objectives)
    problems += [f"objective_scores {problem}" for problem in objective_problems]
    notes += [f"objective_scores {note}" for note in objective_notes]

    new_seconds = timed(new, args.repeat)
    old_seconds = timed(old, 1)
    objectives_new = timed(lambda: score_objectives(objectives, key_results, new_rows), 3)
    objectives_old = timed(
        lambda: scoring_reference.score_objectives(objectives, key_results, old_rows), 1
    )
    new_peak, old_peak = peak_mib(new), peak_mib(old)

    print(
        f"{len(key_results):,} KRs x {len(as_of_days)} days = {kr_days:,} KR-days "
        f"({len(observations):,} observations), {QUARTER}"
    )
    print(f"{'':<34} {'CPU s':>9} {'KR-days/s':>12} {'peak MiB':>9}")
    print(
        f"{'score_key_results (vectorised)':<34} {new_seconds:>9.3f} "
        f"{kr_days / new_seconds:>12,.0f} {new_peak:>9.1f}"
    )
    print(
        f"{'baseline (per KR, per KR-day)':<34} {old_seconds:>9.3f} "
        f"{kr_days / old_seconds:>12,.0f} {old_peak:>9.1f}"
    )
    print(f"{'score_objectives (vectorised)':<34} {objectives_new:>9.3f}")
    print(f"{'baseline score_objectives':<34} {objectives_old:>9.3f}")
    print(
        f"ratio: {old_seconds / new_seconds:.1f}x faster than the baseline; "
        f"score_objectives {objectives_old / objectives_new:.1f}x"
    )
    rate = kr_days / new_seconds
    print(
        f"target {TARGET_RATE:,} KR-days/s: {'met' if rate >= TARGET_RATE else 'NOT met'} "
        f"({rate:,.0f})"
    )
    if problems:
        print("rows differ from the baseline:\n  " + "\n  ".join(problems))
        return 1
    print("rows: the same as the baseline's (kr_scores and objective_scores)")
    for note in notes:
        print(f"  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
