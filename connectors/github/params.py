"""YAML keys of a GitHub metric."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from okr_metrics.connectors.params import MetricParams


class GitHubMetric(MetricParams):
    source: Literal["github"]
    repo: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", description="owner/name")
    count: Literal["merged_pull_requests", "opened_issues", "closed_issues", "releases"]
    labels: tuple[str, ...] = Field(default=(), description="all must match")

    def series_kind(self) -> str:
        return "count"
