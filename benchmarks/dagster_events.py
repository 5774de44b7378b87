"""Benchmark: what Dagster's own bookkeeping costs a backfill, and the ways to cut it.

Not a test: it prints wall times and the events each run stored, with ratios against
the way runs were made before (one asset per source, Dagster's stock SQLite storage),
measured in the same process. Every variant backfills the same 20-KR quarter (the sample
2026-Q4 definitions moved to 2026-Q3, four KRs added) from the sandbox at zero latency,
then runs a nightly window (its last 3 days), each on a fresh Dagster home and warehouse:

- `stock sqlite, asset per source`: the former way (Dagster's `storage: sqlite:`);
- `held sqlite, asset per source`: this project's storage (`HeldSqliteStorage`: one engine
  per database file, connections kept open, synchronous=NORMAL);
- `held sqlite, one observations step`: the sources as one multi_asset step that fetches
  them at once (`collect_sources`), the in-process default;
- `... + planned range events`: Dagster's DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS,
  one "planned" event per asset for the whole range instead of one per day (not adopted:
  the UI then no longer shows a day of a failed run as failed);
- `held sqlite, one step + DAGSTER_EVENT_BATCH_SIZE=100`: Dagster hands the per-partition
  events to `store_event_batch` in groups (`HeldSqliteEventLogStorage`: one transaction
  per shard a group), the default since the instance sets it when it loads; the variants
  above run with it at 0, one event at a time;
- with `--postgres-url`, the same on PostgreSQL (dagster-postgres), with and without
  DAGSTER_EVENT_BATCH_SIZE.

Before the runs, it stores one quarter backfill's per-partition events (10 assets x 91
days: the planned events in one group, each asset's materializations in another) through
`DagsterInstance.handle_new_event`, as a run does, one by one and in batches of several
sizes, on this project's SQLite storage and, with `--postgres-url`, on PostgreSQL: the
figures that chose DEFAULT_EVENT_BATCH_SIZE. It also times, in a fresh interpreter,
importing dagster, pandas, SQLAlchemy and Great Expectations: the floor any run pays.

    python benchmarks/dagster_events.py
    python benchmarks/dagster_events.py --events-only       # the event batches only (~1 min)
    python benchmarks/dagster_events.py --repeat 3 --postgres-url postgresql+psycopg2://...
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
QUARTER_START, QUARTER_END = date(2026, 7, 1), date(2026, 9, 30)
NIGHTLY_START = QUARTER_END - timedelta(days=2)
HORIZON = datetime(2026, 10, 1, 6, 0, tzinfo=UTC)
EXTRA_KRS = ("dau", "mobile-releases", "new-smb-customers", "tickets-within-2h")
IMPORTS = "import dagster, pandas, sqlalchemy, great_expectations"
BATCH = "DAGSTER_EVENT_BATCH_SIZE"
OFF, ON = {BATCH: "0"}, {BATCH: "100"}
# The event batches: the quarter backfill's assets and days, and the group sizes tried.
EVENT_ASSETS, EVENT_DAYS = 10, 91
BATCH_SIZES = (0, 10, 50, 100, 250, 1000)


def import_seconds() -> float:
    """The time a fresh interpreter takes to import the four heavy libraries."""
    began = time.perf_counter()
    subprocess.run([sys.executable, "-W", "ignore", "-c", IMPORTS], check=True)
    return time.perf_counter() - began


def write_definitions(folder: Path) -> int:
    """The 20-KR quarter: 2026-Q4's sample file as 2026-Q3, its check-ins moved with it."""
    document = yaml.safe_load((REPO / "okr_defs" / "2026-Q4.yaml").read_text())
    document["quarter"] = "2026-Q3"
    key_results = {kr["id"]: kr for o in document["objectives"] for kr in o["key_results"]}
    quarter_shift = date(2026, 10, 1) - QUARTER_START
    for kr in key_results.values():
        for checkpoint in kr.get("checkpoints", []):
            checkpoint["date"] = checkpoint["date"] - quarter_shift
    document["objectives"].append(
        {
            "id": "benchmark-copies",
            "title": "Copies of four KRs, for a 20-KR quarter",
            "owner": "benchmark",
            "key_results": [{**key_results[kr_id], "id": f"{kr_id}-copy"} for kr_id in EXTRA_KRS],
        }
    )
    (folder / "checkins").mkdir(parents=True)
    (folder / "2026-Q3.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    lines = (REPO / "okr_defs" / "checkins" / "2026-Q4.csv").read_text().splitlines()
    shifted = [lines[0]]
    for line in lines[1:]:
        kr_id, day, rest = line.split(",", 2)
        moved = date.fromisoformat(day) - (date(2026, 10, 1) - QUARTER_START)
        shifted.append(f"{kr_id},{moved},{rest}")
    (folder / "checkins" / "2026-Q3.csv").write_text("\n".join(shifted) + "\n")
    return sum(len(o["key_results"]) for o in document["objectives"])


@dataclass
class Variant:
    name: str
    storage: Callable[[Path], dict]  # the dagster.yaml `storage:` block for a home
    one_step: bool  # the sources as one multi_asset step
    environ: dict[str, str]


def held_sqlite(home: Path) -> dict:
    return yaml.safe_load((REPO / "dagster.yaml").read_text())["storage"]


def stock_sqlite(home: Path) -> dict:
    return {"sqlite": {"base_dir": str(home)}}


def postgres(url: str, schema: str) -> Callable[[Path], dict]:
    from sqlalchemy.engine import make_url

    parts = make_url(url)
    return lambda home: {
        "postgres": {
            "postgres_db": {
                "hostname": parts.host,
                "port": parts.port or 5432,
                "username": parts.username,
                "password": parts.password or "",
                "db_name": parts.database,
                "scheme": "postgresql+psycopg2",
                "params": {"options": f"-csearch_path={schema}"},
            }
        }
    }


@contextmanager
def environment(values: dict[str, str]):
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def backfill_events(run_id: str) -> tuple[list, list]:
    """One quarter backfill's planned and done materializations, as a run logs them."""
    from dagster import AssetKey, AssetMaterialization
    from dagster._core.definitions.data_version import DATA_VERSION_TAG
    from dagster._core.events import (
        AssetMaterializationPlannedData,
        DagsterEvent,
        DagsterEventType,
        StepMaterializationData,
    )
    from dagster._core.events.log import EventLogEntry

    def entry(event: DagsterEvent, step_key: str | None) -> EventLogEntry:
        return EventLogEntry(
            error_info=None,
            level=10,
            user_message="",
            run_id=run_id,
            timestamp=time.time(),
            step_key=step_key,
            job_name="okr_job",
            dagster_event=event,
        )

    days = [str(QUARTER_START + timedelta(days=n)) for n in range(EVENT_DAYS)]
    keys = [AssetKey(["okr", f"asset_{n}"]) for n in range(EVENT_ASSETS)]
    planned = [
        entry(
            DagsterEvent(
                event_type_value=DagsterEventType.ASSET_MATERIALIZATION_PLANNED.value,
                job_name="okr_job",
                event_specific_data=AssetMaterializationPlannedData(key, partition=day),
            ),
            None,
        )
        for key in keys
        for day in days
    ]
    done = [
        [
            entry(
                DagsterEvent(
                    event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value,
                    job_name="okr_job",
                    step_key=key.path[-1],
                    event_specific_data=StepMaterializationData(
                        AssetMaterialization(
                            key,
                            partition=day,
                            metadata={"rows": 20, "key_results": 20},
                            tags={DATA_VERSION_TAG: f"{key.path[-1]}-{day}"},
                        )
                    ),
                ),
                key.path[-1],
            )
            for day in days
        ]
        for key in keys
    ]
    return planned, done


def store_events(instance, batch_size: int) -> tuple[float, float]:
    """Seconds to store a backfill's planned events, then its materializations, through
    the instance as a run does (each group ends a batch)."""
    from uuid import uuid4

    from dagster._core.events import DagsterEventBatchMetadata

    run_id = str(uuid4())
    planned, done = backfill_events(run_id)
    # The run's own database (SQLite) is created when the run is, not by its events.
    with instance.event_log_storage.run_connection(run_id):
        pass
    figures = []
    with environment({BATCH: str(batch_size)}):
        for groups in ([planned], done):
            began = time.perf_counter()
            for group in groups:
                batch_id = str(uuid4())
                for n, entry in enumerate(group):
                    metadata = DagsterEventBatchMetadata(batch_id, n == len(group) - 1)
                    instance.handle_new_event(entry, batch_metadata=metadata)
            figures.append(time.perf_counter() - began)
    return figures[0], figures[1]


def event_batches(root: Path, postgres_url: str | None, schema: str | None, repeat: int) -> None:
    """Print the event batches' figures (module docstring), each against storing one by one."""
    from dagster import DagsterInstance

    storages = {"held sqlite": held_sqlite}
    if postgres_url and schema:
        storages["postgres"] = postgres(postgres_url, schema)
    events = EVENT_ASSETS * EVENT_DAYS
    print(f"\nstoring {events} planned, then {events} done materializations (best of {repeat}):")
    print(
        f"  {'storage':<12} {'batch':>6} {'planned':>8} {'x 1-by-1':>8} {'done':>7} {'x 1-by-1':>8}"
    )
    for name, storage in storages.items():
        home = Path(tempfile.mkdtemp(dir=root))
        (home / "dagster.yaml").write_text(
            yaml.safe_dump({"storage": storage(home), "telemetry": {"enabled": False}})
        )
        with (
            environment({"DAGSTER_HOME": str(home)}),
            DagsterInstance.from_config(str(home)) as instance,
        ):
            store_events(instance, 0)  # warm up: tables, connections, imports
            base = None
            for size in BATCH_SIZES:
                runs = [store_events(instance, size) for _ in range(repeat)]
                planned, done = min(run[0] for run in runs), min(run[1] for run in runs)
                base = base or (planned, done)
                label = size or "1-by-1"
                print(
                    f"  {name:<12} {label:>6} {planned:>7.3f}s {planned / base[0]:>8.2f} "
                    f"{done:>6.3f}s {done / base[1]:>8.2f}"
                )
        shutil.rmtree(home, ignore_errors=True)


def build_job(settings, resources, one_step: bool):
    """The okr job with the observation assets built one way or the other, in process."""
    from dagster import AssetSelection, Definitions, define_asset_job, in_process_executor

    from okr_metrics.connectors.registry import connected_sources
    from okr_metrics.pipelines.orchestration.assets import (
        build_observation_asset,
        build_observations_asset,
        build_score_assets,
    )
    from okr_metrics.pipelines.orchestration.partitions import daily_partitions
    from okr_metrics.pipelines.orchestration.report import build_report_asset
    from okr_metrics.pipelines.orchestration.resources import build_resources

    sources = list(connected_sources().values())
    if one_step:
        assets = [build_observations_asset(sources)]
    else:
        assets = [build_observation_asset(source) for source in sources]
    assets += [*build_score_assets(sources), build_report_asset()]
    job = define_asset_job(
        "okr_job",
        selection=AssetSelection.all(),
        partitions_def=daily_partitions,
        executor_def=in_process_executor,
    )
    definitions = Definitions(
        assets=assets,
        jobs=[job],
        resources={**build_resources(settings, sources), **resources},
    )
    return definitions.resolve_job_def("okr_job")


def run_variant(variant: Variant, root: Path, definitions: Path, sandbox_url: str) -> dict:
    from okr_metrics.pipelines.orchestration.resources import sandbox_resources
    from okr_metrics.pipelines.orchestration.runs import dagster_instance
    from okr_metrics.pipelines.orchestration.schedules import partition_range_tags
    from okr_metrics.pipelines.settings import Settings

    home = Path(tempfile.mkdtemp(dir=root))
    (home / "dagster.yaml").write_text(
        yaml.safe_dump({"storage": variant.storage(home), "telemetry": {"enabled": False}})
    )
    settings = Settings(
        warehouse_url=f"sqlite:///{home / 'warehouse.db'}",
        definitions_path=str(definitions),
        dagster_home=str(home),
        reports_dir=str(home / "reports"),
    )
    job = build_job(settings, sandbox_resources(settings, sandbox_url), variant.one_step)
    figures = {}
    with environment(variant.environ), dagster_instance(settings) as instance:
        for label, start in (("quarter", QUARTER_START), ("nightly", NIGHTLY_START)):
            began = time.perf_counter()
            result = job.execute_in_process(
                instance=instance,
                tags=partition_range_tags(start, QUARTER_END),
                raise_on_error=True,
                run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
            )
            seconds = time.perf_counter() - began
            kinds = Counter(
                entry.dagster_event.event_type_value
                for entry in instance.all_logs(result.run_id)
                if entry.dagster_event
            )
            figures[label] = (seconds, sum(kinds.values()), kinds)
    shutil.rmtree(home, ignore_errors=True)
    return figures


def main() -> None:
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per variant (best kept)")
    parser.add_argument("--postgres-url", default=os.environ.get("OKR_BENCH_POSTGRES_URL"))
    parser.add_argument("--events-only", action="store_true", help="the event batches only")
    args = parser.parse_args()

    from okr_metrics.connectors.sandbox import Sandbox
    from okr_metrics.connectors.sandbox.data import SandboxData

    floor = min(import_seconds() for _ in range(2))
    variants = [
        Variant("stock sqlite, asset per source", stock_sqlite, False, OFF),
        Variant("held sqlite, asset per source", held_sqlite, False, OFF),
        Variant("held sqlite, one observations step", held_sqlite, True, OFF),
        Variant(
            "held sqlite, one step + planned range events",
            held_sqlite,
            True,
            {**OFF, "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "1"},
        ),
        Variant("held sqlite, one step + DAGSTER_EVENT_BATCH_SIZE=100", held_sqlite, True, ON),
    ]
    schema = None
    if args.postgres_url:
        from sqlalchemy import create_engine, text

        schema = f"bench_dagster_{os.getpid()}"
        engine = create_engine(args.postgres_url)
        with engine.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        storage = postgres(args.postgres_url, schema)
        variants += [
            Variant("postgres, one observations step", storage, True, OFF),
            Variant("postgres, one step + DAGSTER_EVENT_BATCH_SIZE=100", storage, True, ON),
        ]
    root = Path(tempfile.mkdtemp(prefix="okr-bench-dagster-"))
    try:
        event_batches(root, args.postgres_url, schema, max(args.repeat, 3))
        if args.events_only:
            return
        krs = write_definitions(root / "defs")
        with Sandbox(data=SandboxData(now=HORIZON)) as sandbox:
            # Warm up: the first run in a process loads Great Expectations and the code.
            run_variant(replace(variants[2], name="warm-up"), root, root / "defs", sandbox.url)
            results = {}
            for variant in variants:
                runs = []
                for _ in range(args.repeat):
                    sandbox.reset()
                    runs.append(run_variant(variant, root, root / "defs", sandbox.url))
                results[variant.name] = {
                    label: min((run[label] for run in runs), key=lambda figure: figure[0])
                    for label in ("quarter", "nightly")
                }
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if schema:
            with engine.begin() as connection:
                connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))

    days = (QUARTER_END - QUARTER_START).days + 1
    print(f"{krs} KRs, {days}-day quarter backfill and a 3-day nightly run, sandbox at 0 latency")
    print(f"import floor ({IMPORTS}): {floor:.2f}s")
    base = results[variants[0].name]
    for label in ("quarter", "nightly"):
        print(f"\n{label}:")
        print(
            f"  {'variant':<52} {'wall':>7} {'x base':>7} {'x floor':>8} {'events':>7} {'x base':>7}"
        )
        for name, figures in results.items():
            seconds, events, _ = figures[label]
            print(
                f"  {name:<52} {seconds:>6.2f}s {seconds / base[label][0]:>7.2f} "
                f"{seconds / floor:>8.2f} {events:>7} {events / base[label][1]:>7.2f}"
            )
    print("\nevents by type, quarter backfill:")
    for name, figures in results.items():
        top = ", ".join(f"{kind} {n}" for kind, n in figures["quarter"][2].most_common(4))
        print(f"  {name}: {top}")


if __name__ == "__main__":
    main()
