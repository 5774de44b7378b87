"""OKR_SCHEDULE_ON and OKR_SCHEDULE_CRON: read by Settings, applied to the `nightly` schedule."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from dagster import DefaultScheduleStatus, build_schedule_context

from okr_metrics.pipelines.orchestration.definitions import build_definitions
from okr_metrics.pipelines.settings import Settings, SettingsError


def nightly(settings: Settings):
    return build_definitions(settings).resolve_schedule_def("nightly")


def test_the_schedule_starts_off_at_two_by_default():
    settings = Settings.from_env({})
    assert (settings.schedule_on, settings.schedule_cron) == (False, "0 2 * * *")
    schedule = nightly(settings)
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.default_status == DefaultScheduleStatus.STOPPED
    assert schedule.execution_timezone == "UTC"


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_schedule_on_starts_it_running(value):
    settings = Settings.from_env({"OKR_SCHEDULE_ON": value})
    assert settings.schedule_on is True
    assert nightly(settings).default_status == DefaultScheduleStatus.RUNNING


@pytest.mark.parametrize("value", ["0", "false", "off", ""])
def test_schedule_off_and_empty_keep_it_stopped(value):
    assert Settings.from_env({"OKR_SCHEDULE_ON": value}).schedule_on is False


def test_the_cron_moves_the_schedule_and_keeps_its_window():
    settings = Settings.from_env({"OKR_SCHEDULE_CRON": " 30  5 * * 1-5 ", "OKR_TRAILING_DAYS": "2"})
    assert settings.schedule_cron == "30 5 * * 1-5"
    schedule = nightly(settings)
    assert schedule.cron_schedule == "30 5 * * 1-5"
    assert "30 5 * * 1-5 UTC" in schedule.description
    # A tick on 2026-10-21 scores 10-20 and re-pulls the day before it.
    context = build_schedule_context(
        scheduled_execution_time=datetime(2026, 10, 21, 5, 30, tzinfo=UTC)
    )
    request = schedule.evaluate_tick(context).run_requests[0]
    assert request.run_key == "nightly-2026-10-20"
    assert request.tags["dagster/asset_partition_range_start"] == "2026-10-19"
    assert request.tags["dagster/asset_partition_range_end"] == "2026-10-20"


def test_bad_values_are_one_line_naming_each_variable():
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"OKR_SCHEDULE_ON": "maybe", "OKR_SCHEDULE_CRON": "0 2 * *"})
    message = str(raised.value)
    assert "\n" not in message
    assert "OKR_SCHEDULE_ON must be 1 or 0, got 'maybe'" in message
    assert "OKR_SCHEDULE_CRON must be five cron fields (e.g. '0 2 * * *'), got '0 2 * *'" in message


def test_the_settings_repr_shows_the_schedule():
    shown = repr(Settings.from_env({"OKR_SCHEDULE_ON": "1", "OKR_SCHEDULE_CRON": "* * * * *"}))
    assert "schedule_on=True, schedule_cron='* * * * *'" in shown
