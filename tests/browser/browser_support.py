"""What the browser tests share: the demo's warehouse read with SQL, `okr serve` as a
subprocess, and where Chromium is. Imported by tests/browser/conftest.py and the tests."""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "browser"
OKR = Path(sys.executable).parent / "okr"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
# Headless in a container: no sandbox (root), no GPU, and nothing that phones home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# A Hangul objective and KR, written into a copy of the demo's warehouse.
KOREAN_OBJECTIVE = ("mobile-engagement", "모바일 참여 늘리기")
KOREAN_KR = ("dau", "일일 활성 사용자 13,000명 달성")


def browser_required() -> bool:
    return os.environ.get("OKR_REQUIRE_BROWSER") == "1"


def unavailable(reason: str) -> None:
    """Skip, or fail where the browser is required (CI)."""
    if browser_required():
        pytest.fail(f"{reason} (OKR_REQUIRE_BROWSER=1)", pytrace=False)
    pytest.skip(reason)


def chromium_path() -> tuple[str | None, str]:
    """The browser to drive, or None and why there is none."""
    named = os.environ.get("OKR_CHROMIUM")
    if named:
        if os.access(named, os.X_OK):
            return named, ""
        return None, f"OKR_CHROMIUM={named} is not an executable"
    found = DEFAULT_CHROMIUM if os.access(DEFAULT_CHROMIUM, os.X_OK) else shutil.which("chromium")
    if found:
        return found, ""
    return (
        None,
        "no Chromium (/usr/bin/chromium or OKR_CHROMIUM); .ci/chromium.sh installs it as root",
    )


def missing_browser() -> str | None:
    """Why the browser tests cannot run here (no Chromium, no Playwright), or None."""
    path, reason = chromium_path()
    if path is None:
        return f"browser tests need Chromium: {reason}"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "browser tests need playwright (pip install -e '.[dev]')"
    return None


def clean_env(**extra: str) -> dict[str, str]:
    """The environment a user's `okr` sees: no source credentials, no stray OKR_* settings."""
    from okr_metrics.connectors.registry import connected_sources

    dropped = {
        name
        for source in connected_sources().values()
        for name in source.connector_class().env.names()
    }
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in dropped and not key.startswith(("OKR_", "DAGSTER_"))
    }
    return {**env, **extra}


@dataclass(frozen=True)
class Demo:
    """The warehouse `okr demo` wrote, and what the tests read from it with SQL."""

    url: str
    quarter: str
    start: date
    newest: date

    def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        from sqlalchemy import bindparam, create_engine, text
        from sqlalchemy.pool import NullPool

        engine = create_engine(self.url, poolclass=NullPool)
        statement = text(sql)
        for name, value in params.items():
            if isinstance(value, tuple):  # a list for `IN :name`
                statement = statement.bindparams(bindparam(name, expanding=True))
        try:
            with engine.connect() as connection:
                return [dict(row._mapping) for row in connection.execute(statement, params)]
        finally:
            engine.dispose()

    def key_results(self, as_of: date | None = None) -> dict[str, dict[str, Any]]:
        """kr_id -> its row: the newest day's (kr_scores_latest), or `as_of`'s."""
        if as_of is None:
            rows = self.rows("SELECT * FROM kr_scores_latest WHERE quarter = :q", q=self.quarter)
        else:
            rows = self.rows(
                "SELECT * FROM kr_scores WHERE quarter = :q AND as_of = :day",
                q=self.quarter,
                day=as_of.isoformat(),
            )
        return {row["kr_id"]: dated(row) for row in rows}

    def objectives(self, as_of: date | None = None) -> dict[str, dict[str, Any]]:
        """objective_id -> its row: the newest day's (objective_scores_latest), or `as_of`'s."""
        if as_of is None:
            rows = self.rows(
                "SELECT * FROM objective_scores_latest WHERE quarter = :q", q=self.quarter
            )
        else:
            rows = self.rows(
                "SELECT * FROM objective_scores WHERE quarter = :q AND as_of = :day",
                q=self.quarter,
                day=as_of.isoformat(),
            )
        return {row["objective_id"]: dated(row) for row in rows}


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` across processes (the xdist workers)."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def as_date(value: Any) -> date:
    """A day as SQLite (text) or PostgreSQL (a date) returns it."""
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def dated(row: dict[str, Any]) -> dict[str, Any]:
    """The row with its `as_of` as a date."""
    return {**row, "as_of": as_date(row["as_of"])}


class DemoRun:
    """`okr demo` run once a test run, in the background, as a user would run it: its
    warehouse, Dagster home and working directory in `shared` (the xdist workers' common
    temporary folder). Whoever asks first starts it; everyone waits for the same one."""

    def __init__(self, shared: Path):
        self.folder = shared / "browser-demo"
        self._lock = shared / "browser-demo.lock"

    @property
    def url(self) -> str:
        return f"sqlite:///{self.folder / 'warehouse.db'}"

    def start(self) -> subprocess.Popen | None:
        """Start the demo unless someone has; the process when this call started it."""
        with locked(self._lock):
            if (self.folder / "started").exists():
                return None
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / "started").touch()
            # The exit code lands in a file, for the workers that did not start it.
            script = '"$0" demo >demo.out 2>demo.err; echo $? >rc.tmp && mv rc.tmp demo.rc'
            return subprocess.Popen(
                ["sh", "-c", script, str(OKR)],
                cwd=self.folder,
                env=clean_env(
                    OKR_WAREHOUSE_URL=self.url,
                    OKR_DEFS=str(REPO / "okr_defs"),
                    DAGSTER_HOME=str(self.folder / "dagster"),
                ),
                start_new_session=True,
            )

    def wait(self, timeout: float = 900) -> None:
        """Until the demo has finished; fails the test if it failed or never finished."""
        deadline = time.monotonic() + timeout
        done = self.folder / "demo.rc"
        while not done.exists():
            if time.monotonic() > deadline:
                pytest.fail(f"okr demo did not finish in {timeout:.0f} s", pytrace=False)
            time.sleep(0.2)
        code = int(done.read_text())
        if code != 0:
            errors = (self.folder / "demo.err").read_text()[-3000:]
            pytest.fail(f"okr demo exited with {code}:\n{errors}", pytrace=False)


@dataclass(frozen=True)
class Server:
    url: str
    token: str | None = None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """A plain HTTP GET (no browser): the status and the body."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


def answers(url: str, process: subprocess.Popen, timeout: float = 60) -> bool:
    """Whether the server answers /healthz with 200 before it exits or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        try:
            if get(f"{url}/healthz")[0] == 200:
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


@contextmanager
def serving(warehouse_url: str, folder: Path, token: str | None = None) -> Iterator[Server]:
    """`okr serve` on a free port, until /healthz answers; stopped afterwards."""
    # As a user runs it in a clone: the definitions give the objectives' order.
    extra = {"OKR_WAREHOUSE_URL": warehouse_url, "OKR_DEFS": str(REPO / "okr_defs")}
    if token:
        extra["OKR_DASHBOARD_TOKEN"] = token
    log_path = folder / "serve.log"
    for _attempt in range(3):
        port = free_port()
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [str(OKR), "serve", "--port", str(port)],
                cwd=folder,
                env=clean_env(**extra),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        if answers(url, process):
            break
        process.kill()
        process.wait()
        # Another process may have taken the free port first: only that is worth a retry.
        if "in use" not in log_path.read_text():
            break
    else:
        process = None
    if process is None or process.poll() is not None:
        pytest.fail(f"okr serve did not answer /healthz:\n{log_path.read_text()[-3000:]}")
    try:
        yield Server(url, token)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
