"""Dagster's per-partition events stored in batches (DAGSTER_EVENT_BATCH_SIZE) give the
event log that storing them one by one gives: on this project's SQLite storage
(`HeldSqliteEventLogStorage.store_event_batch`) and on PostgreSQL (dagster-postgres).

Each backfill here is a real single-run Dagster backfill over four daily partitions of two
assets, on an instance loaded from the project's dagster.yaml in a fresh DAGSTER_HOME.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from dagster import (
    AssetCheckResult,
    AssetKey,
    BackfillPolicy,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    EventRecordsFilter,
    MaterializeResult,
    asset,
    asset_check,
    define_asset_job,
    in_process_executor,
)
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value

from okr_metrics.pipelines.orchestration.partitions import daily_partitions
from okr_metrics.pipelines.orchestration.schedules import partition_range_tags
from okr_metrics.pipelines.orchestration.storage import (
    DEFAULT_EVENT_BATCH_SIZE,
    EVENT_BATCH_VARIABLE,
    HeldSqliteEventLogStorage,
)

REPO = Path(__file__).resolve().parents[2]
FIRST, LAST = date(2026, 7, 1), date(2026, 7, 4)
DAYS = ["2026-07-01", "2026-07-02", "2026-07-03", "2026-07-04"]
OBSERVATIONS, SCORES = AssetKey("observations"), AssetKey("scores")
# 8 planned events go in batches of 3, 3 and 2, each asset's 4 materializations in 3 and 1.
BATCH_SIZE = "3"


def build_job(fail_scores: bool = False):
    @asset(
        partitions_def=daily_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        code_version="1",
    )
    def observations(context) -> MaterializeResult:
        return MaterializeResult(metadata={"days": len(context.partition_keys)})

    @asset(
        deps=[observations],
        partitions_def=daily_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        code_version="1",
    )
    def scores(context) -> MaterializeResult:
        if fail_scores:
            raise RuntimeError("scores failed")
        return MaterializeResult(metadata={"days": len(context.partition_keys)})

    @asset_check(asset=observations)
    def observations_arrived() -> AssetCheckResult:
        return AssetCheckResult(passed=True)

    job = define_asset_job(
        "okr_job", partitions_def=daily_partitions, executor_def=in_process_executor
    )
    return Definitions(
        assets=[observations, scores], asset_checks=[observations_arrived], jobs=[job]
    ).resolve_job_def("okr_job")


def load_instance(home: Path, monkeypatch: pytest.MonkeyPatch) -> DagsterInstance:
    home.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    return DagsterInstance.from_config(str(home))


def backfill(instance: DagsterInstance, fail_scores: bool = False) -> str:
    result = build_job(fail_scores).execute_in_process(
        instance=instance, tags=partition_range_tags(FIRST, LAST), raise_on_error=False
    )
    assert result.success is not fail_scores
    return result.run_id


def event_log(instance: DagsterInstance, run_id: str) -> dict:
    """What the UI reads of a run and its assets, with the run's id taken out."""
    per_partition = Counter(
        (
            entry.dagster_event.event_type_value,
            entry.dagster_event.asset_key.to_user_string()
            if entry.dagster_event.asset_key
            else None,
            entry.dagster_event.partition
            or getattr(entry.dagster_event.event_specific_data, "partition", None),
        )
        for entry in instance.all_logs(run_id)
        if entry.dagster_event
    )
    figures: dict = {"run": per_partition}
    for key in (OBSERVATIONS, SCORES):
        index = {}
        for kind in (
            DagsterEventType.ASSET_MATERIALIZATION,
            DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
        ):
            records = instance.get_event_records(
                EventRecordsFilter(event_type=kind, asset_key=key), ascending=True
            )
            assert {record.run_id for record in records} <= {run_id}
            index[kind.value] = [record.partition_key for record in records]
        materializations = instance.get_event_records(
            EventRecordsFilter(event_type=DagsterEventType.ASSET_MATERIALIZATION, asset_key=key)
        )
        [record] = instance.get_asset_records([key])
        last = record.asset_entry.last_materialization_record
        if materializations:
            # The asset's row points at the newest materialization of the index.
            assert last is not None and last.storage_id == materializations[0].storage_id
            assert last.run_id == record.asset_entry.last_run_id == run_id
        else:
            assert last is None and record.asset_entry.last_run_id == run_id
        planned = {}
        for day in DAYS:
            info = instance.event_log_storage.get_latest_planned_materialization_info(key, day)
            assert info is not None and info.run_id == run_id
            planned[day] = info.run_id == run_id
        figures[key.to_user_string()] = {
            "index": index,
            "materialized": sorted(instance.get_materialized_partitions(key)),
            "last materialization": last and last.partition_key,
            "planned": planned,
            "tags": sorted(sorted(tags.items()) for tags in instance.get_event_tags_for_asset(key)),
        }
    return figures


