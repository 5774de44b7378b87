"""Benchmark: collecting every sample source at once against one by one, and Great
Expectations over a run's series in one batch against one suite run per series.

Not a test: it prints timings. Each source gets a sandbox of its own (its own host, as
each vendor is, so each has its own limiter), serving the sample data frozen in time, and
the shipped definitions are collected over 2026-10-01..2026-11-15 at 0 ms and 50 ms of
sandbox latency per request:

- one by one (the baseline, in the same process): `collect_sources(max_workers=0)`
  against sandboxes whose hosts take one request at a time (`HostLimits(1)`), so sources,
  series and pages go one after another;
- at once: `collect_sources` with each source on its own thread and each host's
  published or default limits (numbered GitHub pages side by side).

Both write a scratch SQLite warehouse; the times include validation and storage. Then
every series of the run is validated once per series (`validate_series`, one suite run
each: what a run did before) and in one batch (`validate_many`), in the same process,
after Great Expectations' import and setup (timed apart).

    python benchmarks/concurrency.py
    python benchmarks/concurrency.py --latency 0 --latency 0.05 --latency 0.2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, date, datetime
from pathlib import Path

from okr_metrics.connectors.base import Connector, SourceSettings
from okr_metrics.connectors.http import HostLimits, HttpConnector
from okr_metrics.connectors.registry import connected_sources
from okr_metrics.connectors.sandbox import Sandbox
from okr_metrics.connectors.sandbox.data import SandboxData
from okr_metrics.pipelines.definitions import load_definitions
from okr_metrics.pipelines.jobs.collect import (
    collect_sources,
    declared_expectations,
    series_requests,
)
from okr_metrics.pipelines.validation.expectations import (
    SeriesToValidate,
    validate_many,
    validate_series,
)
from okr_metrics.warehouse.store import Warehouse

REPO = Path(__file__).resolve().parents[1]
START, END = date(2026, 10, 1), date(2026, 11, 15)
HORIZON = datetime(2026, 11, 16, 6, 0, tzinfo=UTC)
ONE_AT_A_TIME = HostLimits(max_in_flight=1)


def connectors(
    sandboxes: dict[str, Sandbox], limits: HostLimits | None
) -> dict[str, tuple[Connector | None, str | None]]:
    built: dict[str, tuple[Connector | None, str | None]] = {}
    for name, source in connected_sources().items():
        cls = source.connector_class()
        settings = SourceSettings(
            base_url=sandboxes[name].url, token="bench-token", user="bench@example.com"
        )
        if issubclass(cls, HttpConnector):
            options = {"limits": limits} if limits else {}
            built[name] = (cls.from_settings(settings, **options), None)
        else:
            built[name] = (cls.from_settings(settings), None)
    return built


def timed_collect(
    sandboxes: dict[str, Sandbox],
    limits: HostLimits | None,
    max_workers: int | None,
    latency: float = 0.0,
) -> tuple[float, float, dict[str, tuple[float, int]]]:
    """Seconds for one collect of every source, of its fetching alone (from the first
    source's start to the last one's end), and each source's fetching seconds and API
    requests."""
    definitions = load_definitions(REPO / "okr_defs")
    for sandbox in sandboxes.values():
        sandbox.reset()  # no requests recorded yet, no latency
        sandbox.latency_seconds = latency
    with tempfile.TemporaryDirectory() as folder:
        warehouse = Warehouse(f"sqlite:///{Path(folder) / 'warehouse.db'}")
        warehouse.ensure_schema()
        built = connectors(sandboxes, limits)
        began = time.perf_counter()
        results = collect_sources(
            built, definitions, START, END, warehouse, "bench", lambda line: None, max_workers
        )
        seconds = time.perf_counter() - began
        warehouse.engine.dispose()
    failed = {name: r.failures for name, r in results.items() if not r.ok}
    if failed:
        raise SystemExit(f"a source failed in the benchmark: {failed}")
    fetched = [r for r in results.values() if r.fetch_began is not None]
    began = min(r.fetch_began for r in fetched if r.fetch_began is not None)
    fetching = max((r.fetch_began or 0.0) + r.fetch_seconds for r in fetched) - began
    per_source = {
        name: (results[name].fetch_seconds, sandbox.request_count())
        for name, sandbox in sandboxes.items()
    }
    return seconds, fetching, per_source


def start_sandboxes(stack: ExitStack, data: SandboxData) -> dict[str, Sandbox]:
    return {name: stack.enter_context(Sandbox(data=data)) for name in connected_sources()}


def requests_benchmark(latencies: list[float]) -> None:
    data = SandboxData(now=HORIZON)
    with ExitStack() as stack:
        one_by_one = start_sandboxes(stack, data)
        at_once = start_sandboxes(stack, data)
        # Warm up: imports, Great Expectations' setup, connections.
        timed_collect(at_once, None, None)
        print("\ncollect every sample source, 2026-10-01..2026-11-15")
        print("  fetching: the requests' wall time; whole: fetch, validate, store")
        print(
            f"  {'latency':>7} {'requests':>9}  {'fetching: one by one':>20} {'at once':>8} "
            f"{'ratio':>6}  {'whole: one by one':>17} {'at once':>8} {'ratio':>6}"
        )
        slowest = []
        for latency in latencies:
            whole, fetching, sources = timed_collect(one_by_one, ONE_AT_A_TIME, 0, latency)
            whole_at_once, fetching_at_once, sources_at_once = timed_collect(
                at_once, None, None, latency
            )
            sent = sum(requests for _, requests in sources.values())
            assert sent == sum(requests for _, requests in sources_at_once.values())
            name, (seconds, requests) = max(sources_at_once.items(), key=lambda item: item[1])
            slowest.append(
                f"{latency * 1000:.0f} ms: {name}, {requests} requests in {seconds:.2f}s"
            )
            print(
                f"  {latency * 1000:>5.0f}ms {sent:>9}  {fetching:>19.2f}s "
                f"{fetching_at_once:>7.2f}s {fetching / fetching_at_once:>5.1f}x  "
                f"{whole:>16.2f}s {whole_at_once:>7.2f}s {whole / whole_at_once:>5.1f}x"
            )
        # Its pages chain (each names the next): what bounds the run's fetching at once.
        print("  the slowest source at once, " + "; ".join(slowest))


def validation_benchmark(repeat: int) -> None:
    data = SandboxData(now=HORIZON)
    definitions = load_definitions(REPO / "okr_defs")
    items: list[SeriesToValidate] = []
    with ExitStack() as stack:
        sandboxes = start_sandboxes(stack, data)
        for name, (connector, _) in connectors(sandboxes, None).items():
            assert connector is not None
            for request in series_requests(definitions, name, START, END):
                series = connector.daily_series(request)
                declared = declared_expectations(request.expectations)
                kind = request.metric.series_kind()
                items.append(SeriesToValidate(series, kind, request.start, request.end, declared))
    began = time.perf_counter()
    validate_series(items[0].raw, items[0].kind, items[0].start, items[0].end)
    setup = time.perf_counter() - began

    def per_series() -> None:
        for item in items:
            validate_series(item.raw, item.kind, item.start, item.end, item.declared)

    def batch() -> None:
        validate_many(items)

    timings = {}
    for name, run in (("one suite run per series", per_series), ("one batch", batch)):
        best = float("inf")
        for _ in range(repeat):
            began = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - began)
        timings[name] = best
    print(f"Great Expectations over the run's {len(items)} series (best of {repeat})")
    print(f"  import and setup (once a process): {setup:.2f}s")
    for name, seconds in timings.items():
        print(f"  {name:<26} {seconds:>6.3f}s  {seconds / len(items) * 1000:>6.1f} ms a series")
    ratio = timings["one suite run per series"] / timings["one batch"]
    print(f"  ratio: {ratio:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--latency", type=float, action="append", help="seconds per request (repeatable)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="validation runs to take the best of")
    arguments = parser.parse_args()
    validation_benchmark(arguments.repeat)  # first: its setup time includes GX's import
    requests_benchmark(arguments.latency or [0.0, 0.05])


if __name__ == "__main__":
    main()
