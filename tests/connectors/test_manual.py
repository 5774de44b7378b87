"""The manual connector: check-ins from `checkins/<quarter>.csv`, and how the pipeline feeds it."""

from __future__ import annotations

import logging
import textwrap
from datetime import date
from pathlib import Path

import pytest

from okr_metrics.connectors.base import SeriesRequest, SourceError, SourceSettings
from okr_metrics.connectors.manual.client import ManualConnector, quarter_days, read_checkins
from okr_metrics.connectors.manual.params import ManualMetric
from okr_metrics.pipelines.definitions import load_definitions
from okr_metrics.pipelines.jobs.collect import series_requests
from okr_metrics.pipelines.vocabulary.quarters import Quarter

REPO = Path(__file__).resolve().parents[2]
Q4 = ("2026-10-01", "2026-12-31")
KR_IDS = ("time-to-first-value", "enterprise-adoption", "uptime")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def checkins(root: Path, quarter: str = "2026-Q4") -> Path:
    """Where the check-ins of `quarter` live, beside the definitions in `root`."""
    return root / "checkins" / f"{quarter}.csv"


def request(
    kr_id: str,
    root: Path,
    start=date(2026, 10, 1),
    end=date(2026, 12, 31),
    quarter: str = "2026-Q4",
    known=KR_IDS,
) -> SeriesRequest:
    """What the pipeline asks for one manual KR of the definitions in `root`."""
    return SeriesRequest.of(
        ManualMetric(source="manual"),
        start,
        end,
        kr_id=kr_id,
        quarter=quarter,
        sibling_kr_ids=known,
        definitions_root=root,
    )


def fetch(kr_id: str, root: Path, **keys):
    return ManualConnector().daily_series(request(kr_id, root, **keys))


def as_dict(frame) -> dict[date, float]:
    return dict(zip(frame["date"], frame["value"], strict=True))


def test_never_skipped():
    assert ManualConnector.missing_settings(SourceSettings()) is None
    assert isinstance(ManualConnector.from_settings(SourceSettings()), ManualConnector)


def test_quarter_days():
    assert quarter_days("2026-Q4") == (date(2026, 10, 1), date(2026, 12, 31))
    assert quarter_days("2027-Q1") == (date(2027, 1, 1), date(2027, 3, 31))
    assert quarter_days("Q4") is None


def test_only_check_in_days_have_data(tmp_path):
    write(
        checkins(tmp_path),
        """
        kr_id,date,value,note
        time-to-first-value,2026-10-12,66.5,"after the import, at 100%"
        time-to-first-value,2026-10-05,70,
        uptime,2026-10-05,0.9998,lowest day

        time-to-first-value,2026-10-19,61.25
        """,
    )
    series = fetch("time-to-first-value", tmp_path)
    assert list(series.columns) == ["date", "value"] and series["value"].dtype == float
    assert as_dict(series) == {
        date(2026, 10, 5): 70.0,
        date(2026, 10, 12): 66.5,
        date(2026, 10, 19): 61.25,
    }
    window = fetch("time-to-first-value", tmp_path, start=date(2026, 10, 6), end=date(2026, 10, 12))
    assert as_dict(window) == {date(2026, 10, 12): 66.5}
    assert fetch("enterprise-adoption", tmp_path).empty  # no check-in yet: no data, not zeros


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("time-to-first-value,2026-13-05,70,", "date '2026-13-05' is not a YYYY-MM-DD date"),
        ("time-to-first-value,05/10/2026,70,", "date '05/10/2026' is not a YYYY-MM-DD date"),
        (
            "time-to-first-value,2025-10-05,70,",
            "date 2025-10-05 is not in 2026-Q4 (2026-10-01..2026-12-31)",
        ),
        ("time-to-first-value,,70,", "date '' is not a YYYY-MM-DD date"),
        ("time-to-first-value,2026-10-05,seventy,", "value 'seventy' is not a number"),
        ("time-to-first-value,2026-10-05,,", "value '' is not a number"),
        ("time-to-first-value,2026-10-05,nan,", "value 'nan' is not a number"),
        ("time-to-first-value,2026-10-05,70,a note, with a comma", "5 fields, expected 4"),
        (
            "time-to-first-valu,2026-10-05,70,",
            "unknown kr_id 'time-to-first-valu' (not one of the manual KRs of 2026-Q4: "
            "time-to-first-value, enterprise-adoption, uptime); did you mean 'time-to-first-value'?",
        ),
        (
            "time-to-first-value,2026-10-12,69,again",
            "a second check-in of time-to-first-value on 2026-10-12 "
            "(the first, at line 3, is kept)",
        ),
    ],
)
def test_a_bad_row_costs_that_row_only(tmp_path, row, problem):
    path = write(
        checkins(tmp_path),
        f"""
        kr_id,date,value,note
        uptime,2026-10-05,0.9998,
        time-to-first-value,2026-10-12,66.5,
        {row}
        uptime,2026-10-12,1.0,
        time-to-first-value,2026-10-19,61.25,
        """,
    )
    connector = ManualConnector()
    own = request("time-to-first-value", tmp_path)
    # The KR is scored from its other rows.
    series = connector.daily_series(own)
    assert as_dict(series) == {date(2026, 10, 12): 66.5, date(2026, 10, 19): 61.25}
    # The bad row is reported, with file:line, under the KR it belongs to.
    rejected = connector.rejected_rows(own)["manual:quarter=2026-Q4;kr_id=time-to-first-value"]
    assert rejected["reason"].tolist() == [f"{path}:4: {problem}"]
    cells = row.split(",")
    assert rejected[["date", "raw_value"]].values.tolist() == [[cells[1], cells[2]]]
    assert "\n" not in rejected["reason"][0]
    uptime = fetch("uptime", tmp_path)
    assert as_dict(uptime) == {date(2026, 10, 5): 0.9998, date(2026, 10, 12): 1.0}
    others = connector.rejected_rows(request("uptime", tmp_path))
    assert {key: frame.empty for key, frame in others.items()} == {
        "manual:quarter=2026-Q4;kr_id=uptime": True
    }


