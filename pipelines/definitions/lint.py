"""The linter's coaching: best-practice warnings on valid definitions (`okr lint` shows them).

Warnings, never errors: a quarter that breaks them still runs. Called by the loader
once a quarter is whole (one file, or its team files merged), so each warning names
the file and line the objective or KR was written at.
"""

from __future__ import annotations

import json
import re

from okr_metrics.connectors.params import Expectations
from okr_metrics.connectors.registry import sources
from okr_metrics.pipelines.definitions.model import KeyResult, OkrFile, RatioMetric
from okr_metrics.pipelines.definitions.problems import LineMapping, Placed, Problem

# Best-practice limits.
MAX_OBJECTIVES = 5
MIN_KRS, MAX_KRS = 2, 4

# Words of a task in a milestone's title: "Ship the new app" is done, not achieved.
OUTPUT_WORDS = re.compile(
    r"\b(ship|ships|shipped|shipping|launch|launches|launched|launching|"
    r"complete|completes|completed|completing)\b",
    re.IGNORECASE,
)
# GA4 user counts: a person active on three days is three in a sum of days.
GA4_DAILY_USERS = {"activeUsers", "totalUsers", "active1DayUsers"}
GA4_ROLLING_USERS = {"active7DayUsers", "active28DayUsers"}
# GA4 averages and rates: their days do not add up either.
GA4_PER_DAY = re.compile(r"^average[A-Z]|Rate$|Per[A-Z]")


def best_practice(okr_file: OkrFile, placed: Placed) -> list[Problem]:
    warnings = (
        _shared_expectations(okr_file, placed)
        + _unused_alert_routes(okr_file, placed)
        + _without_owner(okr_file, placed)
        + _outputs_not_outcomes(okr_file, placed)
        + _sums_that_do_not_add_up(okr_file, placed)
        + _only_manual(okr_file, placed)
    )
    if len(okr_file.objectives) > MAX_OBJECTIVES:
        warnings.append(
            Problem(
                placed.path,
                placed.raw.key_lines.get("objectives", 1),
                f"objectives: {len(okr_file.objectives)} objectives; keep a quarter to {MAX_OBJECTIVES} or fewer",
                "warning",
            )
        )
    for index, objective in enumerate(okr_file.objectives):
        count = len(objective.key_results)
        if not MIN_KRS <= count <= MAX_KRS:
            path, raw = placed.objectives[index]
            warnings.append(
                Problem(
                    path,
                    raw.line,
                    f"objectives[{objective.id}]: {count} key results; aim for {MIN_KRS} to {MAX_KRS}",
                    "warning",
                )
            )
    return warnings


def _shared_expectations(okr_file: OkrFile, placed: Placed) -> list[Problem]:
    """A warning where KRs share a series but declare different `expect` blocks."""
    metric_lines: dict[str, tuple[str, str, int]] = {}
    for path, objective in placed.objectives:
        for key_result in objective.get("key_results") or []:
            where = f"objectives[{objective['id']}].key_results[{key_result['id']}].metric"
            metric_lines[key_result["id"]] = (path, where, key_result.key_lines.get("metric", 1))
    warnings = []
    for metric_key, blocks in okr_file.expectations_by_key().items():
        distinct = {_expect_text(block) for block in blocks.values()}
        if len(distinct) < 2:
            continue
        kr_ids = list(blocks)
        path, where, line = metric_lines[kr_ids[-1]]
        said = "; ".join(f"{kr_id}: {_expect_text(block)}" for kr_id, block in blocks.items())
        warnings.append(
            Problem(
                path,
                line,
                f"{where}: KRs {', '.join(kr_ids)} read the same series ({metric_key}) but "
                f"declare different expect blocks; all of them apply to it ({said})",
                "warning",
            )
        )
    return warnings


def _unused_alert_routes(okr_file: OkrFile, placed: Placed) -> list[Problem]:
    """A warning for each alert route whose owner owns nothing: a misspelt team, most likely."""
    owners = {objective.owner for objective in okr_file.objectives} | {
        key_result.owner or objective.owner for objective, key_result in okr_file.key_results
    }
    routes = placed.raw.get("alert_routes")
    warnings = []
    for owner in okr_file.alert_routes:
        if owner not in owners:
            line = (
                routes.key_lines.get(owner, routes.line) if isinstance(routes, LineMapping) else 1
            )
            known = ", ".join(sorted(o for o in owners if o))
            warnings.append(
                Problem(
                    placed.path,
                    line,
                    f"alert_routes.{owner}: no objective or key result is owned by {owner!r} "
                    f"(owners: {known})",
                    "warning",
                )
            )
    return warnings


