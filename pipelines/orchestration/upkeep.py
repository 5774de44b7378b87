"""Dagster's run history on a server: the newest scheduled run, and purging old runs.

`okr health` asks `newest_scheduled_run` how the newest `nightly` run ended; `okr
purge-runs` calls `purge_runs`, because Dagster's instance settings keep schedule ticks
for a set time (`retention:` in deploy/dagster.yaml) but keep every run and its event log
forever. Both open the instance in `Settings.dagster_home_path`, as the `okr` run commands do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dagster import DagsterRunStatus, RunsFilter
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, SCHEDULE_NAME_TAG

from okr_metrics.pipelines.orchestration.runs import dagster_instance
from okr_metrics.pipelines.settings import Settings

SCHEDULE_NAME = "nightly"
FINISHED = [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]
# Runs deleted per query: a year of nightly runs is a few batches.
BATCH = 100


@dataclass(frozen=True)
class ScheduledRun:
    """A run the schedule launched: its id, Dagster status, last day and creation time."""

    run_id: str
    status: str
    as_of: str | None
    created_at: datetime

    @property
    def failed(self) -> bool:
        return self.status in (DagsterRunStatus.FAILURE.value, DagsterRunStatus.CANCELED.value)


def newest_scheduled_run(settings: Settings, schedule: str = SCHEDULE_NAME) -> ScheduledRun | None:
    """The newest finished run `schedule` launched, or None when none has finished."""
    with dagster_instance(settings) as instance:
        records = instance.get_run_records(
            filters=RunsFilter(tags={SCHEDULE_NAME_TAG: schedule}, statuses=FINISHED), limit=1
        )
    if not records:
        return None
    run = records[0].dagster_run
    return ScheduledRun(
        run_id=run.run_id,
        status=run.status.value,
        as_of=run.tags.get(ASSET_PARTITION_RANGE_END_TAG),
        created_at=records[0].create_timestamp,
    )


def purge_runs(settings: Settings, before: datetime) -> int:
    """Delete every finished run created before `before`: the run, its event log and its
    steps' captured output. Runs still queued or in progress are kept. Returns how many."""
    deleted = 0
    with dagster_instance(settings) as instance:
        while True:
            records = instance.get_run_records(
                filters=RunsFilter(statuses=FINISHED, created_before=before), limit=BATCH
            )
            if not records:
                return deleted
            for record in records:
                run_id = record.dagster_run.run_id
                instance.delete_run(run_id)
                instance.compute_log_manager.delete_logs(prefix=[run_id])
                deleted += 1
