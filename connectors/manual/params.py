"""YAML keys of a manual metric: none; values come from `checkins/<quarter>.csv`."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from connectors.params import MetricParams


class ManualMetric(MetricParams):
    source: Literal["manual"]

    default_aggregate: ClassVar[str] = "latest"

    def metric_key(self, *, timezone: str = "UTC", quarter: str = "", kr_id: str = "") -> str:
        # A check-in series belongs to one KR of one quarter.
        return f"manual:quarter={quarter};kr_id={kr_id}"

    def query_params(self) -> dict[str, Any]:
        return {}
