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

import functools
import importlib.util
import logging
import math
import os
import sys
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


_EMPTY_VALID = pd.DataFrame(
    {"date": pd.Series([], dtype=object), "value": pd.Series([], dtype=float)}
)
_EMPTY_REJECTED = pd.DataFrame({column: pd.Series([], dtype=object) for column in REJECTED_COLUMNS})


def _empty_valid() -> pd.DataFrame:
    return _EMPTY_VALID.copy()


def _empty_rejected() -> pd.DataFrame:
    return _EMPTY_REJECTED.copy()


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


def _defer_scipy_stats() -> None:
    """Make `scipy.stats` a module that runs its code at its first use, not at import.

    Great Expectations imports it, at its own import, for one expectation's arithmetic
    (`expect_column_kl_divergence_to_be_less_than`): half of GX's import time (about
    1.5 s of 3 here) and 55 MiB, in every run, whether a series asks for that expectation
    or not. Deferred (`importlib.util.LazyLoader`), `scipy.stats` loads whole the first
    time anything reads one of its names, as that expectation's validation does. Set on
    the `scipy` package too, so that `from scipy import stats` takes the deferred module
    without reading it. Nothing happens when `scipy.stats` is already loaded.
    """
    if "scipy.stats" in sys.modules:
        return
    try:
        import scipy
    except ImportError:  # GX could not be imported either: its own error tells why
        return
    spec = importlib.util.find_spec("scipy.stats")
    if spec is None or spec.loader is None:
        return
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["scipy.stats"] = module
    loader.exec_module(module)
    scipy.stats = module


def _set_up():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    _defer_scipy_stats()
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


@functools.cache
def _expectation_classes() -> dict[str, Any]:
    """GX's expectation classes by their lowercased names: GX spells some with capitals
    a word of the snake name does not tell (expect_column_kl_divergence_... is
    ExpectColumnKLDivergence...). Read once: every declared expectation of every series
    looks its class up here."""
    import great_expectations.expectations as expectations

    return {
        class_name.lower(): getattr(expectations, class_name)
        for class_name in dir(expectations)
        if class_name.startswith("Expect")
    }


def _expectation_class(name: str):
    """`expect_column_values_to_be_between` -> ExpectColumnValuesToBeBetween."""
    found = _expectation_classes().get(name.replace("_", "").lower())
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
    """The day `value` names (an aware timestamp's own local day), or None."""
    if isinstance(value, date):
        found = pd.Timestamp(value)
        return (found.tz_localize(None) if found.tzinfo else found).normalize()
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
    """A series ready for Great Expectations: its dates (datetime64, NaT for a date that
    is not one) and values (float, NaN for a value that is not a number), the values its
    rows came as, and its rules as (words, GX name, arguments)."""

    dates: np.ndarray
    values: np.ndarray
    raw_dates: Sequence[Any]
    raw_values: Sequence[Any]
    rules: list[tuple[str, str, dict]]

    def __len__(self) -> int:
        return len(self.values)

    def raw_date(self, row: int) -> str:
        """The date of `row` as it came, as text (a rejected row shows it)."""
        value = self.raw_dates[row]
        return str(value.isoformat() if isinstance(value, date) else value)

    def raw_value(self, row: int) -> str:
        value = self.raw_values[row]
        return "" if value is None else str(value)

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
    """The series' dates, values and rules, or its report when no validation is needed or
    possible."""
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
    raw_dates = raw["date"].tolist()
    raw_values = raw["value"].tolist()
    _gx_batch_definition()  # GX is imported here first, with its analytics and bars off
    rules = default_expectations(item.kind, item.start, item.end)
    rules += [(_describe(d), d.name, dict(d.kwargs)) for d in item.declared]
    problem = _checked_rules(rules)
    if problem is not None:
        return ValidationReport(_empty_valid(), _empty_rejected(), error=problem)
    return _Prepared(
        _as_dates(raw_dates), _as_numbers(raw["value"], raw_values), raw_dates, raw_values, rules
    )


