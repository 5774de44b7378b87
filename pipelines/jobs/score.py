"""Score the days of a window from the stored observations, quarter by quarter.

Called by the `kr_scores` and `objective_scores` assets. Each day is scored with its
own quarter's definitions, from observations dated that day or earlier only, and
each quarter's days are replaced in the warehouse in one transaction. Days whose
quarter has no valid definitions are left alone and reported.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

import pandas as pd

from okr_metrics.pipelines.definitions import Definitions, OkrFile
from okr_metrics.pipelines.jobs import handoff
from okr_metrics.pipelines.jobs.checkins import quarter_checkins
from okr_metrics.pipelines.scoring.alerts import HISTORY_COLUMNS
from okr_metrics.pipelines.scoring.rules import (
    KeyResultInput,
    ObjectiveInput,
    StatusThresholds,
    score_key_results,
    score_objectives,
)
from okr_metrics.pipelines.vocabulary.quarters import Quarter, days_between, quarters_between
from okr_metrics.warehouse.store import Warehouse

log = logging.getLogger("okr_metrics")

DEFINITION_COLUMNS = ["quarter", "kr_id", "definition_hash", "metric_keys", "definition"]
# What `score_objectives` reads of the KR rows (the rest of a quarter's rows is not read).
ROLL_UP_COLUMNS = ["quarter", "as_of", "kr_id", "value", "score", "status"]
# What the assets after kr_scores read of its rows, handed on to them in memory (`handoff`).
HANDED_ON_COLUMNS = sorted({*HISTORY_COLUMNS, *ROLL_UP_COLUMNS})


@dataclass
class ScoreResult:
    rows: int = 0
    quarters: list[str] = field(default_factory=list)
    unscored: dict[str, str] = field(default_factory=dict)  # quarter -> why
    status_counts: dict[str, int] = field(default_factory=dict)
    stale: int = 0


def _defined_quarters(
    definitions: Definitions, start: date, end: date, result: ScoreResult
) -> Iterator[tuple[Quarter, date, date, OkrFile]]:
    """Each quarter the window touches, with its days in the window and its definitions.

    Quarters without valid definitions are skipped and recorded in `result.unscored`.
    """
    for quarter in quarters_between(start, end):
        first, last = max(start, quarter.start), min(end, quarter.end)
        okr_file = definitions.for_quarter(quarter)
        if okr_file is None:
            reason = missing_definitions(definitions, quarter)
            result.unscored[str(quarter)] = reason
            log.warning(f"{first}..{last} not scored: {reason}")
            continue
        yield quarter, first, last, okr_file


def missing_definitions(definitions: Definitions, quarter: Quarter) -> str:
    root = definitions.root or "okr_defs"
    broken = definitions.errors_for(quarter)
    if broken:
        return f"definitions for {quarter} have errors (run `okr lint`): {broken[0]}"
    return f"no definitions for {quarter} (expected {root}/{quarter}.yaml or {root}/{quarter}/)"


def compute_kr_scores(
    definitions: Definitions,
    warehouse: Warehouse,
    start: date,
    end: date,
    run_id: str,
    progress: Callable[[str], None] = log.info,
) -> ScoreResult:
    """Score every KR on every day of the window into `kr_scores` (and each quarter's
    check-ins into `checkins`)."""

    def score_quarter(
        quarter: Quarter, first: date, last: date, okr_file: OkrFile, result: ScoreResult
    ) -> pd.DataFrame:
        _, key_results = scoring_inputs(okr_file)
        key_results = carry_running_totals(key_results, warehouse, quarter)
        keys = okr_file.series_by_key().keys()
        # Observations after `last` are never read: no look-ahead.
        observations = warehouse.read_observations(keys, quarter.start, last)
        scores = score_key_results(
            key_results,
            quarter,
            observations,
            days_between(first, last),
            status_thresholds(okr_file),
        )
        del observations  # the quarter's rows are all that is kept from here on
        result.rows += warehouse.replace_kr_scores(
            scores, first, last, run_id, definitions=definition_rows(okr_file)
        )
        handoff.keep(warehouse, run_id, str(quarter), first, last, scores, HANDED_ON_COLUMNS)
        checkins = quarter_checkins(definitions, okr_file)
        if checkins is not None:
            warehouse.replace_checkins(str(quarter), checkins, run_id)
        result.stale += int(scores["stale"].sum())
        for status, count in scores["status"].value_counts().items():
            result.status_counts[status] = result.status_counts.get(status, 0) + int(count)
        return scores

    return _score_window(definitions, start, end, "kr_scores", score_quarter, progress)


def compute_objective_scores(
    definitions: Definitions,
    warehouse: Warehouse,
    start: date,
    end: date,
    run_id: str,
    progress: Callable[[str], None] = log.info,
) -> ScoreResult:
    """Roll the window's `kr_scores` rows up into `objective_scores`, quarter by quarter."""

    def score_quarter(
        quarter: Quarter, first: date, last: date, okr_file: OkrFile, result: ScoreResult
    ) -> pd.DataFrame | None:
        objectives, key_results = scoring_inputs(okr_file)
        kr_rows = handoff.read_kr_scores(
            warehouse, run_id, "objective_scores", str(quarter), first, last, ROLL_UP_COLUMNS
        )
        scores = score_objectives(objectives, key_results, kr_rows)
        if scores.empty:
            return None  # no KR rows for these days yet
        result.rows += warehouse.replace_objective_scores(scores, first, last, run_id)
        return scores

    return _score_window(definitions, start, end, "objective_scores", score_quarter, progress)


