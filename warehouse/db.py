"""Engines and write transactions for the warehouse database (SQLite or PostgreSQL).

Used by `warehouse.store` and `warehouse.migrations`. Every write to a table happens in
`write_transaction(engine, table)`, which lets one writer at a time change that table:

- SQLite: `BEGIN IMMEDIATE` takes the database's write lock at the start, and a second
  writer waits for it (busy_timeout); readers go on meanwhile (WAL).
- PostgreSQL: `pg_advisory_xact_lock` on a stable key per table. Under READ COMMITTED,
  two delete-window-then-insert transactions over overlapping windows would otherwise
  collide: the second one's DELETE does not see the rows the first one inserted, and its
  INSERT then fails with a duplicate key.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

# Execution option marking a write transaction (SQLite begins it IMMEDIATE).
_WRITE = "okr_write_transaction"
BUSY_TIMEOUT_SECONDS = 60


class WarehouseUrlError(ValueError):
    """A warehouse URL this project cannot use, with what to write instead."""


def check_url(url: str) -> None:
    """Refuse PostgreSQL URLs that do not name their driver.

    SQLAlchemy 2.1 reads a bare `postgresql://` as psycopg 3, which this project does not
    install (dagster-postgres uses psycopg2, and so does the warehouse).
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        fixed = parsed.set(drivername="postgresql+psycopg2").render_as_string(hide_password=True)
        raise WarehouseUrlError(
            f"name the PostgreSQL driver in the warehouse URL, e.g. {fixed} "
            "(a bare postgresql:// means psycopg 3 to SQLAlchemy 2.1, which is not installed)"
        )


def create_warehouse_engine(url: str) -> Engine:
    check_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    database = parsed.database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_SECONDS})

    @event.listens_for(engine, "connect")
    def _sqlite_connect(dbapi_connection, _record) -> None:
        # SQLAlchemy, not the sqlite3 module, begins transactions (see _sqlite_begin): the
        # module's own implicit BEGIN skips DDL and cannot begin IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(_WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def lock_key(name: str) -> int:
    """A stable advisory-lock key for `name` (a table, or "schema" for migrations)."""
    return zlib.crc32(f"okr-metrics:{name}".encode())


@contextmanager
def write_transaction(engine: Engine, lock_name: str) -> Iterator[Connection]:
    """One transaction, committed at the end, holding the write lock for `lock_name`."""
    with engine.execution_options(**{_WRITE: True}).begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(lock_name)}
            )
        yield connection
