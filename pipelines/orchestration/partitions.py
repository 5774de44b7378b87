"""Daily partitions: one partition is one as-of day (UTC calendar day)."""

from __future__ import annotations

from dagster import DailyPartitionsDefinition

# Backfills reach back to 2025; the newest partition is yesterday (a day is complete).
FIRST_DAY = "2025-01-01"

daily_partitions = DailyPartitionsDefinition(start_date=FIRST_DAY, timezone="UTC", end_offset=0)
