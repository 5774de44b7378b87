"""Final grades: frozen once after the closing day by a real Dagster run, never changed by
later runs, with the owner's override from the grades file beside the computed grade."""

from __future__ import annotations

import re
import shutil
import socket
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest

from okr_metrics.connectors.manual.grades import read_grades
from okr_metrics.pipelines.cli.main import main, run_window
from okr_metrics.pipelines.dashboard.web import create_app
from okr_metrics.warehouse.final_scores import Override, apply_overrides, read_final_scores
from okr_metrics.warehouse.store import Warehouse

REPO = Path(__file__).resolve().parents[2]

Q3 = """\
quarter: 2026-Q3
close_offset_days: 3
objectives:
  - id: customers
    title: Customers love the product
    key_results:
      - id: nps
        title: NPS from 30 to 50
        type: increase
        start: 30
        target: 50
        metric: {source: manual}
      - id: csat
        title: CSAT from 3 to 5
        type: increase
        start: 3
        target: 5
        metric: {source: manual}
"""
Q4 = Q3.replace("2026-Q3", "2026-Q4").replace("close_offset_days: 3\n", "")

# nps on 09-30: 42, so (42 - 30) / (50 - 30) = 0.6; csat: (4.5 - 3) / (5 - 3) = 0.75,
# on_track (pace 0.75 on the last day) while its owner's confidence is 2: doubtful.
CHECKINS = """\
kr_id,date,value,note,confidence
nps,2026-07-06,32,
nps,2026-09-30,42,
csat,2026-09-14,4.5,
csat,2026-09-21,,the new survey tool may under-count,2
"""
GRADES = """\
kr_id,grade,note,graded_by
csat,0.9,survey moved to the new tool mid-quarter; the old one under-counted,cx-lead
"""


@pytest.fixture
def quarter_files(tmp_path, monkeypatch, warehouse_url) -> tuple[Path, Warehouse]:
    defs = tmp_path / "okr_defs"
    for folder in ("checkins", "grades"):
        (defs / folder).mkdir(parents=True)
    (defs / "2026-Q3.yaml").write_text(Q3, encoding="utf-8")
    (defs / "2026-Q4.yaml").write_text(Q4, encoding="utf-8")
    (defs / "checkins" / "2026-Q3.csv").write_text(CHECKINS, encoding="utf-8")
    (defs / "grades" / "2026-Q3.csv").write_text(GRADES, encoding="utf-8")
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("OKR_DEFS", str(defs))
    monkeypatch.setenv("OKR_WAREHOUSE_URL", warehouse_url)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return defs, Warehouse(warehouse_url)


@contextmanager
def serving(app) -> Iterator[str]:
    """`app` on a real uvicorn server on a free 127.0.0.1 port; yields its base URL."""
    import uvicorn

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        threading.Event().wait(0.01)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read().decode("utf-8")


def final(warehouse: Warehouse) -> dict[str, dict]:
    frame = read_final_scores(warehouse, "2026-Q3")
    frame = frame.astype(object).where(frame.notna(), None)
    return {row["kr_id"]: row for row in frame.to_dict("records")}