def test_an_unknown_kr_id_like_no_other_belongs_to_the_file(tmp_path):
    path = write(
        checkins(tmp_path),
        """
        kr_id,date,value,note
        nps,2026-10-05,41,
        uptime,2026-10-05,0.9998,
        """,
    )
    connector = ManualConnector()
    assert as_dict(connector.daily_series(request("uptime", tmp_path))) == {
        date(2026, 10, 5): 0.9998
    }
    # The quarter's first manual KR (by id) carries the file's own rows; the others do not.
    first = connector.rejected_rows(request("enterprise-adoption", tmp_path))
    assert first["manual:quarter=2026-Q4"]["reason"].tolist() == [
        f"{path}:2: unknown kr_id 'nps' (not one of the manual KRs of 2026-Q4: "
        "time-to-first-value, enterprise-adoption, uptime)"
    ]
    assert first["manual:quarter=2026-Q4;kr_id=enterprise-adoption"].empty
    assert list(connector.rejected_rows(request("uptime", tmp_path))) == [
        "manual:quarter=2026-Q4;kr_id=uptime"
    ]


def test_every_problem_is_listed_in_file_order(tmp_path):
    path = write(
        tmp_path / "c.csv",
        """
        kr_id,date,value,note
        uptime,2026-10-05,high,
        uptime,2026-10-06,low,
        uptime,yesterday,1,
        uptime,2026-10-07,1,
        """,
    )
    checkins = read_checkins(path, "2026-Q4", KR_IDS)
    assert checkins.problems == [
        f"{path}:2: value 'high' is not a number",
        f"{path}:3: value 'low' is not a number",
        f"{path}:4: date 'yesterday' is not a YYYY-MM-DD date",
    ]
    assert checkins.values == {"uptime": {date(2026, 10, 7): 1.0}}


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("kr,date,value,note", "missing column kr_id; unknown column kr"),
        ("kr_id,date,value,note,owner", "unknown column owner"),
    ],
)
def test_a_bad_header_fails_every_kr_of_the_file(tmp_path, header, problem):
    path = write(checkins(tmp_path), f"{header}\nuptime,2026-10-05,1,\n")
    for kr_id in ("uptime", "time-to-first-value"):
        with pytest.raises(SourceError) as failure:
            fetch(kr_id, tmp_path)
        assert str(failure.value) == (
            f"manual: {path}:1: {problem} (expected kr_id,date,value,note,confidence)"
        )


def test_no_file_yet_means_no_data(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="okr_metrics.manual")
    assert fetch("uptime", tmp_path).empty
    assert "no check-ins file" in caplog.text


def test_the_note_column_is_optional(tmp_path):
    write(checkins(tmp_path), "date,kr_id,value\n2026-10-05,uptime,0.9991\n")
    assert as_dict(fetch("uptime", tmp_path)) == {date(2026, 10, 5): 0.9991}


@pytest.mark.parametrize("missing", ["kr_id", "quarter", "definitions_root"])
def test_a_request_that_names_no_kr_quarter_or_folder_is_refused(tmp_path, missing):
    asked = request("uptime", tmp_path)
    incomplete = SeriesRequest(**{**vars(asked), "metric_key": "", missing: None})
    with pytest.raises(SourceError) as failure:
        ManualConnector().daily_series(incomplete)
    assert str(failure.value) == (
        "manual: a check-in series needs its KR, quarter and definitions folder on the "
        "request (the pipeline passes them)"
    )
    assert ManualConnector().rejected_rows(incomplete) == {}


