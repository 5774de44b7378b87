"""`okr report`: one self-contained HTML file of the overview, with every KR in it."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from pagetools import LAST_DAY, REPO, parse

from okr_metrics.pipelines import settings
from okr_metrics.pipelines.cli.main import EXIT_OK, EXIT_USAGE, main
from okr_metrics.pipelines.dashboard.report import ReportError, default_path, write_report
from okr_metrics.warehouse.store import Warehouse

# Anything a mail reader or a browser would fetch.
NETWORK = re.compile(
    r"<script\b[^>]*\bsrc\s*=|<link\b|@import|url\(\s*['\"]?\s*(https?:)?//|"
    r"\b(src|href|action|poster|srcset)\s*=\s*['\"]?\s*(https?:)?//",
    re.IGNORECASE,
)


def kr_ids(db_path: Path, quarter: str, as_of: str) -> set[str]:
    with sqlite3.connect(db_path) as connection:
        return {
            row[0]
            for row in connection.execute(
                "SELECT kr_id FROM kr_scores WHERE quarter = ? AND as_of = ?", (quarter, as_of)
            )
        }


def test_the_report_holds_every_kr_and_fetches_nothing(built_warehouse, tmp_path):
    target = tmp_path / "out" / "q4.html"
    written = write_report(Warehouse(f"sqlite:///{built_warehouse}"), path=target)
    assert written == target
    html = target.read_text(encoding="utf-8")
    assert NETWORK.search(html) is None
    assert "<script" not in html and "http://" not in html and "https://" not in html
    page = parse(html)
    assert page.one(data_field="as-of").text == LAST_DAY.isoformat()
    shown = {e.attrs["data-kr-id"] for e in page.find_all(data_kr_id=True)}
    assert shown == kr_ids(built_warehouse, "2026-Q4", LAST_DAY.isoformat())
    for element in page.find_all(data_kr_id=True):
        assert element.one("svg", data_chart="trend")
        link = element.one("a", data_link="kr").attrs["href"]
        assert link == f"#kr-{element.attrs['data-kr-id']}"  # its own row, in the file
        assert page.one(id=f"kr-{element.attrs['data-kr-id']}") is element
    assert page.find_all("form") == []  # nothing to submit to in a file
    assert len(page.find_all(data_objective_id=True)) == 5


def test_a_quarter_and_day_can_be_named(built_warehouse, tmp_path):
    warehouse = Warehouse(f"sqlite:///{built_warehouse}")
    path = write_report(warehouse, quarter="2026-Q3", path=tmp_path / "q3.html")
    page = parse(path.read_text(encoding="utf-8"))
    assert page.one(data_field="as-of").text == "2026-09-30"
    assert {e.attrs["data-kr-id"] for e in page.find_all(data_kr_id=True)} == kr_ids(
        built_warehouse, "2026-Q3", "2026-09-30"
    )
    from datetime import date

    path = write_report(warehouse, as_of=date(2026, 10, 5), path=tmp_path / "early.html")
    assert parse(path.read_text(encoding="utf-8")).one(data_field="as-of").text == "2026-10-05"
    with pytest.raises(ReportError, match="no scores in 2027-Q1"):
        write_report(warehouse, quarter="2027-Q1", path=tmp_path / "none.html")


def test_okr_report_writes_to_okr_reports_by_default(
    built_warehouse, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OKR_REPORTS_DIR")
    monkeypatch.setattr(settings, "DEFAULT_REPORTS_DIR", ".okr/reports")
    monkeypatch.setenv("OKR_WAREHOUSE_URL", f"sqlite:///{built_warehouse}")
    monkeypatch.setenv("OKR_DEFS", str(REPO / "okr_defs"))
    assert main(["report"]) == EXIT_OK
    assert capsys.readouterr().out.strip() == str(default_path("2026-Q4"))
    assert (tmp_path / ".okr" / "reports" / "2026-Q4.html").is_file()
    out = tmp_path / "mail.html"
    assert main(["report", "--quarter", "2026-Q3", "--out", str(out)]) == EXIT_OK
    assert parse(out.read_text(encoding="utf-8")).one(data_field="as-of").text == "2026-09-30"
    assert main(["report", "--as-of", "2027-02-01"]) == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "okr report: no scores in 2027-Q1 on or before 2027-02-01; run `okr run` or `okr backfill` first"
    ]
