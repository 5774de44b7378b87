"""YAML keys of a manual metric: none; values come from `checkins/<quarter>.csv`.

A check-in series belongs to one KR of one quarter and lives in a file beside the
definitions, none of which the YAML says: the connector reads them from its
`SeriesRequest` (`kr_id`, `quarter`, `sibling_kr_ids`, `definitions_root`).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from okr_metrics.connectors.params import MetricParams


class ManualMetric(MetricParams):
    source: Literal["manual"]

    default_aggregate: ClassVar[str] = "latest"
    tracks_staleness: ClassVar[bool] = False  # only check-in days have data

    def metric_key(self, *, timezone: str = "UTC", quarter: str = "", kr_id: str = "") -> str:
        # A check-in series belongs to one KR of one quarter; check-in days are calendar
        # days, so the timezone plays no part.
        return f"manual:quarter={quarter};kr_id={kr_id}"

    def query_params(self) -> dict[str, Any]:
        return {}
