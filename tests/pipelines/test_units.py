"""A KR's `unit` and `format`: validated at file:line, kept out of the definition hash,
stored in kr_definitions, and written by the scorecard, the report and the dashboard."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from okr_metrics.pipelines.cli.main import EXIT_OK, main
from okr_metrics.pipelines.dashboard.formats import value_format
from okr_metrics.pipelines.definitions import load_definitions
from okr_metrics.pipelines.vocabulary.quarters import Quarter
from okr_metrics.warehouse.schema import kr_definitions
from okr_metrics.warehouse.store import Warehouse

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dashboard"))
from pagetools import parse  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
NBSP = "\u00a0"

QUARTER = """\
quarter: 2026-Q4
objectives:
  - id: revenue
    title: Grow revenue
    owner: sales
    key_results:
      - id: bookings
        title: EUR 20,000 of bookings
        type: increase
        start: 0
        target: 20000
        {bookings}
        metric: {{source: manual, aggregate: latest}}
      - id: users
        title: 15,000 weekly users
        type: increase
        start: 10000
        target: 15000
        {users}
        metric: {{source: github, repo: acme/app, count: releases, aggregate: sum}}
"""


def write(tmp_path: Path, bookings: str = "", users: str = "") -> Path:
    path = tmp_path / "2026-Q4.yaml"
    text = QUARTER.format(bookings=bookings, users=users)
    path.write_text(text.replace("        \n", ""), encoding="utf-8")
    return path


# Lines: the bookings KR from 7 (`{bookings}` on 12); with no bookings line, the users KR
# from 13 (`{users}` on 18).
@pytest.mark.parametrize(
    ("bookings", "users", "problem"),
    [
        ("format: money", "", "12: objectives[revenue].key_results[bookings].format: unknown "
         "format 'money' (use number, percent, duration or currency:CODE, such as currency:EUR)"),
        ("format: currency:EURO", "", "12: objectives[revenue].key_results[bookings].format: "
         "'EURO' is not an ISO 4217 currency code (write it in capitals: currency:EUR, "
         "currency:USD, currency:GBP ...)"),
        ("format: currency:eur", "", "12: objectives[revenue].key_results[bookings].format: "
         "'eur' is not an ISO 4217 currency code (write it in capitals: currency:EUR, "
         "currency:USD, currency:GBP ...)"),
        ("format: currency:EUR\n        unit: euros", "", "13: objectives[revenue].key_results"
         "[bookings].unit: a currency format is its own unit: leave `unit` out"),
        ("", "format: percent\n        unit: users", "19: objectives[revenue].key_results[users]"
         ".unit: format percent takes no unit: its values are 0..1 shares, written 85%"),
        ("", "format: duration\n        unit: days", "19: objectives[revenue].key_results[users]"
         ".unit: a duration's unit is what its values count: s, sec, seconds, min, minutes, h, "
         "hours (seconds when none is given)"),
    ],
)  # fmt: skip
def test_a_bad_format_or_unit_is_one_line_at_its_line(tmp_path, bookings, users, problem):
    path = write(tmp_path, bookings, users)
    found = load_definitions(path)
    assert [str(p) for p in found.errors] == [f"{path}:{problem}"]
    assert found.for_quarter(Quarter(2026, 4)) is None


def test_format_and_unit_leave_the_definition_hash_alone(tmp_path):
    plain = load_definitions(write(tmp_path)).for_quarter(Quarter(2026, 4))
    styled = load_definitions(write(tmp_path, "format: currency:EUR", "unit: users")).for_quarter(
        Quarter(2026, 4)
    )
    assert [kr.format for _, kr in styled.key_results] == ["currency:EUR", None]
    assert [kr.unit for _, kr in styled.key_results] == [None, "users"]
    assert [plain.definition_hash(kr) for _, kr in plain.key_results] == [
        styled.definition_hash(kr) for _, kr in styled.key_results
    ]


@pytest.mark.parametrize(
    ("definition", "value", "written"),
    [
        ({"format": "currency:EUR"}, 12840.0, "€12,840"),
        ({"format": "currency:EUR"}, 1_250_000, "€1.25M"),
        ({"format": "currency:EUR"}, 44.1, "€44.10"),
        ({"format": "currency:EUR"}, 44.0, "€44"),
        ({"format": "currency:EUR"}, -1200, "-€1,200"),
        ({"format": "currency:USD"}, 750000, "$750,000"),
        ({"format": "currency:GBP"}, 999.999, "£1,000"),
        ({"format": "currency:CHF"}, 12840, f"CHF{NBSP}12,840"),
        ({"format": "currency:CAD"}, 0.5, f"CAD{NBSP}0.50"),
        ({"format": "number", "unit": "users"}, 12840.0, f"12,840{NBSP}users"),
        ({"unit": "customers"}, 42, f"42{NBSP}customers"),
        ({"format": "duration"}, 390.14, "6m 30s"),
        ({"format": "duration", "unit": "h"}, 26, "1d 2h"),
        ({"format": "percent"}, 0.052, "5.2%"),
        # The KR's format wins over what its numbers suggest: 0..1 would be a share.
        ({"format": "number"}, 0.52, "0.52"),
        ({"format": "number", "metric": {"metric": "averageSessionDuration"}}, 390.14, "390.1"),
        ({"format": "currency:EUR"}, None, "–"),
    ],
)
def test_values_are_written_as_the_format_says(definition, value, written):
    assert value_format("increase", 0, 1, definition)(value) == written


def test_a_charts_axis_leaves_a_numbers_unit_out():
    from okr_metrics.pipelines.dashboard.formats import ValueFormat

    users = value_format("increase", 10000, 15000, {"unit": "users"})
    assert users.tick(12000) == "12,000" and users(12000) == f"12,000{NBSP}users"
    euros = value_format("increase", 0, 1, {"format": "currency:EUR"})
    assert euros.tick(12000) == "€12,000"
    assert ValueFormat().tick(0.5) == "0.5"


def test_changes_are_written_in_the_format_too():
    assert value_format("increase", 0, 1, {"format": "currency:EUR"}).delta(1200) == "+€1,200"
    assert value_format("increase", 0, 1, {"format": "currency:EUR"}).delta(-44.5) == "−€44.50"
    assert value_format("increase", 0, 9, {"unit": "users"}).delta(30) == f"+30{NBSP}users"


@pytest.fixture
def scored(tmp_path, monkeypatch):
    """A quarter of one currency KR (a check-in) and one users KR, backfilled for two days."""
    defs = tmp_path / "okr_defs"
    defs.mkdir()
    manual = "metric: {source: manual, aggregate: latest}"
    text = QUARTER.format(bookings="format: currency:EUR", users="unit: users").replace(
        "metric: {source: github, repo: acme/app, count: releases, aggregate: sum}", manual
    )
    (defs / "2026-Q4.yaml").write_text(text, encoding="utf-8")
    (defs / "checkins").mkdir()
    (defs / "checkins" / "2026-Q4.csv").write_text(
        "kr_id,date,value,note\nbookings,2026-10-01,12840,\nusers,2026-10-01,11196,\n",
        encoding="utf-8",
    )
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    monkeypatch.setenv("OKR_DEFS", str(defs))
    monkeypatch.setenv("OKR_WAREHOUSE_URL", url)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert main(["backfill", "--from", "2026-10-01", "--to", "2026-10-02"]) == EXIT_OK
    return Warehouse(url)


def test_the_scorecard_the_report_and_the_dashboard_use_them(scored, tmp_path, capsys):
    with scored.engine.connect() as connection:
        stored = {
            kr_id: json.loads(text)
            for kr_id, text in connection.execute(
                select(kr_definitions.c.kr_id, kr_definitions.c.definition)
            )
        }
    assert stored["bookings"]["format"] == "currency:EUR" and "unit" not in stored["bookings"]
    assert stored["users"]["unit"] == "users"
    capsys.readouterr()
    assert main(["scorecard", "--as-of", "2026-10-02"]) == EXIT_OK
    table = capsys.readouterr().out
    assert re.search(r"\n  bookings +€12,840 +€20,000 +0\.64 ", table)
    assert re.search(f"\n  users +11,196{NBSP}users +15,000{NBSP}users +0\\.24 ", table)
    report = tmp_path / "report.html"
    assert main(["report", "--as-of", "2026-10-02", "--out", str(report)]) == EXIT_OK
    page = parse(report.read_text(encoding="utf-8"))
    assert page.one(data_kr_id="bookings").field("value") == "€12,840"
    assert page.one(data_kr_id="users").field("value") == f"11,196{NBSP}users"
