"""The `okr/report` asset: the quarter's overview as one HTML file after every run.

It writes what `okr report` writes (`<OKR_REPORTS_DIR>/<quarter>.html`, by default
`.okr/reports` under the code location's working directory) for the window's last day, so the file beside the
nightly run is always the newest board, ready to mail or attach.
"""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    MaterializeResult,
    asset,
)

from okr_metrics.pipelines.dashboard.report import ReportError, definitions_order, write_report
from okr_metrics.pipelines.orchestration.assets import window_days
from okr_metrics.pipelines.orchestration.partitions import daily_partitions
from okr_metrics.pipelines.vocabulary.quarters import Quarter


def build_report_asset() -> AssetsDefinition:
    @asset(
        key=AssetKey(["okr", "report"]),
        group_name="okr",
        deps=[AssetKey(["okr", "objective_scores"])],
        partitions_def=daily_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        required_resource_keys={"okr_definitions", "warehouse", "reports"},
        description="The quarter's overview as one self-contained HTML file (.okr/reports/).",
        kinds={"html"},
    )
    def report(context: AssetExecutionContext) -> MaterializeResult:
        _, end = window_days(context)
        quarter = str(Quarter.containing(end))
        try:
            path = write_report(
                context.resources.warehouse.open(),
                quarter,
                end,
                order=definitions_order(context.resources.okr_definitions.load()),
                folder=context.resources.reports.folder,
            )
        except ReportError as error:
            context.log.warning(f"no report for {quarter}: {error}")
            return MaterializeResult(metadata={"quarter": quarter, "written": False})
        return MaterializeResult(
            metadata={"quarter": quarter, "as_of": str(end), "path": str(path), "written": True}
        )

    return report
