"""Hostile check-in files: a bad row costs that row, a file too big costs its KRs, nothing crashes.

Formula cells, NUL bytes, bytes that are not UTF-8, control characters and over-long
lines are each rejected with a `file:line` reason (expectation `valid_checkin_row`)
while the KR is scored from its other rows; the rejected cells reach the warehouse
escaped, so PostgreSQL (which refuses NUL in text) keeps them too. A 50 MB file is
refused whole before it is read. A note written as a formula is kept as written.
"""

from __future__ import annotations

import tracemalloc
from datetime import date
from pathlib import Path

import pytest

from okr_metrics.connectors.base import SeriesRequest, SourceError
from okr_metrics.connectors.manual.client import (
    MAX_LINE_CHARS,
    ManualConnector,
    read_checkins,
)
from okr_metrics.connectors.manual.params import ManualMetric
from okr_metrics.pipelines.cli.main import EXIT_FAILED, main
from okr_metrics.pipelines.definitions import load_definitions
from okr_metrics.pipelines.jobs.collect import collect_source
from okr_metrics.warehouse.store import Warehouse

KR_IDS = ("nps", "uptime")
HEADER = b"kr_id,date,value,note\n"
GOOD = b"nps,2026-10-05,31,\nnps,2026-10-19,35,\n"
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
      - id: uptime
        title: Uptime at least 99.9%
        type: maintain_above
        target: 0.999
        metric: {source: manual}
