"""`okr plan QUARTER [--out PATH] [--force]`: a draft definitions file for the next quarter.

The draft copies the objectives and KRs of the newest quarter defined before QUARTER.
Every `baseline` KR with a measured final value (from `kr_final_scores` once that quarter
is frozen, else its newest `kr_scores` value) becomes an `increase` KR with that value as
its `start` and a placeholder target 10% above it, marked in the file; dates (checkpoints)
moved to the same day of the new quarter and the old quarter's name in ids and titles
replaced, so that the draft passes `okr lint` as written. It refuses to overwrite a file
unless `--force`, and refuses a quarter the definitions already hold (in another file).
Registered in `pipelines/cli/main.py`.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from okr_metrics.pipelines.settings import Settings

EXIT_OK, EXIT_USAGE = 0, 2
BASELINE = "baseline"


class PlanError(Exception):
    """A draft that cannot be written: one line for the user."""


def add_command(commands: Any) -> None:
    """Add `plan` to the `okr` parser's subcommands."""
    plan = commands.add_parser(
        "plan",
        help="write a draft definitions file for a quarter from the newest one before it",
        description="Copy the newest quarter's objectives and KRs into a draft for QUARTER, "
        "with each baseline KR's measured value as its start.",
    )
    plan.add_argument("quarter", metavar="QUARTER", help="the quarter to plan, e.g. 2027-Q1")
    plan.add_argument(
        "--out", default=None, help="the file to write (default: <defs>/QUARTER.yaml)"
    )
    plan.add_argument("--force", action="store_true", help="overwrite the file if it exists")
    plan.add_argument(
        "--defs", default=None, help="definitions folder (default: $OKR_DEFS or okr_defs/)"
    )
    plan.set_defaults(handler=cmd_plan)


def cmd_plan(args: argparse.Namespace, settings: Settings) -> int:
    from okr_metrics.warehouse.store import Warehouse

    try:
        with Warehouse(settings.warehouse_url) as warehouse:
            path, notes = write_plan(
                settings.definitions_path, args.quarter, warehouse, args.out, args.force
            )
    except PlanError as error:
        print(f"okr plan: {error}", file=sys.stderr)
        return EXIT_USAGE
    for note in notes:
        print(note, file=sys.stderr)
    print(path)
    return EXIT_OK


def write_plan(
    definitions_path: str | Path,
    quarter_text: str,
    warehouse: Any,
    out: str | Path | None = None,
    force: bool = False,
) -> tuple[Path, list[str]]:
    """Write the draft; returns its path and one line per baseline KR (where its start came
    from, or why it has none)."""
    from okr_metrics.pipelines.definitions import load_definitions
    from okr_metrics.pipelines.vocabulary.quarters import Quarter

    try:
        quarter = Quarter.parse(quarter_text)
    except ValueError as error:
        raise PlanError(str(error)) from None
    definitions = load_definitions(definitions_path)
    root = Path(definitions_path)
    folder = root if root.is_dir() else root.parent
    path = Path(out) if out else folder / f"{quarter}.yaml"
    if path.exists() and not force:
        raise PlanError(f"{path} exists; give --force to overwrite it")
    held = definitions.paths.get(quarter)
    if held is not None and held.resolve() != path.resolve():
        raise PlanError(f"{quarter} is already defined in {held}")
    earlier = [q for q in definitions.files if q < quarter]
    if not earlier:
        raise PlanError(f"no valid definitions before {quarter} to start from")
    previous = max(earlier)
    okr_file = definitions.files[previous]
    measured, notes = _measured_baselines(warehouse, okr_file)
    draft = draft_definitions(okr_file, quarter, measured)
    made = datetime.now(UTC).date()
    header = (
        f"# Draft for {quarter}, written by `okr plan` on {made} from {previous}: "
        "review the targets before the quarter starts.\n"
    )
    text = _dump(draft)
    for kr_id in measured:
        # Mark each former baseline where the owner will look: just above its id.
        text = re.sub(
            rf"^(\s*)- id: {re.escape(kr_id)}$",
            rf"\1# measured in {previous} (the start below); the target is a placeholder, "
            rf"10% up: set the real one (or type: decrease)\n\g<0>",
            text,
            count=1,
            flags=re.MULTILINE,
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + text, encoding="utf-8")
    return path, notes


