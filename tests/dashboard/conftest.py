"""The dashboard's tests: a warehouse built once by a real pipeline run on the sandbox,
served by a real uvicorn server, read back over HTTP.

`built_warehouse` backfills 2026-09-21..2026-10-20 with the shipped definitions, every
source on the sandbox (one Dagster run, both quarters: Q3's last days and Q4's first
weeks). Tests that change rows work on a copy (`warehouse_copy`).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from filelock import FileLock
from pagetools import FIRST_DAY, LAST_DAY, REPO

from okr_metrics.pipelines.cli.main import run_window
from okr_metrics.pipelines.orchestration.resources import sandbox_resources
from okr_metrics.pipelines.settings import Settings


@pytest.fixture(scope="session")
def built_warehouse(sandbox, tmp_path_factory) -> Path:
    """The SQLite file of a warehouse the pipeline wrote (do not change it: copy it).

    Built once for the whole session, even when pytest-xdist spreads the tests over
    workers: the first one builds it under a lock in their shared temporary folder.
    """
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the session's folder, above each worker's own
    root = shared / "dashboard-warehouse"
    path = root / "warehouse.db"
    with FileLock(str(shared / "dashboard-warehouse.lock")):
        if (root / "done").exists():
            return path
        root.mkdir(exist_ok=True)
        settings = Settings.from_env(
            {
                "OKR_WAREHOUSE_URL": f"sqlite:///{path}",
                "OKR_DEFS": str(REPO / "okr_defs"),
                "DAGSTER_HOME": str(root / "dagster"),
            }
        )
        outcome = run_window(
            FIRST_DAY, LAST_DAY, settings, sandbox_resources(settings, sandbox.url)
        )
        assert outcome.success, outcome.failure
        (root / "done").write_text(outcome.run_id)
    return path


@pytest.fixture
def warehouse_copy(built_warehouse, tmp_path) -> Path:
    """A copy of the built warehouse that a test may change."""
    copy = tmp_path / "warehouse.db"
    # SQLite's backup, not a file copy: the newest pages may still be in the WAL file.
    with sqlite3.connect(built_warehouse) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    return copy


@contextmanager
def serving(app) -> Iterator[str]:
    """`app` on a real uvicorn server on a free 127.0.0.1 port; yields its base URL."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        threading.Event().wait(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    """serve(app) -> base URL; every server started is stopped after the test."""
    with_servers = []

    def start(app) -> str:
        context = serving(app)
        with_servers.append(context)
        return context.__enter__()

    yield start
    for context in reversed(with_servers):
        context.__exit__(None, None, None)


@pytest.fixture(scope="session")
def dashboard_url(built_warehouse) -> Iterator[str]:
    """The dashboard over the built warehouse, no token, for the whole session."""
    from okr_metrics.pipelines.cli.main import definitions_order
    from okr_metrics.pipelines.dashboard.web import create_app

    order = definitions_order(Settings(definitions_path=str(REPO / "okr_defs")))
    with serving(create_app(f"sqlite:///{built_warehouse}", order=order)) as url:
        yield url
