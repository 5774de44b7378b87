"""The connector contract: every connector passes the same tests against the sandbox.

Each module in `tests/connectors/cases/` (and in any folder listed in the environment
variable `OKR_CONTRACT_CASES`, for connectors that live in other packages) describes
one source to the suite with a module-level `CASE` object:

| attribute | what it is |
| --- | --- |
| `source` | the source's name in the registry |
| `http` | False for a source that calls no API (manual): the HTTP tests skip |
| `path_prefix` | sandbox path prefix of every request the connector sends (for faults) |
| `secret` | the token `settings()` carries; it must never leak |
| `settings(sandbox)` | `SourceSettings` pointing at `sandbox.url` with `token=secret` |
| `metric()` | a `MetricParams` of the source that the sandbox serves |
| `window` | `(start, end)`, the days asked for |
| `seed(sandbox, records_per_day)` | replace the metric's sandbox data with that many records on every day of the window; return the expected daily values |
| `seed_empty(sandbox)` | no records at all |
| `page_size(sandbox, size)` | make one page hold `size` records, so little data spans several pages |

Optional attributes: `empty_is_zero` (default True: a series with no records has a 0
on every day; False: no rows, as manual check-ins), `token_env` (the variable an
authentication error names; default the connector's `env.token`), `seed_bad(sandbox)`
(sources without HTTP: break the input and return the `file:line` the error must
name).

The suite runs against a sandbox of its own, so what a case changes in the sample
data stays here, and puts back the connector's class attributes (a `page_size` a case
shrinks) after each test. HTTP backoff is set to a millisecond, so nothing waits.
"""

from __future__ import annotations

import base64
import importlib.util
import logging
import os
import pkgutil
import sys
import traceback
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from okr_metrics.connectors.base import Connector, SourceError
from okr_metrics.connectors.registry import connected_sources

CASES_DIR = Path(__file__).parent / "cases"
EXTRA_CASES = "OKR_CONTRACT_CASES"
REQUIRED = ("source", "secret", "settings", "metric", "seed", "seed_empty", "page_size")
HOW_TO = "see docs/adding-a-connector.md"
DEFAULT_WINDOW = (date(2026, 10, 1), date(2026, 10, 10))


# --- discovery -------------------------------------------------------------------------------


def _case_folders() -> list[Path]:
    extra = [Path(p) for p in os.environ.get(EXTRA_CASES, "").split(os.pathsep) if p]
    return [CASES_DIR, *extra]


def _discover() -> tuple[dict[str, Any], dict[str, str]]:
    """Every case module's CASE by module name, and the modules that failed to give one."""
    cases: dict[str, Any] = {}
    broken: dict[str, str] = {}
    for folder in _case_folders():
        for module in sorted(pkgutil.iter_modules([str(folder)]), key=lambda m: m.name):
            if module.ispkg or module.name.startswith("_"):
                continue
            path = folder / f"{module.name}.py"
            # A private name: case modules never shadow (or are shadowed by) real packages.
            qualified = f"okr_contract_cases.{module.name}"
            try:
                spec = importlib.util.spec_from_file_location(qualified, path)
                loaded = importlib.util.module_from_spec(spec)
                sys.modules[qualified] = loaded
                spec.loader.exec_module(loaded)
            except Exception as error:
                broken[str(path)] = f"cannot import: {type(error).__name__}: {error}"
                continue
            case = getattr(loaded, "CASE", None)
            missing = [name for name in REQUIRED if not hasattr(case, name)]
            if case is None:
                broken[str(path)] = "defines no module-level CASE"
            elif missing:
                broken[str(path)] = f"CASE lacks {', '.join(missing)}"
            elif module.name in cases:
                broken[str(path)] = f"a second case module named {module.name!r}"
            else:
                cases[module.name] = case
    return cases, broken


CASES, BROKEN = _discover()
ALL = [pytest.param(case, id=name) for name, case in CASES.items()]
HTTP = [pytest.param(case, id=name) for name, case in CASES.items() if getattr(case, "http", True)]
NO_HTTP = [
    pytest.param(case, id=name) for name, case in CASES.items() if not getattr(case, "http", True)
]


def test_every_case_module_loads():
    assert not BROKEN, "broken contract case modules:\n" + "\n".join(
        f"  {path}: {problem}" for path, problem in BROKEN.items()
    )


def test_every_connected_source_has_a_case():
    covered = {case.source for case in CASES.values()}
    missing = sorted(set(connected_sources()) - covered)
    assert not missing, (
        f"no contract case for {', '.join(missing)}: add tests/connectors/cases/<source>.py "
        f"defining CASE, or list a connector package's case folder in {EXTRA_CASES} ({HOW_TO})"
    )


