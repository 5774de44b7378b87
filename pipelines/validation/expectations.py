"""Validate a daily series with Great Expectations before it is stored or scored.

`validate_series` runs the default expectations of the series' kind (counts are
non-negative whole numbers, shares lie in 0..1, durations are non-negative; always
one row per date, dates inside the requested window, no nulls) plus those the YAML
declares on the metric, and splits the rows into valid ones and rejected ones, each
rejected row with the expectation it failed and why. Called by the observation
assets; no Dagster here. Great Expectations is imported on first use (it takes
seconds), with its progress bars off, or ahead of it on a thread of its own while the
sources are fetched (`prepare_in_background`).
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

import numpy as np
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
_setup: threading.Thread | None = None
_setup_error: BaseException | None = None


def prepare_in_background() -> None:
    """Start importing Great Expectations and setting up its context on a thread of its
    own, so that the validation after a fetch finds it ready instead of paying seconds.

    Called by `collect_sources` before it fetches. An error in the setup is kept and
    raised by the next validation, where it would have arisen without this.
    """
    global _setup, _setup_error
    with _lock:
        if _batch_definition is not None or (_setup is not None and _setup.is_alive()):
            return
        _setup_error = None  # from an earlier setup no validation asked for: try again
        _setup = threading.Thread(target=_set_up_ahead, name="okr-gx-setup", daemon=True)
        _setup.start()


def _set_up_ahead() -> None:
    global _batch_definition, _setup_error
    with _lock:
        try:
            if _batch_definition is None:
                _batch_definition = _set_up()
        except BaseException as error:  # raised by the validation that needs the context
            _setup_error = error


def _gx_batch_definition():
    """One ephemeral context with a pandas data source and a whole-dataframe batch."""
    global _batch_definition, _setup, _setup_error
    setup = _setup
    if setup is not None:
        setup.join()
    with _lock:
        _setup = None
        if _setup_error is not None:
            # Raised once, as the setup here would have; the next validation tries again.
            error, _setup_error = _setup_error, None
            raise error
        if _batch_definition is None:
            _batch_definition = _set_up()
        return _batch_definition


def _set_up():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # GX sets this logger to INFO itself, and it announces a temporary docs folder
    # on every ephemeral context: not something an `okr` user needs to read.
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("okr_metrics")
    asset = source.add_dataframe_asset("daily_series")
    return asset.add_batch_definition_whole_dataframe("whole_series")


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


# Expectations that judge each row by itself: the rows of several series checked together
# get the verdicts each series' rows would get alone.
ROW_WISE = frozenset(
    {
        "expect_column_values_to_be_between",
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_null",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_not_be_in_set",
        "expect_column_values_to_match_regex",
        "expect_column_values_to_not_match_regex",
    }
)
UNIQUE = "expect_column_values_to_be_unique"


@dataclass(frozen=True)
class SeriesToValidate:
    """One series of a run to validate: `validate_series`'s arguments."""

    raw: pd.DataFrame
    kind: str
    start: date
    end: date
    declared: Sequence[DeclaredExpectation] = ()


@dataclass
class _Prepared:
    """A series ready for Great Expectations: its frame, the texts its rows came as, and
    its rules as (words, GX name, arguments)."""

    frame: pd.DataFrame
    raw_dates: list[str]
    raw_values: list[str]
    rules: list[tuple[str, str, dict]]

    def signature(self, index: int) -> str:
        """What a series shares with those validated beside it: the same rules, all of
        them row-wise (the date's uniqueness is checked within each series); else its own."""
        if any(
            name not in ROW_WISE
            and not (name == UNIQUE and args == {"column": "date"})
            or "mostly" in args
            for _, name, args in self.rules
        ):
            return f"alone:{index}"
        return repr(
            [(words, name, sorted(args.items(), key=str)) for words, name, args in self.rules]
        )


def _prepare(item: SeriesToValidate) -> _Prepared | ValidationReport:
    """The series' frame and rules, or its report when no validation is needed or possible."""
    raw = item.raw
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
    _gx_batch_definition()  # GX is imported here first, with its analytics and bars off
    rules = default_expectations(item.kind, item.start, item.end)
    rules += [(_describe(d), d.name, dict(d.kwargs)) for d in item.declared]
    try:
        for words, name, arguments in rules:
            _build(name, arguments, words)
    except ValueError as error:
        return ValidationReport(_empty_valid(), _empty_rejected(), error=str(error))
    return _Prepared(frame, raw_dates, raw_values, rules)


def validate_series(
    raw: pd.DataFrame,
    kind: str,
    start: date,
    end: date,
    declared: Sequence[DeclaredExpectation] = (),
) -> ValidationReport:
    """Split `raw` (columns date, value, as the connector gave them) into valid and rejected rows."""
    (report,) = validate_many([SeriesToValidate(raw, kind, start, end, declared)])
    return report


def validate_many(items: Sequence[SeriesToValidate]) -> list[ValidationReport]:
    """`validate_series` of each item, in order, with as few Great Expectations runs as
    the rules allow.

    Series with the same rules, all of them judging a row by itself (the defaults of a
    kind and window, `min`/`max`), are validated as one frame with the series as a column:
    one suite run for all of them, each row getting the verdict it would get alone. A
    series with a rule over the whole series (a mean, `mostly`) is validated by itself.
    Call it from one thread at a time: Great Expectations is not thread-safe.
    """
    reports: list[ValidationReport | None] = [None] * len(items)
    groups: dict[str, list[tuple[int, _Prepared]]] = {}
    for index, item in enumerate(items):
        prepared = _prepare(item)
        if isinstance(prepared, ValidationReport):
            reports[index] = prepared
        else:
            groups.setdefault(prepared.signature(index), []).append((index, prepared))
    for members in groups.values():
        found = _validate_together([prepared for _, prepared in members])
        if found is None:  # an expectation failed to evaluate: each series by itself
            found = [_validate_alone(prepared) for _, prepared in members]
        for (index, _), report in zip(members, found, strict=True):
            reports[index] = report
    return [report for report in reports if report is not None]


