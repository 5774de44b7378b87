"""Validate a daily series with Great Expectations before it is stored or scored.

`validate_series` runs the default expectations of the series' kind (counts are
non-negative whole numbers, shares lie in 0..1, durations are non-negative; always
one row per date, dates inside the requested window, no nulls) plus those the YAML
declares on the metric, and splits the rows into valid ones and rejected ones, each
rejected row with the expectation it failed and why. Called by the observation
assets; no Dagster here. Great Expectations is imported on first use (it takes
seconds), with its progress bars off.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd

MAX_EXAMPLES = 5

KIND_RULES: dict[str, str] = {
    "count": "counts are non-negative whole numbers",
    "share": "shares lie between 0 and 1",
    "duration": "durations are non-negative",
    "amount": "amounts are numbers",
    "value": "values are numbers",
}


@dataclass(frozen=True)
class DeclaredExpectation:
    """An expectation the YAML declares on a metric: a GX name and its arguments."""

    name: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class ExpectationOutcome:
    expectation: str  # what was expected, in words
    gx_type: str  # the Great Expectations expectation
    success: bool
    unexpected_count: int = 0
    examples: list[str] = field(default_factory=list)


@dataclass
class ValidationReport:
    valid: pd.DataFrame  # date (datetime.date), value (float)
    rejected: pd.DataFrame  # date, raw_value, expectation, reason (all text)
    outcomes: list[ExpectationOutcome] = field(default_factory=list)
    error: str | None = None  # the whole batch was unusable (shape, bad expectation)

    @property
    def passed(self) -> bool:
        return self.error is None and self.rejected.empty

    def summary(self) -> str:
        if self.error:
            return self.error
        failed = [o for o in self.outcomes if not o.success]
        if not failed:
            return f"{len(self.valid)} rows passed {len(self.outcomes)} expectations"
        parts = [
            f"{o.expectation} ({o.unexpected_count} bad, e.g. {', '.join(o.examples[:2])})"
            for o in failed
        ]
        return (
            f"{len(self.rejected)} of {len(self.rejected) + len(self.valid)} rows rejected: "
            + "; ".join(parts)
        )


REJECTED_COLUMNS = ["date", "raw_value", "expectation", "reason"]


def _empty_valid() -> pd.DataFrame:
    return pd.DataFrame({"date": pd.Series([], dtype=object), "value": pd.Series([], dtype=float)})


def _empty_rejected() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series([], dtype=object) for column in REJECTED_COLUMNS})


# ---------------------------------------------------------------------------
# Great Expectations, wired by hand (dagster-ge does not support GX 1.x)

_lock = threading.Lock()
_batch_definition = None


def _gx_batch_definition():
    """One ephemeral context with a pandas data source and a whole-dataframe batch."""
    global _batch_definition
    with _lock:
        if _batch_definition is None:
            os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig

            # GX sets this logger to INFO itself, and it announces a temporary docs folder
            # on every ephemeral context: not something an `okr` user needs to read.
            logging.getLogger("great_expectations.data_context.types.base").setLevel(
                logging.WARNING
            )

            context = gx.get_context(mode="ephemeral")
            context.variables.progress_bars = ProgressBarsConfig(globally=False)
            source = context.data_sources.add_pandas("okr_metrics")
            asset = source.add_dataframe_asset("daily_series")
            _batch_definition = asset.add_batch_definition_whole_dataframe("whole_series")
        return _batch_definition


def _expectation_class(name: str):
    """`expect_column_values_to_be_between` -> ExpectColumnValuesToBeBetween."""
    import great_expectations.expectations as expectations

    class_name = "".join(part.capitalize() for part in name.split("_"))
    found = getattr(expectations, class_name, None)
    if not name.startswith("expect_") or found is None:
        raise ValueError(f"unknown Great Expectations expectation {name!r}")
    return found


def _build(name: str, kwargs: Mapping[str, Any], label: str):
    expectation_class = _expectation_class(name)
    arguments = dict(kwargs)
    arguments["meta"] = {**arguments.get("meta", {}), "okr_label": label}
    fields = getattr(expectation_class, "__fields__", {})  # GX models are pydantic v1 style
    if "column" in fields and "column" not in arguments:
        arguments["column"] = "value"
    try:
        return expectation_class(**arguments)
    except Exception as error:  # pydantic's message is several lines; keep the first
        first = str(error).splitlines()
        detail = "; ".join(line.strip() for line in first[1:3]) or first[0]
        raise ValueError(f"bad arguments for {name}: {detail}") from None


def default_expectations(kind: str, start: date, end: date) -> list[tuple[str, str, dict]]:
    """(words, GX name, arguments) of the expectations every series of `kind` must meet."""
    rules: list[tuple[str, str, dict]] = [
        ("date is a calendar date", "expect_column_values_to_not_be_null", {"column": "date"}),
        ("value is a number", "expect_column_values_to_not_be_null", {"column": "value"}),
        ("one row per date", "expect_column_values_to_be_unique", {"column": "date"}),
        (
            f"date within {start}..{end}",
            "expect_column_values_to_be_between",
            {"column": "date", "min_value": pd.Timestamp(start), "max_value": pd.Timestamp(end)},
        ),
    ]
    if kind == "count":
        rules += [
            (
                "value >= 0 (a count)",
                "expect_column_values_to_be_between",
                {"column": "value", "min_value": 0},
            ),
            (
                "value is a whole number (a count)",
                "expect_column_values_to_be_between",
                {"column": "value_fraction", "min_value": 0, "max_value": 0},
            ),
        ]
    elif kind == "share":
        rules.append(
            (
                "0 <= value <= 1 (a share)",
                "expect_column_values_to_be_between",
                {"column": "value", "min_value": 0, "max_value": 1},
            )
        )
    elif kind == "duration":
        rules.append(
            (
                "value >= 0 (a duration)",
                "expect_column_values_to_be_between",
                {"column": "value", "min_value": 0},
            )
        )
    return rules


def _describe(declared: DeclaredExpectation) -> str:
    arguments = ", ".join(f"{k}={v}" for k, v in declared.kwargs.items())
    return f"{declared.name}({arguments})"


def _to_date(value: Any) -> pd.Timestamp | None:
    if isinstance(value, pd.Timestamp):
        return value.normalize()
    if isinstance(value, date):
        return pd.Timestamp(value)
    try:
        return pd.Timestamp(date.fromisoformat(str(value)))
    except ValueError:
        return None


def _to_number(value: Any) -> float:
    if isinstance(value, bool):
        return math.nan
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def validate_series(
    raw: pd.DataFrame,
    kind: str,
    start: date,
    end: date,
    declared: Sequence[DeclaredExpectation] = (),
) -> ValidationReport:
    """Split `raw` (columns date, value, as the connector gave them) into valid and rejected rows."""
    missing = {"date", "value"} - set(raw.columns)
    if missing:
        return ValidationReport(
            _empty_valid(),
            _empty_rejected(),
            error=f"unexpected shape: columns {sorted(map(str, raw.columns))}, expected date and value",
        )
    if raw.empty:
        return ValidationReport(_empty_valid(), _empty_rejected())
    frame = pd.DataFrame(
        {
            "date": [_to_date(v) for v in raw["date"]],
            "value": [_to_number(v) for v in raw["value"]],
        }
    )
    frame["date"] = pd.to_datetime(frame["date"])
    frame["value_fraction"] = (frame["value"] - frame["value"].round()).abs()
    raw_dates = [str(v.isoformat() if isinstance(v, date) else v) for v in raw["date"]]
    raw_values = ["" if v is None else str(v) for v in raw["value"]]

    rules = default_expectations(kind, start, end)
    batch_definition = _gx_batch_definition()  # creates the context the suite needs
    import great_expectations as gx

    suite = gx.ExpectationSuite(name="daily_series")
    try:
        for words, name, arguments in rules:
            suite.add_expectation(_build(name, arguments, words))
        for item in declared:
            suite.add_expectation(_build(item.name, item.kwargs, _describe(item)))
    except ValueError as error:
        return ValidationReport(_empty_valid(), _empty_rejected(), error=str(error))

    result = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(
        suite, result_format={"result_format": "COMPLETE"}
    )
    reasons: dict[int, tuple[str, str]] = {}
    outcomes = []
    for item in result.results:
        words = (item.expectation_config.meta or {}).get("okr_label", item.expectation_config.type)
        details = item.result or {}
        if item.exception_info and item.exception_info.get("raised_exception"):
            message = (item.exception_info.get("exception_message") or "").splitlines()[0]
            return ValidationReport(
                _empty_valid(),
                _empty_rejected(),
                error=f"{words}: could not be evaluated: {message}",
            )
        indexes = details.get("unexpected_index_list")
        if item.success:
            outcomes.append(ExpectationOutcome(words, item.expectation_config.type, True))
            continue
        if indexes is None:
            # A whole-series expectation (a mean, a row count): no single row to blame.
            indexes = list(range(len(frame)))
            observed = details.get("observed_value")
            examples = [f"observed {observed}"]
        else:
            examples = [f"{raw_dates[i]}: {raw_values[i]!r}" for i in indexes[:MAX_EXAMPLES]]
        for index in indexes:
            reasons.setdefault(index, (words, item.expectation_config.type))
        outcomes.append(
            ExpectationOutcome(words, item.expectation_config.type, False, len(indexes), examples)
        )

    rejected_rows = [
        {
            "date": raw_dates[index],
            "raw_value": raw_values[index],
            "expectation": gx_type,
            "reason": f"{words}: got {raw_values[index]!r} on {raw_dates[index]}",
        }
        for index, (words, gx_type) in sorted(reasons.items())
    ]
    keep = [index for index in range(len(frame)) if index not in reasons]
    valid = pd.DataFrame(
        {
            "date": [frame["date"].iloc[i].date() for i in keep],
            "value": [float(frame["value"].iloc[i]) for i in keep],
        }
    )
    if valid.empty:
        valid = _empty_valid()
    rejected = (
        pd.DataFrame(rejected_rows, columns=REJECTED_COLUMNS)
        if rejected_rows
        else _empty_rejected()
    )
    return ValidationReport(valid.sort_values("date").reset_index(drop=True), rejected, outcomes)


@dataclass(frozen=True)
class SeriesToValidate:
    """One series of a run to validate: `validate_series`'s arguments."""

    raw: pd.DataFrame
    kind: str
    start: date
    end: date
    declared: Sequence[DeclaredExpectation] = ()


def validate_many(items: Sequence[SeriesToValidate]) -> list[ValidationReport]:
    """`validate_series` of each item, in order, in one Great Expectations batch."""
    return [
        validate_series(item.raw, item.kind, item.start, item.end, item.declared) for item in items
    ]