"""


def checkins_file(root: Path, content: bytes) -> Path:
    path = root / "checkins" / "2026-Q4.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def request(kr_id: str, root: Path) -> SeriesRequest:
    return SeriesRequest.of(
        ManualMetric(source="manual"),
        date(2026, 10, 1),
        date(2026, 12, 31),
        kr_id=kr_id,
        quarter="2026-Q4",
        sibling_kr_ids=KR_IDS,
        definitions_root=root,
    )


@pytest.mark.parametrize(
    ("row", "problem", "stored_value"),
    [
        (
            b"nps,2026-10-12,=cmd|' /C calc'!A0,",
            "value \"=cmd|' /C calc'!A0\" is not a number",
            "=cmd|' /C calc'!A0",
        ),
        (b"nps,2026-10-12,@SUM(A1:A9),", "value '@SUM(A1:A9)' is not a number", "@SUM(A1:A9)"),
        (b'nps,2026-10-12,"=1+1",', "value '=1+1' is not a number", "=1+1"),
        (b"nps,2026-10-12,3\x002,", "control character U+0000 at character 17", "3\\x002"),
        (b"nps,2026-10-12,32,fine\x00", "control character U+0000 at character 23", "32"),
        (b"nps,2026-10-12,32,\x1b[2Jcleared", "control character U+001B at character 19", "32"),
        (b"nps,2026-10-12,32,caf\xe9", "not UTF-8 text (byte 0xe9 at character 22)", "32"),
        (b"nps,2026-10-12,3\xff,", "not UTF-8 text (byte 0xff at character 17)", "3\\xff"),
        (
            b"nps,2026-10-12,32," + b"x" * MAX_LINE_CHARS,
            f"the line is {MAX_LINE_CHARS + 18:,} characters long; a check-in line is limited "
            f"to {MAX_LINE_CHARS:,}",
            "32",
        ),
    ],
)
def test_a_hostile_row_costs_that_row_only(tmp_path, row, problem, stored_value):
    path = checkins_file(tmp_path, HEADER + GOOD + row + b"\nuptime,2026-10-05,1.0,\n")
    connector = ManualConnector()
    own = request("nps", tmp_path)
    series = connector.daily_series(own)
    assert dict(zip(series["date"], series["value"], strict=True)) == {
        date(2026, 10, 5): 31.0,
        date(2026, 10, 19): 35.0,
    }
    rejected = connector.rejected_rows(own)["manual:quarter=2026-Q4;kr_id=nps"]
    assert rejected["reason"].tolist() == [f"{path}:4: {problem}"]
    assert rejected[["date", "raw_value"]].values.tolist() == [["2026-10-12", stored_value]]
    assert "\x00" not in rejected["raw_value"][0]
    uptime = connector.daily_series(request("uptime", tmp_path))
    assert uptime["value"].tolist() == [1.0]


def test_signed_numbers_are_numbers(tmp_path):
    checkins_file(tmp_path, HEADER + b"nps,2026-10-05,-3,\nnps,2026-10-12,+4.5,\n")
    checkins = read_checkins(tmp_path / "checkins" / "2026-Q4.csv", "2026-Q4", KR_IDS)
    assert checkins.problems == []
    assert checkins.values == {"nps": {date(2026, 10, 5): -3.0, date(2026, 10, 12): 4.5}}


def test_a_note_written_as_a_formula_is_kept_as_written(tmp_path):
    note = '=HYPERLINK("http://example.com","x")'
    checkins_file(
        tmp_path, HEADER + f'nps,2026-10-05,31,"{note.replace(chr(34), chr(34) * 2)}"\n'.encode()
    )
    checkins = read_checkins(tmp_path / "checkins" / "2026-Q4.csv", "2026-Q4", KR_IDS)
    assert checkins.problems == []
    assert [row.note for row in checkins.rows] == [note]


def test_a_line_separator_inside_a_note_does_not_split_the_row(tmp_path):
    # str.splitlines() would break these lines at U+2028 and U+0085.
    content = HEADER + "nps,2026-10-05,31,one\u2028two\u0085three\nnps,2026-10-12,33,\n".encode()
    checkins = read_checkins(checkins_file(tmp_path, content), "2026-Q4", KR_IDS)
    assert checkins.problems == []
    assert checkins.values == {"nps": {date(2026, 10, 5): 31.0, date(2026, 10, 12): 33.0}}
    assert checkins.rows[0].note == "one\u2028two\u0085three"


def test_a_50_mb_file_fails_its_krs_before_it_is_read(tmp_path):
    path = tmp_path / "checkins" / "2026-Q4.csv"
    path.parent.mkdir(parents=True)
    with path.open("wb") as stream:
        stream.write(HEADER + GOOD)
        stream.seek(50_000_000 - 1)
        stream.write(b"\n")
    tracemalloc.start()
    try:
        for kr_id in KR_IDS:
            with pytest.raises(SourceError) as failure:
                ManualConnector().daily_series(request(kr_id, tmp_path))
            assert str(failure.value) == (
                f"manual: {path}:1: the file is 50.0 MB; a check-in file is limited to 1 MB"
            )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50_000_000, f"refusing the file took {peak / 1e6:.0f} MB"


def test_a_long_file_of_bad_rows_is_read_in_bounded_memory(tmp_path):
    # Every row rejected: one short reason each, nothing held of the row but its cells.
    rows = b"".join(
        b"nps,2026-10-%02d,=1+%d,\n" % (1 + index % 28, index) for index in range(5_000)
    )
    path = checkins_file(tmp_path, HEADER + rows)
    assert path.stat().st_size < 1_000_000
    tracemalloc.start()
    try:
        checkins = read_checkins(path, "2026-Q4", KR_IDS)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(checkins.problems) == 5_000 and checkins.values == {}
    assert peak < 20_000_000, f"5,000 rejected rows took {peak / 1e6:.0f} MB"


def test_okr_lint_names_each_hostile_row(tmp_path, capsys):
    (tmp_path / "2026-Q4.yaml").write_text(DEFINITIONS, encoding="utf-8")
    path = checkins_file(
        tmp_path, HEADER + GOOD + b"nps,2026-10-12,=1+1,\nuptime,2026-10-05,1\x00,\n"
    )
    assert main(["lint", "--defs", str(tmp_path)]) == EXIT_FAILED
    printed = capsys.readouterr().out.splitlines()
    # (The linter's coaching on a quarter of check-ins only is beside the point here.)
    assert [line for line in printed if ": warning: " not in line] == [
        f"{path}:4: value '=1+1' is not a number",
        f"{path}:5: control character U+0000 at character 20",
    ]


def test_hostile_rows_reach_the_warehouse_escaped(tmp_path, warehouse_url):
    """Through the collect job into rejected_observations, on SQLite and PostgreSQL."""
    (tmp_path / "2026-Q4.yaml").write_text(DEFINITIONS, encoding="utf-8")
    path = checkins_file(
        tmp_path,
        HEADER + GOOD + b"nps,2026-10-12,3\x002,\nnps,2026-10-13,3\xff,\nuptime,2026-10-05,1.0,\n",
    )
    definitions = load_definitions(tmp_path)
    warehouse = Warehouse(warehouse_url)
    result = collect_source(
        "manual",
        ManualConnector(),
        None,
        definitions,
        date(2026, 10, 1),
        date(2026, 10, 31),
        warehouse,
        "run-1",
        progress=lambda line: None,
    )
    assert result.failures == {} and result.refused_rows == 2
    rejected = warehouse.read_rejected().sort_values("reason")
    assert rejected[
        ["metric_key", "date", "raw_value", "expectation", "reason"]
    ].values.tolist() == [
        [
            "manual:quarter=2026-Q4;kr_id=nps",
            "2026-10-12",
            "3\\x002",
            "valid_checkin_row",
            f"{path}:4: control character U+0000 at character 17",
        ],
        [
            "manual:quarter=2026-Q4;kr_id=nps",
            "2026-10-13",
            "3\\xff",
            "valid_checkin_row",
            f"{path}:5: not UTF-8 text (byte 0xff at character 17)",
        ],
    ]
    stored = warehouse.read_observations(
        ["manual:quarter=2026-Q4;kr_id=nps"], date(2026, 10, 1), date(2026, 10, 31)
    )
    assert dict(zip(stored["date"], stored["value"], strict=True)) == {
        date(2026, 10, 5): 31.0,
        date(2026, 10, 19): 35.0,
    }
