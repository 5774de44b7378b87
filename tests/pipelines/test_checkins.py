"""Check-in files through the real pipeline: a bad row costs that row, never the KR's quarter."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pytest

from okr_metrics.pipelines.cli.main import EXIT_FAILED, EXIT_SOURCE_FAILED, main, run_window
from okr_metrics.pipelines.vocabulary.quarters import Quarter
from okr_metrics.warehouse.store import Warehouse

REPO = Path(__file__).resolve().parents[2]
Q3 = Quarter.parse("2026-Q3")

DEFINITIONS = """\
quarter: 2026-Q3
objectives:
  - id: customers
    title: Customers love the product
    owner: product
    key_results:
      - id: nps
        title: NPS from 30 to 50
        type: increase
        start: 30
        target: 50
        metric: {source: manual}
      - id: uptime
        title: Uptime at least 99.9%
        type: maintain_above
        target: 0.999
        metric: {source: manual, aggregate: min}
"""

# Lines 4 (next quarter's row), 5 (not a number), 6 (a second check-in on 08-03) and
# 8 (a KR that does not exist) are bad; the rest is what the KRs are scored from.
CHECKINS = """\
kr_id,date,value,note
nps,2026-07-06,32,
nps,2026-08-03,38,first August survey
nps,2026-10-02,45,meant for Q4
nps,2026-08-17,forty,
nps,2026-08-03,39,sent twice
nps,2026-09-07,41,
csat,2026-08-01,4.2,
uptime,2026-07-01,0.9995,
"""


@pytest.fixture
def checkins_file(tmp_path, monkeypatch) -> Path:
    defs = tmp_path / "okr_defs"
    (defs / "checkins").mkdir(parents=True)
    (defs / "2026-Q3.yaml").write_text(DEFINITIONS, encoding="utf-8")
    path = defs / "checkins" / "2026-Q3.csv"
    path.write_text(CHECKINS, encoding="utf-8")
    monkeypatch.setenv("OKR_DEFS", str(defs))
    return path


@pytest.fixture
def checkins(checkins_file, tmp_path, monkeypatch, warehouse_url):
    path = checkins_file
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("OKR_WAREHOUSE_URL", warehouse_url)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return path, Warehouse(warehouse_url)


def scores_on(warehouse: Warehouse, day: date) -> dict[str, dict]:
    frame = warehouse.read_kr_scores(day, day)
    return {row["kr_id"]: row for row in frame.to_dict("records")}


def test_bad_check_in_rows_are_rejected_and_the_kr_is_scored_from_the_rest(checkins):
    path, warehouse = checkins
    outcome = run_window(Q3.start, Q3.end)
    assert outcome.success, outcome.failure
    # Rows were rejected: the run says so with exit 3, and the source itself is ok.
    assert outcome.exit_code == EXIT_SOURCE_FAILED
    assert outcome.sources["manual"] == "ok"
    assert outcome.rejected == {"manual": 4}

    # nps by hand: 32 from 07-06, 38 from 08-03 (the first of the two 08-03 rows), 41
    # from 09-07; latest value, progress (value - 30) / (50 - 30).
    assert scores_on(warehouse, date(2026, 7, 5))["nps"]["status"] == "no_data"
    assert scores_on(warehouse, date(2026, 7, 31))["nps"]["value"] == 32
    assert scores_on(warehouse, date(2026, 8, 20))["nps"]["value"] == 38
    last = scores_on(warehouse, Q3.end)
    assert last["nps"]["value"] == 41
    assert last["nps"]["score"] == pytest.approx((41 - 30) / (50 - 30))
    assert last["nps"]["last_observed"] == date(2026, 9, 7)
    assert last["uptime"]["value"] == pytest.approx(0.9995) and last["uptime"]["score"] == 1.0

    rejected = warehouse.read_rejected().sort_values("reason")
    assert rejected[
        ["metric_key", "date", "raw_value", "expectation", "reason"]
    ].values.tolist() == [
        [
            "manual:quarter=2026-Q3;kr_id=nps",
            "2026-10-02",
            "45",
            "valid_checkin_row",
            f"{path}:4: date 2026-10-02 is not in 2026-Q3 (2026-07-01..2026-09-30)",
        ],
        [
            "manual:quarter=2026-Q3;kr_id=nps",
            "2026-08-17",
            "forty",
            "valid_checkin_row",
            f"{path}:5: value 'forty' is not a number",
        ],
        [
            "manual:quarter=2026-Q3;kr_id=nps",
            "2026-08-03",
            "39",
            "valid_checkin_row",
            f"{path}:6: a second check-in of nps on 2026-08-03 (the first, at line 3, is kept)",
        ],
        [
            "manual:quarter=2026-Q3",
            "2026-08-01",
            "4.2",
            "valid_checkin_row",
            f"{path}:8: unknown kr_id 'csat' (not one of the manual KRs of 2026-Q3: nps, uptime)",
        ],
    ]
    assert set(rejected["run_id"]) == {outcome.run_id}

    # Re-running never duplicates a rejection; a nightly window re-reports the same rows.
    run_window(date(2026, 9, 28), Q3.end)
    assert len(warehouse.read_rejected()) == 4

    # Fixed rows leave rejected_observations; the KR now reads the corrected values.
    path.write_text(
        CHECKINS.replace("nps,2026-10-02,45,meant for Q4\n", "")
        .replace("forty", "40")
        .replace("nps,2026-08-03,39,sent twice\n", "")
        .replace("csat,2026-08-01,4.2,\n", ""),
        encoding="utf-8",
    )
    fixed = run_window(Q3.start, Q3.end)
    assert fixed.exit_code == 0 and fixed.rejected == {}
    assert warehouse.read_rejected().empty
    assert scores_on(warehouse, date(2026, 8, 20))["nps"]["value"] == 40


MANUAL_ONLY = (
    "{defs}/2026-Q3.yaml:2: warning: objectives: every KR of 2026-Q3 is a manual check-in; "
    "measure at least one from a source that reports by itself (github, google_analytics, "
    "hubspot, jira, salesforce)"
)


def test_okr_lint_names_the_bad_check_in_rows(checkins_file, capsys):
    path = checkins_file
    assert main(["lint"]) == EXIT_FAILED
    out = capsys.readouterr().out.splitlines()
    assert out == [
        MANUAL_ONLY.format(defs=path.parents[1]),
        f"{path}:4: date 2026-10-02 is not in 2026-Q3 (2026-07-01..2026-09-30)",
        f"{path}:5: value 'forty' is not a number",
        f"{path}:6: a second check-in of nps on 2026-08-03 (the first, at line 3, is kept)",
        f"{path}:8: unknown kr_id 'csat' (not one of the manual KRs of 2026-Q3: nps, uptime)",
    ]


def test_a_clean_check_in_file_lints_clean(checkins_file, capsys):
    path = checkins_file
    path.write_text("kr_id,date,value,note\nnps,2026-07-06,32,\n", encoding="utf-8")
    assert main(["lint"]) == 0
    # A check-ins-only quarter: the linter's coaching, and nothing about the file.
    assert capsys.readouterr().out.splitlines() == [MANUAL_ONLY.format(defs=path.parents[1])]


def checkin_rows(warehouse: Warehouse) -> list[tuple]:
    with warehouse.engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT kr_id, date, value, note, line FROM checkins ORDER BY line"
        )
        return [(kr, str(day)[:10], value, note, line) for kr, day, value, note, line in rows]


def definition_history(warehouse: Warehouse) -> list[tuple]:
    with warehouse.engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT kr_id, target, first_as_of, last_as_of, metric_keys, definition"
            " FROM kr_definitions ORDER BY kr_id, first_as_of"
        )
        return [
            (kr, target, str(first)[:10], str(last)[:10], json.loads(keys), json.loads(text))
            for kr, target, first, last, keys, text in rows
        ]


def test_the_checkins_table_holds_the_valid_rows_with_their_notes(checkins):
    path, warehouse = checkins
    run_window(Q3.start, Q3.end)
    # Lines 2, 3, 7 and 9 are valid; line 9's note is empty.
    assert checkin_rows(warehouse) == [
        ("nps", "2026-07-06", 32.0, None, 2),
        ("nps", "2026-08-03", 38.0, "first August survey", 3),
        ("nps", "2026-09-07", 41.0, None, 7),
        ("uptime", "2026-07-01", 0.9995, None, 9),
    ]
    # The file is the truth: an edited note and a removed row are what the next run keeps.
    path.write_text(
        CHECKINS.replace("first August survey", "survey of 212 answers").replace(
            "nps,2026-09-07,41,\n", ""
        ),
        encoding="utf-8",
    )
    run_window(date(2026, 9, 29), Q3.end)
    assert checkin_rows(warehouse) == [
        ("nps", "2026-07-06", 32.0, None, 2),
        ("nps", "2026-08-03", 38.0, "survey of 212 answers", 3),
        ("uptime", "2026-07-01", 0.9995, None, 8),
    ]


def test_kr_definitions_keeps_each_definition_and_the_days_it_served(checkins):
    path, warehouse = checkins
    defs = path.parent.parent / "2026-Q3.yaml"
    run_window(Q3.start, date(2026, 8, 15))
    defs.write_text(DEFINITIONS.replace("target: 50", "target: 60"), encoding="utf-8")
    run_window(date(2026, 8, 16), Q3.end)
    history = definition_history(warehouse)
    assert [row[:4] for row in history] == [
        ("nps", 50.0, "2026-07-01", "2026-08-15"),
        ("nps", 60.0, "2026-08-16", "2026-09-30"),
        ("uptime", 0.999, "2026-07-01", "2026-09-30"),
    ]
    assert history[0][4] == ["manual:quarter=2026-Q3;kr_id=nps"]
    assert (history[0][5]["target"], history[1][5]["target"]) == (50, 60)
    # Re-scoring the whole quarter with the new target leaves one definition in use.
    run_window(Q3.start, Q3.end)
    assert [row[:4] for row in definition_history(warehouse)] == [
        ("nps", 60.0, "2026-07-01", "2026-09-30"),
        ("uptime", 0.999, "2026-07-01", "2026-09-30"),
    ]
