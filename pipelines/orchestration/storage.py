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

On SQLite, Dagster opens and closes a connection for every event it stores; closing the
last connection to a WAL database checkpoints it to disk, so each event cost a few
milliseconds of fsync, and a quarter's backfill writes a couple of thousand events
(`benchmarks/dagster_events.py`). `HeldSqliteStorage` keeps one engine, with its
connections open, per database file, in `synchronous=NORMAL` mode: a commit no longer
waits for the disk. A killed process loses nothing it committed; a power cut may lose
the last few events of the run history, never the warehouse's rows (another database),
and leaves the files consistent.

A backfill also writes one ASSET_MATERIALIZATION_PLANNED event per asset and day when the
run is created, and one ASSET_MATERIALIZATION per asset and day when its step ends.
Dagster hands such events to `store_event_batch` in groups of DAGSTER_EVENT_BATCH_SIZE
(when it is above 0; `DagsterStorageFromEnv` sets `DEFAULT_EVENT_BATCH_SIZE` unless the
environment says otherwise). `HeldSqliteEventLogStorage.store_event_batch` writes a group
in one transaction per database file, the same rows `store_event` writes one by one.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as db
from dagster import StringSource
from dagster._core.events import (
    ASSET_CHECK_EVENTS,
    ASSET_EVENTS,
    EVENT_TYPE_TO_PIPELINE_RUN_STATUS,
)
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import AssetKeyTable, SqlEventLogStorageTable
from dagster._core.storage.runs import SqliteRunStorage
from dagster._core.storage.schedules import SqliteScheduleStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from dagster._serdes import ConfigurableClass, ConfigurableClassData
from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url

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
# Dagster's switch for storing per-partition events in groups (module docstring), and the
# group size used when it is not set (benchmarks/dagster_events.py).
EVENT_BATCH_VARIABLE = "DAGSTER_EVENT_BATCH_SIZE"
DEFAULT_EVENT_BATCH_SIZE = 100
# The events the SQLite event log copies into its index shard, besides the run's own shard.
INDEXED_EVENTS = ASSET_EVENTS | ASSET_CHECK_EVENTS | set(EVENT_TYPE_TO_PIPELINE_RUN_STATUS)

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


# Run shards whose engines stay open besides the index: a run writes to its own shard only.
HELD_SHARDS = 8


class HeldEngines:
    """One engine per SQLite file, its connections kept open between transactions: the
    kept ones (the index, the runs) for good, the others (run shards) up to `limit`."""

    def __init__(self, limit: int = HELD_SHARDS) -> None:
        self._kept: dict[str, Engine] = {}
        self._recent: OrderedDict[str, Engine] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()
        _all_held.add(self)

    def engine(self, url: str, keep: bool = False) -> Engine:
        with self._lock:
            engines = self._kept if keep else self._recent
            engine = engines.get(url)
            if engine is None:
                engine = create_engine(
                    url,
                    connect_args={
                        "timeout": SQLITE_BUSY_TIMEOUT_SECONDS,
                        "check_same_thread": False,
                    },
                )
                event.listen(engine, "connect", _no_fsync_per_commit)
                engines[url] = engine
            if not keep:
                self._recent.move_to_end(url)
                while len(self._recent) > self._limit:
                    self._recent.popitem(last=False)[1].dispose()
            return engine

    def dispose(self) -> None:
        with self._lock:
            for engine in [*self._kept.values(), *self._recent.values()]:
                engine.dispose()
            self._kept.clear()
            self._recent.clear()

    def _forget(self) -> None:
        # A forked child must not use the parent's SQLite connections.
        for engine in [*self._kept.values(), *self._recent.values()]:
            engine.dispose(close=False)
        self._kept.clear()
        self._recent.clear()
        self._lock = threading.Lock()


_all_held: weakref.WeakSet[HeldEngines] = weakref.WeakSet()


