"""Several sources collected at once (`collect_sources`): fetched side by side, validated in
one batch, stored as one source after another would store them."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from okr_metrics.connectors.base import Connector, SourceSettings
from okr_metrics.connectors.http import HttpConnector
from okr_metrics.connectors.registry import connected_sources
from okr_metrics.pipelines.definitions import load_definitions
from okr_metrics.pipelines.jobs.collect import collect_source, collect_sources
from okr_metrics.pipelines.validation import expectations
from okr_metrics.warehouse.schema import metric_observations, rejected_observations, source_runs
from okr_metrics.warehouse.store import Warehouse

REPO = Path(__file__).resolve().parents[2]
START, END = date(2026, 10, 1), date(2026, 11, 15)
SKIPPED = "salesforce"  # a source without credentials in these runs


@pytest.fixture
def definitions(tmp_path):
    """The sample definitions, with one `expect` the sample sessions break (rows quarantined)."""
    folder = tmp_path / "okr_defs"
    shutil.copytree(REPO / "okr_defs", folder)
    path = folder / "2026-Q4.yaml"
    text = path.read_text(encoding="utf-8")
    marker = "          aggregate: mean_7d\n"
    assert marker in text
    path.write_text(text.replace(marker, marker + "          expect: {max: 340}\n", 1), "utf-8")
    return load_definitions(folder)


def connectors(sandbox) -> dict[str, tuple[Connector | None, str | None]]:
    """Every registered source against the sandbox (one skipped), built afresh."""
    settings = SourceSettings(base_url=sandbox.url, token="sandbox-token", user="me@example.com")
    built: dict[str, tuple[Connector | None, str | None]] = {}
    for name, source in connected_sources().items():
        cls = source.connector_class()
        if name == SKIPPED:
            built[name] = (None, "SALESFORCE_ACCESS_TOKEN not set")
        elif issubclass(cls, HttpConnector):
            built[name] = (cls.from_settings(settings, sleep=lambda s: None, max_attempts=2), None)
        else:
            built[name] = (cls.from_settings(settings), None)
    return built


def stored(warehouse: Warehouse) -> dict[str, list[tuple]]:
    """Every row the runs wrote, without the times they wrote them at."""
    rows = {}
    with warehouse.engine.connect() as connection:
        for table in (metric_observations, rejected_observations, source_runs):
            columns = [c for c in table.columns if c.name not in ("collected_at", "recorded_at")]
            rows[table.name] = sorted(
                tuple(row) for row in connection.execute(select(*columns)).all()
            )
    return rows


def record(warehouse: Warehouse, results) -> None:
    """What the observation assets record after collecting (one `source_runs` row each)."""
    for result in results:
        if result.requested:
            warehouse.record_source_run(
                "run-1", result.source, START, END, *result.status(), result.rejected_rows
            )


def test_collected_at_once_the_warehouse_gets_what_one_by_one_gives(sandbox, definitions, tmp_path):
    # Jira fails on every request: its series fail in both runs alike.
    sandbox.add_fault(path_prefix="/rest/api/3/search", status=500)
    one_by_one = Warehouse(f"sqlite:///{tmp_path / 'one_by_one.db'}")
    sequential = [
        collect_source(
            name, connector, skip, definitions, START, END, one_by_one, "run-1", lambda line: None
        )
        for name, (connector, skip) in connectors(sandbox).items()
    ]
    record(one_by_one, sequential)
    at_once = Warehouse(f"sqlite:///{tmp_path / 'at_once.db'}")
    lines: list[str] = []
    results = collect_sources(
        connectors(sandbox), definitions, START, END, at_once, "run-1", lines.append
    )
    record(at_once, results.values())

    assert list(results) == list(connected_sources())
    assert [r.status() for r in results.values()] == [r.status() for r in sequential]
    assert results[SKIPPED].skipped and results["jira"].failures and results["github"].ok
    assert {k: r.rows for k, r in results.items()} == {r.source: r.rows for r in sequential}
    rows = stored(at_once)
    assert rows == stored(one_by_one)
    assert rows["metric_observations"] and rows["rejected_observations"]  # both exercised
    assert any("averageSessionDuration" in str(row) for row in rows["rejected_observations"])
    assert any(line.startswith("jira [1/") and "FAILED" in line for line in lines)


class MeetsTheOthers:
    """A source's real connector whose first fetch waits until every source is fetching:
    it gets past the barrier only when the sources are fetched side by side."""

    def __init__(self, connector: Connector, barrier: threading.Barrier) -> None:
        self.connector, self.barrier, self.met = connector, barrier, False
        self.row_expectation = connector.row_expectation
        self.threads: set[str] = set()

    def daily_series_many(self, requests) -> dict:
        self.threads.add(threading.current_thread().name)
        if not self.met:
            self.barrier.wait(timeout=20)
            self.met = True
        return self.connector.daily_series_many(requests)

    def rejected_rows(self, request):
        return self.connector.rejected_rows(request)

    def finish(self) -> None:
        self.connector.finish()


def test_each_source_is_fetched_on_its_own_thread_at_the_same_time(sandbox, definitions, tmp_path):
    built = {name: pair for name, pair in connectors(sandbox).items() if pair[0] is not None}
    barrier = threading.Barrier(len(built))
    meeting = {name: MeetsTheOthers(connector, barrier) for name, (connector, _) in built.items()}
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}")
    results = collect_sources(
        {name: (wrapped, None) for name, wrapped in meeting.items()},
        definitions,
        START,
        END,
        warehouse,
        "run-1",
        lambda line: None,
    )
    assert all(result.rows for result in results.values())
    threads = [wrapped.threads for wrapped in meeting.values()]
    assert all(len(names) == 1 for names in threads)  # a source's series on one thread
    assert len(set.union(*threads)) == len(meeting)  # each source on its own
    assert threading.current_thread().name not in set.union(*threads)


class Breaks:
    """A connector with a bug: not a `SourceError`, so the run must fail."""

    row_expectation = "valid_source_row"

    def daily_series_many(self, requests) -> dict:
        raise ZeroDivisionError("a bug in the connector")


def test_a_connector_bug_fails_the_call_after_the_other_sources_are_stored(
    sandbox, definitions, tmp_path
):
    built = connectors(sandbox)
    built["github"] = (Breaks(), None)
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}")
    with pytest.raises(ZeroDivisionError, match="a bug in the connector"):
        collect_sources(built, definitions, START, END, warehouse, "run-1", lambda line: None)
    sources = {row[0] for row in stored(warehouse)["metric_observations"]}
    assert "google_analytics" in sources and "manual" in sources and "github" not in sources


def test_at_most_max_workers_sources_are_fetched_at_once(sandbox, definitions, tmp_path):
    built = {name: pair for name, pair in connectors(sandbox).items() if pair[0] is not None}
    meeting = {name: MeetsTheOthers(c, threading.Barrier(1)) for name, (c, _) in built.items()}
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}")
    collect_sources(
        {name: (wrapped, None) for name, wrapped in meeting.items()},
        definitions, START, END, warehouse, "run-1", lambda line: None, max_workers=0,
    )  # fmt: skip
    # 0: every source on the calling thread, one after another.
    assert {name for w in meeting.values() for name in w.threads} == {
        threading.current_thread().name
    }


class WaitsForValidation:
    """A source's real connector whose fetch waits (up to 60 s) for Great Expectations'
    context to be ready: it is only ready during a fetch when it is set up beside it."""

    def __init__(self, connector: Connector) -> None:
        self.connector, self.ready_during_fetch = connector, False
        self.row_expectation = connector.row_expectation

    def daily_series_many(self, requests) -> dict:
        deadline = time.monotonic() + 60
        while expectations._batch_definition is None and time.monotonic() < deadline:
            time.sleep(0.01)
        self.ready_during_fetch = expectations._batch_definition is not None
        return self.connector.daily_series_many(requests)

    def rejected_rows(self, request):
        return self.connector.rejected_rows(request)

    def finish(self) -> None:
        self.connector.finish()


@pytest.fixture
def fresh_validation(monkeypatch):
    """Great Expectations' context as in a new process: not set up yet."""
    monkeypatch.setattr(expectations, "_batch_definition", None)
    monkeypatch.setattr(expectations, "_setup", None)
    monkeypatch.setattr(expectations, "_setup_error", None)