def _validate_alone(member: _Prepared) -> ValidationReport:
    found = _validate_together([member])
    assert found is not None  # a series by itself always has its report
    return found[0]


def _validate_together(members: list[_Prepared]) -> list[ValidationReport] | None:
    """One suite run over the members' rows (members share their rules); None when an
    expectation could not be evaluated on a frame of several series."""
    rules = members[0].rules
    together = len(members) > 1
    frame = pd.concat([member.frame for member in members], ignore_index=True)
    owner: list[tuple[int, int]] = [
        (number, row) for number, member in enumerate(members) for row in range(len(member.frame))
    ]
    if together:
        # One row per date within each series: unique (series, date), nulls left out as
        # the uniqueness of the date column alone leaves them out.
        frame["series_date"] = [
            None if pd.isna(day) else f"{number}|{day.isoformat()}"
            for (number, _), day in zip(owner, frame["date"], strict=True)
        ]
    batch_definition = _gx_batch_definition()  # creates the context the suite needs
    import great_expectations as gx

    suite = gx.ExpectationSuite(name="daily_series")
    # GX evaluates a suite column by column, in the order the columns first appear; the
    # results are read in the order a series by itself gets them, so that a row failing
    # two expectations is blamed on the same one.
    columns: dict[str, int] = {}  # a column's place among the columns, as first named
    rank: list[tuple[int, int]] = []  # each rule's place in the order of the results
    for number, (words, name, arguments) in enumerate(rules):
        meta = {"okr_rule": number}
        expectation = _build(name, {**arguments, "meta": meta}, words)
        column = getattr(expectation, "column", None)
        column = column if isinstance(column, str) else ""
        rank.append((columns.setdefault(column, len(columns)), number))
        if together and name == UNIQUE:
            expectation = _build(name, {**arguments, "column": "series_date", "meta": meta}, words)
        suite.add_expectation(expectation)
    result = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(
        suite, result_format={"result_format": "COMPLETE"}
    )
    results = sorted(
        result.results, key=lambda found: rank[found.expectation_config.meta["okr_rule"]]
    )
    reasons: list[dict[int, tuple[str, str]]] = [{} for _ in members]
    outcomes: list[list[ExpectationOutcome]] = [[] for _ in members]
    for item in results:
        words = (item.expectation_config.meta or {}).get("okr_label", item.expectation_config.type)
        gx_type = item.expectation_config.type
        details = item.result or {}
        if item.exception_info and item.exception_info.get("raised_exception"):
            if together:
                return None
            message = (item.exception_info.get("exception_message") or "").splitlines()[0]
            return [
                ValidationReport(
                    _empty_valid(),
                    _empty_rejected(),
                    error=f"{words}: could not be evaluated: {message}",
                )
            ]
        indexes = details.get("unexpected_index_list")
        if item.success:
            for number in range(len(members)):
                outcomes[number].append(ExpectationOutcome(words, gx_type, True))
            continue
        if indexes is None:
            # A whole-series expectation (a mean, a row count): no single row to blame
            # (only ever of a series validated by itself).
            member = members[0]
            rows = list(range(len(member.frame)))
            observed = details.get("observed_value")
            for row in rows:
                reasons[0].setdefault(row, (words, gx_type))
            outcomes[0].append(
                ExpectationOutcome(words, gx_type, False, len(rows), [f"observed {observed}"])
            )
            continue
        by_member: list[list[int]] = [[] for _ in members]
        for index in indexes:
            number, row = owner[index]
            by_member[number].append(row)
        for number, rows in enumerate(by_member):
            if not rows:
                outcomes[number].append(ExpectationOutcome(words, gx_type, True))
                continue
            member = members[number]
            examples = [
                f"{member.raw_dates[i]}: {member.raw_values[i]!r}" for i in rows[:MAX_EXAMPLES]
            ]
            for row in rows:
                reasons[number].setdefault(row, (words, gx_type))
            outcomes[number].append(ExpectationOutcome(words, gx_type, False, len(rows), examples))
    return [
        _report(member, member_reasons, member_outcomes)
        for member, member_reasons, member_outcomes in zip(members, reasons, outcomes, strict=True)
    ]


def _report(
    member: _Prepared, reasons: dict[int, tuple[str, str]], outcomes: list[ExpectationOutcome]
) -> ValidationReport:
    """The series' valid and rejected rows, from the rows' first failed expectation."""
    frame, raw_dates, raw_values = member.frame, member.raw_dates, member.raw_values
    rejected_rows = [
        {
            "date": raw_dates[index],
            "raw_value": raw_values[index],
            "expectation": gx_type,
            "reason": f"{words}: got {raw_values[index]!r} on {raw_dates[index]}",
        }
        for index, (words, gx_type) in sorted(reasons.items())
    ]
    kept = frame
    if reasons:
        keep = np.ones(len(frame), dtype=bool)
        keep[list(reasons)] = False
        kept = frame[keep]
    valid = pd.DataFrame(
        {
            # Every kept row has a date: "date is a calendar date" rejects the others.
            "date": kept["date"].dt.date.to_numpy(dtype=object),
            "value": kept["value"].to_numpy(dtype=np.float64),
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
