"""Benchmark: the whole pipeline against the sandbox at a realistic volume, and BENCHMARKS.md.

Not a test: `make bench` runs it (after benchmarks/warehouse_writes.py) and it prints, in
one process, each figure beside its baseline and target, then writes BENCHMARKS.md:

- the import floor: a fresh Python importing dagster, pandas, SQLAlchemy and Great
  Expectations (the least any `okr` process costs);
- a 20-KR quarter over all five APIs (GA4 over 4 properties, 20,000 pull requests in 4
  repositories, 50,000 Jira issues in 5 projects, 10,000 CRM deals), its backfill and
  then one nightly run, each `okr backfill` / `okr run` in a fresh process against the
  sandbox served here, at 0 ms and 50 ms of latency a request: wall time, requests made,
  the fewest requests possible (`requests_floor.py`: the pages each distinct query needs
  at the API's largest page size) and the floor latency sets (the slowest API's pages x
  latency / the requests it may have in flight);
- the 20,000-PR GitHub case at 20 ms, dlt's `rest_api` source (`dlt_github.py`; `pip
  install -e '.[bench]'`) against the GitHub connector's fetch alone (`github_fetch.py`,
  the figure the target is judged on) and against `okr backfill`, on the same endpoint;
- scoring throughput in KR-days a second, the warehouse's bulk write against the
  database's own bulk path, and a 1,000-KR quarter's backfill: wall time, peak memory.

    .venv/bin/python benchmarks/pipeline_runs.py            # the full bench (~7 min on 2 cores)
    .venv/bin/python benchmarks/pipeline_runs.py --quick    # or OKR_BENCH_QUICK=1: ~2 min, checks the harness
    .venv/bin/python benchmarks/pipeline_runs.py --latency-ms 0,20,100 --dlt-latency-ms 50
    make bench                                              # both benchmarks, PostgreSQL too

Requests in flight: `OKR_BENCH_IN_FLIGHT` (default: what the HTTP client allows, else 1).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from importlib import metadata
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))

from company import Keys, write_definitions  # noqa: E402
from requests_floor import (  # noqa: E402
    ApiSandboxes,
    Exchange,
    latency_floor,
    minimum_requests,
    requests_made,
)

from okr_metrics.connectors.registry import connected_sources  # noqa: E402
from okr_metrics.connectors.sandbox import SandboxData  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
QUARTER = "2026-Q3"
START, BACKFILL_END, NIGHTLY_AS_OF = date(2026, 7, 1), date(2026, 9, 29), date(2026, 9, 30)
NIGHTLY_START = NIGHTLY_AS_OF - timedelta(days=2)  # a nightly run's 3 trailing days
# The morning after the nightly run's day: nothing later exists. The data starts a month
# before the quarter (what the runs read, and it keeps thousands of keys small).
HORIZON = datetime(2026, 10, 1, 1, 0, tzinfo=timezone.utc)
DATA_FIRST_DAY = date(2026, 6, 1)
SANDBOX_TOKEN, SANDBOX_USER = "sandbox-token", "bench@example.com"
IMPORT_FLOOR_CODE = "import dagster, pandas, sqlalchemy, great_expectations"
MIB = 1024 * 1024


@dataclass(frozen=True)
class Scale:
    """How big each case is (the full bench, or the quick check of the harness)."""

    name: str
    keys: Keys
    # Daily items per API, times the sandbox's default: 20,000 PRs, 50,000 issues and
    # 10,000 CRM deals in the quarter at "full".
    volume: Mapping[str, float]
    latencies: tuple[float, ...]
    big_krs: int
    big_keys: Keys
    dlt_volume: float
    dlt_latency: float
    repeats: int
    # Nightly runs paired at the lowest and highest latency, the rounds' pairs included:
    # its latency cost is a fraction of a second set against walls of seconds, so it
    # takes more pairs than the backfill's for the machine's noise to even out.
    nightly_pairs: int


FULL = Scale(
    "full",
    Keys(properties=4, repos=4, projects=5),
    {"github": 18.0, "jira": 2.75, "salesforce": 3.6, "hubspot": 3.2},
    (0.0, 0.05),
    1000,
    Keys(properties=50, repos=100, projects=50),
    18.0,
    0.02,
    3,
    9,
)
QUICK = Scale(
    "quick",
    Keys(properties=2, repos=2, projects=2),
    {"github": 1.0, "jira": 0.3, "salesforce": 0.5, "hubspot": 0.5},
    (0.0, 0.05),
    100,
    Keys(properties=5, repos=10, projects=5),
    1.0,
    0.02,
    1,
    2,
)


@dataclass
class Figure:
    """One measured figure, with its baseline ratio and target."""

    name: str
    value: str
    ratio: float | None = None
    target: str = ""
    met: bool | None = None


@dataclass
class Run:
    """One `okr` process against the sandbox."""

    wall: float
    peak_mib: float
    made: dict[str, int]
    minimum: dict[str, int]
    code: int
    output: str = ""
    exchanges: list[Exchange] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(self.made.values())

    @property
    def fewest(self) -> int:
        return sum(self.minimum.values())


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        ratio = f"{figure.ratio:.2f}x" if figure.ratio is not None else ""
        met = {True: "met", False: "NOT met", None: ""}[figure.met]
        print(f"  {figure.name:<52} {figure.value:>22} {ratio:>9}  {figure.target:<26} {met}")
        return figure


# --- processes --------------------------------------------------------------------------------


def timed_process(argv: Sequence[str], env: Mapping[str, str]) -> tuple[float, float, int, str]:
    """Run `argv` in a fresh process: (wall seconds, peak RSS in MiB, exit code, output).

    The peak is the child's own `VmHWM`, read from /proc while it runs: `wait4`'s
    `ru_maxrss` would not do, since Linux carries the parent's high-water mark into a
    child across fork and exec, and this process holds the sandbox's data.
    """
    with tempfile.TemporaryFile() as output:
        started = time.perf_counter()
        child = subprocess.Popen(
            list(argv), env=dict(env), cwd=ROOT, stdout=output, stderr=subprocess.STDOUT
        )
        peak = _HighWaterMark(child.pid)
        peak.start()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        peak.join()
        child.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        text = output.read().decode(errors="replace")
    kib = peak.kib if peak.kib else usage.ru_maxrss  # no /proc: the kernel's figure
    return wall, kib / 1024, child.returncode, text


class _HighWaterMark(threading.Thread):
    """Polls a process's `VmHWM` (KiB) until it is gone; `kib` is the last one read."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.path, self.kib = Path(f"/proc/{pid}/status"), 0

    def run(self) -> None:
        while True:
            try:
                text = self.path.read_text()
            except OSError:
                return
            found = next((line for line in text.splitlines() if line.startswith("VmHWM:")), None)
            if found is None:  # a zombie: its memory is gone
                return
            self.kib = max(self.kib, int(found.split()[1]))
            time.sleep(0.01)


