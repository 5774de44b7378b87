"""The connector kit: the request, the window, the timestamp parser, records and the frame."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from okr_metrics.connectors import kit
from okr_metrics.connectors.base import SourceError
from okr_metrics.connectors.github.params import GitHubMetric
from okr_metrics.connectors.manual.params import ManualMetric

OCT_1, OCT_2, OCT_3 = date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3)
UTC = timezone.utc


def as_dict(frame) -> dict[date, float]:
    return dict(zip(frame["date"], frame["value"], strict=True))


# --- the window ----------------------------------------------------------------------------------


def test_a_window_is_checked_once_when_made():
    with pytest.raises(
        ValueError, match=r"window ends \(2026-10-01\) before it starts \(2026-10-03\)"
    ):
        kit.Window(OCT_3, OCT_1)
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        kit.Window(OCT_1, OCT_3, "Mars/Olympus")


def test_a_window_knows_its_days_midnights_and_utc_bounds():
    window = kit.Window(OCT_1, OCT_3, "Europe/Oslo")
    assert window.days == [OCT_1, OCT_2, OCT_3]
    assert OCT_2 in window and date(2026, 10, 4) not in window
    assert window.start == datetime(2026, 9, 30, 22, 0, tzinfo=UTC)
    assert window.end == datetime(2026, 10, 3, 22, 0, tzinfo=UTC)  # midnight after the last day
    assert (window.start_ms, window.end_ms) == (
        kit.epoch_ms(window.start),
        kit.epoch_ms(window.end),
    )
    assert window.start_ms == 1790805600000
    assert window.day_of(datetime(2026, 10, 1, 22, 30, tzinfo=UTC)) == OCT_2
    assert window.day_of(OCT_1) == OCT_1  # a date is its own day


def test_a_window_across_a_clock_change_lasts_an_hour_longer():
    window = kit.Window(date(2026, 10, 24), date(2026, 10, 25), "Europe/Oslo")
    assert window.end_ms - window.start_ms == timedelta(hours=49) / timedelta(milliseconds=1)


def test_chunks_cover_the_window_in_order():
    window = kit.Window(OCT_1, date(2026, 10, 10), "America/New_York")
    chunks = window.chunks(4)
    assert [(c.first, c.last) for c in chunks] == [
        (OCT_1, date(2026, 10, 4)),
        (date(2026, 10, 5), date(2026, 10, 8)),
        (date(2026, 10, 9), date(2026, 10, 10)),
    ]
    assert {c.timezone for c in chunks} == {"America/New_York"}
    with pytest.raises(ValueError):
        window.chunks(0)


# --- the request ---------------------------------------------------------------------------------


def test_the_request_keys_the_metric_in_the_windows_time_zone():
    metric = GitHubMetric(source="github", repo="acme/web", count="releases")
    request = kit.SeriesRequest.of(metric, OCT_1, OCT_3, "Europe/Oslo")
    assert request.metric_key == "github:count=releases;repo=acme/web@Europe/Oslo"
    assert (request.start, request.end, request.timezone) == (OCT_1, OCT_3, "Europe/Oslo")
    assert kit.SeriesRequest.of(metric, OCT_1, OCT_3, metric_key="given").metric_key == "given"


def test_a_per_kr_series_is_keyed_by_its_kr_and_quarter():
    request = kit.SeriesRequest.of(
        ManualMetric(source="manual"),
        OCT_1,
        OCT_3,
        kr_id="uptime",
        quarter="2026-Q4",
        sibling_kr_ids=("nps", "uptime"),
        definitions_root=Path("okr_defs"),
    )
    assert request.metric_key == "manual:quarter=2026-Q4;kr_id=uptime"


# --- timestamps ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-10-15T09:12:33Z", datetime(2026, 10, 15, 9, 12, 33, tzinfo=UTC)),
        ("2026-10-15T09:12:33.123Z", datetime(2026, 10, 15, 9, 12, 33, 123000, tzinfo=UTC)),
        ("2026-10-15T09:12:33.123+0530", datetime(2026, 10, 15, 3, 42, 33, 123000, tzinfo=UTC)),
        ("2026-10-15T09:12:33.000+0000", datetime(2026, 10, 15, 9, 12, 33, tzinfo=UTC)),
        ("2026-10-15T09:12:33-07:00", datetime(2026, 10, 15, 16, 12, 33, tzinfo=UTC)),
        ("2026-10-15T09:12:33.1234567Z", datetime(2026, 10, 15, 9, 12, 33, 123456, tzinfo=UTC)),
        ("2026-10-15 09:12", datetime(2026, 10, 15, 9, 12, tzinfo=UTC)),  # no offset: UTC
        ("2026-10-15", date(2026, 10, 15)),
        ("20261015", date(2026, 10, 15)),
        (datetime(2026, 10, 15, 9), datetime(2026, 10, 15, 9, tzinfo=UTC)),
    ],
)
def test_one_parser_for_every_shape_the_sources_send(value, expected):
    assert kit.parse_timestamp(value) == expected


# Text shaped like a timestamp, and near misses: every part optional or bent, so that the
# C parser's quick reading meets what the expressions refuse as well as what they take.
_TWO = st.integers(0, 99).map("{:02d}".format)
_TIMESTAMP_TEXT = st.tuples(
    st.sampled_from(["2026-10-15", "2024-02-29", "2026-02-30", "1999-12-31", "2026-1-15"]),
    st.sampled_from(["T", "t", " ", "_", ""]),
    st.one_of(_TWO, st.sampled_from(["9", "24", "٠٩"])),
    st.sampled_from([":", "", "."]),
    _TWO,
    st.one_of(st.just(""), _TWO.map(":{}".format), st.sampled_from([":6", "60", ":7.5"])),
    st.one_of(
        st.just(""),
        st.tuples(st.sampled_from([".", ","]), st.text("0123456789", max_size=10)).map("".join),
    ),
    st.sampled_from(
        [
            "",
            "Z",
            "z",
            "+00:00",
            "+0530",
            "-07:00",
            "+05",
            "-0000",
            "+05:30:10",
            "+25:00",
            "+05:3",
            " Z",
            "Z ",
            "+05:30:00",
            "UTC",
            "+05:30.5",
        ]
    ),
    st.sampled_from(["", " ", "\n", "x"]),
).map("".join)


def _reading(parse, text):
    try:
        found = parse(text)
    except ValueError:
        return "refused"
    return type(found), found, getattr(found, "utcoffset", lambda: None)()


@settings(max_examples=1000, deadline=None, database=None)
@given(_TIMESTAMP_TEXT)
def test_the_quick_reading_of_common_timestamps_is_the_expressions_reading(text):
    assert _reading(kit.parse_timestamp, text) == _reading(kit._parse_text, text.strip())


def test_epoch_numbers_only_when_asked_for():
    assert kit.parse_timestamp("1760519553123", epoch="ms") == datetime(
        2025, 10, 15, 9, 12, 33, 123000, tzinfo=UTC
    )
    assert kit.parse_timestamp(1760519553, epoch="s") == datetime(
        2025, 10, 15, 9, 12, 33, tzinfo=UTC
    )
    with pytest.raises(ValueError):
        kit.parse_timestamp(1760519553)


@pytest.mark.parametrize(
    "value", ["", "yesterday", "2026-02-30", "2026-10-01T25:00Z", "2026-10", True, None, [1]]
)
def test_anything_else_is_a_value_error(value):
    with pytest.raises(ValueError):
        kit.parse_timestamp(value)


def test_looks_like_and_days():
    assert kit.looks_like_timestamp("2026-02-30") and kit.looks_like_timestamp(
        " 2026-10-01T12:00:00Z "
    )
    assert not kit.looks_like_timestamp("closedwon") and not kit.looks_like_timestamp("20261001")
    assert kit.parse_day("2026-10-01") == OCT_1
    with pytest.raises(ValueError):
        kit.parse_day("2026-10-01T10:00:00Z")


# --- records -------------------------------------------------------------------------------------


def test_a_record_reads_its_fields_or_says_which_one_is_wrong():
    record = kit.Record(
        "src", {"id": 7, "at": "2026-10-01T10:00:00Z", "n": "2.5", "x": {}}, "item", 7
    )
    assert record.moment("at") == datetime(2026, 10, 1, 10, tzinfo=UTC)
    assert record.number("n") == 2.5 and record.number("none") is None
    assert record.moment("none", required=False) is None
    failures = {
        "missing": lambda: record.moment("none"),
        "bad": lambda: record.moment("n"),
        "number": lambda: record.number("at"),
        "object": lambda: kit.Record("src", ["not", "a", "record"], "item"),
        "instant": lambda: kit.Record("src", {"at": "2026-10-01"}, "item", 8).instant("at"),
        "day": lambda: kit.Record("src", {"at": "2026-10-01T10:00:00Z"}, "row").day("at"),
    }
    messages = {}
    for name, read in failures.items():
        with pytest.raises(SourceError) as failure:
            read()
        messages[name] = str(failure.value)
    assert messages == {
        "missing": "src: item 7: none is missing",
        "bad": "src: item 7: n '2.5' is not a timestamp",
        "number": "src: item 7: at '2026-10-01T10:00:00Z' is not a number",
        "object": "src: item: is not an object: ['not', 'a', 'record']",
        "instant": "src: item 8: at '2026-10-01' is not a timestamp with a time of day",
        "day": "src: row: at '2026-10-01T10:00:00Z' is not a date",
    }


# --- the daily frame -----------------------------------------------------------------------------


def test_totals_fill_every_day_and_bucket_in_the_windows_zone():
    window = kit.Window(OCT_1, OCT_3, "America/New_York")
    events = [
        (datetime(2026, 10, 2, 3, 0, tzinfo=UTC), 10.0),  # 23:00 on 1 October in New York
        (datetime(2026, 10, 2, 15, 0, tzinfo=UTC), 2.5),
        (OCT_2, 1.0),  # a date counts on the day it names
        (datetime(2026, 9, 30, 12, 0, tzinfo=UTC), 99.0),  # before the window
    ]
    series = kit.daily_totals(window, events)
    assert list(series.columns) == ["date", "value"] and series["value"].dtype == float
    assert as_dict(series) == {OCT_1: 10.0, OCT_2: 3.5, OCT_3: 0.0}
    assert as_dict(kit.daily_counts(window, [e for e, _ in events])) == {
        OCT_1: 1,
        OCT_2: 2,
        OCT_3: 0,
    }


def test_values_fill_or_stay_sparse_and_a_day_twice_is_an_error():
    window = kit.Window(OCT_1, OCT_3)
    assert as_dict(kit.daily_values(window, [(OCT_2, 4.0)], source="src")) == {
        OCT_1: 0.0,
        OCT_2: 4.0,
        OCT_3: 0.0,
    }
    sparse = kit.daily_values(
        window, [(OCT_3, 1.0), (OCT_1, 2.0), (date(2026, 9, 1), 3.0)], source="s", fill=None
    )
    assert list(sparse["date"]) == [OCT_1, OCT_3]
    with pytest.raises(SourceError, match="src: the report lists 2026-10-02 twice"):
        kit.daily_values(window, [(OCT_2, 1.0), (OCT_2, 2.0)], source="src")


def test_a_ratio_has_rows_only_where_the_denominator_is_not_zero():
    series = kit.daily_ratio(
        kit.Window(OCT_1, OCT_3), {OCT_1: 1.0}, {OCT_1: 4.0, OCT_2: 2.0, OCT_3: 0.0}
    )
    assert as_dict(series) == {OCT_1: 0.25, OCT_2: 0.0}
