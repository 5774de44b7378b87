"""YAML keys of a Salesforce metric."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from okr_metrics.connectors.params import MetricParams
from okr_metrics.connectors.query_fragments import fragment_problem

_IDENTIFIER = r"^[A-Za-z][A-Za-z0-9_]*(__c|__r)?$"
# Clauses that follow WHERE in SOQL: inside the parentheses they would break the query.
_CLAUSES = re.compile(
    r"(ORDER\s+BY|GROUP\s+BY|LIMIT|OFFSET|HAVING|WITH|FOR\s+(?:UPDATE|VIEW|REFERENCE))\b",
    re.IGNORECASE,
)


class SalesforceMetric(MetricParams):
    source: Literal["salesforce"]
    object: str = Field(default="Opportunity", pattern=_IDENTIFIER)
    where: str | None = Field(default=None, description="SOQL condition")
    date_field: str = Field(default="CloseDate", pattern=_IDENTIFIER)
    measure: Literal["count", "sum"] = "count"
    field: str | None = Field(default=None, pattern=_IDENTIFIER)

    @field_validator("where")
    @classmethod
    def _one_condition(cls, where: str | None) -> str | None:
        # The client sends `WHERE (<where>) AND <date window>`; SOQL strings are single-quoted.
        problem = where and fragment_problem(
            where, quotes="'", language="SOQL", clause_words=_CLAUSES
        )
        if problem:
            raise ValueError(problem)
        return where

    def series_kind(self) -> str:
        return "count" if self.measure == "count" else "amount"

    @model_validator(mode="after")
    def _field_for_sum(self) -> SalesforceMetric:
        if self.measure == "sum" and not self.field:
            raise ValueError("`measure: sum` needs `field`")
        return self