# --- what the pipeline asks for -----------------------------------------------------------------


def test_the_key_is_the_kr_and_quarter_of_the_request(tmp_path):
    asked = request("uptime", tmp_path)
    assert asked.metric_key == "manual:quarter=2026-Q4;kr_id=uptime"
    assert asked.metric.model_dump() == {"source": "manual", "aggregate": None, "expect": None}


DEFINITIONS = """
quarter: 2026-Q4
objectives:
  - id: reliability
    title: Be reliable
    key_results:
      - id: uptime
        title: Uptime
        type: maintain_above
        target: 0.9995
        metric: {source: manual, aggregate: min}
      - id: nps
        title: NPS from 30 to 45
        type: increase
        start: 30
        target: 45
        metric: {source: manual}
"""


def test_series_requests_name_kr_quarter_and_folder(tmp_path):
    write(tmp_path / "2026-Q4.yaml", DEFINITIONS)
    definitions = load_definitions(tmp_path)
    assert not definitions.errors
    requests = series_requests(definitions, "manual", date(2026, 10, 1), date(2026, 10, 31))
    assert [r.metric_key for r in requests] == [
        "manual:quarter=2026-Q4;kr_id=nps",
        "manual:quarter=2026-Q4;kr_id=uptime",
    ]
    nps = requests[0]
    assert (nps.kr_id, nps.quarter, nps.sibling_kr_ids) == ("nps", "2026-Q4", ("uptime", "nps"))
    assert nps.definitions_root == tmp_path
    assert nps.metric == ManualMetric(source="manual")
    # The definitions' own KRs are left as written (their hash does not move).
    okr_file = definitions.for_quarter(Quarter(2026, 4))
    assert okr_file.objectives[0].key_results[0].metric.model_dump() == {
        "source": "manual",
        "aggregate": "min",
        "expect": None,
    }


@pytest.mark.parametrize("key", ["kr_id", "quarter", "checkins_path", "quarter_kr_ids"])
def test_yaml_cannot_name_the_kr_or_file(tmp_path, key):
    text = DEFINITIONS.replace(
        "metric: {source: manual, aggregate: min}",
        f"metric: {{source: manual, aggregate: min, {key}: x}}",
    )
    path = write(tmp_path / "2026-Q4.yaml", text)
    problems = [str(p) for p in load_definitions(path).errors]
    assert problems == [
        f"{path}:10: objectives[reliability].key_results[uptime].metric.{key}: unknown key"
    ]


def test_nor_inside_a_ratio(tmp_path):
    text = DEFINITIONS.replace(
        "metric: {source: manual, aggregate: min}",
        "metric: {ratio: {numerator: {source: manual, kr_id: nps}, denominator: {source: manual}}}",
    )
    path = write(tmp_path / "2026-Q4.yaml", text)
    problems = [str(p) for p in load_definitions(path).errors]
    assert problems == [
        f"{path}:10: objectives[reliability].key_results[uptime].metric.ratio.numerator.kr_id: "
        "unknown key"
    ]


def test_the_shipped_check_ins_load_for_every_manual_kr():
    definitions = load_definitions(REPO / "okr_defs")
    connector = ManualConnector()
    requests = series_requests(definitions, "manual", date(2026, 10, 1), date(2026, 12, 31))
    assert {r.kr_id for r in requests} == {
        "time-to-first-value",
        "enterprise-adoption",
        "smb-churn",
        "uptime",
    }
    found = {}
    for request in requests:
        series = connector.daily_series(request)
        assert len(series) >= 13, request.metric_key  # weekly, the whole quarter
        found[request.kr_id] = series["value"]
    assert found["time-to-first-value"].iloc[0] == 72 and found["time-to-first-value"].iloc[-1] < 35
    assert found["time-to-first-value"].is_monotonic_decreasing
    assert found["enterprise-adoption"].iloc[0] == 0.05
    assert found["enterprise-adoption"].is_monotonic_increasing
    assert found["smb-churn"].between(0.04, 0.055).all()
    assert found["uptime"].between(0.999, 1.0).all()


def test_the_shipped_check_ins_of_q3_are_clean():
    checkins = read_checkins(REPO / "okr_defs" / "checkins" / "2026-Q3.csv", "2026-Q3")
    assert not checkins.problems and not checkins.file_problem
    assert len(checkins.values["uptime"]) == 14
