"""Confidence check-ins: `okr checkin` (a real subprocess) appending validated rows, the
check-in reader's confidence column, and the kr_confidence view's disagreements."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

from okr_metrics.connectors.manual.client import read_checkins
from okr_metrics.pipelines.scoring.rules import KR_SCORE_COLUMNS
from okr_metrics.warehouse.store import Warehouse

OKR = Path(sys.executable).parent / "okr"

DEFINITIONS = """\
quarter: 2026-Q4
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
      - id: releases
        title: Ship 6 releases
        type: increase
        start: 0
        target: 6
        metric: {source: github, repo: acme/app, count: releases, aggregate: sum}
"""


@pytest.fixture
def defs(tmp_path) -> Path:
    folder = tmp_path / "okr_defs"
    folder.mkdir()
    (folder / "2026-Q4.yaml").write_text(DEFINITIONS, encoding="utf-8")
    return folder


def okr(defs: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(OKR), "checkin", *args, "--defs", str(defs)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_okr_checkin_appends_validated_rows_and_refuses_bad_ones(defs):
    path = defs / "checkins" / "2026-Q4.csv"
    done = okr(
        defs, "nps", "41", "--confidence", "7", "--note", "survey, week 2", "--date", "2026-10-12"
    )
    assert (done.returncode, done.stdout.strip()) == (0, f"{path}:2")
    # A KR measured by GitHub takes a confidence only: VALUE left out, or '-'.
    assert okr(defs, "releases", "--confidence", "3", "--date", "2026-10-12").returncode == 0
    assert okr(defs, "releases", "-", "--confidence", "9", "--date", "2026-10-19").returncode == 0
    assert path.read_text(encoding="utf-8") == (
        "kr_id,date,value,note,confidence\n"
        'nps,2026-10-12,41,"survey, week 2",7\n'
        "releases,2026-10-12,,,3\n"
        "releases,2026-10-19,,,9\n"
    )
    refused = {
        "duplicate": (
            ["nps", "45", "--date", "2026-10-12"],
            f"nps already has a check-in on 2026-10-12 ({path}:2)",
        ),
        "unknown": (
            ["npz", "45", "--date", "2026-10-13"],
            "unknown KR 'npz' in 2026-Q4; did you mean 'nps'?",
        ),
        "no quarter": (
            ["nps", "45", "--date", "2027-01-04"],
            "2027-01-04 is in 2027-Q1, which has no valid definitions (defined: 2026-Q4)",
        ),
        "measured": (
            ["releases", "2", "--date", "2026-10-13"],
            "releases is measured by its source, not by check-ins: check in only a confidence (VALUE '-')",
        ),
        "confidence": (
            ["nps", "45", "--confidence", "7.5", "--date", "2026-10-13"],
            "--confidence '7.5' is not a whole number from 0 to 10",
        ),
        "value": (["nps", "=1+1", "--date", "2026-10-13"], "VALUE '=1+1' is not a number"),
        "nothing": (["nps", "--date", "2026-10-13"], "give a VALUE, a --confidence, or both"),
    }
    before = path.read_bytes()
    for case, (args, message) in refused.items():
        done = okr(defs, *args)
        assert (done.returncode, done.stderr) == (2, f"okr checkin: {message}\n"), case
    assert path.read_bytes() == before


def test_a_header_without_confidence_gains_the_column(defs):
    path = defs / "checkins" / "2026-Q4.csv"
    path.parent.mkdir()
    path.write_bytes(b"kr_id,date,value,note\r\nnps,2026-10-05,38,\r\n")
    assert okr(defs, "nps", "-", "--confidence", "4", "--date", "2026-10-06").returncode == 0
    assert path.read_bytes().decode("utf-8") == (
        "kr_id,date,value,note,confidence\r\nnps,2026-10-05,38,\r\nnps,2026-10-06,,,4\n"
    )
    found = read_checkins(path, "2026-Q4", ("nps",))
    assert found.problems == []
    assert [(row.value, row.confidence) for row in found.rows] == [(38.0, None), (None, 4)]
    assert found.values == {"nps": {date(2026, 10, 5): 38.0}}


def test_confidence_rows_are_checked_like_the_other_columns(tmp_path):
    path = tmp_path / "2026-Q4.csv"
    path.write_text(
        "kr_id,date,value,note,confidence\n"
        "nps,2026-10-05,38,,8\n"
        "nps,2026-10-12,,doubts,2\n"
        "nps,2026-10-19,40,,11\n"
        "nps,2026-10-20,40,,high\n"
        "nps,2026-10-21,,,\n"
        "releases,2026-10-05,,,6\n"
        "releases,2026-10-06,3,,6\n"
        "ghost,2026-10-05,,,6\n",
        encoding="utf-8",
    )
    every = read_checkins(path, "2026-Q4", ("nps",), confidence_ids=("nps", "releases"))
    assert [(r.kr_id, str(r.date), r.value, r.confidence) for r in every.rows] == [
        ("nps", "2026-10-05", 38.0, 8),
        ("nps", "2026-10-12", None, 2),
        ("releases", "2026-10-05", None, 6),
    ]
    assert every.problems == [
        f"{path}:4: confidence '11' is not a whole number from 0 to 10",
        f"{path}:5: confidence 'high' is not a whole number from 0 to 10",
        f"{path}:6: value '' is not a number",
        f"{path}:8: releases is measured by its source, not by check-ins: give it a "
        "confidence and leave the value empty",
        f"{path}:9: unknown kr_id 'ghost' (not one of the KRs of 2026-Q4)",
    ]
    # The manual source reads only its own KRs: the confidence-only rows of others are
    # not its to judge (okr lint reads them, above).
    manual = read_checkins(path, "2026-Q4", ("nps",))
    assert [row.kr_id for row in manual.rows] == ["nps", "nps"]
    assert [problem.split(": ")[0] for problem in manual.problems] == [
        f"{path}:4",
        f"{path}:5",
        f"{path}:6",
        f"{path}:8",
    ]


def kr_row(kr_id: str, day: date, status: str) -> dict:
    row = dict.fromkeys(KR_SCORE_COLUMNS)
    row.update(
        quarter="2026-Q4",
        objective_id="o",
        kr_id=kr_id,
        kr_title=kr_id,
        as_of=day,
        kr_type="increase",
        value=1.0,
        start=0.0,
        target=2.0,
        score=0.5,
        status=status,
        stale=False,
        definition_hash="h",
    )
    return row


def test_kr_confidence_shows_where_judgement_and_numbers_disagree(warehouse_url):
    warehouse = Warehouse(warehouse_url)
    days = [date(2026, 10, 10), date(2026, 10, 20)]
    statuses = {
        "a": ("on_track", "on_track"),
        "b": ("off_track", "off_track"),
        "c": ("at_risk", "achieved"),
    }
    rows = [kr_row(kr, day, statuses[kr][i]) for kr in statuses for i, day in enumerate(days)]
    warehouse.replace_kr_scores(pd.DataFrame(rows, columns=KR_SCORE_COLUMNS), days[0], days[1], "r")
    checkins = pd.DataFrame(
        [
            # a: 3 on 10-05 (doubtful while on_track), then 5 on 10-15 (no disagreement).
            ("2026-Q4", "a", date(2026, 10, 5), None, "worried", "f", 2, 3),
            ("2026-Q4", "a", date(2026, 10, 15), None, None, "f", 3, 5),
            # b: 9 while off_track: hopeful on both days. A later value-only row changes nothing.
            ("2026-Q4", "b", date(2026, 10, 1), 4.0, None, "f", 4, 9),
            ("2026-Q4", "b", date(2026, 10, 18), 5.0, None, "f", 5, None),
            # c: 2 on 10-12: at_risk on 10-10 is before it; achieved on 10-20 is doubtful.
            ("2026-Q4", "c", date(2026, 10, 12), None, None, "f", 6, 2),
        ],
        columns=["quarter", "kr_id", "date", "value", "note", "file", "line", "confidence"],
    )
    # Whole numbers or None, as the pipeline hands them over (not 3.0 and NaN).
    checkins["confidence"] = pd.Series([3, 5, 9, None, 2], dtype=object)
    warehouse.replace_checkins("2026-Q4", checkins, "r")
    with warehouse.engine.connect() as connection:
        found = connection.execute(
            text(
                "SELECT kr_id, as_of, confidence, confidence_date, disagreement "
                "FROM kr_confidence ORDER BY kr_id, as_of"
            )
        ).all()
    shown = [
        (kr, str(day)[:10], conf, str(on)[:10] if on else None, what)
        for kr, day, conf, on, what in found
    ]
    assert shown == [
        ("a", "2026-10-10", 3, "2026-10-05", "doubtful"),
        ("a", "2026-10-20", 5, "2026-10-15", None),
        ("b", "2026-10-10", 9, "2026-10-01", "hopeful"),
        ("b", "2026-10-20", 9, "2026-10-01", "hopeful"),
        ("c", "2026-10-10", None, None, None),
        ("c", "2026-10-20", 2, "2026-10-12", "doubtful"),
    ]
    warehouse.close()
