"""Dagster assets: an observation asset per source, then `kr_scores`, `objective_scores`
and `kr_alerts`.

Every asset is daily-partitioned with a single-run backfill policy and works on
`context.partition_time_window`, so one run covers a day, the nightly trailing
window, or a whole quarter. Asset bodies are thin: the work lives in
`pipelines/jobs/` (`collect.py`, `score.py` and `alerts.py`).

The observation assets (`observations/<source>`) are built one of two ways, with the
same keys and checks: for the in-process executor, one subsettable `multi_asset` whose
single step fetches every selected source at once (`collect_sources`); for the
multiprocess executor, one asset per source, each its own step in the Dagster pool of
its API (`source_pool`), so that runs side by side call an API one step at a time.
"""

import logging
from datetime import date, timedelta

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    BackfillPolicy,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)

from okr_metrics.connectors.registry import Source
from okr_metrics.pipelines.jobs.alerts import deliver_alerts, record_alerts
from okr_metrics.pipelines.jobs.collect import CollectResult, collect_source, collect_sources
from okr_metrics.pipelines.jobs.grades import close_quarters
from okr_metrics.pipelines.jobs.score import compute_kr_scores, compute_objective_scores
from okr_metrics.pipelines.orchestration.partitions import daily_partitions
from okr_metrics.pipelines.orchestration.resources import source_resource_key
from okr_metrics.pipelines.orchestration.schedules import DELIVER_ALERTS_TAG

FETCH_CHECK = "fetched_without_errors"
EXPECTATIONS_CHECK = "rows_pass_expectations"

progress_log = logging.getLogger("okr_metrics")


def _progress(context: AssetExecutionContext):
    """Report a step to the Dagster run log and to the `okr` command's progress lines."""

    def report(message: str) -> None:
        context.log.info(message)
        progress_log.info(message)

    return report


def window_days(context: AssetExecutionContext) -> tuple[date, date]:
    """The first and last day (inclusive) of the run's partition window."""
    window = context.partition_time_window
    return window.start.date(), (window.end - timedelta(days=1)).date()


def observation_asset_key(source: str) -> AssetKey:
    return AssetKey(["observations", source])


def source_pool(source: str) -> str:
    """The Dagster pool of a source's API calls (`concurrency: pools:` in dagster.yaml)."""
    return f"api_{source}"


def _description(source: str) -> str:
    return f"Daily series from {source} for every KR that uses it (table metric_observations)."


def _check_specs(source: str) -> list[AssetCheckSpec]:
    key = observation_asset_key(source)
    return [
        AssetCheckSpec(
            FETCH_CHECK,
            asset=key,
            description=f"Every {source} series the KRs need was fetched.",
        ),
        AssetCheckSpec(
            EXPECTATIONS_CHECK,
            asset=key,
            description="Great Expectations validation of every fetched series (and the "
            "source's own row checks, such as check-in rows); rows that fail are kept out "
            "of the scores, in rejected_observations. A warning, never blocking: scoring "
            "goes on without the bad rows.",
        ),
    ]


def _connector(context: AssetExecutionContext, source: Source):
    resource = getattr(context.resources, source_resource_key(source.name))
    return resource.connector(source.connector_class())


def _source_results(
    context: AssetExecutionContext,
    source: str,
    result: CollectResult,
    start: date,
    end: date,
    warehouse,
    with_key: bool,
):
    """The materialization and the two check results of one source's collected window."""
    for metric_key, reason in result.failures.items():
        context.log.error(f"{source}: {metric_key}: {reason}")
    if result.requested:
        warehouse.record_source_run(
            context.run_id, source, start, end, *result.status(), result.rejected_rows
        )
    key = observation_asset_key(source) if with_key else None
    yield MaterializeResult(
        asset_key=key,
        metadata={
            "window": f"{start}..{end}",
            "series_requested": result.requested,
            "rows_written": result.rows,
            "skipped": result.skipped or "",
            "failed_series": len(result.failures),
            "rejected_rows": result.rejected_rows,
        },
    )
    yield AssetCheckResult(
        check_name=FETCH_CHECK,
        asset_key=key,
        passed=result.ok,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "series_requested": result.requested,
            "skipped": result.skipped or "",
            "failures": MetadataValue.json(result.failures),
        },
    )
    yield expectations_check_result(result, key)


