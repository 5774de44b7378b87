"""Render a quarter's scorecard, as of one day, from the warehouse (`okr scorecard`).

Numbers are written as the dashboard writes them (`dashboard.formats`); in a terminal
each KR also gets a Unicode sparkline of its quarter so far (`dashboard.charts`). A KR's
newest confidence check-in is noted beside it (with `doubtful` or `hopeful` where it
disagrees with the status), and a closed quarter ends with its frozen final grades.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import date
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy import text as sql_text

from okr_metrics.pipelines.dashboard.board import Attention, needs_attention
from okr_metrics.pipelines.dashboard.charts import sparkline
from okr_metrics.pipelines.dashboard.formats import ValueFormat, value_format
from okr_metrics.pipelines.scoring.rules import KR_SCORE_COLUMNS
from okr_metrics.pipelines.vocabulary.text import spreadsheet_cell
from okr_metrics.warehouse.final_scores import read_final_scores
from okr_metrics.warehouse.schema import kr_definitions
from okr_metrics.warehouse.store import Warehouse

# What the scorecard shows of a KR row: everything but the keys it is printed under.
KR_COLUMNS = [c for c in KR_SCORE_COLUMNS if c not in ("quarter", "as_of", "definition_hash")]


FINAL_GRADE_COLUMNS = [
    "kr_id",
    "value",
    "score",
    "status",
    "override_grade",
    "override_note",
    "graded_by",
    "grade",
    "closed_on",
]

SOURCE_COLUMNS = [
    "source",
    "status",
    "reason",
    "rejected_rows",
    "window_start",
    "window_end",
    "run_id",
]


def _sources_footer(sources: pd.DataFrame) -> str:
    """How each source fared in its newest run: why KRs are stale, in one place."""
    if sources.empty:
        return ""
    lines = ["", "", "Sources (newest run):"]
    for _, row in sources.iterrows():
        text = f"  {row['source']}: {row['status']}"
        if not _missing(row["reason"]) and row["reason"]:
            text += f": {row['reason']}"
        if row["rejected_rows"]:
            text += f" ({row['rejected_rows']} rows failed validation)"
        lines.append(f"{text} [{row['window_start']}..{row['window_end']}]")
    return "\n".join(lines)


class ScorecardError(Exception):
    pass


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _score(value: Any) -> str:
    return "-" if _missing(value) else f"{value:.2f}"


def _jsonable(value: Any) -> Any:
    if _missing(value):
        return None
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value


def load_scorecard(
    warehouse: Warehouse, quarter: str | None, as_of: date | None
) -> tuple[str, date, pd.DataFrame, pd.DataFrame]:
    if as_of is None:
        newest = warehouse.latest_as_of(quarter)
        if newest is None:
            where = f" for {quarter}" if quarter else ""
            raise ScorecardError(
                f"no scores in the warehouse{where}; run `okr run` or `okr backfill` first"
            )
        quarter, as_of = newest
    objectives = warehouse.read_objective_scores(as_of, as_of, quarter=quarter)
    key_results = warehouse.read_kr_scores(as_of, as_of, quarter=quarter)
    if key_results.empty:
        raise ScorecardError(f"no scores as of {as_of}" + (f" in {quarter}" if quarter else ""))
    quarter = quarter or key_results["quarter"].iloc[0]
    return quarter, as_of, objectives, key_results


def _in_definition_order(
    objectives: pd.DataFrame, key_results: pd.DataFrame, order: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Objectives and KRs as the YAML lists them; ids it does not know go last, by name."""
    rank = {item_id: index for index, item_id in enumerate(order)}

    def sort(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
        if frame.empty:
            return frame
        keys = [frame[column].map(lambda i: (rank.get(i, len(rank)), i)) for column in columns]
        positions = sorted(range(len(frame)), key=lambda row: tuple(k.iloc[row] for k in keys))
        return frame.iloc[positions].reset_index(drop=True)

    return sort(objectives, ["objective_id"]), sort(key_results, ["objective_id", "kr_id"])


def render_scorecard(
    warehouse: Warehouse,
    quarter: str | None = None,
    as_of: date | None = None,
    output_format: str = "table",
    order: Sequence[str] = (),
    sparklines: bool = False,
) -> str:
    """The scorecard as text; `order` lists objective and KR ids in the definitions' order.

    `sparklines` (a terminal): the table gets a trend column, each KR's daily values
    from the quarter's first day through `as_of`.
    """
    quarter, as_of, objectives, key_results = load_scorecard(warehouse, quarter, as_of)
    objectives, key_results = _in_definition_order(objectives, key_results, order)
    sources = warehouse.latest_source_runs()
    with warehouse.engine.connect() as connection:
        attention = needs_attention(connection, quarter, as_of, set(key_results["kr_id"]))
    if output_format == "csv":
        frame = key_results.assign(quarter=quarter, as_of=as_of)[["quarter", "as_of", *KR_COLUMNS]]
        # Titles and owners come from the YAML: one written as a formula stays text.
        frame = frame.map(lambda cell: spreadsheet_cell(cell) if isinstance(cell, str) else cell)
        return frame.to_csv(index=False).rstrip("\n")
    if output_format == "json":
        card = _as_json(quarter, as_of, objectives, key_results)
        card["needs_attention"] = [
            {
                "kr_id": item.kr_id,
                "since": item.before_as_of.isoformat(),
                "p_achieve_before": item.before,
                "p_achieve": item.now,
            }
            for item in attention
        ]
        card["sources"] = [
            {key: _jsonable(row[key]) for key in SOURCE_COLUMNS} for _, row in sources.iterrows()
        ]
        card["confidence"] = [
            {key: _jsonable(value) for key, value in found.items()}
            for found in confidences(warehouse, quarter, as_of).values()
        ]
        card["final_grades"] = [
            {key: _jsonable(row[key]) for key in FINAL_GRADE_COLUMNS}
            for _, row in read_final_scores(warehouse, quarter).iterrows()
        ]
        return json.dumps(card, indent=2)
    trends = _trends(warehouse, quarter, as_of) if sparklines else None
    formats = _value_formats(warehouse, quarter, key_results)
    confidence = confidences(warehouse, quarter, as_of)
    table = _as_table(quarter, as_of, objectives, key_results, trends, formats, confidence)
    final = read_final_scores(warehouse, quarter)
    grades = _grades_footer(_in_definition_order(pd.DataFrame(), final, order)[1])
    return table + grades + _attention_footer(attention) + _sources_footer(sources)


def confidences(warehouse: Warehouse, quarter: str, as_of: date) -> dict[str, dict[str, Any]]:
    """Each KR's newest confidence on or before `as_of`, and whether it disagrees with its
    status (the `kr_confidence` view: doubtful, hopeful or None)."""
    query = sql_text(
        "SELECT kr_id, confidence, confidence_date, disagreement FROM kr_confidence "
        "WHERE quarter = :quarter AND as_of = :as_of AND confidence IS NOT NULL"
    )
    warehouse.ensure_schema()
    with warehouse.engine.connect() as connection:
        rows = connection.execute(query, {"quarter": quarter, "as_of": as_of}).mappings()
        return {row["kr_id"]: dict(row) for row in rows}


def _confidence_note(found: dict[str, Any] | None) -> str | None:
    if not found:
        return None
    note = f"confidence {found['confidence']}/10"
    return note + f" ({found['disagreement']})" if found["disagreement"] else note


def _grades_footer(final: pd.DataFrame) -> str:
    """The quarter's frozen grades, when it has closed: computed, override, the one that counts."""
    if final.empty:
        return ""
    closed = final["closed_on"].iloc[0]
    lines = ["", "", f"Final grades (frozen, closed on {closed}):"]
    for _, row in final.iterrows():
        text = f"  {row['kr_id']:<30} computed {_score(row['score']):>5}"
        if not _missing(row["override_grade"]):
            by = f" by {row['graded_by']}" if row["graded_by"] else ""
            text += f"  override {_score(row['override_grade'])}{by}: {row['override_note']}"
        lines.append(f"{text}  -> grade {_score(row['grade'])}")
    return "\n".join(lines)


def _value_formats(
    warehouse: Warehouse, quarter: str, key_results: pd.DataFrame
) -> dict[str, ValueFormat]:
    """Each KR's value format, from the definition it was scored with (its `format` and
    `unit` win over what its numbers suggest), as the dashboard writes it."""
    query = select(
        kr_definitions.c.kr_id, kr_definitions.c.definition_hash, kr_definitions.c.definition
    ).where(kr_definitions.c.quarter == quarter)
    with warehouse.engine.connect() as connection:
        stored = {(kr_id, hash_): text for kr_id, hash_, text in connection.execute(query)}
    formats = {}
    for _, kr in key_results.iterrows():
        text = stored.get((kr["kr_id"], kr["definition_hash"]))
        try:
            definition = json.loads(text) if text else None
        except ValueError:
            definition = None
        formats[kr["kr_id"]] = value_format(kr["kr_type"], kr["start"], kr["target"], definition)
    return formats


def _attention_footer(attention: list[Attention]) -> str:
    if not attention:
        return ""
    lines = ["", "", f"Needs attention (chance to achieve, since {attention[0].before_as_of}):"]
    lines += [f"  {item.kr_id:<30} {item.text}" for item in attention]
    return "\n".join(lines)


def _trends(warehouse: Warehouse, quarter: str, as_of: date) -> dict[str, str]:
    """Each KR's sparkline over the quarter through `as_of`."""
    history = warehouse.read_kr_scores(end=as_of, quarter=quarter)
    if history.empty:
        return {}
    return {
        kr_id: sparkline(rows.sort_values("as_of")["value"].tolist())
        for kr_id, rows in history.groupby("kr_id")
    }


def _as_json(quarter: str, as_of: date, objectives: pd.DataFrame, key_results: pd.DataFrame):
    result = {"quarter": quarter, "as_of": as_of.isoformat(), "objectives": []}
    for _, objective in objectives.iterrows():
        krs = key_results[key_results["objective_id"] == objective["objective_id"]]
        result["objectives"].append(
            {
                **{
                    key: _jsonable(objective[key])
                    for key in (
                        "objective_id",
                        "title",
                        "owner",
                        "aligns_to",
                        "score",
                        "coverage",
                        "status",
                    )
                },
                "key_results": [
                    {key: _jsonable(row[key]) for key in KR_COLUMNS if key != "objective_id"}
                    for _, row in krs.iterrows()
                ],
            }
        )
    return result


def _as_table(
    quarter: str,
    as_of: date,
    objectives: pd.DataFrame,
    key_results: pd.DataFrame,
    trends: dict[str, str] | None = None,
    formats: dict[str, ValueFormat] | None = None,
    confidence: dict[str, dict[str, Any]] | None = None,
) -> str:
    lines = [f"Scorecard {quarter} as of {as_of}", ""]
    trend_header = f" {'trend':<16}" if trends is not None else ""
    header = (
        f"  {'key result':<30} {'value':>10} {'target':>10} {'score':>6}  {'status':<10}"
        f"{trend_header} note"
    )
    order = list(objectives["objective_id"]) if not objectives.empty else []
    order += [o for o in key_results["objective_id"].unique() if o not in order]
    by_id = {row["objective_id"]: row for _, row in objectives.iterrows()}
    for objective_id in order:
        objective = by_id.get(objective_id)
        if objective is not None:
            coverage = (
                "" if _missing(objective["coverage"]) else f"{objective['coverage']:.0%} with data"
            )
            lines.append(
                f"{objective_id}: {objective['title']}  "
                f"[score {_score(objective['score'])}, {objective['status']}, {coverage}]"
            )
        else:
            lines.append(objective_id)
        lines.append(header)
        for _, kr in key_results[key_results["objective_id"] == objective_id].iterrows():
            notes = []
            if kr["stale"]:
                seen = kr["last_observed"]
                notes.append(
                    f"stale (last data {seen})" if not _missing(seen) and seen else "stale"
                )
            between = kr["kr_type"] == "maintain_between"
            number = (formats or {}).get(kr["kr_id"]) or value_format(
                kr["kr_type"],
                kr.get("low") if between else kr["start"],
                kr.get("high") if between else kr["target"],
            )
            if kr.get("commitment") == "committed":
                notes.append("committed")
            if kr["kr_type"] == "baseline":
                notes.append("baseline — not scored")
            if not _missing(kr.get("carried")):
                notes.append(f"{number(kr['carried'])} carried from earlier quarters")
            if not _missing(kr["forecast_value"]):
                forecast = f"forecast {number(kr['forecast_value'])}"
                if not _missing(kr.get("forecast_low")) and not _missing(kr.get("forecast_high")):
                    forecast += f" ({number(kr['forecast_low'])}–{number(kr['forecast_high'])})"
                notes.append(forecast)
            if not _missing(kr.get("p_achieve")):
                notes.append(f"p(achieve) {kr['p_achieve']:.0%}")
            if said := _confidence_note((confidence or {}).get(kr["kr_id"])):
                notes.append(said)
            trend = f" {trends.get(kr['kr_id'], ''):<16}" if trends is not None else ""
            target = (
                f"{number(kr['low'])}–{number(kr['high'])}" if between else number(kr["target"])
            )
            lines.append(
                f"  {kr['kr_id']:<30} {number(kr['value']):>10} {target:>10} "
                f"{_score(kr['score']):>6}  {kr['status']:<10}{trend} {', '.join(notes)}".rstrip()
            )
        lines.append("")
    return "\n".join(lines).rstrip("\n")