def _without_owner(okr_file: OkrFile, placed: Placed) -> list[Problem]:
    """An objective nobody owns is nobody's to move."""
    return [
        Problem(
            path,
            raw.line,
            f"objectives[{objective.id}]: no owner; name the team accountable for it (owner: ...)",
            "warning",
        )
        for objective, (path, raw) in zip(okr_file.objectives, placed.objectives, strict=True)
        if not objective.owner
    ]


def _outputs_not_outcomes(okr_file: OkrFile, placed: Placed) -> list[Problem]:
    """A milestone titled "ship", "launch" or "complete": a task, not an outcome."""
    warnings = []
    for index, objective in enumerate(okr_file.objectives):
        for position, key_result in enumerate(objective.key_results):
            word = OUTPUT_WORDS.search(key_result.title)
            if key_result.type != "milestone" or word is None:
                continue
            path, raw = placed.key_result(index, position)
            warnings.append(
                Problem(
                    path,
                    raw.key_lines.get("title", raw.line),
                    f"objectives[{objective.id}].key_results[{key_result.id}].title: "
                    f"{word.group()!r} with type milestone is a task, not an outcome; measure "
                    "what it should change (users, revenue, time saved) as an increase or "
                    "decrease KR, and keep the task in the plan",
                    "warning",
                )
            )
    return warnings


def _sums_that_do_not_add_up(okr_file: OkrFile, placed: Placed) -> list[Problem]:
    """A `sum` over a GA4 metric whose days do not add up (users, averages, rates)."""
    warnings = []
    for index, objective in enumerate(okr_file.objectives):
        for position, key_result in enumerate(objective.key_results):
            advice = _sum_advice(key_result)
            if advice is None:
                continue
            path, raw = placed.key_result(index, position)
            metric = raw.get("metric")
            line = raw.key_lines.get("metric", raw.line)
            if isinstance(metric, LineMapping):
                line = metric.key_lines.get("aggregate", metric.key_lines.get("metric", line))
            warnings.append(
                Problem(
                    path,
                    line,
                    f"objectives[{objective.id}].key_results[{key_result.id}].metric: {advice}",
                    "warning",
                )
            )
    return warnings


def _sum_advice(key_result: KeyResult) -> str | None:
    metric = key_result.metric
    if key_result.aggregate != "sum" or isinstance(metric, RatioMetric) or key_result.is_ratio:
        return None
    if metric.source != "google_analytics":
        return None
    name = getattr(metric, "metric", "")
    how = "aggregate: sum" if metric.aggregate else "the default aggregate, sum,"
    if name in GA4_DAILY_USERS:
        return (
            f"{how} adds up {name} day by day, counting a person once for each day they "
            "came; use aggregate: latest or max (a day's users) or mean, or the GA4 metric "
            "active7DayUsers (weekly actives) or active28DayUsers (monthly actives) with "
            "aggregate: latest"
        )
    if name in GA4_ROLLING_USERS:
        return (
            f"{how} adds up {name}, a rolling count of users that overlaps from one day to "
            "the next; use aggregate: latest (or max)"
        )
    if GA4_PER_DAY.search(name):
        return (
            f"{how} adds up {name}, an average or rate per day, which means nothing "
            "summed; use aggregate: mean or mean_7d (or latest)"
        )
    return None


def _only_manual(okr_file: OkrFile, placed: Placed) -> list[Problem]:
    """A quarter measured by check-ins alone: its scores wait on people, every week."""
    if any(key_result.sources - {"manual"} for _, key_result in okr_file.key_results):
        return []
    automatic = ", ".join(sorted(set(sources()) - {"manual"}))
    line = placed.raw.key_lines.get("objectives", placed.raw.key_lines.get("quarter", 1))
    return [
        Problem(
            placed.path,
            line,
            f"objectives: every KR of {okr_file.quarter} is a manual check-in; measure at "
            f"least one from a source that reports by itself ({automatic})",
            "warning",
        )
    ]


def _expect_text(block: Expectations | None) -> str:
    if block is None:
        return "none"
    return json.dumps(block.model_dump(mode="json", exclude_defaults=True), sort_keys=True)