def build_observation_asset(source: Source) -> AssetsDefinition:
    """The asset that fetches one source's series for the window and stores them: a step
    of its own, in the pool of its API (the multiprocess executor)."""

    @asset(
        key=observation_asset_key(source.name),
        group_name=source.name,
        partitions_def=daily_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        required_resource_keys={"okr_definitions", "warehouse", source_resource_key(source.name)},
        check_specs=_check_specs(source.name),
        description=_description(source.name),
        kinds={"python"},
        pool=source_pool(source.name),
    )
    def _observations(context: AssetExecutionContext):
        start, end = window_days(context)
        connector, skip_reason = _connector(context, source)
        warehouse = context.resources.warehouse.open()
        result = collect_source(
            source.name,
            connector,
            skip_reason,
            context.resources.okr_definitions.load(),
            start,
            end,
            warehouse,
            context.run_id,
            progress=_progress(context),
        )
        yield from _source_results(context, source.name, result, start, end, warehouse, False)

    return _observations


def build_observations_asset(sources: list[Source]) -> AssetsDefinition:
    """Every source's observation asset as one step that fetches the selected sources at
    once, each on a thread of its own, and validates their series together (the
    in-process executor: one process, one import of Great Expectations)."""

    @multi_asset(
        name="observations",
        specs=[
            AssetSpec(
                observation_asset_key(source.name),
                group_name=source.name,
                description=_description(source.name),
                kinds={"python"},
            )
            for source in sources
        ],
        check_specs=[spec for source in sources for spec in _check_specs(source.name)],
        can_subset=True,
        partitions_def=daily_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        required_resource_keys={"okr_definitions", "warehouse"}
        | {source_resource_key(source.name) for source in sources},
    )
    def observations(context: AssetExecutionContext):
        start, end = window_days(context)
        selected = [
            source
            for source in sources
            if observation_asset_key(source.name) in context.selected_asset_keys
        ]
        warehouse = context.resources.warehouse.open()
        results = collect_sources(
            {source.name: _connector(context, source) for source in selected},
            context.resources.okr_definitions.load(),
            start,
            end,
            warehouse,
            context.run_id,
            progress=_progress(context),
        )
        for source in selected:
            yield from _source_results(
                context, source.name, results[source.name], start, end, warehouse, True
            )

    return observations


def expectations_check_result(
    result: CollectResult, asset_key: AssetKey | None = None
) -> AssetCheckResult:
    """Counts and example bad values per series and expectation, for the Dagster UI.

    Rejected rows never reach the stored series, so a failure warns rather than
    blocks: scoring goes on, and the affected KRs are flagged stale.
    """
    failed: dict[str, list[dict]] = {}
    checked = 0
    for metric_key, report in result.validations.items():
        checked += len(report.outcomes)
        problems = [
            {"expectation": o.expectation, "unexpected": o.unexpected_count, "examples": o.examples}
            for o in report.outcomes
            if not o.success
        ]
        if report.error:
            problems.append({"error": report.error})
        if problems:
            failed[metric_key] = problems
    if result.refused_rows:
        failed["source rows"] = [{"refused": result.refused_rows, "see": "rejected_observations"}]
    return AssetCheckResult(
        check_name=EXPECTATIONS_CHECK,
        asset_key=asset_key,
        passed=not failed,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "series_validated": len(result.validations),
            "expectations_evaluated": checked,
            "rejected_rows": result.rejected_rows,
            "failed": MetadataValue.json(failed),
        },
    )


