"""YAML keys of a manual metric: none; values come from `checkins/<quarter>.csv`.

A check-in series belongs to one KR of one quarter, and lives in a file beside the
definitions, none of which the YAML says. The pipeline fills those in
(`pipelines/definitions/model.py` the KR and quarter, `pipelines/jobs/collect.py` the file); the
OKR model rejects them when a YAML file sets them (`pipeline_fields`).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from okr_metrics.connectors.params import MetricParams


class ManualMetric(MetricParams):
    source: Literal["manual"]

    # Filled by the pipeline, never written in YAML; left out of dumps, so a KR's
    # definition hash does not depend on them.
    kr_id: str | None = Field(default=None, exclude=True)
    quarter: str | None = Field(default=None, exclude=True)
    checkins_path: str | None = Field(default=None, exclude=True)
    # Every manual KR of the quarter: a check-in for any other id is an unknown kr_id.
    quarter_kr_ids: tuple[str, ...] | None = Field(default=None, exclude=True)

    default_aggregate: ClassVar[str] = "latest"
    tracks_staleness: ClassVar[bool] = False  # only check-in days have data
    pipeline_fields: ClassVar[tuple[str, ...]] = (
        "kr_id",
        "quarter",
        "checkins_path",
        "quarter_kr_ids",
    )

    def metric_key(self, *, timezone: str = "UTC", quarter: str = "", kr_id: str = "") -> str:
        # A check-in series belongs to one KR of one quarter; check-in days are calendar
        # days, so the timezone plays no part.
        quarter = quarter or self.quarter or ""
        kr_id = kr_id or self.kr_id or ""
        return f"manual:quarter={quarter};kr_id={kr_id}"

    def query_params(self) -> dict[str, Any]:
        return {}