def _as_dates(values: list[Any]) -> np.ndarray:
    """datetime64[ns] of the values `_to_date` reads (NaT where it reads none)."""
    if all(type(value) is date for value in values):  # what the connectors give
        return np.array(values, dtype="datetime64[D]").astype("datetime64[ns]")
    return pd.to_datetime(pd.Series([_to_date(v) for v in values], dtype=object)).to_numpy()


def _as_numbers(column: pd.Series, values: list[Any]) -> np.ndarray:
    """float64 of the values `_to_number` reads (NaN where it reads none)."""
    if column.dtype.kind in "fiu":  # a numeric column: no text, no flags
        numbers = column.to_numpy(dtype=np.float64, copy=True)
        numbers[~np.isfinite(numbers)] = np.nan
        return numbers
    return np.array([_to_number(v) for v in values], dtype=np.float64)


# The rules already built once (their repr -> the error they raised, or None): a run's
# series share a few sets of rules, and building each is a dozen pydantic models.
_CHECKED: dict[str, str | None] = {}


def _checked_rules(rules: list[tuple[str, str, dict]]) -> str | None:
    """Why Great Expectations refuses one of `rules`, or None when it takes them all."""
    key = repr(rules)
    if key not in _CHECKED:
        if len(_CHECKED) > 4096:
            _CHECKED.clear()
        try:
            for words, name, arguments in rules:
                _build(name, arguments, words)
            _CHECKED[key] = None
        except ValueError as error:
            _CHECKED[key] = str(error)
    return _CHECKED[key]


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
    dates = np.concatenate([member.dates for member in members])
    values = np.concatenate([member.values for member in members])
    frame = pd.DataFrame(
        {"date": dates, "value": values, "value_fraction": np.abs(values - np.round(values))}
    )
    lengths = [len(member) for member in members]
    # Each row's series and its row within the series.
    owner_number = np.repeat(np.arange(len(members)), lengths)
    owner_row = np.concatenate([np.arange(length) for length in lengths])
    if together:
        # One row per date within each series: unique (series, date), nulls left out as
        # the uniqueness of the date column alone leaves them out.
        days = dates.astype("datetime64[D]").astype(np.int64).astype(np.float64)
        key = owner_number * 1_000_000.0 + days  # days since 1970 stay within 0..1,000,000 apart
        key[np.isnat(dates)] = np.nan
        frame["series_date"] = key
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
            rows = list(range(len(member)))
            observed = details.get("observed_value")
            for row in rows:
                reasons[0].setdefault(row, (words, gx_type))
            outcomes[0].append(
                ExpectationOutcome(words, gx_type, False, len(rows), [f"observed {observed}"])
            )
            continue
        by_member: list[list[int]] = [[] for _ in members]
        for index in indexes:
            by_member[int(owner_number[index])].append(int(owner_row[index]))
        for number, rows in enumerate(by_member):
            if not rows:
                outcomes[number].append(ExpectationOutcome(words, gx_type, True))
                continue
            member = members[number]
            examples = [
                f"{member.raw_date(i)}: {member.raw_value(i)!r}" for i in rows[:MAX_EXAMPLES]
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
    rejected_rows = [
        {
            "date": member.raw_date(index),
            "raw_value": member.raw_value(index),
            "expectation": gx_type,
            "reason": f"{words}: got {member.raw_value(index)!r} on {member.raw_date(index)}",
        }
        for index, (words, gx_type) in sorted(reasons.items())
    ]
    dates, values = member.dates, member.values
    if reasons:
        keep = np.ones(len(member), dtype=bool)
        keep[list(reasons)] = False
        dates, values = dates[keep], values[keep]
    if not len(dates):
        valid = _empty_valid()
    else:
        # Every kept row has a date ("date is a calendar date" rejects the others), one
        # a day ("one row per date" rejects repeats): in date order.
        order = np.argsort(dates, kind="stable")
        valid = pd.DataFrame(
            {
                "date": dates[order].astype("datetime64[D]").astype(object),
                "value": values[order],
            }
        )
    rejected = (
        pd.DataFrame(rejected_rows, columns=REJECTED_COLUMNS)
        if rejected_rows
        else _empty_rejected()
    )
    return ValidationReport(valid, rejected, outcomes)
