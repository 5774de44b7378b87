"""Fixtures for the browser tests: the demo's warehouse, `okr serve` on it, and Chromium.

The warehouse is built by really running `okr demo` (once a test run, shared by the
pytest-xdist workers through a file lock); `okr serve` runs as a subprocess on it, and
Playwright drives the system's Chromium (Debian's `chromium`, found by .ci/chromium.sh,
which `make test` runs) through `executable_path`: nothing is downloaded. Without a
browser the tests skip, saying why in one line; with OKR_REQUIRE_BROWSER=1 (CI) they fail.
"""

from __future__ import annotations

import secrets
import shutil
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
    OKR,
    REPO,
    Demo,
    Server,
    as_date,
    browser_required,
    chromium_path,
    clean_env,
    locked,
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


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Demo:
    """`okr demo` run once, as a user would: its warehouse, Dagster home and working dir in tmp."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if worker_id != "master" else base
    folder = shared / "browser-demo"
    warehouse = folder / "warehouse.db"
    url = f"sqlite:///{warehouse}"
    with locked(shared / "browser-demo.lock"):
        if not (folder / "done").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            result = subprocess.run(
                [str(OKR), "demo"],
                cwd=folder,
                env=clean_env(
                    OKR_WAREHOUSE_URL=url,
                    OKR_DEFS=str(REPO / "okr_defs"),
                    DAGSTER_HOME=str(folder / "dagster"),
                ),
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert result.returncode == 0, f"okr demo failed:\n{result.stderr[-3000:]}"
            (folder / "done").touch()
    probe = Demo(url, "", date.min)
    quarter = probe.rows("SELECT MAX(quarter) AS q FROM kr_scores")[0]["q"]
    newest = probe.rows("SELECT MAX(as_of) AS d FROM kr_scores WHERE quarter = :q", q=quarter)
    return Demo(url, quarter, as_date(newest[0]["d"]))


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
    return Demo(url, demo.quarter, demo.newest)


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
