"""YAML keys of a Jira Cloud metric."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from okr_metrics.connectors.params import MetricParams
from okr_metrics.connectors.query_fragments import fragment_problem

_ORDER_BY = re.compile(r"order\s+by\b", re.IGNORECASE)


class JiraMetric(MetricParams):
    source: Literal["jira"]
    jql: str = Field(min_length=1)
    count: Literal["created", "resolved", "resolved_within"] | None = None
    measure: Literal["resolved_within"] | None = None
    hours: float | None = Field(default=None, gt=0)

    @field_validator("jql")
    @classmethod
    def _one_condition(cls, jql: str) -> str:
        # The client sends `(<jql>) AND <date window>` (a trailing ORDER BY is dropped).
        problem = fragment_problem(jql, quotes="\"'", language="JQL", ending_words=_ORDER_BY)
        if problem:
            raise ValueError(problem)
        return jql

    @model_validator(mode="after")
    def _one_measure(self) -> JiraMetric:
        if (self.count is None) == (self.measure is None):
            raise ValueError(
                "give exactly one of `count: created | resolved` or `measure: resolved_within`"
            )
        if self.count == "resolved_within" and self.hours is None:
            raise ValueError("`count: resolved_within` is internal; use `measure: resolved_within`")
        if self.measure == "resolved_within" and self.hours is None:
            raise ValueError("`measure: resolved_within` needs `hours`")
        if self.count in ("created", "resolved") and self.hours is not None:
            raise ValueError("`hours` only goes with `measure: resolved_within`")
        return self

    def series_kind(self) -> str:
        # `measure: resolved_within` asked for whole is the daily share of the two counts.
        return "share" if self.measure else "count"

    def ratio_parts(self) -> tuple[MetricParams, MetricParams] | None:
        if self.measure != "resolved_within":
            return None
        # Issues resolved that day within `hours` of creation, over all issues resolved that day.
        numerator = JiraMetric(
            source="jira", jql=self.jql, count="resolved_within", hours=self.hours
        )
        denominator = JiraMetric(source="jira", jql=self.jql, count="resolved")
        return numerator, denominator