def _forget_after_fork() -> None:
    for held in list(_all_held):
        held._forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def _no_fsync_per_commit(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class HeldSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event log, each shard's connections held open, a batch of events
    stored in one transaction per shard (module docstring)."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._held = HeldEngines()
        self._tables: set[str] = set()
        # The shards' open transactions while this thread stores a batch.
        self._batch = threading.local()
        super().__init__(base_dir, inst_data)
        # Reentrant: a batch holds it while Dagster's own writers run inside it.
        self._db_lock = threading.RLock()  # type: ignore[assignment]

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        in_batch = getattr(self._batch, "connections", {}).get(shard)
        if in_batch is not None:
            yield in_batch
            return
        with self._db_lock, self._transaction(shard) as conn:
            yield conn

    @contextmanager
    def _transaction(self, shard: str) -> Iterator[Connection]:
        # The caller holds _db_lock.
        url = self.conn_string_for_shard(shard)
        engine = self._held.engine(url, keep=shard == "index")
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        with engine.connect() as conn, conn.begin():
            yield conn

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Store `events` as `store_event` would one by one, in one transaction per shard.

        Each shard gets all of the rows or none; should storing fail, Dagster stores the
        events again one by one. The index commits just before the run's shard, so only a
        failure of that last commit would leave the index with the events twice.
        """
        runs: dict[str, list[EventLogEntry]] = {}
        for entry in events:
            runs.setdefault(entry.run_id, []).append(entry)
        for run_id, run_events in runs.items():
            # Each event serialized once, for its row in both shards.
            rows = [self._event_to_row(entry) for entry in run_events]
            indexed = [
                (entry, row)
                for entry, row in zip(run_events, rows, strict=True)
                if entry.is_dagster_event and entry.dagster_event_type in INDEXED_EVENTS
            ]
            with self._db_lock, self._transaction(run_id) as run_conn:
                run_conn.execute(SqlEventLogStorageTable.insert(), rows)
                if indexed:
                    with self._transaction("index") as index_conn:
                        self._batch.connections = {run_id: run_conn, "index": index_conn}
                        try:
                            self._index_batch(index_conn, indexed)
                        finally:
                            self._batch.connections = {}

    def _index_batch(
        self, conn: Connection, indexed: Sequence[tuple[EventLogEntry, dict[str, Any]]]
    ) -> None:
        """The index shard's rows for `indexed` (events and their rows): what `store_event`
        adds for each of them."""
        inserted = conn.execute(
            SqlEventLogStorageTable.insert().returning(
                SqlEventLogStorageTable.c.id, sort_by_parameter_order=True
            ),
            [row for _, row in indexed],
        )
        event_ids = [int(event_id) for event_id in inserted.scalars()]
        events = [entry for entry, _ in indexed]
        assets = [
            (entry, event_id)
            for entry, event_id in zip(events, event_ids, strict=True)
            if entry.dagster_event_type in ASSET_EVENTS
        ]
        if assets:
            self._store_asset_event_tags(
                conn, [entry for entry, _ in assets], [event_id for _, event_id in assets]
            )
            self._store_asset_entries(conn, assets)
        for entry, event_id in zip(events, event_ids, strict=True):
            if entry.dagster_event_type in ASSET_CHECK_EVENTS:
                self.store_asset_check_event(entry, event_id)

    def _store_asset_entries(
        self, conn: Connection, assets: Sequence[tuple[EventLogEntry, int]]
    ) -> None:
        """The asset key table's row of each asset as `_store_asset_event`, applied to each
        event in turn, leaves it: each column from the latest event that sets it."""
        has_index_cols = self._has_asset_key_index_cols_on_connection(conn)
        keyed = [
            (asset_key.to_string(), entry, event_id)
            for entry, event_id in assets
            if (asset_key := entry.get_dagster_event().asset_key) is not None
        ]
        # New assets get their rows in the order of their first event.
        latest: dict[str, dict[str, Any]] = {asset_key: {} for asset_key, _, _ in keyed}
        for asset_key, entry, event_id in reversed(keyed):
            columns = latest[asset_key]
            # A materialization sets every column any asset event sets: older ones are moot.
            if "last_materialization" in columns:
                continue
            values = self._get_asset_entry_values(entry, event_id, has_index_cols)
            for column, value in values.items():
                columns.setdefault(column, value)
        latest = {asset_key: columns for asset_key, columns in latest.items() if columns}
        if not latest:
            return
        known = set(
            conn.execute(
                db.select(AssetKeyTable.c.asset_key).where(
                    AssetKeyTable.c.asset_key.in_(list(latest))
                )
            ).scalars()
        )
        for asset_key, values in latest.items():
            if asset_key in known:
                conn.execute(
                    AssetKeyTable.update()
                    .values(**values)
                    .where(AssetKeyTable.c.asset_key == asset_key)
                )
            else:
                conn.execute(AssetKeyTable.insert().values(asset_key=asset_key, **values))

    def has_table(self, table_name: str) -> bool:
        # Asked on every asset event; a table, once there, stays.
        if table_name in self._tables:
            return True
        engine = self._held.engine(self.conn_string_for_shard("index"), keep=True)
        with engine.connect() as conn:
            found = bool(engine.dialect.has_table(conn, table_name))
        if found:
            self._tables.add(table_name)
        return found

    def wipe(self) -> None:
        self._held.dispose()
        super().wipe()

    def dispose(self) -> None:
        super().dispose()
        self._held.dispose()


class HeldSqliteRunStorage(SqliteRunStorage):
    """Dagster's SQLite run storage, its connections held open (module docstring)."""

    _held: HeldEngines | None = None

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        if self._held is None:
            self._held = HeldEngines()
        with self._held.engine(self._conn_string, keep=True).connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        super().dispose()
        if self._held is not None:
            self._held.dispose()


class HeldSqliteStorage(DagsterSqliteStorage):
    """`DagsterSqliteStorage` with the held-connection run and event log storages."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self.base_dir = base_dir
        self._run_storage = HeldSqliteRunStorage.from_local(_runs_directory(base_dir))
        self._event_log_storage = HeldSqliteEventLogStorage(_event_logs_directory(base_dir))
        self._schedule_storage = SqliteScheduleStorage.from_local(_schedule_directory(base_dir))
        self._inst_data = inst_data
        DagsterStorage.__init__(self)


class DagsterStorageFromEnv(DagsterStorage, ConfigurableClass):
    """Chooses the storage when the instance loads; instances are never of this class."""

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {"base_dir": StringSource}

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> DagsterStorage:
        os.environ.setdefault(EVENT_BATCH_VARIABLE, str(DEFAULT_EVENT_BATCH_SIZE))
        url = postgres_url_from_env()
        base_dir = config_value["base_dir"]
        with storage_setup_lock(base_dir):
            if url is not None:
                from dagster_postgres import DagsterPostgresStorage

                return DagsterPostgresStorage(postgres_url=url, inst_data=inst_data)
            return HeldSqliteStorage.from_local(base_dir=base_dir, inst_data=inst_data)
