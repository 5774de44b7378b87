"""The linter's coaching: best-practice warnings on valid definitions (`okr lint` shows them).

Warnings, never errors: a quarter that breaks them still runs.
"""

from __future__ import annotations

import json

from okr_metrics.connectors.params import Expectations
from okr_metrics.pipelines.definitions.model import OkrFile
from okr_metrics.pipelines.definitions.problems import LineMapping, Placed, Problem

# Best-practice limits.
MAX_OBJECTIVES = 5
MIN_KRS, MAX_KRS = 2, 4


def best_practice(okr_file: OkrFile, placed: Placed) -> list[Problem]:
    warnings = _shared_expectations(okr_file, placed) + _unused_alert_routes(okr_file, placed)
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


def _expect_text(block: Expectations | None) -> str:
    if block is None:
        return "none"
    return json.dumps(block.model_dump(mode="json", exclude_defaults=True), sort_keys=True)
