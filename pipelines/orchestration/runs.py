"""Running the job in-process, for the `okr` command: one Dagster run for a window of days.

The run goes to the persistent instance in `Settings.dagster_home_path` (DAGSTER_HOME,
else `.okr/dagster`), so it shows in `dagster dev`. The instance is built from that
folder's dagster.yaml with its `env: DAGSTER_HOME` references filled in from the
settings: the process environment is never written.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from dagster import DagsterInstance
from dagster._core.instance.ref import InstanceRef

from okr_metrics.pipelines.orchestration.definitions import JOB_NAME, build_definitions
from okr_metrics.pipelines.orchestration.schedules import partition_range_tags
from okr_metrics.pipelines.settings import DAGSTER_HOME_VARIABLE, Settings

INSTANCE_FILE = "dagster.yaml"


@dataclass(frozen=True)
class WindowRun:
    """How a run ended: its id, whether it succeeded, and the first line of each step failure."""

    run_id: str
    success: bool
    failure: str | None = None


def _with_home(value: Any, home: str) -> Any:
    """`value` (loaded YAML) with every `{env: DAGSTER_HOME}` replaced by `home`."""
    if isinstance(value, dict):
        if value == {"env": DAGSTER_HOME_VARIABLE}:
            return home
        return {key: _with_home(item, home) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_home(item, home) for item in value]
    return value


def dagster_instance(settings: Settings) -> DagsterInstance:
    """The persistent Dagster instance in `settings.dagster_home_path`.

    The folder is created when missing and gets a copy of ./dagster.yaml when it has
    none (`.okr/dagster`, which the project owns when DAGSTER_HOME is not set, always
    gets the current one).
    """
    home = settings.dagster_home_path
    home.mkdir(parents=True, exist_ok=True)
    config = home / INSTANCE_FILE
    own_home = settings.dagster_home is None
    if Path(INSTANCE_FILE).is_file() and (own_home or not config.exists()):
        shutil.copyfile(INSTANCE_FILE, config)
    loaded = yaml.safe_load(config.read_text(encoding="utf-8")) if config.is_file() else None
    overrides = _with_home(loaded or {}, str(home))
    return DagsterInstance.from_ref(InstanceRef.from_dir(str(home), overrides=overrides))


def materialize_window(
    settings: Settings,
    start: date,
    end: date,
    resources: Mapping[str, Any] | None = None,
    deliver_alerts: bool = False,
) -> WindowRun:
    """Materialize every asset for the days start..end in one Dagster run (posting its
    alerts with `deliver_alerts`, as the nightly schedule does)."""
    job = build_definitions(settings, resources).resolve_job_def(JOB_NAME)
    with dagster_instance(settings) as instance:
        result = job.execute_in_process(
            instance=instance,
            tags=partition_range_tags(start, end, deliver_alerts),
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
    failure = None
    if not result.success:
        failures = [
            event.step_failure_data.error.message.strip().splitlines()[0]
            for event in result.all_events
            if event.is_step_failure and event.step_failure_data.error
        ]
        failure = "; ".join(failures) or "the run failed"
    return WindowRun(result.run_id, result.success, failure)
