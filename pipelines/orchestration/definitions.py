"""The Dagster code location: `dagster dev` in the repo root loads `defs` from here.

`defs` is a `@definitions` function, so importing this module builds nothing: Dagster
calls it when it loads the code location, and only then are the settings read from the
environment, the connector entry points queried, the assets and resources built (their
modules are imported by `build_definitions`, as the definitions model reads the
registry when it is imported). The CLI and the
tests call `build_definitions(settings, resources)` with settings of their own.

`Settings.executor` (OKR_EXECUTOR) picks how a run executes: `in_process` (the default),
one process for the run, the sources fetched at once in one step; or `multiprocess`,
a process per step, each source a step in its API's pool (see docs/deploy.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import (
    AssetSelection,
    Definitions,
    define_asset_job,
    definitions,
    in_process_executor,
    multiprocess_executor,
)

from okr_metrics.pipelines.settings import Settings

JOB_NAME = "okr_job"
# What a multiprocess run's fork server imports once, so that each step's process starts
# with pandas, Great Expectations and the pipeline loaded rather than importing them again.
STEP_PRELOAD = [
    "dagster",
    "pandas",
    "great_expectations",
    "okr_metrics.pipelines.orchestration.assets",
]


def build_definitions(
    settings: Settings | None = None, resources: Mapping[str, Any] | None = None
) -> Definitions:
    """The assets, the job, the nightly schedule and their resources.

    `settings` default to `Settings.from_env()`, read now; `resources` replace the
    resources of the same keys that the settings give (e.g. `sandbox_resources`).
    """
    # Imported here, not at the top: the definitions model behind the assets builds its
    # metric types from the connector registry when imported (entry points).
    from okr_metrics.connectors.registry import connected_sources
    from okr_metrics.pipelines.orchestration.assets import (
        build_observation_asset,
        build_observations_asset,
        build_score_assets,
    )
    from okr_metrics.pipelines.orchestration.partitions import daily_partitions
    from okr_metrics.pipelines.orchestration.report import build_report_asset
    from okr_metrics.pipelines.orchestration.resources import build_resources
    from okr_metrics.pipelines.orchestration.schedules import build_nightly_schedule

    settings = Settings.from_env() if settings is None else settings
    sources = list(connected_sources().values())
    multiprocess = settings.executor == "multiprocess"
    if multiprocess:
        assets = [build_observation_asset(source) for source in sources]
    else:
        assets = [build_observations_asset(sources)]
    assets += build_score_assets(sources)
    assets.append(build_report_asset())
    job = define_asset_job(
        JOB_NAME,
        selection=AssetSelection.all(),
        partitions_def=daily_partitions,
        description="Fetch every source, score every KR and objective, write the warehouse.",
        # In process by default: a step per process imports pandas and Great
        # Expectations once per step (seconds each on a small server).
        executor_def=(
            multiprocess_executor.configured(
                {"start_method": {"forkserver": {"preload_modules": STEP_PRELOAD}}}
            )
            if multiprocess
            else in_process_executor
        ),
    )
    return Definitions(
        assets=assets,
        jobs=[job],
        schedules=[
            build_nightly_schedule(
                job,
                settings.trailing_days,
                cron=settings.schedule_cron,
                running=settings.schedule_on,
            )
        ],
        resources={**build_resources(settings, sources), **(resources or {})},
    )


@definitions
def defs() -> Definitions:
    """The code location, built when Dagster loads it, from the environment of that moment."""
    return build_definitions(Settings.from_env())


__all__ = ["JOB_NAME", "build_definitions", "defs"]