def _score_window(
    definitions: Definitions,
    start: date,
    end: date,
    table: str,
    score_quarter: Callable[[Quarter, date, date, OkrFile, ScoreResult], pd.DataFrame | None],
    progress: Callable[[str], None],
) -> ScoreResult:
    """Run `score_quarter` (which writes `table`'s rows for the quarter's days in the
    window, and returns them or None when it wrote none) on each defined quarter the
    window touches."""
    result = ScoreResult()
    for quarter, first, last, okr_file in _defined_quarters(definitions, start, end, result):
        scores = score_quarter(quarter, first, last, okr_file, result)
        if scores is None:
            continue
        result.quarters.append(str(quarter))
        progress(f"{table}: {quarter} {first}..{last}: {len(scores)} rows")
    return result


def scoring_inputs(okr_file: OkrFile) -> tuple[list[ObjectiveInput], list[KeyResultInput]]:
    """The plain inputs the scoring functions work on, from a quarter's definitions."""
    objectives, key_results = [], []
    for objective in okr_file.objectives:
        objectives.append(
            ObjectiveInput(objective.id, objective.title, objective.owner, objective.aligns_to)
        )
        for key_result in objective.key_results:
            parts = key_result.series_parts
            keys = [okr_file.metric_key(key_result, part) for part in parts]
            key_results.append(
                KeyResultInput(
                    kr_id=key_result.id,
                    objective_id=objective.id,
                    title=key_result.title,
                    owner=key_result.owner or objective.owner,
                    kr_type=key_result.type,
                    start=key_result.start,
                    target=(
                        None
                        if key_result.type in ("maintain_between", "baseline")
                        else key_result.effective_target
                    ),
                    weight=key_result.weight,
                    aggregate=key_result.aggregate,
                    metric_key=keys[0] if len(keys) == 1 else None,
                    numerator_key=keys[0] if len(keys) == 2 else None,
                    denominator_key=keys[1] if len(keys) == 2 else None,
                    tracks_staleness=any(part.tracks_staleness for part in parts),
                    definition_hash=okr_file.definition_hash(key_result),
                    low=key_result.low,
                    high=key_result.high,
                    commitment=key_result.commitment,
                    checkpoints=tuple(
                        (checkpoint.date, checkpoint.target)
                        for checkpoint in key_result.checkpoints or ()
                    ),
                    # Marks a running total; `carry_running_totals` fills in the total.
                    carried=None if key_result.reset_each_quarter else 0.0,
                )
            )
    return objectives, key_results


def carry_running_totals(
    key_results: Sequence[KeyResultInput], warehouse: Warehouse, quarter: Quarter
) -> list[KeyResultInput]:
    """Running totals (`reset_each_quarter: false`) with the total their series' stored
    observations reach before the quarter start, from any earlier quarter.

    Only what the warehouse holds counts: days of earlier quarters never collected or
    backfilled add nothing, and a running total with no earlier row is warned about.
    """
    keys = {kr.metric_key for kr in key_results if kr.carried is not None and kr.metric_key}
    if not keys:
        return list(key_results)
    before = quarter.start - timedelta(days=1)
    history = warehouse.read_observations(keys, date.min, before)
    totals = history.groupby("metric_key")["value"].sum().to_dict() if not history.empty else {}
    carried: list[KeyResultInput] = []
    for key_result in key_results:
        if key_result.carried is not None and key_result.metric_key in keys:
            total = float(totals.get(key_result.metric_key, 0.0))
            if key_result.metric_key not in totals:
                log.warning(
                    f"kr_scores: {quarter} {key_result.kr_id}: a running total with no stored "
                    f"observation before {quarter.start}: it starts from 0 (backfill the "
                    "earlier quarters)"
                )
            key_result = replace(key_result, carried=total)
        carried.append(key_result)
    return carried


def definition_rows(okr_file: OkrFile) -> pd.DataFrame:
    """Each KR's definition as `kr_definitions` keeps it (the days it served are the
    warehouse's to work out, from `kr_scores`)."""
    rows = []
    for objective in okr_file.objectives:
        for key_result in objective.key_results:
            keys = [okr_file.metric_key(key_result, part) for part in key_result.series_parts]
            rows.append(
                {
                    "quarter": str(okr_file.quarter),
                    "kr_id": key_result.id,
                    "definition_hash": okr_file.definition_hash(key_result),
                    "metric_keys": json.dumps(keys),
                    "definition": json.dumps(
                        key_result.model_dump(mode="json", exclude_none=True), sort_keys=True
                    ),
                }
            )
    return pd.DataFrame(rows, columns=DEFINITION_COLUMNS)


def status_thresholds(okr_file: OkrFile) -> StatusThresholds:
    thresholds = okr_file.status_thresholds
    return StatusThresholds(thresholds.on_track, thresholds.at_risk)
