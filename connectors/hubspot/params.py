"""YAML keys of a HubSpot CRM metric."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from connectors.params import MetricParams

Operator = Literal[
    "EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN",
    "HAS_PROPERTY", "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN",
]  # fmt: skip


class HubSpotFilter(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    property: str = Field(min_length=1)
    operator: Operator
    value: str | int | float | bool | None = None


class HubSpotMetric(MetricParams):
    source: Literal["hubspot"]
    object: str = Field(default="deals", min_length=1)
    filters: tuple[HubSpotFilter, ...] = ()
    date_property: str = Field(default="closedate", min_length=1)
    measure: Literal["count", "sum"] = "count"
    field: str | None = None

    def series_kind(self) -> str:
        return "count" if self.measure == "count" else "amount"

    @model_validator(mode="after")
    def _field_for_sum(self) -> HubSpotMetric:
        if self.measure == "sum" and not self.field:
            raise ValueError("`measure: sum` needs `field`")
        return self