def test_great_expectations_is_set_up_while_the_sources_are_fetched(
    sandbox, definitions, tmp_path, fresh_validation
):
    connector, _ = connectors(sandbox)["github"]
    waiting = WaitsForValidation(connector)
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}")
    results = collect_sources(
        {"github": (waiting, None)}, definitions, START, END, warehouse, "run-1", lambda _: None
    )
    assert waiting.ready_during_fetch
    assert results["github"].ok and results["github"].rows


def test_a_great_expectations_setup_error_fails_the_call_as_it_did_after_the_fetch(
    sandbox, definitions, tmp_path, fresh_validation, monkeypatch
):
    # GX's ephemeral context makes a temporary folder: with none usable, its setup fails.
    missing = tmp_path / "no-such-temp-folder"
    monkeypatch.setattr(tempfile, "tempdir", str(missing))
    with pytest.raises(FileNotFoundError, match=str(missing)):
        expectations._gx_batch_definition()  # what the validation raised by itself

    built = {name: pair for name, pair in connectors(sandbox).items() if name != "manual"}
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}")
    warehouse.ensure_schema()
    with pytest.raises(FileNotFoundError, match=str(missing)):
        collect_sources(built, definitions, START, END, warehouse, "run-1", lambda _: None)
    assert sandbox.requests  # raised by the validation, once the sources were fetched
    assert stored(warehouse)["metric_observations"] == []

    # The next run sets it up again, and stores what it fetched.
    monkeypatch.setattr(tempfile, "tempdir", None)
    results = collect_sources(built, definitions, START, END, warehouse, "run-2", lambda _: None)
    assert results["github"].ok and stored(warehouse)["metric_observations"]
