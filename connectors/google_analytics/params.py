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