def test_grades_freeze_on_the_closing_day_and_never_move(quarter_files):
    defs, warehouse = quarter_files
    # Through 10-02, the day before the closing day (09-30 + 3): nothing is frozen.
    assert run_window(date(2026, 7, 1), date(2026, 10, 2)).success
    assert final(warehouse) == {}

    assert run_window(date(2026, 10, 3), date(2026, 10, 3)).success
    rows = final(warehouse)
    assert set(rows) == {"nps", "csat"}
    assert rows["nps"]["score"] == pytest.approx(0.6)
    assert rows["nps"]["value"] == 42
    assert rows["nps"]["grade"] == pytest.approx(0.6)
    assert rows["nps"]["override_grade"] is None
    assert rows["csat"]["score"] == pytest.approx(0.75)
    assert rows["csat"]["override_grade"] == pytest.approx(0.9)
    assert rows["csat"]["grade"] == pytest.approx(0.9)
    assert rows["csat"]["graded_by"] == "cx-lead"
    assert rows["csat"]["override_source"].endswith("grades/2026-Q3.csv:2")
    assert str(rows["nps"]["closed_on"])[:10] == "2026-10-03"
    frozen_by = rows["nps"]["run_id"]

    # Late data rewrites Q3's scores on a re-run, never its frozen grades; the overrides
    # follow the file (csat's removed, nps's added).
    (defs / "checkins" / "2026-Q3.csv").write_text(
        CHECKINS.replace("nps,2026-09-30,42", "nps,2026-09-30,50"), encoding="utf-8"
    )
    (defs / "grades" / "2026-Q3.csv").write_text(
        "kr_id,grade,note\nnps,0.5,the survey sample was small\n", encoding="utf-8"
    )
    assert run_window(date(2026, 7, 1), date(2026, 10, 5)).success
    rescored = warehouse.read_kr_scores(date(2026, 9, 30), date(2026, 9, 30))
    assert rescored.set_index("kr_id").loc["nps", "score"] == pytest.approx(1.0)
    rows = final(warehouse)
    assert rows["nps"]["score"] == pytest.approx(0.6)  # frozen: not 1.0
    assert rows["nps"]["value"] == 42
    assert rows["nps"]["run_id"] == frozen_by
    assert (rows["nps"]["override_grade"], rows["nps"]["grade"]) == (0.5, 0.5)
    assert rows["nps"]["override_note"] == "the survey sample was small"
    assert rows["csat"]["score"] == pytest.approx(0.75)
    assert rows["csat"]["override_grade"] is None
    assert rows["csat"]["grade"] == pytest.approx(0.75)

    # The dashboard shows both grades and the disagreement, read back over HTTP.
    with serving(create_app(warehouse)) as base:
        overview = get(f"{base}/?quarter=2026-Q3")
        page = get(f"{base}/kr/2026-Q3/nps?quarter=2026-Q3")
    final_grades = overview.split('data-section="final-grades"', 1)[1].split("</section>", 1)[0]
    nps_row = final_grades.split('data-final-kr="nps"', 1)[1].split("</tr>", 1)[0]
    assert re.findall(r'<td class="num">(?:<b>)?([\d.]*)', nps_row) == ["0.60", "0.50", "0.50"]
    assert "the survey sample was small" in nps_row
    disagreements = overview.split('data-section="disagreements"', 1)[1].split("</section>")[0]
    assert 'data-disagreement-kr="csat"' in disagreements
    assert "<b>doubtful</b>: confidence 2/10, on track" in disagreements
    assert "data-computed-grade>0.60</b>" in page and "data-override-grade>0.50</b>" in page

    # An override that changes keeps its first reading time only while it stands.
    first_read = rows["nps"]["override_recorded_at"]
    same = {
        "nps": Override(0.5, "the survey sample was small", None, rows["nps"]["override_source"])
    }
    assert apply_overrides(warehouse, "2026-Q3", same) == 0
    assert final(warehouse)["nps"]["override_recorded_at"] == first_read
    changed = {"nps": Override(0.55, "recounted", "pm", "grades/2026-Q3.csv:2")}
    assert apply_overrides(warehouse, "2026-Q3", changed) == 1
    rows = final(warehouse)
    assert (rows["nps"]["override_grade"], rows["nps"]["grade"]) == (0.55, 0.55)
    assert rows["nps"]["score"] == pytest.approx(0.6)
    warehouse.close()


def test_a_bad_grades_row_costs_that_row_and_lint_names_its_line(tmp_path, capsys):
    defs = tmp_path / "okr_defs"
    (defs / "grades").mkdir(parents=True)
    (defs / "2026-Q3.yaml").write_text(Q3, encoding="utf-8")
    path = defs / "grades" / "2026-Q3.csv"
    path.write_text(
        "kr_id,grade,note,graded_by\n"
        "csat,0.9,fine,cx\n"
        "nps,1.5,too high,\n"
        "npss,0.5,a typo,\n"
        "csat,0.2,twice,\n"
        "nps,0.4,,\n",
        encoding="utf-8",
    )
    grades = read_grades(path, "2026-Q3", ("nps", "csat"))
    assert list(grades.overrides) == ["csat"]
    assert grades.overrides["csat"].grade == 0.9
    assert grades.problems == [
        f"{path}:3: grade '1.5' is not a number from 0 to 1",
        f"{path}:4: unknown kr_id 'npss' (not one of the KRs of 2026-Q3); did you mean 'nps'?",
        f"{path}:5: a second override of csat (the first, at line 2, is kept)",
        f"{path}:6: the override of nps needs a note saying why",
    ]
    assert main(["lint", "--defs", str(defs)]) == 1
    printed = capsys.readouterr().out.splitlines()
    assert [line for line in printed if line.startswith(str(path))] == grades.problems


def test_close_offset_days_is_validated(tmp_path, capsys):
    path = tmp_path / "2026-Q3.yaml"
    path.write_text(Q3.replace("close_offset_days: 3", "close_offset_days: -2"), encoding="utf-8")
    assert main(["lint", "--defs", str(path)]) == 1
    assert f"{path}:2: close_offset_days: Input should be greater than or equal to 0" in (
        capsys.readouterr().out
    )