def failed_days(instance: DagsterInstance, key: AssetKey) -> list[str]:
    status = get_and_update_asset_status_cache_value(instance, key, daily_partitions)
    assert status is not None
    return sorted(
        status.deserialize_failed_partition_subsets(daily_partitions).get_partition_keys()
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def dagster_storage(request, monkeypatch):
    """Yields a function giving a fresh, empty Dagster storage's environment each call."""
    for name in ("DAGSTER_PG_HOST", "DAGSTER_PG_USER", "DAGSTER_PG_DB", "DAGSTER_PG_URL"):
        monkeypatch.delenv(name, raising=False)
    if request.param == "sqlite":
        yield lambda: None
        return
    schemas = request.getfixturevalue("postgres_schemas")
    opened = []

    def fresh() -> None:
        context = schemas()
        opened.append(context)
        monkeypatch.setenv("DAGSTER_PG_URL", context.__enter__())

    yield fresh
    for context in reversed(opened):
        context.__exit__(None, None, None)


@pytest.mark.parametrize("fail_scores", [False, True], ids=["success", "failure"])
def test_a_batched_backfill_stores_the_event_log_of_one_by_one(
    tmp_path, monkeypatch, dagster_storage, fail_scores
):
    logs = {}
    for size in ("0", BATCH_SIZE):
        monkeypatch.setenv(EVENT_BATCH_VARIABLE, size)
        dagster_storage()
        with load_instance(tmp_path / f"batch-{size}", monkeypatch) as instance:
            run_id = backfill(instance, fail_scores)
            logs[size] = event_log(instance, run_id)
            logs[size]["failed"] = {
                key: failed_days(instance, key) for key in (OBSERVATIONS, SCORES)
            }
    assert logs[BATCH_SIZE] == logs["0"]
    one_by_one = logs["0"]
    # Each day of each asset was planned once, in the run and in the index.
    for key in ("observations", "scores"):
        for day in DAYS:
            assert one_by_one["run"][("ASSET_MATERIALIZATION_PLANNED", key, day)] == 1
        assert one_by_one[key]["index"]["ASSET_MATERIALIZATION_PLANNED"] == DAYS
    assert one_by_one["observations"]["materialized"] == DAYS
    assert one_by_one["observations"]["last materialization"] == DAYS[-1]
    # Dagster's data version tags are kept for every materialization.
    assert len(one_by_one["observations"]["tags"]) == 4
    if fail_scores:
        assert one_by_one["scores"]["materialized"] == []
        assert one_by_one["scores"]["index"]["ASSET_MATERIALIZATION"] == []
        assert one_by_one["failed"] == {OBSERVATIONS: [], SCORES: DAYS}
    else:
        assert one_by_one["scores"]["materialized"] == DAYS
        assert one_by_one["failed"] == {OBSERVATIONS: [], SCORES: []}


# Columns the database fills in with its own clock.
DATABASE_TIMES = ("create_timestamp", "updated_at", "migration_completed")


def dump(folder: Path) -> dict[str, list[tuple]]:
    """Every row of every table of the event log's SQLite files, but the database's own
    timestamps."""
    tables = {}
    for path in sorted(folder.glob("*.db")):
        with sqlite3.connect(path) as db:
            for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
                columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
                kept = [name for name in columns if name not in DATABASE_TIMES]
                quoted = ", ".join(f'"{name}"' for name in kept)
                rows = db.execute(f"SELECT {quoted} FROM {table} ORDER BY rowid").fetchall()
                tables[f"{path.stem[:8]}.{table}"] = rows
    return tables


def test_store_event_batch_writes_the_rows_of_store_event(tmp_path, monkeypatch):
    """Every event of a run (run status, steps, asset checks, planned and done
    materializations), stored in one batch, gives the very rows of storing them one by one."""
    monkeypatch.setenv(EVENT_BATCH_VARIABLE, "0")
    with load_instance(tmp_path / "source", monkeypatch) as instance:
        run_id = backfill(instance)
        events = list(instance.all_logs(run_id))
    kinds = Counter(entry.dagster_event_type for entry in events if entry.dagster_event)
    assert kinds[DagsterEventType.ASSET_CHECK_EVALUATION] == 1
    assert kinds[DagsterEventType.RUN_SUCCESS] == 1
    assert kinds[DagsterEventType.ASSET_MATERIALIZATION] == 8

    one_by_one = HeldSqliteEventLogStorage(str(tmp_path / "one-by-one"))
    for entry in events:
        one_by_one.store_event(entry)
    batched = HeldSqliteEventLogStorage(str(tmp_path / "batched"))
    batched.store_event_batch(events)
    one_by_one.dispose()
    batched.dispose()

    expected, stored = dump(tmp_path / "one-by-one"), dump(tmp_path / "batched")
    assert len(expected[f"{run_id[:8]}.event_logs"]) == len(events)
    # The index copies the 8 planned and 8 done materializations, the check's planned
    # and done events, the run's start and success.
    assert len(expected["index.event_logs"]) == 20
    assert expected["index.asset_check_executions"] and expected["index.asset_event_tags"]
    assert stored == expected


def test_loading_the_instance_turns_batching_on_unless_set(tmp_path, monkeypatch):
    monkeypatch.setenv(EVENT_BATCH_VARIABLE, "")
    monkeypatch.delenv(EVENT_BATCH_VARIABLE)
    with load_instance(tmp_path / "default", monkeypatch):
        assert os.environ[EVENT_BATCH_VARIABLE] == str(DEFAULT_EVENT_BATCH_SIZE)
    monkeypatch.setenv(EVENT_BATCH_VARIABLE, "0")
    with load_instance(tmp_path / "off", monkeypatch):
        assert os.environ[EVENT_BATCH_VARIABLE] == "0"
