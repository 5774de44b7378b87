"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# `python -m pytest` puts the repository root on sys.path, where the bare folder names
# (`pipelines`, `warehouse`) would import; users only ever have `okr_metrics`.
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _ROOT]

# --- no real credentials ---------------------------------------------------------------------
# Every registered source's environment variables (each connector's `env`), cleared for
# every test: a real token in the developer's shell never reaches a real API. Tests that
# want a source configured set its variables themselves (monkeypatch.setenv).


def source_env_names() -> tuple[str, ...]:
    """The variables every registered source's connector reads (`SourceEnv.names()`)."""
    from okr_metrics.connectors.registry import connected_sources

    names = (
        name
        for source in connected_sources().values()
        for name in source.connector_class().env.names()
    )
    return tuple(dict.fromkeys(names))


@pytest.fixture(autouse=True)
def _no_source_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in source_env_names():
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True, scope="session")
def _reports_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Runs write their HTML report under the session's temporary folder, never the
    checkout's .okr/: the default that settings built in-process fall back to, and the
    variable `okr` subprocesses inherit. Tests of the default itself unset the variable."""
    from okr_metrics.pipelines import settings

    folder = str(tmp_path_factory.mktemp("reports"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings, "DEFAULT_REPORTS_DIR", folder)
        patch.setenv("OKR_REPORTS_DIR", folder)
        yield


# --- end of the credentials block ---------------------------------------------------------------


# --- the sandbox (connectors) ---------------------------------------------------------------
# One sandbox server for the whole session; tests that use it start with no faults, no
# latency and an empty request log. Tests that set repositories use names of their own.


@pytest.fixture(scope="session")
def sandbox() -> Iterator[object]:
    """The running sandbox (`.url`, `.data`, `.add_fault`, `.requests`), started once."""
    from okr_metrics.connectors.sandbox import Sandbox

    with Sandbox() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_sandbox(request: pytest.FixtureRequest) -> None:
    """Forget the faults and recorded requests of earlier tests (only where the sandbox is used)."""
    if "sandbox" in request.fixturenames:
        request.getfixturevalue("sandbox").reset()


# --- end of the sandbox block ------------------------------------------------------------------


# --- the warehouse databases: SQLite and PostgreSQL ------------------------------------------
# `warehouse_url` runs a test twice: on a scratch SQLite file, and on a fresh schema of the
# PostgreSQL database named by OKR_TEST_POSTGRES_URL (`make test` starts a scratch server:
# .ci/postgres.sh). Without that variable the PostgreSQL runs are skipped, with the reason;
# with OKR_REQUIRE_POSTGRES=1 (set by `make test`) a missing or unreachable server fails them.

WAREHOUSE_DATABASES = ("sqlite", "postgresql")


def _postgres_unavailable(reason: str) -> None:
    if os.environ.get("OKR_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"{reason} (OKR_REQUIRE_POSTGRES=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The test server's database (`postgresql+psycopg2://...`), checked once a session."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    url = os.environ.get("OKR_TEST_POSTGRES_URL")
    if not url:
        _postgres_unavailable(
            "PostgreSQL runs need OKR_TEST_POSTGRES_URL (make test starts a server: .ci/postgres.sh)"
        )
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:  # whatever the cause, the server is not usable
        _postgres_unavailable(f"cannot reach OKR_TEST_POSTGRES_URL: {error}".splitlines()[0])
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="session")
def postgres_admin(postgres_url: str) -> Iterator[object]:
    """An autocommit engine on the test database, for creating and dropping schemas."""
    from sqlalchemy import create_engine

    engine = create_engine(postgres_url, isolation_level="AUTOCOMMIT", pool_size=1)
    yield engine
    engine.dispose()


@contextmanager
def postgres_schema(admin, base_url: str) -> Iterator[str]:
    """A new, empty schema; yields a URL whose connections use it (search_path)."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    schema = f"test_{uuid.uuid4().hex[:16]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        try:
            with admin.connect() as connection:
                # A connection a failed test left open must not hang the session.
                connection.execute(text("SET lock_timeout = '10s'"))
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        except Exception:  # a scratch server: a leftover schema is harmless
            pass


@pytest.fixture(scope="session")
def postgres_schemas(postgres_admin, postgres_url: str):
    """For wider-scoped fixtures: `with postgres_schemas() as url:` gives a fresh schema."""
    return lambda: postgres_schema(postgres_admin, postgres_url)


@pytest.fixture(params=WAREHOUSE_DATABASES)
def warehouse_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """An empty warehouse: a SQLite file, or a fresh schema on the PostgreSQL test server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'warehouse.db'}"
        return
    admin = request.getfixturevalue("postgres_admin")
    with postgres_schema(admin, request.getfixturevalue("postgres_url")) as url:
        yield url


@pytest.fixture
def postgres_database(postgres_url: str, postgres_admin) -> Iterator[str]:
    """A new, empty database on the test server (for Dagster's own storage); its URL."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    name = f"test_{uuid.uuid4().hex[:16]}"
    with postgres_admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    try:
        with postgres_admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    except Exception:  # a scratch server: a leftover database is harmless
        pass


# --- end of the warehouse databases block ------------------------------------------------------