def import_floor() -> float:
    """One fresh interpreter importing the four heavy libraries: its wall seconds."""
    return timed_process([sys.executable, "-c", IMPORT_FLOOR_CODE], os.environ)[0]


def median_run(runs: Sequence[Run]) -> Run:
    """The run of median wall time, with the highest peak memory of them all."""
    chosen = sorted(runs, key=lambda run: run.wall)[len(runs) // 2]
    return dataclasses.replace(chosen, peak_mib=max(run.peak_mib for run in runs))


def sandbox_env(urls: Mapping[str, str]) -> dict[str, str]:
    """Every connected source's variables, aimed at its API's sandbox (no real credential)."""
    env = {}
    for source in connected_sources().values():
        names = source.connector_class().env
        if names.base_url and source.name in urls:
            env[names.base_url] = urls[source.name]
        if names.token:
            env[names.token] = SANDBOX_TOKEN
        if names.user:
            env[names.user] = SANDBOX_USER
    return env


def base_env(folder: Path, definitions: Path, urls: Mapping[str, str]) -> dict[str, str]:
    """The environment of an `okr` process: its own warehouse, Dagster home and reports
    folder, no real source (every variable a connector reads is replaced or cleared)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OKR_", "DAGSTER_", "GOOGLE_APPLICATION"))
    }
    for source in connected_sources().values():
        for name in source.connector_class().env.names():
            env.pop(name, None)
    env.update(sandbox_env(urls))
    env.update(
        OKR_WAREHOUSE_URL=f"sqlite:///{folder / 'warehouse.db'}",
        OKR_DEFS=str(definitions),
        DAGSTER_HOME=str(folder / "dagster"),
        OKR_REPORTS_DIR=str(folder / "reports"),
        OKR_HTTP_BACKOFF_SECONDS="0.05",
    )
    return env


def okr(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "okr"), *args]


def run_okr(
    sandbox: ApiSandboxes, argv: Sequence[str], env: Mapping[str, str], window_start: date
) -> Run:
    sandbox.take_exchanges()
    sandbox.window_start = f"{window_start.isoformat()}T00:00:00Z"
    wall, peak, code, output = timed_process(argv, env)
    exchanges = sandbox.take_exchanges()
    if code not in (0, 2):
        tail = "\n".join(output.strip().splitlines()[-8:])
        print(f"  ! {' '.join(argv[1:])} exited {code}:\n{tail}", file=sys.stderr)
    return Run(
        wall, peak, requests_made(exchanges), minimum_requests(exchanges), code, output, exchanges
    )


def warm(sandbox: ApiSandboxes, keys: Keys, krs: int) -> None:
    """Generate the sample data of every key now, and the instants Jira serves in its
    user's zone, so no run pays for them (the first round would, and not the others)."""
    data = sandbox.data
    zone = ZoneInfo(data.jira.user_timezone)
    for index in range(max(krs, 20)):
        data.google_analytics.facts(keys.property(index))
        data.github.pulls(keys.repo(index))
        data.github.issues(keys.repo(index))
        data.github.releases(keys.repo(index))
        for issue in data.jira.issues(keys.project(index)):
            issue.served_times(zone)
    data.salesforce.records("Opportunity")
    data.hubspot.records("deals")
    settle()


def settle() -> None:
    """Leave the sandbox's generated data out of this process's cycle collections: it
    lives as long as the sandbox serves, and every full collection would walk it again
    (seconds of CPU over a 1,000-KR run, taken from the two cores the run shares with
    the sandbox; a real API spends none of the run's machine)."""
    gc.collect()
    gc.freeze()


def in_flight() -> dict[str, int]:
    """Requests each API may have in flight: `OKR_BENCH_IN_FLIGHT` for all, else what the
    HTTP client allows its connector on the sandbox's host (its own limits, or the
    default of a host without vendor limits, as the sandbox's ports are)."""
    from okr_metrics.connectors import http

    allowed = {}
    for source in connected_sources().values():
        connector = source.connector_class()
        if not issubclass(connector, http.HttpConnector):
            continue
        limits = connector.host_limits or http.DEFAULT_LIMITS
        allowed[source.name] = limits.max_in_flight
    if os.environ.get("OKR_BENCH_IN_FLIGHT"):
        allowed = dict.fromkeys(allowed, int(os.environ["OKR_BENCH_IN_FLIGHT"]))
    return allowed


def _allowed_text(allowed: Mapping[str, int]) -> str:
    return ", ".join(f"{api} {count}" for api, count in sorted(allowed.items()))


# --- the cases --------------------------------------------------------------------------------


def run_nightly(sandbox: ApiSandboxes, env: Mapping[str, str]) -> Run:
    return run_okr(sandbox, okr("run", "--date", str(NIGHTLY_AS_OF)), env, NIGHTLY_START)


def extra_nightly_pairs(
    sandbox: ApiSandboxes, last_round: Mapping[float, Mapping[str, str]], pairs: int
) -> list[float]:
    """`pairs` more nightly runs at the lowest and the highest latency, each pair back to
    back on the last round's warehouses (a nightly run replaces its days' rows, so each
    run does the same work), the order swapped every other pair: the walls' differences,
    slow minus fast."""
    low, high = min(last_round), max(last_round)
    differences = []
    for pair in range(pairs):
        walls = {}
        for latency in (low, high) if pair % 2 == 0 else (high, low):
            sandbox.latency_seconds = latency
            walls[latency] = run_nightly(sandbox, last_round[latency]).wall
            sandbox.latency_seconds = 0.0
        differences.append(walls[high] - walls[low])
    if pairs > 0:
        print(f"  nightly, more pairs: {', '.join(f'{d:+.2f} s' for d in differences)}")
    return differences


def latency_cost(kind: str, latency: float, differences: Sequence[float], least: float) -> Figure:
    """The latency cost (the median of the paired walls' differences) against its floor.
    A median below zero is met: with the latency the run was no slower, within the noise
    the spread of the pairs shows."""
    cost = statistics.median(differences)
    ratio = cost / least if least else float("inf")
    pairs = f"{len(differences)} pair{'s' * (len(differences) > 1)}"
    spread = f"{min(differences):+.2f}..{max(differences):+.2f} s"
    return Figure(
        f"20 KRs, {kind}: latency cost at {latency * 1000:.0f} ms / floor",
        f"{cost:.2f} s / {least:.2f} s (median of {pairs}: {spread})",
        ratio,
        "<= 1.5x",
        ratio <= 1.5,
    )


def quarter_runs(scale: Scale, report: Report, allowed: Mapping[str, int], work: Path) -> None:
    """The 20-KR quarter's backfill and nightly run at each latency, `scale.repeats` times
    (medians), an import floor measured before each round (their median is the floor)."""
    definitions = work / "defs-20"
    write_definitions(definitions, QUARTER, krs=20, keys=scale.keys)
    sandbox = ApiSandboxes(
        data=SandboxData(first_day=DATA_FIRST_DAY, now=HORIZON, volume=dict(scale.volume))
    )
    with sandbox:
        started = time.perf_counter()
        warm(sandbox, scale.keys, 20)
        print(f"  (sandbox data generated in {time.perf_counter() - started:.1f} s)")
        volumes = describe_volume(sandbox, scale.keys)
        print(f"  data in the quarter: {volumes}")
        rounds: dict[float, list[tuple[Run, Run]]] = {latency: [] for latency in scale.latencies}
        last_round: dict[float, dict[str, str]] = {}
        floors = []
        for round_number in range(scale.repeats):
            floors.append(import_floor())
            for latency in scale.latencies:
                folder = work / f"quarter-{int(latency * 1000)}ms-{round_number}"
                folder.mkdir()
                env = base_env(folder, definitions, sandbox.urls)
                sandbox.latency_seconds = latency
                backfill = run_okr(
                    sandbox,
                    okr("backfill", "--from", str(START), "--to", str(BACKFILL_END)),
                    env,
                    START,
                )
                nightly = run_nightly(sandbox, env)
                sandbox.latency_seconds = 0.0
                last_round[latency] = env
                rounds[latency].append((backfill, nightly))
                print(
                    f"  round {round_number + 1}, {latency * 1000:.0f} ms: backfill "
                    f"{backfill.wall:.2f} s, nightly {nightly.wall:.2f} s (floor {floors[-1]:.2f} s)"
                )
        # Paired within each round (the runs minutes apart, not a round apart): the
        # machine's drift over the rounds cancels out of each difference.
        differences = {
            kind: [
                slow[index].wall - fast[index].wall
                for slow, fast in zip(rounds[max(rounds)], rounds[min(rounds)], strict=True)
            ]
            for index, kind in enumerate(("backfill", "nightly"))
        }
        if len(rounds) > 1:
            differences["nightly"] += extra_nightly_pairs(
                sandbox, last_round, scale.nightly_pairs - scale.repeats
            )
        floor = statistics.median(floors)
        results = {
            latency: (
                median_run([backfill for backfill, _ in runs]),
                median_run([nightly for _, nightly in runs]),
            )
            for latency, runs in rounds.items()
        }
    report.tables.append(quarter_table(results, allowed, volumes))
    print(report.tables[-1])
    low, high = min(results), max(results)
    for index, kind in enumerate(("backfill", "nightly")):
        for latency, runs in results.items():
            run = runs[index]
            ratio = run.requests / max(1, run.fewest)
            report.add(
                Figure(
                    f"20 KRs, {kind} at {latency * 1000:.0f} ms: requests / fewest",
                    f"{run.requests:,} / {run.fewest:,}",
                    ratio,
                    "<= 1.05x",
                    ratio <= 1.05,
                )
            )
        if high > low:
            slow = results[high][index]
            least = latency_floor(slow.minimum, high, allowed)
            report.add(latency_cost(kind, high, differences[kind], least))
        run = results[low][index]
        limit = 2.0 if kind == "backfill" else 1.5
        report.add(
            Figure(
                f"20 KRs, {kind} at {low * 1000:.0f} ms: wall / import floor",
                f"{run.wall:.2f} s / {floor:.2f} s",
                run.wall / floor,
                f"<= {limit}x",
                run.wall / floor <= limit,
            )
        )


def describe_volume(sandbox: ApiSandboxes, keys: Keys) -> str:
    """What the quarter holds in the sandbox: pull requests, issues, deals, GA4 rows."""
    first, last = f"{START}", f"{NIGHTLY_AS_OF}T23:59:59Z"
    data = sandbox.data
    repos = {keys.repo(i) for i in range(keys.repos)}
    pulls = sum(
        1
        for repo in repos
        for pull in data.github.pulls(repo)
        if first <= pull["created_at"] <= last
    )
    projects = {keys.project(i) for i in range(keys.projects)}
    issues = sum(
        1
        for project in projects
        for issue in data.jira.issues(project)
        if START <= issue.created.date() <= NIGHTLY_AS_OF
    )
    deals = sum(
        1
        for deal in data.salesforce.records("Opportunity")
        if START <= _as_date(deal["CloseDate"]) <= NIGHTLY_AS_OF
    ) + sum(
        1
        for deal in data.hubspot.records("deals")
        if first <= str(deal.get("properties", deal).get("closedate", "")) <= last
    )
    properties = {keys.property(i) for i in range(keys.properties)}
    rows = sum(
        1
        for prop in properties
        for fact in data.google_analytics.facts(prop)
        if START <= fact.day <= NIGHTLY_AS_OF
    )
    return (
        f"{pulls:,} pull requests in {len(repos)} repositories, {issues:,} Jira issues in "
        f"{len(projects)} projects, {deals:,} CRM deals (Salesforce and HubSpot), {rows:,} GA4 "
        f"facts over {len(properties)} properties"
    )


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def quarter_table(
    results: Mapping[float, tuple[Run, Run]], allowed: Mapping[str, int], volumes: str
) -> str:
    lines = [
        f"The 20-KR quarter ({volumes}); requests in flight allowed per API: {_allowed_text(allowed)}.",
        "",
        "| run | latency | wall (s) | requests | fewest | requests / fewest | floor (s) "
        "| per API: made / fewest |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for latency, runs in results.items():
        for kind, run in zip(("backfill", "nightly"), runs, strict=True):
            per_api = ", ".join(
                f"{api} {run.made.get(api, 0)}/{run.minimum.get(api, 0)}"
                for api in sorted(set(run.made) | set(run.minimum))
            )
            lines.append(
                f"| {kind} | {latency * 1000:.0f} ms | {run.wall:.2f} | {run.requests:,} "
                f"| {run.fewest:,} | {run.requests / max(1, run.fewest):.2f}x "
                f"| {latency_floor(run.minimum, latency, allowed):.2f} | {per_api} |"
            )
    return "\n".join(lines)


def big_run(scale: Scale, report: Report, work: Path) -> None:
    """A quarter's backfill of `scale.big_krs` KRs at 0 ms, `scale.repeats` times: the
    median wall time against the median of import floors measured between the runs, and
    the highest peak memory."""
    definitions = work / "defs-big"
    write_definitions(definitions, QUARTER, krs=scale.big_krs, keys=scale.big_keys)
    sandbox = ApiSandboxes(data=SandboxData(first_day=DATA_FIRST_DAY, now=HORIZON))
    with sandbox:
        warm(sandbox, scale.big_keys, scale.big_krs)
        runs, floors = [], []
        for round_number in range(scale.repeats):
            floors.append(import_floor())
            folder = work / f"big-{round_number}"
            folder.mkdir()
            env = base_env(folder, definitions, sandbox.urls)
            runs.append(
                run_okr(
                    sandbox,
                    okr("backfill", "--from", str(START), "--to", str(BACKFILL_END)),
                    env,
                    START,
                )
            )
            print(
                f"  round {round_number + 1}: {runs[-1].wall:.2f} s, {runs[-1].peak_mib:.0f} MiB "
                f"(floor {floors[-1]:.2f} s)"
            )
    run, floor = median_run(runs), statistics.median(floors)
    report.add(
        Figure(
            f"{scale.big_krs:,} KRs, backfill at 0 ms: wall / import floor",
            f"{run.wall:.2f} s / {floor:.2f} s",
            run.wall / floor,
            "<= 4x",
            run.wall / floor <= 4,
        )
    )
    report.add(
        Figure(
            f"{scale.big_krs:,} KRs, backfill: peak memory",
            f"{run.peak_mib:.0f} MiB",
            run.peak_mib / 400,
            "< 400 MiB",
            run.peak_mib < 400,
        )
    )
    ratio = run.requests / max(1, run.fewest)
    report.add(
        Figure(
            f"{scale.big_krs:,} KRs, backfill: requests / fewest",
            f"{run.requests:,} / {run.fewest:,}",
            ratio,
            "<= 1.05x",
            ratio <= 1.05,
        )
    )


def dlt_case(scale: Scale, report: Report, work: Path) -> None:
    """The GitHub pull requests of the quarter: dlt's rest_api (`dlt_github.py`) against
    our connector's fetch alone (`github_fetch.py`) and against `okr backfill`, each in a
    fresh process on the same sandbox, `scale.repeats` rounds of the three (the median of
    each).

    The target (dlt at least 5x slower) is judged on the fetch alone: that is what dlt's
    process does (read the listings, write the records), while `okr backfill` also pays
    the import floor (Dagster, pandas, SQLAlchemy, Great Expectations: longer than the
    fetch) and the Dagster run, validation and warehouse writes, which dlt has no part
    of. The end-to-end ratio is printed too.
    """
    try:
        dlt_version = metadata.version("dlt")
    except metadata.PackageNotFoundError:
        report.add(Figure("dlt comparison", "skipped: pip install -e '.[bench]'"))
        return
    keys = Keys(properties=1, repos=scale.keys.repos, projects=1)
    definitions = work / "defs-github"
    definitions.mkdir()
    _github_definitions(definitions, keys)
    sandbox = ApiSandboxes(
        data=SandboxData(first_day=DATA_FIRST_DAY, now=HORIZON, volume={"github": scale.dlt_volume})
    )
    here = Path(__file__).resolve().parent
    with sandbox:
        repos = [keys.repo(i) for i in range(keys.repos)]
        for repo in repos:
            sandbox.data.github.pulls(repo)
        settle()
        pulls = sum(
            1
            for repo in repos
            for pull in sandbox.data.github.pulls(repo)
            if pull["state"] == "closed" and pull["updated_at"] >= f"{START}"
        )
        fetch_argv = [
            sys.executable,
            str(here / "github_fetch.py"),
            *("--from", str(START), "--to", str(BACKFILL_END)),
            *repos,
        ]
        backfill = okr("backfill", "--from", str(START), "--to", str(BACKFILL_END))
        dlt_env = {**os.environ, "GITHUB_TOKEN": SANDBOX_TOKEN}
        sandbox.latency_seconds = scale.dlt_latency
        rounds: list[tuple[Run, Run, Run]] = []
        for round_number in range(scale.repeats):
            folder = work / f"github-okr-{round_number}"
            folder.mkdir()
            env = base_env(folder, definitions, sandbox.urls)
            theirs_argv = [
                sys.executable,
                str(here / "dlt_github.py"),
                "--base-url",
                sandbox.urls["github"],
                "--since",
                f"{START}T00:00:00Z",
                "--folder",
                str(work / f"github-dlt-{round_number}"),
                *repos,
            ]
            rounds.append(
                (
                    run_okr(sandbox, backfill, env, START),
                    run_okr(sandbox, fetch_argv, env, START),
                    run_okr(sandbox, theirs_argv, dlt_env, START),
                )
            )
            print(
                f"  round {round_number + 1}: okr backfill {rounds[-1][0].wall:.2f} s, "
                f"our fetch {rounds[-1][1].wall:.2f} s, dlt {rounds[-1][2].wall:.2f} s"
            )
    ours, fetch, theirs = (median_run([runs[kind] for runs in rounds]) for kind in range(3))
    print(f"  ours: {fetch.output.strip().splitlines()[-1:]}")
    print(f"  dlt {dlt_version}: {theirs.output.strip().splitlines()[-1:]}")
    at = f"{pulls:,} closed PRs at {scale.dlt_latency * 1000:.0f} ms"
    ratio = theirs.wall / fetch.wall
    report.add(
        Figure(
            f"{at}: dlt wall / our fetch",
            f"{theirs.wall:.2f} s / {fetch.wall:.2f} s",
            ratio,
            ">= 5x",
            ratio >= 5,
        )
    )
    report.add(
        Figure(
            "  (requests: our fetch / dlt)",
            f"{fetch.requests:,} / {theirs.requests:,}",
        )
    )
    report.add(
        Figure(
            f"{at}: dlt wall / okr backfill",
            f"{theirs.wall:.2f} s / {ours.wall:.2f} s",
            theirs.wall / ours.wall,
            "(end to end)",
        )
    )


def _github_definitions(folder: Path, keys: Keys) -> None:
    import yaml

    key_results = [
        {
            "id": f"merged-{index}",
            "title": f"Merged pull requests of {keys.repo(index)}",
            "type": "increase",
            "start": 0,
            "target": 10_000,
            "metric": {
                "source": "github",
                "repo": keys.repo(index),
                "count": "merged_pull_requests",
                "aggregate": "sum",
            },
        }
        for index in range(keys.repos)
    ]
    document = {
        "quarter": QUARTER,
        "timezone": "UTC",
        "objectives": [{"id": "ship", "title": "Ship", "owner": "eng", "key_results": key_results}],
    }
    (folder / f"{QUARTER}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))


def scoring_case(scale: Scale, report: Report) -> None:
    """KR-days scored a second by `score_key_results`, over the inputs of
    `benchmarks/scoring.py` (every KR type) where it is present, else of `_score_rate`."""
    krs = 1000 if scale.name == "full" else 200
    try:
        import scoring  # benchmarks/scoring.py: its realistic quarter of every KR type
    except ImportError:
        scoring = None
    if scoring is not None and hasattr(scoring, "quarter_inputs"):
        from okr_metrics.pipelines.scoring.rules import score_key_results

        _objectives, key_results, observations = scoring.quarter_inputs(krs)
        quarter = scoring.QUARTER
        days = [quarter.start + timedelta(days=offset) for offset in range(quarter.days)]
        seconds = scoring.timed(
            lambda: score_key_results(key_results, quarter, observations, days), 21
        )
        rate = len(key_results) * len(days) / seconds
    else:
        rate = _score_rate(krs)
    report.add(
        Figure(
            "scoring: KR-days a second",
            f"{rate:,.0f}",
            rate / 1_000_000,
            ">= 1,000,000",
            rate >= 1_000_000,
        )
    )


def _score_rate(krs: int) -> float:
    import numpy as np
    import pandas as pd

    from okr_metrics.pipelines.scoring.rules import KeyResultInput, score_key_results
    from okr_metrics.pipelines.vocabulary.quarters import Quarter

    quarter = Quarter.parse(QUARTER)
    days = pd.date_range(quarter.start, quarter.end).date
    rng = np.random.default_rng(3)
    key_results = [
        KeyResultInput(
            kr_id=f"kr-{i}",
            objective_id=f"o-{i // 4}",
            title=f"KR {i}",
            owner="team",
            kr_type="increase",
            start=0.0,
            target=1000.0,
            weight=1.0,
            aggregate=["sum", "latest", "mean_7d", "max"][i % 4],
            metric_key=f"series-{i}",
        )
        for i in range(krs)
    ]
    observations = pd.DataFrame(
        {
            "metric_key": np.repeat([f"series-{i}" for i in range(krs)], len(days)),
            "date": np.tile(days, krs),
            "value": rng.uniform(0, 20, size=krs * len(days)),
        }
    )
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        score_key_results(key_results, quarter, observations, list(days))
        best = min(best, time.perf_counter() - started)
    return krs * len(days) / best


def warehouse_case(report: Report, postgres_url: str | None, quick: bool) -> None:
    """The warehouse's bulk write against the database's own bulk path, same rows."""
    import warehouse_writes

    krs = 100 if quick else 1000
    frames = warehouse_writes.year_of_scores(krs)
    targets = [("sqlite", None)] + ([("postgresql", postgres_url)] if postgres_url else [])
    for database, url in targets:
        ours, native = warehouse_writes.bulk_against_native(database, url, frames)
        report.add(
            Figure(
                f"warehouse writes, {database}: ours / the database's bulk path",
                f"{ours:,.0f} / {native:,.0f} rows/s",
                ours / native,
                "(no target)",
            )
        )


# --- the page ---------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "CPU": cpu,
        "cores": str(cores),
        "RAM": ram,
        "OS": f"{platform.system()} {platform.release()} ({platform.platform()})",
    }


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in ("dagster", "pandas", "SQLAlchemy", "great-expectations", "dlt"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    described = git("log", "-1", "--format=%h (%cs)")
    branch = git("rev-parse", "--abbrev-ref", "HEAD")
    dirty = (
        " with uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else ""
    )
    return f"{described} on branch `{branch}`{dirty}"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: other work on the machine slows every figure."""
    try:
        return " / ".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


# Printed under the figures that missed their target, whichever they are.
TARGETS_NOT_MET_NOTE = [
    "A figure near its target can land on either side from one run to the next: the",
    "machine's speed drifts over minutes (compare the import floors of the rounds, printed",
    "as the bench runs). The wall times are CPU-bound: one `okr` process runs Python on one",
    "core, so every import, page parsed, Dagster event and warehouse row adds up.",
]


def write_page(
    path: Path, scale: Scale, report: Report, seconds: float, measured: str, load: str
) -> None:
    lines = [
        "# Benchmarks",
        "",
        "What `make bench` measured (benchmarks/pipeline_runs.py; the warehouse alone:",
        "benchmarks/warehouse_writes.py). Every figure is beside its baseline, measured in",
        "the same run, and its target.",
        "",
        f"Measured at commit {measured}, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"scale `{scale.name}`, in {seconds / 60:.1f} minutes.",
        "",
        "## Machine",
        "",
        *[f"- {key}: {value}" for key, value in machine().items()],
        f"- load average (1 / 5 / 15 min) as the run started: {load}; as it ended: "
        f"{load_average()}",
        "",
        "## Versions",
        "",
        *[f"- {key} {value}" for key, value in versions().items()],
        "",
        "## Figures",
        "",
        "| figure | value | ratio | target | met |",
        "| --- | ---: | ---: | --- | --- |",
    ]
    for figure in report.figures:
        ratio = f"{figure.ratio:.2f}x" if figure.ratio is not None else ""
        met = {True: "yes", False: "**no**", None: ""}[figure.met]
        lines.append(
            f"| {figure.name.strip()} | {figure.value} | {ratio} | {figure.target} | {met} |"
        )
    missed = [figure for figure in report.figures if figure.met is False]
    lines += ["", "## Targets not met", ""]
    if missed:
        lines += [
            f"- {figure.name.strip()}: {figure.value}, {figure.ratio:.2f}x against {figure.target}."
            for figure in missed
        ]
        lines += ["", *TARGETS_NOT_MET_NOTE]
    else:
        lines.append("None: every figure with a target met it in this run.")
    lines += ["", "## Runs", ""]
    for table in report.tables:
        lines += [table, ""]
    lines += [
        "## How the figures are made",
        "",
        f'- Import floor: a fresh `python -c "{IMPORT_FLOOR_CODE}"` process. Each case '
        f"measures one before each of its {scale.repeats} rounds and divides by their median "
        "(the machine's speed drifts over a run of minutes); the first row is the median of "
        f"{scale.repeats} taken at the start.",
        "- Runs: `okr backfill --from 2026-07-01 --to 2026-09-29`, then `okr run --date "
        "2026-09-30` (3 trailing days) on the same warehouse, each a fresh process, against "
        "the sandbox served by the benchmark with `latency_seconds` set; the sandbox's data "
        f"is generated before the clock starts. Each run {scale.repeats} times, on a new "
        "warehouse each round; the figures are the median run's (peak memory: the highest).",
        "- Fewest requests: per distinct query the run made (a request without its paging), "
        "the pages its needed items fill at the API's largest page size (GitHub 100, Jira "
        "100, GA4 250,000 rows with up to 10 metrics a report, Salesforce 2,000, HubSpot "
        "200); GitHub's newest-first lists count down to the oldest item the window needs. "
        "GA4 reports differing only in their metrics count as one query; other queries the "
        "run kept apart are not merged.",
        "- Floor: the slowest API's fewest pages x latency / the requests it may have in "
        "flight; latency cost: wall at 50 ms minus wall at 0 ms, paired (runs of the same "
        "round, so the machine's drift over the rounds cancels out of each difference), the "
        f"median of the pairs' differences: the backfill's {scale.repeats} rounds; the "
        f"nightly's {scale.nightly_pairs} pairs, its rounds' and more run back to back on their "
        "last warehouses, the order swapped every other pair (its cost is a fraction of a "
        "second against walls of seconds). The value shows the pairs' spread.",
        "- dlt: `benchmarks/dlt_github.py`, one `rest_api` resource per repository "
        "(parallelized, header-link paging, an incremental `updated_at` cursor that stops "
        "the newest-first list at the window), loaded to `jsonl` files, against "
        "`benchmarks/github_fetch.py` (the connector's `daily_series_many` for the same "
        "series, importing the connector only: the like-for-like figure) and `okr backfill` "
        "(end to end: imports, Dagster run, validation, warehouse); each a fresh process, "
        f"{scale.repeats} rounds of the three, the median of each.",
        "- Peak memory: the `okr` process's own high-water mark of resident memory (`VmHWM`, "
        "read from /proc while it runs; `wait4`'s figure would carry the benchmark's own).",
        "- Scoring: `score_key_results` over `benchmarks/scoring.py`'s quarter of 1,000 KRs of "
        "every type (92 days), the best of 21 runs in CPU seconds of this process; "
        "`benchmarks/scoring.py` also checks its rows against the KR-by-KR baseline.",
        "",
        "## Reproduce",
        "",
        "    make bench                                   # both benchmarks, SQLite and PostgreSQL",
        "    .venv/bin/pip install -e '.[dev,bench]'",
        "    .venv/bin/python benchmarks/pipeline_runs.py # this page",
        "    .venv/bin/python benchmarks/pipeline_runs.py --quick  # ~2 minutes, smaller volumes",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get("OKR_BENCH_QUICK") == "1",
        help="smaller volumes, to check the harness (also OKR_BENCH_QUICK=1)",
    )
    parser.add_argument(
        "--output", type=Path, default=None, help="default: BENCHMARKS.md (quick: print only)"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("OKR_BENCH_POSTGRES_URL") or os.environ.get("OKR_TEST_POSTGRES_URL"),
        help="PostgreSQL for the warehouse figures (default $OKR_BENCH_POSTGRES_URL)",
    )
    parser.add_argument(
        "--latency-ms",
        default=None,
        help="sandbox latencies of the 20-KR runs, comma-separated (default 0,50)",
    )
    parser.add_argument(
        "--dlt-latency-ms", type=float, default=None, help="latency of the dlt case (default 20)"
    )
    args = parser.parse_args(argv)
    scale = QUICK if args.quick else FULL
    if args.latency_ms:
        latencies = tuple(float(ms) / 1000 for ms in args.latency_ms.split(","))
        scale = dataclasses.replace(scale, latencies=latencies)
    if args.dlt_latency_ms is not None:
        scale = dataclasses.replace(scale, dlt_latency=args.dlt_latency_ms / 1000)
    output = args.output or (None if args.quick else ROOT / "BENCHMARKS.md")
    started = time.perf_counter()
    measured = commit()  # the code as the run starts
    load = load_average()
    report = Report()
    allowed = in_flight()
    print(
        f"pipeline benchmark, scale {scale.name}; requests in flight per API: "
        f"{_allowed_text(allowed)}"
    )
    floors = [import_floor() for _ in range(scale.repeats)]
    report.add(
        Figure(
            "import floor (dagster, pandas, SQLAlchemy, GE)",
            f"{statistics.median(floors):.2f} s (of {min(floors):.2f}..{max(floors):.2f})",
        )
    )
    with tempfile.TemporaryDirectory(prefix="okr-bench-") as folder:
        work = Path(folder)
        quarter_runs(scale, report, allowed, work)
        dlt_case(scale, report, work)
        big_run(scale, report, work)
    scoring_case(scale, report)
    warehouse_case(report, args.postgres_url, args.quick)
    seconds = time.perf_counter() - started
    print(f"done in {seconds:.0f} s")
    if output is not None:
        write_page(output, scale, report, seconds, measured, load)
        print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
