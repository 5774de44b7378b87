"""The words every layer shares, written once: KR types, aggregates, series kinds, statuses.

The YAML model validates against these, the scoring applies them, the connectors declare
their series' kind with them and validation picks its default expectations by kind.
"""

from __future__ import annotations

from typing import Literal, get_args

KrType = Literal["increase", "decrease", "maintain_above", "maintain_below", "milestone"]
KR_TYPES: tuple[str, ...] = get_args(KrType)
PROGRESS_TYPES = ("increase", "decrease")
MAINTAIN_TYPES = ("maintain_above", "maintain_below")

# How a KR's daily series becomes its value as of a day (docs/scoring.md).
Aggregate = Literal["sum", "latest", "mean", "mean_7d", "min", "max"]
AGGREGATES: tuple[str, ...] = get_args(Aggregate)
RATIO_AGGREGATES = ("sum", "mean_7d")

# What a series' daily values are; it decides their default validation.
SeriesKind = Literal["count", "share", "duration", "amount", "value"]
SERIES_KINDS: tuple[str, ...] = get_args(SeriesKind)

Status = Literal["no_data", "achieved", "on_track", "at_risk", "off_track"]
STATUSES: tuple[str, ...] = get_args(Status)
# Worst first: an objective takes the worst status among its KRs with data.
STATUS_ORDER = ("off_track", "at_risk", "on_track", "achieved")

# Where alerts are posted: this variable, or a route's `OKR_ALERT_WEBHOOK_URL_<NAME>`.
ALERT_WEBHOOK_VARIABLE = "OKR_ALERT_WEBHOOK_URL"
