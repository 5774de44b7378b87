"""YAML keys of a Google Analytics 4 metric."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from connectors.params import MetricParams


class GoogleAnalyticsMetric(MetricParams):
    source: Literal["google_analytics"]
    property: str = Field(pattern=r"^[0-9]+$", description="GA4 property id")
    metric: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_:]*$", description="GA4 API metric name")
    filter: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="dimension -> allowed values"
    )

    def series_kind(self) -> str:
        # GA4's own naming tells the kind of its built-in metrics; custom ones are plain values.
        name = self.metric
        if name.endswith("Rate"):
            return "share"
        if name.endswith("Duration"):
            return "duration"
        if "Revenue" in name or name.startswith(("customEvent:", "customUser:")):
            return "value" if name.startswith("custom") else "amount"
        if name.endswith(("Users", "Count", "Views", "Events")) or name in COUNT_METRICS:
            return "count"
        return "value"


# Built-in GA4 metrics that count something but whose names do not say so.
COUNT_METRICS = frozenset({"sessions", "conversions", "transactions", "checkouts", "purchasers"})
