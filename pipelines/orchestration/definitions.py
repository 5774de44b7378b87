"""The Dagster code location: `dagster dev` in the repo root loads `defs` from here.

`build_definitions()` reads the environment when called, so the CLI can point
sources at the sandbox before building them.
"""

from __future__ import annotations

from dagster import AssetSelection, Definitions, define_asset_job

from okr_metrics.connectors.registry import connected_sources
from okr_metrics.pipelines.orchestration.assets import build_observation_asset, build_score_assets
from okr_metrics.pipelines.orchestration.partitions import daily_partitions
from okr_metrics.pipelines.orchestration.resources import (
    DEFAULT_DEFS,
    OkrDefinitionsResource,
    WarehouseResource,
    env_or,
    source_resource,
)
from okr_metrics.pipelines.orchestration.schedules import build_nightly_schedule
from okr_metrics.warehouse.store import DEFAULT_URL

JOB_NAME = "okr_job"


def build_definitions() -> Definitions:
    sources = list(connected_sources().values())
    assets = [build_observation_asset(source) for source in sources]
    assets += build_score_assets(sources)
    job = define_asset_job(
        JOB_NAME,
        selection=AssetSelection.all(),
        partitions_def=daily_partitions,
        description="Fetch every source, score every KR and objective, write the warehouse.",
    )
    resources = {
        "okr_definitions": OkrDefinitionsResource(path=env_or("OKR_DEFS", DEFAULT_DEFS)),
        "warehouse": WarehouseResource(url=env_or("OKR_WAREHOUSE_URL", DEFAULT_URL)),
    }
    for source in sources:
        resources[f"{source.name}_source"] = source_resource(source)
    return Definitions(
        assets=assets,
        jobs=[job],
        schedules=[build_nightly_schedule(job)],
        resources=resources,
    )


defs = build_definitions()

__all__ = ["build_definitions", "defs"]
