"""Great Expectations validation of daily series: defaults by kind, declared expectations."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from okr_metrics.pipelines.validation.expectations import (
    DeclaredExpectation,
    SeriesToValidate,
    validate_many,
    validate_series,
)

START, END = date(2026, 10, 1), date(2026, 10, 31)


def series(*rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["date", "value"])


def reasons(report) -> dict[str, str]:
    return {f"{row.date}={row.raw_value}": row.reason for row in report.rejected.itertuples()}


def test_a_clean_count_series_passes():
    report = validate_series(
        series((date(2026, 10, 1), 0), (date(2026, 10, 2), 3)), "count", START, END
    )
    assert report.passed
    assert report.valid["value"].tolist() == [0.0, 3.0]
    assert report.valid["date"].tolist() == [date(2026, 10, 1), date(2026, 10, 2)]
    assert all(outcome.success for outcome in report.outcomes)


def test_bad_count_rows_are_rejected_with_reasons():
    report = validate_series(
        series(
            (date(2026, 10, 1), 4),  # fine
            (date(2026, 10, 2), -2),  # negative
            (date(2026, 10, 3), 2.5),  # not whole
            (date(2026, 10, 4), 1),  # duplicated date
            (date(2026, 10, 4), 2),
            (date(2026, 11, 5), 1),  # outside the window
            (date(2026, 10, 6), "n/a"),  # garbage
            ("not-a-date", 1),
        ),
        "count",
        START,
        END,
    )
    assert report.valid["date"].tolist() == [date(2026, 10, 1)]
    assert reasons(report) == {
        "2026-10-02=-2": "value >= 0 (a count): got '-2' on 2026-10-02",
        "2026-10-03=2.5": "value is a whole number (a count): got '2.5' on 2026-10-03",
        "2026-10-04=1": "one row per date: got '1' on 2026-10-04",
        "2026-10-04=2": "one row per date: got '2' on 2026-10-04",
        "2026-11-05=1": "date within 2026-10-01..2026-10-31: got '1' on 2026-11-05",
        "2026-10-06=n/a": "value is a number: got 'n/a' on 2026-10-06",
        "not-a-date=1": "date is a calendar date: got '1' on not-a-date",
    }
    failed = {o.expectation: o.unexpected_count for o in report.outcomes if not o.success}
    assert failed["one row per date"] == 2
    assert "7 of 8 rows rejected" in report.summary()


@pytest.mark.parametrize(
    ("kind", "value", "ok"),
    [
        ("share", 1.7, False),
        ("share", 1.0, True),
        ("share", 0.0, True),
        ("share", -0.1, False),
        ("duration", -1, False),
        ("duration", 301.5, True),
        ("amount", -120.0, True),  # refunds: amounts may be negative
        ("value", 1e9, True),
        ("count", float("inf"), False),
    ],
)
def test_defaults_by_kind(kind, value, ok):
    report = validate_series(series((date(2026, 10, 1), value)), kind, START, END)
    assert report.passed is ok


def test_declared_bounds_and_gx_expectations():
    declared = [
        DeclaredExpectation(
            "expect_column_values_to_be_between", {"min_value": 0.99, "max_value": 1}
        ),
    ]
    report = validate_series(
        series((date(2026, 10, 1), 0.999), (date(2026, 10, 2), 0.5)), "share", START, END, declared
    )
    assert report.valid["value"].tolist() == [0.999]
    assert reasons(report) == {
        "2026-10-02=0.5": "expect_column_values_to_be_between(min_value=0.99, max_value=1): got '0.5' on 2026-10-02"
    }


def test_a_failed_whole_series_expectation_rejects_every_row():
    declared = [DeclaredExpectation("expect_column_mean_to_be_between", {"min_value": 5})]
    report = validate_series(
        series((date(2026, 10, 1), 1), (date(2026, 10, 2), 2)), "count", START, END, declared
    )
    assert report.valid.empty and len(report.rejected) == 2
    (outcome,) = [o for o in report.outcomes if not o.success]
    assert outcome.examples == ["observed 1.5"]


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        (
            DeclaredExpectation("expect_the_moon", {}),
            "unknown Great Expectations expectation 'expect_the_moon'",
        ),
        (
            DeclaredExpectation("expect_column_values_to_be_between", {"minimum": 1}),
            "bad arguments for expect_column_values_to_be_between: minimum",
        ),
    ],
)
def test_bad_declared_expectations_are_one_line_errors(declared, message):
    report = validate_series(series((date(2026, 10, 1), 1)), "count", START, END, [declared])
    assert report.error.startswith(message) and "\n" not in report.error
    assert not report.passed and report.valid.empty


def test_an_unexpected_shape_is_an_error_not_a_number():
    report = validate_series(
        pd.DataFrame({"day": [date(2026, 10, 1)], "count": [3]}), "count", START, END
    )
    assert report.error == "unexpected shape: columns ['count', 'day'], expected date and value"
    assert report.valid.empty


# --- a run's series validated together ------------------------------------------------------


def same_report(together, alone) -> None:
    pd.testing.assert_frame_equal(together.valid, alone.valid)
    pd.testing.assert_frame_equal(together.rejected, alone.rejected)
    assert together.outcomes == alone.outcomes
    assert together.error == alone.error


BETWEEN = DeclaredExpectation("expect_column_values_to_be_between", {"max_value": 5})
MEAN = DeclaredExpectation("expect_column_mean_to_be_between", {"max_value": 2})


def run_of_series() -> list[SeriesToValidate]:
    october = [date(2026, 10, day) for day in range(1, 8)]
    return [
        # A duplicated date whose second row is also negative: blamed on the date first,
        # as it is alone.
        SeriesToValidate(
            series(*zip(october, [1, -2, 2.5, 4, 5, 6, 7], strict=True), (october[0], -1)),
            "count",
            START,
            END,
        ),
        # The same dates as the first series: no duplicates across series.
        SeriesToValidate(series(*zip(october, range(7), strict=True)), "count", START, END),
        SeriesToValidate(
            series(*zip(october, [0.1, 1.5, None, 0.3, "x", 0.2, 0.9], strict=True)),
            "share",
            START,
            END,
        ),
        # Another window: its own rules.
        SeriesToValidate(
            series((date(2026, 10, 20), 3), (date(2026, 11, 2), 1)),
            "count",
            date(2026, 10, 15),
            date(2026, 11, 30),
        ),
        SeriesToValidate(
            series(*zip(october, [0, 1, 2, 3, 4, 5, 5], strict=True)),
            "count",
            START,
            END,
            [BETWEEN],
        ),
        SeriesToValidate(
            series(*zip(october, [9, 1, 1, 1, 1, 1, 1], strict=True)),
            "count",
            START,
            END,
            [BETWEEN],
        ),
        # A whole-series expectation: validated by itself.
        SeriesToValidate(series(*zip(october, range(7), strict=True)), "count", START, END, [MEAN]),
        SeriesToValidate(
            series((date(2026, 10, 1), 1)),
            "count",
            START,
            END,
            [DeclaredExpectation("expect_values_to_be_nice")],
        ),
        SeriesToValidate(series(), "count", START, END),
        SeriesToValidate(pd.DataFrame({"day": [date(2026, 10, 1)]}), "count", START, END),
        SeriesToValidate(
            series(("not-a-date", 1), (None, 2), (date(2026, 10, 9), 2)), "value", START, END
        ),
    ]


def test_series_validated_together_get_the_reports_they_get_alone():
    items = run_of_series()
    together = validate_many(items)
    assert len(together) == len(items)
    for item, report in zip(items, together, strict=True):
        same_report(
            report, validate_series(item.raw, item.kind, item.start, item.end, item.declared)
        )


def test_series_validated_together_by_hand():
    first, second, share, window, capped, too_high, mean, bad, empty, shape, dates = validate_many(
        run_of_series()
    )
    assert reasons(first) == {
        "2026-10-01=1.0": "one row per date: got '1.0' on 2026-10-01",
        "2026-10-01=-1.0": "one row per date: got '-1.0' on 2026-10-01",
        "2026-10-02=-2.0": "value >= 0 (a count): got '-2.0' on 2026-10-02",
        "2026-10-03=2.5": "value is a whole number (a count): got '2.5' on 2026-10-03",
    }
    assert second.passed and second.valid["value"].tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert sorted(reasons(share)) == ["2026-10-02=1.5", "2026-10-03=", "2026-10-05=x"]
    assert reasons(window) == {}  # 2 November is inside its own window
    assert capped.passed
    assert reasons(too_high) == {
        "2026-10-01=9": "expect_column_values_to_be_between(max_value=5): got '9' on 2026-10-01"
    }
    assert len(mean.rejected) == 7  # mean 3 > 2: the whole series, with no row to blame
    assert bad.error == "unknown Great Expectations expectation 'expect_values_to_be_nice'"
    assert empty.passed and empty.valid.empty
    assert shape.error.startswith("unexpected shape")
    assert sorted(reasons(dates)) == ["None=2", "not-a-date=1"]


KL_SCRIPT = """
import sys
from datetime import date
import pandas as pd
from okr_metrics.pipelines.validation.expectations import DeclaredExpectation, validate_series

def series(*values):
    days = [date(2026, 10, day) for day in range(1, len(values) + 1)]
    return pd.DataFrame({"date": days, "value": values})

start, end = date(2026, 10, 1), date(2026, 10, 31)
plain = validate_series(series(1, 2, 1, 2), "count", start, end)
print("plain", plain.passed, "scipy.stats._stats_py" in sys.modules)
kl = [DeclaredExpectation("expect_column_kl_divergence_to_be_less_than", {
    "partition_object": {"values": [1, 2], "weights": [0.5, 0.5]}, "threshold": 0.1})]
even = validate_series(series(1, 2, 1, 2), "count", start, end, kl)
skewed = validate_series(series(1, 1, 1, 2), "count", start, end, kl)
print("kl", even.passed, skewed.passed, "scipy.stats._stats_py" in sys.modules)
"""


def test_scipy_stats_loads_only_for_the_expectation_that_uses_it():
    """Great Expectations imports scipy.stats for the KL divergence expectation alone:
    a run whose series do not declare it never loads it, and one that does gets the same
    verdicts (KL of 0.75/0.25 against 0.5/0.5 is 0.131, above 0.1)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", KL_SCRIPT], capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines() == ["plain True False", "kl True False True"]
