"""The nightly schedule: yesterday plus a trailing window for late data, at 02:00 UTC.

`build_definitions` builds it from the settings: `OKR_SCHEDULE_CRON` moves it (the
deployment test runs it every minute), and `OKR_SCHEDULE_ON=1` starts it switched on, so
a server's daemon runs it without anyone toggling it in the UI; a state set in the UI or
with `dagster schedule start|stop` wins over that default.
"""

from datetime import date, timedelta

from dagster import (
    DefaultScheduleStatus,
    JobDefinition,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    schedule,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from okr_metrics.pipelines.orchestration.partitions import FIRST_DAY
from okr_metrics.pipelines.settings import DEFAULT_SCHEDULE_CRON, DEFAULT_TRAILING_DAYS


def nightly_window(as_of: date, days: int) -> tuple[date, date]:
    """The days a nightly run for `as_of` covers: `days` days ending on `as_of`."""
    first = max(as_of - timedelta(days=days - 1), date.fromisoformat(FIRST_DAY))
    return first, as_of


# A run with this tag set to "true" posts its alerts (`okr/kr_alerts`); others only record them.
DELIVER_ALERTS_TAG = "okr/deliver_alerts"


def partition_range_tags(start: date, end: date, deliver_alerts: bool = False) -> dict[str, str]:
    tags = {
        ASSET_PARTITION_RANGE_START_TAG: start.isoformat(),
        ASSET_PARTITION_RANGE_END_TAG: end.isoformat(),
    }
    if deliver_alerts:
        tags[DELIVER_ALERTS_TAG] = "true"
    return tags


def build_nightly_schedule(
    job: JobDefinition,
    trailing_days: int = DEFAULT_TRAILING_DAYS,
    *,
    cron: str = DEFAULT_SCHEDULE_CRON,
    running: bool = False,
) -> ScheduleDefinition:
    """The schedule; each run re-pulls `trailing_days` days (`Settings.trailing_days`).

    `cron` (`Settings.schedule_cron`) is in UTC; `running` (`Settings.schedule_on`) makes
    it start on rather than off.
    """

    @schedule(
        name="nightly",
        job=job,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING if running else DefaultScheduleStatus.STOPPED,
        description=f"Scores yesterday ({cron} UTC, OKR_SCHEDULE_CRON), re-pulls the trailing "
        "days (OKR_TRAILING_DAYS, default 3) for late and revised data, and posts new alerts.",
    )
    def nightly(context: ScheduleEvaluationContext) -> RunRequest:
        yesterday = context.scheduled_execution_time.date() - timedelta(days=1)
        start, end = nightly_window(yesterday, trailing_days)
        return RunRequest(
            run_key=f"nightly-{end}", tags=partition_range_tags(start, end, deliver_alerts=True)
        )

    return nightly