def build_score_assets(sources: list[Source]) -> list[AssetsDefinition]:
    observation_keys = [observation_asset_key(source.name) for source in sources]

    @asset(
        key=AssetKey(["okr", "kr_scores"]),
        group_name="okr",
        deps=observation_keys,
        partitions_def=daily_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        required_resource_keys={"okr_definitions", "warehouse"},
        description="One row per key result per as-of day (table kr_scores).",
        kinds={"python"},
    )
    def kr_scores(context: AssetExecutionContext) -> MaterializeResult:
        start, end = window_days(context)
        result = compute_kr_scores(
            context.resources.okr_definitions.load(),
            context.resources.warehouse.open(),
            start,
            end,
            context.run_id,
            progress=_progress(context),
        )
        if result.unscored and not result.quarters:
            raise Failure("; ".join(result.unscored.values()))
        # Freezes the grades of the quarters this window closes (docs/scoring.md).
        close_quarters(
            context.resources.okr_definitions.load(),
            context.resources.warehouse.open(),
            end,
            context.run_id,
            progress=_progress(context),
        )
        for reason in result.unscored.values():
            context.log.warning(reason)
        return MaterializeResult(
            metadata={
                "window": f"{start}..{end}",
                "rows_written": result.rows,
                "quarters": ", ".join(result.quarters),
                "stale_rows": result.stale,
                "statuses": MetadataValue.json(result.status_counts),
                "unscored": MetadataValue.json(result.unscored),
            }
        )

    @asset(
        key=AssetKey(["okr", "objective_scores"]),
        group_name="okr",
        deps=[kr_scores],
        partitions_def=daily_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        required_resource_keys={"okr_definitions", "warehouse"},
        description="One row per objective per as-of day (table objective_scores).",
        kinds={"python"},
    )
    def objective_scores(context: AssetExecutionContext) -> MaterializeResult:
        start, end = window_days(context)
        result = compute_objective_scores(
            context.resources.okr_definitions.load(),
            context.resources.warehouse.open(),
            start,
            end,
            context.run_id,
            progress=_progress(context),
        )
        return MaterializeResult(
            metadata={
                "window": f"{start}..{end}",
                "rows_written": result.rows,
                "quarters": ", ".join(result.quarters),
            }
        )

    @asset(
        key=AssetKey(["okr", "kr_alerts"]),
        group_name="okr",
        deps=[kr_scores],
        partitions_def=daily_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        required_resource_keys={"okr_definitions", "warehouse", "alert_webhooks"},
        description="One row per transition per key result (table kr_alerts); runs tagged "
        f"{DELIVER_ALERTS_TAG}=true (the nightly schedule) post the new ones to the webhook.",
        kinds={"python"},
    )
    def kr_alerts(context: AssetExecutionContext) -> MaterializeResult:
        start, end = window_days(context)
        warehouse = context.resources.warehouse.open()
        result = record_alerts(
            context.resources.okr_definitions.load(),
            warehouse,
            start,
            end,
            context.run_id,
            progress=_progress(context),
        )
        if context.run_tags.get(DELIVER_ALERTS_TAG) == "true":
            webhooks = context.resources.alert_webhooks.urls()
            deliver_alerts(warehouse, webhooks, start, end, context.run_id, result)
        else:
            result.not_delivered = "not a delivering run: alerts recorded, not posted"
        for error in result.errors:
            context.log.warning(f"alert not delivered: {error}")
        _progress(context)(
            f"kr_alerts: {result.recorded} recorded, {result.delivered} delivered, "
            f"{result.failed} failed"
            + (f" ({result.not_delivered})" if result.not_delivered else "")
        )
        metadata = {"window": f"{start}..{end}", **result.metadata()}
        metadata["alerts_by_kind"] = MetadataValue.json(metadata["alerts_by_kind"])
        return MaterializeResult(metadata=metadata)

    return [kr_scores, objective_scores, kr_alerts]