# --- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture(scope="module")
def contract_sandbox() -> Iterator[Any]:
    from okr_metrics.connectors.sandbox import Sandbox

    with Sandbox() as server:
        yield server


@pytest.fixture
def sandbox(contract_sandbox) -> Any:
    """The suite's own sandbox, with no faults and an empty request log."""
    contract_sandbox.reset()
    return contract_sandbox


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch) -> None:
    monkeypatch.setenv("OKR_HTTP_BACKOFF_SECONDS", "0.001")
    monkeypatch.setenv("OKR_HTTP_MAX_ATTEMPTS", "4")
    monkeypatch.setenv("OKR_HTTP_MAX_WAIT_SECONDS", "5")


@pytest.fixture
def case(request, monkeypatch) -> Any:
    """The parametrized case, its connector's class attributes restored afterwards."""
    case = request.param
    source = connected_sources().get(case.source)
    if source is None:
        pytest.fail(
            f"case {case.source!r}: no such source with a connector in connectors/registry.py "
            f"({HOW_TO})"
        )
    connector_class = source.connector_class()
    for name, value in list(vars(connector_class).items()):
        if not name.startswith("_") and isinstance(value, int | float | str | bool | tuple):
            monkeypatch.setattr(connector_class, name, value)
    return case


def connector_for(case, sandbox) -> Connector:
    """A connector built the way the Dagster assets build it (after seeding and page size)."""
    connector_class = connected_sources()[case.source].connector_class()
    settings = case.settings(sandbox)
    assert connector_class.missing_settings(settings) is None
    return connector_class.from_settings(settings)


def window(case) -> tuple[date, date]:
    return getattr(case, "window", DEFAULT_WINDOW)


def days(case) -> list[date]:
    start, end = window(case)
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def fetch(case, sandbox) -> pd.DataFrame:
    start, end = window(case)
    return connector_for(case, sandbox).daily_series(case.metric(), start, end)


def as_dict(series: pd.DataFrame) -> dict[date, float]:
    return dict(zip(series["date"], series["value"], strict=True))


def secrets_of(case, sandbox) -> list[str]:
    """The secret and, for basic auth, the encoded `user:secret` the header carries."""
    settings = case.settings(sandbox)
    found = [case.secret]
    if settings.user:
        found.append(base64.b64encode(f"{settings.user}:{case.secret}".encode()).decode())
    return found


def assert_no_secret(case, sandbox, error: BaseException | None, caplog) -> None:
    texts = {"log records": caplog.text}
    for record in caplog.records:
        texts[f"log record {record.name}"] = f"{record.getMessage()} {record.args!r}"
    if error is not None:
        texts.update(
            {
                "str(error)": str(error),
                "repr(error)": repr(error),
                "the traceback": "".join(traceback.format_exception(error)),
            }
        )
    for secret in secrets_of(case, sandbox):
        leaked = [where for where, text in texts.items() if secret in text]
        assert not leaked, f"the token leaked into {', '.join(leaked)}"


def assert_one_line(error: SourceError, case) -> str:
    message = str(error)
    assert error.source == case.source
    assert "\n" not in message, f"a SourceError is one line: {message!r}"
    return message


def failure(case, sandbox, **fault) -> SourceError:
    """The SourceError the connector raises when every request meets `fault`."""
    case.seed(sandbox, 1)
    sandbox.add_fault(path_prefix=case.path_prefix, **fault)
    with pytest.raises(SourceError) as raised:
        fetch(case, sandbox)
    return raised.value


# --- every source ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", ALL, indirect=True)
def test_several_pages_give_every_record(case, sandbox):
    expected = case.seed(sandbox, 3)
    if getattr(case, "http", True):
        case.page_size(sandbox, 4)
    series = fetch(case, sandbox)
    assert as_dict(series) == pytest.approx(expected)
    if getattr(case, "empty_is_zero", True):
        assert list(series["date"]) == days(case)
    if getattr(case, "http", True):
        assert len(sandbox.requests) > 1, "3 records a day, 4 a page: expected several pages"


@pytest.mark.parametrize("case", ALL, indirect=True)
def test_no_records(case, sandbox):
    case.seed_empty(sandbox)
    series = fetch(case, sandbox)
    if getattr(case, "empty_is_zero", True):
        assert as_dict(series) == {day: 0.0 for day in days(case)}
    else:
        assert series.empty
    assert list(series.columns) == ["date", "value"]


