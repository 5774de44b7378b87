"""Dagster's own storage (runs, event logs, schedules): PostgreSQL when configured, else SQLite.

dagster.yaml names `DagsterStorageFromEnv` as the instance's storage. When the instance
loads (`okr` commands, `dagster dev`, the daemon), it reads the environment:

- `DAGSTER_PG_URL`: one URL, e.g. `postgresql+psycopg2://dagster:secret@db:5432/dagster`;
- or `DAGSTER_PG_HOST`, `DAGSTER_PG_USER`, `DAGSTER_PG_DB` (required together),
  `DAGSTER_PG_PASSWORD` and `DAGSTER_PG_PORT` (default 5432);

and stores everything in that PostgreSQL database (dagster-postgres, psycopg2), or, with
none of them set, in SQLite databases under `base_dir` ($DAGSTER_HOME), Dagster's default.
A plain `storage: postgres:` block in dagster.yaml could not fall back to SQLite: a missing
variable is an error there. Only variable names reach the instance's serialized settings,
never the password.

Dagster creates and upgrades its SQLite tables on first use without any lock between
processes, so two `okr` commands started together on a fresh DAGSTER_HOME would both try
`CREATE TABLE runs` and one would die. The storage is therefore set up under an exclusive
lock on `base_dir/.storage.lock` (flock: released by the kernel if the holder is killed).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dagster import StringSource
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage
from dagster._serdes import ConfigurableClass, ConfigurableClassData
from sqlalchemy.engine import URL, make_url

URL_VARIABLE = "DAGSTER_PG_URL"
PART_VARIABLES = {
    "host": "DAGSTER_PG_HOST",
    "port": "DAGSTER_PG_PORT",
    "username": "DAGSTER_PG_USER",
    "password": "DAGSTER_PG_PASSWORD",
    "database": "DAGSTER_PG_DB",
}
REQUIRED_PARTS = ("host", "username", "database")
# dagster-postgres talks to PostgreSQL through psycopg2: say so in the URL, since
# SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3.
DRIVER = "postgresql+psycopg2"
# Held while the instance's storage is created or upgraded (see the module docstring).
LOCK_FILE = ".storage.lock"

try:
    import fcntl
except ImportError:  # Windows: no flock; Dagster's own retries are all there is
    fcntl = None  # type: ignore[assignment]


class DagsterPostgresSettingsError(ValueError):
    """DAGSTER_PG_* variables set, but not enough of them to reach a database."""


def postgres_url_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The PostgreSQL URL for Dagster's storage, or None when no DAGSTER_PG_* is set."""
    environ = os.environ if environ is None else environ
    if environ.get(URL_VARIABLE):
        url = make_url(environ[URL_VARIABLE])
        if url.get_backend_name() != "postgresql":
            raise DagsterPostgresSettingsError(f"{URL_VARIABLE} is not a PostgreSQL URL")
        return url.set(drivername=DRIVER).render_as_string(hide_password=False)
    parts = {part: environ.get(name) or None for part, name in PART_VARIABLES.items()}
    if not any(parts.values()):
        return None
    missing = [PART_VARIABLES[part] for part in REQUIRED_PARTS if not parts[part]]
    if missing:
        raise DagsterPostgresSettingsError(
            f"Dagster storage on PostgreSQL needs {', '.join(missing)} as well "
            f"(or one {URL_VARIABLE}); unset every DAGSTER_PG_* variable to use SQLite"
        )
    return URL.create(
        DRIVER,
        username=parts["username"],
        password=parts["password"],
        host=parts["host"],
        port=int(parts["port"]) if parts["port"] else 5432,
        database=parts["database"],
    ).render_as_string(hide_password=False)


@contextmanager
def storage_setup_lock(base_dir: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the exclusive lock of the instance in `base_dir` (created when missing).

    Processes that set up the same instance's storage at once take turns; a process that
    is killed while holding the lock loses it with its file descriptor.
    """
    folder = Path(base_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_FILE, "a+b") as handle:
        if fcntl is None:
            yield
            return
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class DagsterStorageFromEnv(DagsterStorage, ConfigurableClass):
    """Chooses the storage when the instance loads; instances are never of this class."""

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {"base_dir": StringSource}

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> DagsterStorage:
        url = postgres_url_from_env()
        base_dir = config_value["base_dir"]
        with storage_setup_lock(base_dir):
            if url is not None:
                from dagster_postgres import DagsterPostgresStorage

                return DagsterPostgresStorage(postgres_url=url, inst_data=inst_data)
            return DagsterSqliteStorage.from_local(base_dir=base_dir, inst_data=inst_data)
