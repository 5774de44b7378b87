"""`okr plan`: a draft for the next quarter that `okr lint` accepts, baselines' measured
values as `start`; and the done-when of the end-of-quarter ritual: `okr plan 2027-Q1`
after `okr demo` writes a draft that `okr lint` accepts."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import yaml

from okr_metrics.pipelines.cli.main import main
from okr_metrics.pipelines.cli.plan import placeholder_target
from okr_metrics.pipelines.scoring.rules import KR_SCORE_COLUMNS
from okr_metrics.warehouse.final_scores import freeze_quarter
from okr_metrics.warehouse.store import Warehouse

REPO = Path(__file__).resolve().parents[2]
OKR = Path(sys.executable).parent / "okr"

Q4 = """\
quarter: 2026-Q4
close_offset_days: 2
objectives:
  - id: activation-2026-q4
    title: Activation, 2026-Q4
    key_results:
      - id: nps-baseline
        title: Measure NPS
        type: baseline
        metric: {source: manual}
      - id: signups
        title: Signups from 100 to 400
        type: increase
        start: 100
        target: 400
        checkpoints:
          - {date: 2026-11-15, target: 200}
          - {date: 2026-12-30, target: 390}
        metric: {source: manual}
"""


def kr_row(kr_id: str, kr_type: str, day: date, value: float) -> dict:
    row = dict.fromkeys(KR_SCORE_COLUMNS)
    row.update(
        quarter="2026-Q4",
        objective_id="activation-2026-q4",
        kr_id=kr_id,
        kr_title=kr_id,
        as_of=day,
        kr_type=kr_type,
        value=value,
        status="baseline" if kr_type == "baseline" else "on_track",
        stale=False,
        definition_hash="h",
    )
    return row


@pytest.fixture
def defs(tmp_path) -> Path:
    folder = tmp_path / "okr_defs"
    folder.mkdir()
    (folder / "2026-Q4.yaml").write_text(Q4, encoding="utf-8")
    return folder


def test_placeholder_target():
    assert placeholder_target(40.0) == 44.0
    assert placeholder_target(0.05) == 0.055
    assert placeholder_target(-20.0) == -18.0
    assert placeholder_target(0.0) == 1.0


def test_the_draft_starts_each_baseline_from_its_frozen_value_and_lints(
    defs, tmp_path, monkeypatch, capsys
):
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    monkeypatch.setenv("OKR_WAREHOUSE_URL", url)
    warehouse = Warehouse(url)
    days = [date(2026, 12, 30), date(2026, 12, 31)]
    rows = [kr_row("nps-baseline", "baseline", day, 40.0 + day.day - 30) for day in days]
    rows += [kr_row("signups", "increase", day, 390.0) for day in days]
    frame = pd.DataFrame(rows, columns=KR_SCORE_COLUMNS)
    warehouse.replace_kr_scores(frame, days[0], days[1], "r")
    # The last day's value, 41, is frozen; a later row would not count.
    assert freeze_quarter(warehouse, "2026-Q4", days[1], date(2027, 1, 2), "r") == 2
    warehouse.close()

    assert main(["plan", "2027-Q1", "--defs", str(defs)]) == 0
    out, err = capsys.readouterr()
    path = defs / "2027-Q1.yaml"
    assert out.strip() == str(path)
    assert "nps-baseline: start 41, frozen on 2026-Q4's last day" in err
    text = path.read_text(encoding="utf-8")
    assert "# measured in 2026-Q4 (the start below)" in text
    draft = yaml.safe_load(text)
    assert draft["quarter"] == "2027-Q1"
    assert draft["close_offset_days"] == 2
    objective = draft["objectives"][0]
    assert (objective["id"], objective["title"]) == ("activation-2027-q1", "Activation, 2027-Q1")
    baseline, signups = objective["key_results"]
    assert baseline == {
        "id": "nps-baseline",
        "title": "Measure NPS",
        "type": "increase",
        "start": 41,
        "target": 45.1,
        "metric": {"source": "manual"},
    }
    # 2026-11-15 is 45 days into 2026-Q4, so 2027-02-15; 2026-12-30 (90 days in) would be
    # 2027-04-01, after 2027-Q1's 90 days: it falls on the day before the last, as it must.
    assert signups["checkpoints"] == [
        {"date": "2027-02-15", "target": 200},
        {"date": "2027-03-30", "target": 390},
    ]
    assert (signups["start"], signups["target"]) == (100, 400)
    assert main(["lint", "--defs", str(defs)]) == 0

    # Never over a file without --force, nor a quarter defined elsewhere.
    assert main(["plan", "2027-Q1", "--defs", str(defs)]) == 2
    assert f"{path} exists; give --force to overwrite it" in capsys.readouterr().err
    assert main(["plan", "2027-Q1", "--defs", str(defs), "--force"]) == 0
    other = tmp_path / "elsewhere.yaml"
    assert main(["plan", "2027-Q1", "--defs", str(defs), "--out", str(other)]) == 2
    assert f"2027-Q1 is already defined in {path}" in capsys.readouterr().err
    assert main(["plan", "2026-Q3", "--defs", str(defs)]) == 2
    assert "no valid definitions before 2026-Q3 to start from" in capsys.readouterr().err


def _demo_run(factory: pytest.TempPathFactory):
    """The test run's `okr demo` (tests/browser/browser_support.py), shared with the
    browser tests so that it runs once."""
    spec = importlib.util.spec_from_file_location(
        "browser_support", REPO / "tests" / "browser" / "browser_support.py"
    )
    module = sys.modules.get("browser_support")
    if module is None:
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["browser_support"] = module
        spec.loader.exec_module(module)
    base = factory.getbasetemp()
    return module, module.DemoRun(base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base)


def test_okr_plan_after_okr_demo_writes_a_draft_okr_lint_accepts(tmp_path, tmp_path_factory):
    support, demo = _demo_run(tmp_path_factory)
    process = demo.start()
    demo.wait()
    if process is not None:
        process.wait()
    defs = tmp_path / "okr_defs"
    shutil.copytree(REPO / "okr_defs", defs)
    env = support.clean_env(OKR_WAREHOUSE_URL=demo.url, OKR_DEFS=str(defs))
    planned = subprocess.run(
        [str(OKR), "plan", "2027-Q1"], capture_output=True, text=True, env=env, timeout=120
    )
    assert planned.returncode == 0, planned.stderr
    assert planned.stdout.strip() == str(defs / "2027-Q1.yaml")
    linted = subprocess.run(
        [str(OKR), "lint"], capture_output=True, text=True, env=env, timeout=120
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert "3 quarters valid, 0 error(s)" in linted.stderr
    # The demo closed 2026-Q3: its frozen grades, one with the sample override.
    with Warehouse(demo.url) as warehouse:
        frame = pd.read_sql(
            "SELECT kr_id, score, override_grade, grade FROM kr_final_scores "
            "WHERE quarter = '2026-Q3'",
            warehouse.engine,
        )
    uptime = frame.set_index("kr_id").loc["uptime"]
    assert (uptime["override_grade"], uptime["grade"]) == (1.0, 1.0)
    assert uptime["score"] < 1.0