def _measured_baselines(warehouse: Any, okr_file: Any) -> tuple[dict[str, float], list[str]]:
    """Each baseline KR's measured final value: frozen if the quarter closed, else newest."""
    from okr_metrics.warehouse.final_scores import read_final_scores

    quarter = str(okr_file.quarter)
    baselines = [kr.id for _, kr in okr_file.key_results if kr.type == BASELINE]
    if not baselines:
        return {}, []
    frozen = read_final_scores(warehouse, quarter)
    latest = warehouse.read_kr_scores(quarter=quarter)
    measured, notes = {}, []
    for kr_id in baselines:
        rows = frozen[frozen["kr_id"] == kr_id] if not frozen.empty else frozen
        if not rows.empty and rows.iloc[0]["value"] is not None:
            measured[kr_id] = float(rows.iloc[0]["value"])
            notes.append(f"{kr_id}: start {measured[kr_id]:g}, frozen on {quarter}'s last day")
            continue
        rows = (
            latest[(latest["kr_id"] == kr_id) & latest["value"].notna()] if len(latest) else latest
        )
        if not rows.empty:
            row = rows.sort_values("as_of").iloc[-1]
            measured[kr_id] = float(row["value"])
            notes.append(f"{kr_id}: start {measured[kr_id]:g}, measured as of {row['as_of']}")
        else:
            notes.append(f"{kr_id}: no measured value in the warehouse; start left out")
    return measured, notes


def draft_definitions(okr_file: Any, quarter: Any, measured: dict[str, float]) -> dict:
    """The next quarter's definitions as plain data, from `okr_file` (the rules above)."""
    old, new = str(okr_file.quarter), str(quarter)
    data = okr_file.model_dump(mode="json", exclude_unset=True, exclude={"quarter"})
    draft: dict[str, Any] = {"quarter": new, **data}
    for objective in draft["objectives"]:
        _rename(objective, old, new)
        for key_result in objective["key_results"]:
            _rename(key_result, old, new)
            if key_result["type"] == BASELINE and key_result["id"] in measured:
                _from_baseline(key_result, measured[key_result["id"]])
            if key_result.get("checkpoints"):
                moved = {}
                for checkpoint in key_result["checkpoints"]:
                    day = date.fromisoformat(str(checkpoint["date"]))
                    day = _same_day(day, okr_file.quarter, quarter)
                    moved[day] = {**checkpoint, "date": day.isoformat()}  # the later one wins
                key_result["checkpoints"] = list(moved.values())
    return _tidy(draft)


def placeholder_target(start: float) -> float:
    """A target the draft can pass lint with: 10% above `start` (1 above a start of 0)."""
    if start == 0:
        return 1.0
    return float(f"{start + abs(start) * 0.1:.4g}")


def _from_baseline(key_result: dict, start: float) -> None:
    """A measured baseline KR becomes an increase KR from its measured value, its target a
    placeholder the owner replaces (the draft marks it)."""
    key_result["type"] = "increase"
    key_result["start"] = start
    key_result["target"] = placeholder_target(start)
    key_result.pop("commitment", None)


def _rename(item: dict, old: str, new: str) -> None:
    """The old quarter's name in an id (`2026-q4`) or title (`2026-Q4`) becomes the new one's."""
    for key in ("id", "title", "aligns_to"):
        if isinstance(item.get(key), str):
            item[key] = re.sub(re.escape(old), new, item[key], flags=re.IGNORECASE)
            if key != "title":
                item[key] = item[key].lower()


def _same_day(day: date, old: Any, new: Any) -> date:
    """The day as far into the new quarter as `day` was into the old, before its last day
    (where checkpoints must fall; a later one wins over an earlier one moved onto the same day)."""
    return min(new.start + timedelta(days=(day - old.start).days), new.end - timedelta(days=1))


def _tidy(value: Any) -> Any:
    """Whole floats as ints (`start: 10000`, not `10000.0`), recursively."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _tidy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_tidy(item) for item in value]
    return value


def _dump(draft: dict) -> str:
    import yaml

    return yaml.safe_dump(draft, sort_keys=False, allow_unicode=True, width=100)
