"""The YAML keys of a metric, one pydantic model per source.

Each source declares what its `metric:` block accepts in `connectors/<source>/params.py`
(pydantic only: no HTTP, so the OKR model can load it cheaply). The OKR model in
`pipelines/definitions/model.py` builds its metric union from these models through the registry.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from okr_metrics.pipelines.vocabulary.terms import Aggregate, SeriesKind


class Expectations(BaseModel):
    """What a metric's daily values must meet, beyond the defaults of their kind.

    `min` / `max` bound every daily value; `gx` lists any Great Expectations
    expectation by name with its arguments (`column` defaults to `value`), e.g.
    `[{expect_column_values_to_be_between: {min_value: 0, max_value: 100}}]`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: float | None = None
    max: float | None = None
    gx: tuple[dict[str, dict[str, Any]], ...] = Field(default=())

    @field_validator("gx")
    @classmethod
    def _one_name_each(cls, items: tuple[dict[str, dict[str, Any]], ...]):
        for item in items:
            if len(item) != 1:
                raise ValueError("each gx item is one `expect_...: {arguments}` mapping")
            (name,) = item
            if not name.startswith("expect_"):
                raise ValueError(f"{name!r} is not a Great Expectations expectation (expect_...)")
        return items

    @model_validator(mode="after")
    def _ordered(self) -> Expectations:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"expect: min {self.min:g} is above max {self.max:g}")
        return self


class MetricParams(BaseModel):
    """Base class of a source's metric keys; `source` is the discriminator."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    aggregate: Aggregate | None = None
    expect: Expectations | None = None

    # The aggregate a KR gets when its YAML names none.
    default_aggregate: ClassVar[str] = "sum"
    # Whether a day without an observation means the source failed (the KR goes `stale`);
    # False for series that only have data on some days, such as check-ins.
    tracks_staleness: ClassVar[bool] = True

    def query_params(self) -> dict[str, Any]:
        """The keys that decide what is fetched (not how it is aggregated or validated)."""
        return self.model_dump(exclude={"source", "aggregate", "expect"}, exclude_defaults=True)

    def series_kind(self) -> SeriesKind:
        """What the daily values are, which decides their default validation."""
        return "value"

    def ratio_parts(self) -> tuple[MetricParams, MetricParams] | None:
        """For a metric that is itself a ratio of two series (a share): numerator, denominator."""
        return None

    def metric_key(self, *, timezone: str = "UTC", quarter: str = "", kr_id: str = "") -> str:
        """A stable, readable id of the daily series this metric yields.

        KRs that share a query share a key, so the query is fetched once per run.
        """
        parts = []
        for name, value in sorted(self.query_params().items()):
            if isinstance(value, list | tuple):
                text = ",".join(
                    v if isinstance(v, str) else json.dumps(v, sort_keys=True) for v in value
                )
            elif isinstance(value, dict):
                text = json.dumps(value, sort_keys=True, separators=(",", ":"))
            else:
                text = str(value)
            parts.append(f"{name}={text}")
        key = f"{self.source}:" + ";".join(parts)
        return key if timezone == "UTC" else f"{key}@{timezone}"
