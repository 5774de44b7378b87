"""Fixtures for the browser tests: the demo's warehouse, `okr serve` on it, and Chromium.

The warehouse is built by really running `okr demo`, once a test run, shared by the
pytest-xdist workers, and started in the background as soon as browser tests are
collected; `okr serve` runs as a subprocess on it, and
Playwright drives the system's Chromium (Debian's `chromium`, found by .ci/chromium.sh,
which `make test` runs) through `executable_path`: nothing is downloaded. Without a
browser the tests skip, saying why in one line; with OKR_REQUIRE_BROWSER=1 (CI) they fail.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from browser_support import (
    ARTIFACTS,
    CHROMIUM_ARGS,
    KOREAN_KR,
    KOREAN_OBJECTIVE,
    Demo,
    DemoRun,
    Server,
    as_date,
    browser_required,
    chromium_path,
    missing_browser,
    serving,
    unavailable,
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: drives Chromium (.ci/chromium.sh finds or installs it)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Without a browser (and not in CI), every browser test skips: one line says why."""
    reason = missing_browser()
    if reason is None or browser_required():
        return
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def chromium() -> str:
    reason = missing_browser()
    if reason is not None:
        unavailable(reason)
    path, _ = chromium_path()
    assert path is not None
    return path


@pytest.fixture(autouse=True)
def _needs_chromium(chromium: str) -> None:
    """First of every browser test: fail before the demo is built when there is no browser."""


# --- the demo's warehouse ----------------------------------------------------------------------


def demo_run(factory: pytest.TempPathFactory) -> DemoRun:
    """The test run's demo, in the folder every xdist worker shares."""
    base = factory.getbasetemp()
    return DemoRun(base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base)


# The demo takes a minute: it starts as soon as browser tests are collected, so that it
# runs beside the other tests instead of keeping a worker waiting.
_started: list[subprocess.Popen] = []


def pytest_collection_finish(session: pytest.Session) -> None:
    factory = getattr(session.config, "_tmp_path_factory", None)
    wanted = any(
        item.get_closest_marker("browser") and not item.get_closest_marker("skip")
        for item in session.items
    )
    if wanted and factory is not None:
        process = demo_run(factory).start()
        if process is not None:
            _started.append(process)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for process in _started:
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            os.killpg(process.pid, signal.SIGTERM)
        # Otherwise another worker's tests may still need it: it ends on its own.
        try:
            process.wait(timeout=900)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """The warehouse `okr demo` wrote, with its quarter and newest scored day."""
    run = demo_run(tmp_path_factory)
    process = run.start()
    if process is not None:
        _started.append(process)
    run.wait()
    probe = Demo(run.url, "", date.min, date.min)
    quarter = probe.rows("SELECT MAX(quarter) AS q FROM kr_scores")[0]["q"]
    days = probe.rows(
        "SELECT MIN(as_of) AS first, MAX(as_of) AS last FROM kr_scores WHERE quarter = :q",
        q=quarter,
    )[0]
    return Demo(run.url, quarter, as_date(days["first"]), as_date(days["last"]))


@pytest.fixture(scope="session")
def korean_demo(demo: Demo, tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """A copy of the demo's warehouse where one objective and one KR have Hangul titles."""
    from sqlalchemy import create_engine, text

    copy = tmp_path_factory.mktemp("korean") / "warehouse.db"
    shutil.copyfile(demo.url.removeprefix("sqlite:///"), copy)
    url = f"sqlite:///{copy}"
    engine = create_engine(url)
    (objective_id, objective_title), (kr_id, kr_title) = KOREAN_OBJECTIVE, KOREAN_KR
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE objective_scores SET title = :t WHERE objective_id = :id"),
            {"t": objective_title, "id": objective_id},
        )
        for table in ("kr_scores", "kr_definitions"):
            connection.execute(
                text(f"UPDATE {table} SET kr_title = :t WHERE kr_id = :id"),
                {"t": kr_title, "id": kr_id},
            )
    engine.dispose()
    return Demo(url, demo.quarter, demo.start, demo.newest)


# --- `okr serve` -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def server(demo: Demo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`okr serve` on the demo's warehouse, no token."""
    with serving(demo.url, tmp_path_factory.mktemp("serve")) as running:
        yield running


@pytest.fixture(scope="session")
def token_server(korean_demo: Demo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`okr serve` with OKR_DASHBOARD_TOKEN set, on the Hangul copy of the warehouse."""
    token = secrets.token_urlsafe(24)
    with serving(korean_demo.url, tmp_path_factory.mktemp("serve-token"), token) as running:
        yield running


# --- Chromium ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser(chromium: str) -> Iterator[Any]:
    """One headless Chromium for the session, driven by Playwright's sync API."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies), 1280 px wide."""
    opened = browser.new_context(viewport={"width": 1280, "height": 900})
    opened.set_default_timeout(15_000)
    yield opened
    opened.close()


@pytest.fixture
def page(context: Any) -> Any:
    return context.new_page()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """test-artifacts/browser/: the screenshots (gitignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
