"""The words every layer shares, written once: KR types, aggregates, series kinds, statuses.

The YAML model validates against these, the scoring applies them, the connectors declare
their series' kind with them and validation picks its default expectations by kind.
"""

from __future__ import annotations

from typing import Literal, get_args

KrType = Literal[
    "increase",
    "decrease",
    "maintain_above",
    "maintain_below",
    "maintain_between",
    "milestone",
    "baseline",
]
KR_TYPES: tuple[str, ...] = get_args(KrType)
PROGRESS_TYPES = ("increase", "decrease")
MAINTAIN_TYPES = ("maintain_above", "maintain_below", "maintain_between")
# Measured, charted and forecast, never scored nor rolled up into its objective.
UNSCORED_TYPES = ("baseline",)

# What a KR's score means (docs/scoring.md): an aspirational KR succeeds at 0.7, a
# committed one is expected to reach 1.0.
Commitment = Literal["aspirational", "committed"]
COMMITMENTS: tuple[str, ...] = get_args(Commitment)
SUCCESS_SCORE = {"aspirational": 0.7, "committed": 1.0}

# How a KR's daily series becomes its value as of a day (docs/scoring.md).
Aggregate = Literal["sum", "latest", "mean", "mean_7d", "min", "max"]
AGGREGATES: tuple[str, ...] = get_args(Aggregate)
RATIO_AGGREGATES = ("sum", "mean_7d")

# What a series' daily values are; it decides their default validation.
SeriesKind = Literal["count", "share", "duration", "amount", "value"]
SERIES_KINDS: tuple[str, ...] = get_args(SeriesKind)

Status = Literal["no_data", "achieved", "on_track", "at_risk", "off_track", "baseline"]
STATUSES: tuple[str, ...] = get_args(Status)
# Worst first: an objective takes the worst status among its scored KRs with data.
STATUS_ORDER = ("off_track", "at_risk", "on_track", "achieved")

# Where alerts are posted: this variable, or a route's `OKR_ALERT_WEBHOOK_URL_<NAME>`.
ALERT_WEBHOOK_VARIABLE = "OKR_ALERT_WEBHOOK_URL"