@pytest.mark.parametrize("case", ALL, indirect=True)
def test_the_series_shape(case, sandbox):
    case.seed(sandbox, 2)
    series = fetch(case, sandbox)
    start, end = window(case)
    assert list(series.columns) == ["date", "value"]
    assert series["value"].dtype == "float64"
    assert all(type(day) is date for day in series["date"]), "dates are datetime.date"
    listed = list(series["date"])
    assert listed == sorted(set(listed)), "one row per day, in order"
    assert all(start <= day <= end for day in listed)
    if getattr(case, "empty_is_zero", True):
        assert listed == days(case)


# --- sources that call an API ----------------------------------------------------------------


@pytest.mark.parametrize("case", HTTP, indirect=True)
def test_a_rate_limit_is_waited_out(case, sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    expected = case.seed(sandbox, 2)
    fault = sandbox.add_fault(path_prefix=case.path_prefix, status=429, retry_after=0, times=1)
    assert as_dict(fetch(case, sandbox)) == pytest.approx(expected)
    assert fault.times == 0, (
        f"no request reached {case.path_prefix!r}: check the case's path_prefix"
    )
    assert_no_secret(case, sandbox, None, caplog)


@pytest.mark.parametrize("case", HTTP, indirect=True)
def test_server_errors_are_retried(case, sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    expected = case.seed(sandbox, 2)
    fault = sandbox.add_fault(path_prefix=case.path_prefix, status=500, times=2)
    assert as_dict(fetch(case, sandbox)) == pytest.approx(expected)
    assert fault.times == 0
    assert_no_secret(case, sandbox, None, caplog)


@pytest.mark.parametrize("case", HTTP, indirect=True)
def test_a_rejected_token_names_its_variable(case, sandbox):
    message = assert_one_line(failure(case, sandbox, status=401), case)
    token_env = getattr(case, "token_env", None) or (
        connected_sources()[case.source].connector_class().env.token
    )
    assert "authentication" in message.lower()
    assert token_env and token_env in message


@pytest.mark.parametrize("case", HTTP, indirect=True)
def test_not_found_is_a_clear_error(case, sandbox):
    message = assert_one_line(failure(case, sandbox, status=404), case)
    assert "not found" in message.lower() or "404" in message


@pytest.mark.parametrize("case", HTTP, indirect=True)
def test_a_malformed_body_is_a_clear_error(case, sandbox):
    message = assert_one_line(failure(case, sandbox, malformed=True), case)
    assert "malformed" in message.lower()


@pytest.mark.parametrize("case", HTTP, indirect=True)
def test_persistent_server_errors_give_up(case, sandbox):
    message = assert_one_line(failure(case, sandbox, status=503), case)
    assert "503" in message


FAULTS = {
    "401": {"status": 401},
    "404": {"status": 404},
    "malformed": {"malformed": True},
    "503": {"status": 503},
    "429": {"status": 429, "retry_after": 0},
}


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
@pytest.mark.parametrize("case", HTTP, indirect=True)
def test_the_token_never_leaks(case, sandbox, caplog, fault):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    error = failure(case, sandbox, **fault)
    assert any(record.name.startswith("urllib3") for record in caplog.records), (
        "expected urllib3's DEBUG request lines in the captured logs"
    )
    assert_no_secret(case, sandbox, error, caplog)


# --- sources without an API ------------------------------------------------------------------


@pytest.mark.parametrize("case", NO_HTTP, indirect=True)
def test_a_bad_row_costs_one_row_and_names_its_file_and_line(case, sandbox):
    if not hasattr(case, "seed_bad"):
        pytest.skip(f"{case.source}: the case has no seed_bad")
    where, good = case.seed_bad(sandbox)
    connector = connector_for(case, sandbox)
    start, end = window(case)
    assert as_dict(connector.daily_series(case.metric(), start, end)) == good
    refused = connector.rejected_rows(case.metric(), start, end)
    reasons = [reason for frame in refused.values() for reason in frame["reason"]]
    assert len(reasons) == 1 and reasons[0].startswith(f"{where}: "), reasons
    assert "\n" not in reasons[0] and case.secret not in reasons[0]


@pytest.mark.parametrize("case", NO_HTTP, indirect=True)
def test_an_unreadable_input_names_its_file_and_line(case, sandbox):
    if not hasattr(case, "seed_unreadable"):
        pytest.skip(f"{case.source}: the case has no seed_unreadable")
    where = case.seed_unreadable(sandbox)
    with pytest.raises(SourceError) as raised:
        fetch(case, sandbox)
    message = assert_one_line(raised.value, case)
    assert where in message
