"""YAML keys of a Salesforce metric."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from okr_metrics.connectors.params import MetricParams

_IDENTIFIER = r"^[A-Za-z][A-Za-z0-9_]*(__c|__r)?$"


class SalesforceMetric(MetricParams):
    source: Literal["salesforce"]
    object: str = Field(default="Opportunity", pattern=_IDENTIFIER)
    where: str | None = Field(default=None, description="SOQL condition")
    date_field: str = Field(default="CloseDate", pattern=_IDENTIFIER)
    measure: Literal["count", "sum"] = "count"
    field: str | None = Field(default=None, pattern=_IDENTIFIER)

    def series_kind(self) -> str:
        return "count" if self.measure == "count" else "amount"

    @model_validator(mode="after")
    def _field_for_sum(self) -> SalesforceMetric:
        if self.measure == "sum" and not self.field:
            raise ValueError("`measure: sum` needs `field`")
        return self
