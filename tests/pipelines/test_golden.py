"""The shipped definitions, backfilled against a sandbox frozen in time, give the recorded rows.

A refactoring must not change a number: this backfill (the sample definitions of 2026-Q3
and 2026-Q4, from 2026-09-20 through 2026-11-15, every source) is compared row for row
with `tests/fixtures/golden/` (its KR, objective and alert rows), and so are the Dagster
asset and check keys. When a change
is meant to change the numbers, regenerate the files and review their diff:

    OKR_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/pipelines/test_golden.py
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest

from okr_metrics.connectors.registry import connected_sources
from okr_metrics.connectors.sandbox import Sandbox
from okr_metrics.connectors.sandbox.data import SandboxData
from okr_metrics.pipelines.cli.main import run_window
from okr_metrics.pipelines.definitions import load_definitions
from okr_metrics.pipelines.jobs import handoff
from okr_metrics.pipelines.jobs.score import ROLL_UP_COLUMNS, compute_kr_scores
from okr_metrics.pipelines.orchestration.definitions import build_definitions
from okr_metrics.pipelines.scoring.alerts import HISTORY_COLUMNS
from okr_metrics.warehouse.store import Warehouse

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "fixtures" / "golden"
FIRST, LAST = date(2026, 9, 20), date(2026, 11, 15)
HORIZON = datetime(2026, 11, 16, 6, 0, tzinfo=UTC)
UPDATE = os.environ.get("OKR_UPDATE_GOLDEN") == "1"

KR_COLUMNS = [
    "quarter", "objective_id", "kr_id", "kr_title", "owner", "as_of", "kr_type", "value",
    "start", "target", "progress", "score", "expected_progress", "status", "stale",
    "last_observed", "forecast_value", "forecast_score", "forecast_method", "forecast_low",
    "forecast_high", "p_achieve", "definition_hash",
]  # fmt: skip
OBJECTIVE_COLUMNS = [
    "quarter", "objective_id", "title", "owner", "aligns_to", "as_of", "score", "coverage",
    "status",
]  # fmt: skip
ALERT_COLUMNS = [
    "quarter", "kr_id", "kind", "as_of", "old_state", "new_state", "rule", "objective_id",
    "objective_title", "kr_title", "owner", "value", "target", "reason", "route",
]  # fmt: skip


def canonical(frame: pd.DataFrame, columns: list[str], order: list[str]) -> pd.DataFrame:
    """The columns as text, floats to 9 significant digits, in a stable row order."""
    frame = frame[columns].copy()
    for column in columns:
        if pd.api.types.is_float_dtype(frame[column]):
            frame[column] = frame[column].map(lambda v: "" if pd.isna(v) else f"{v:.9g}")
        else:
            frame[column] = frame[column].map(lambda v: "" if v is None or v is pd.NaT else str(v))
    return frame.sort_values(order).reset_index(drop=True)


def compare(name: str, frame: pd.DataFrame) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False)
    recorded = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(frame.columns) == list(recorded.columns)
    mismatched = frame.ne(recorded).any(axis=1) if len(frame) == len(recorded) else None
    assert len(frame) == len(recorded), f"{name}: {len(frame)} rows, recorded {len(recorded)}"
    assert not mismatched.any(), (
        f"{name}: {int(mismatched.sum())} rows differ, first:\n"
        f"{frame[mismatched].head(3).to_string()}\nrecorded:\n"
        f"{recorded[mismatched].head(3).to_string()}"
    )


@pytest.fixture(scope="module")
def frozen_backfill(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("golden")
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    with (
        Sandbox(data=SandboxData(now=HORIZON)) as sandbox,
        pytest.MonkeyPatch.context() as (monkeypatch),
    ):
        monkeypatch.setenv("OKR_DEFS", str(REPO / "okr_defs"))
        monkeypatch.setenv("OKR_WAREHOUSE_URL", url)
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        for source in connected_sources().values():
            env = source.connector_class().env
            for name, value in (
                (env.base_url, sandbox.url),
                (env.token, "golden-token"),
                (env.user, "golden@example.com"),
            ):
                if name:
                    monkeypatch.setenv(name, value)
            if env.credentials_file:
                monkeypatch.delenv(env.credentials_file, raising=False)
        outcome = run_window(FIRST, LAST)
    assert outcome.success, outcome.failure
    return Warehouse(url)


def test_the_backfill_gives_the_recorded_rows(frozen_backfill):
    warehouse = frozen_backfill
    kr_scores = warehouse.read_kr_scores(FIRST, LAST)
    compare("kr_scores.csv", canonical(kr_scores, KR_COLUMNS, ["quarter", "kr_id", "as_of"]))
    objectives = warehouse.read_objective_scores(FIRST, LAST)
    compare(
        "objective_scores.csv",
        canonical(objectives, OBJECTIVE_COLUMNS, ["quarter", "objective_id", "as_of"]),
    )
    alerts = warehouse.read_alerts()
    compare(
        "kr_alerts.csv", canonical(alerts, ALERT_COLUMNS, ["quarter", "kr_id", "kind", "as_of"])
    )


@pytest.mark.parametrize(
    "reader, columns",
    [("kr_alerts", HISTORY_COLUMNS), ("objective_scores", ROLL_UP_COLUMNS)],
)
def test_the_rows_handed_on_in_memory_are_the_rows_read_back(frozen_backfill, reader, columns):
    """kr_alerts and objective_scores take the frame kr_scores wrote in their run
    (`handoff`): it must be what reading the warehouse gives, value for value and type for
    type, or a run's alerts and roll-ups would depend on how it was executed."""
    warehouse = frozen_backfill
    first = date(2026, 10, 1)
    compute_kr_scores(load_definitions(REPO / "okr_defs"), warehouse, first, LAST, "again")
    handed = handoff.take(warehouse, "again", reader, "2026-Q4", first, LAST, columns)
    read = warehouse.read_kr_scores(first, LAST, quarter="2026-Q4", columns=columns)
    assert handed is not None and len(handed) == 19 * 46  # 19 KRs, 1 Oct to 15 Nov
    pd.testing.assert_frame_equal(handed, read)
    for column in columns:
        types = {(type(a), type(b)) for a, b in zip(handed[column], read[column], strict=True)}
        assert all(a is b for a, b in types), (column, types)
    # Taken once per reader; days the run did not write are read from the warehouse.
    assert handoff.take(warehouse, "again", reader, "2026-Q4", first, LAST, columns) is None
    compute_kr_scores(load_definitions(REPO / "okr_defs"), warehouse, first, LAST, "again")
    earlier = date(2026, 9, 30)
    assert handoff.take(warehouse, "again", reader, "2026-Q4", earlier, LAST, columns) is None
    assert handoff.take(warehouse, "other", reader, "2026-Q4", first, LAST, columns) is None


def test_the_dagster_keys_are_the_recorded_ones():
    definitions = build_definitions()
    rows = []
    for assets_def in definitions.assets or []:
        for key in assets_def.keys:
            rows.append({"kind": "asset", "key": key.to_user_string()})
        for check in assets_def.check_specs:
            rows.append(
                {"kind": "check", "key": f"{check.asset_key.to_user_string()}:{check.name}"}
            )
    rows += [{"kind": "job", "key": job.name} for job in definitions.jobs or []]
    rows += [{"kind": "schedule", "key": s.name} for s in definitions.schedules or []]
    frame = pd.DataFrame(rows).sort_values(["kind", "key"]).reset_index(drop=True)
    compare("dagster_keys.csv", frame)
