"""Schema migrations: a new warehouse, an old one upgraded in place, a later step, on both databases."""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Column, Date, Float, MetaData, String, Table, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.schema import CreateTable

from okr_metrics.pipelines.scoring.rules import KR_SCORE_COLUMNS
from okr_metrics.warehouse import migrations, schema
from okr_metrics.warehouse.migrations import (
    LATEST,
    STEPS,
    SchemaTooNewError,
    Step,
    current_version,
    migrate,
)
from okr_metrics.warehouse.store import Warehouse

HERE = Path(__file__).parent


def versions(warehouse: Warehouse) -> list[int]:
    with warehouse.engine.connect() as connection:
        return list(
            connection.execute(
                text("SELECT version FROM schema_version ORDER BY version")
            ).scalars()
        )


def test_steps_are_numbered_one_by_one():
    assert [step.version for step in STEPS] == list(range(1, len(STEPS) + 1))
    assert len(STEPS) == LATEST


def test_a_new_warehouse_gets_every_step_once(warehouse_url):
    warehouse = Warehouse(warehouse_url)
    assert current_version(warehouse.engine) == 0
    warehouse.ensure_schema()
    assert versions(warehouse) == list(range(1, LATEST + 1))
    assert migrate(warehouse.engine) == []
    assert Warehouse(warehouse_url).count_rows("kr_scores") == 0
    assert versions(warehouse) == list(range(1, LATEST + 1))
    warehouse.close()


def _type_name(column_type) -> str:
    """A database-neutral name for a column type, so reflection and schema.py compare."""
    name = type(column_type).__name__.upper()
    for generic, spellings in {
        "TEXT": ("TEXT", "CLOB"),
        "STRING": ("VARCHAR", "STRING", "CHAR"),
        "FLOAT": ("FLOAT", "DOUBLE", "DOUBLE_PRECISION", "REAL"),
        "DATETIME": ("DATETIME", "TIMESTAMP"),
    }.items():
        if name in spellings:
            return generic
    return name


def test_a_migrated_warehouse_matches_schema_py(warehouse_url):
    """schema.py describes the newest version: a step that changes tables must change it too."""
    warehouse = Warehouse(warehouse_url)
    warehouse.ensure_schema()
    with warehouse.engine.connect() as connection:
        inspector = inspect(connection)
        assert set(inspector.get_table_names()) == set(schema.metadata.tables)
        assert set(inspector.get_view_names()) == set(schema.VIEW_NAMES)
        comments = connection.dialect.supports_comments
        for table in schema.metadata.sorted_tables:
            reflected = {column["name"]: column for column in inspector.get_columns(table.name)}
            assert list(reflected) == [column.name for column in table.columns], table.name
            for column in table.columns:
                found = reflected[column.name]
                assert found["nullable"] == column.nullable, (table.name, column.name)
                assert _type_name(found["type"]) == _type_name(column.type), (
                    table.name,
                    column.name,
                )
                if comments:
                    assert found.get("comment") == column.comment, (table.name, column.name)
            primary_key = inspector.get_pk_constraint(table.name)["constrained_columns"]
            assert primary_key == [column.name for column in table.primary_key.columns]
            indexes = {
                index["name"]: index["column_names"] for index in inspector.get_indexes(table.name)
            }
            assert indexes == {
                index.name: [column.name for column in index.columns] for index in table.indexes
            }, table.name
            if comments:
                assert inspector.get_table_comment(table.name)["text"] == table.comment
    warehouse.close()


def _legacy_warehouse(url: str) -> None:
    """A warehouse as okr-metrics made it before migrations: its DDL, and a row per table."""
    backend = make_url(url).get_backend_name()
    ddl = (HERE / f"legacy_schema_{backend}.sql").read_text(encoding="utf-8")
    warehouse = Warehouse(url)
    raw = warehouse.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if backend == "sqlite":
            raw.driver_connection.executescript(ddl)
        else:
            cursor.execute(ddl)
        cursor.execute(
            "INSERT INTO kr_scores (quarter, objective_id, kr_id, kr_title, owner, as_of, kr_type,"
            " value, start, target, progress, score, expected_progress, status, stale,"
            " definition_hash, run_id, computed_at) VALUES ('2026-Q3', 'o', 'k', 'K', 'team',"
            " '2026-09-30', 'increase', 8, 0, 10, 0.8, 0.8, 1, 'on_track', FALSE, 'h', 'old',"
            " '2026-10-01 02:00:00')"
        )
        cursor.execute(
            "INSERT INTO objective_scores (quarter, objective_id, title, as_of, score, coverage,"
            " status, run_id, computed_at) VALUES ('2026-Q3', 'o', 'O', '2026-09-30', 0.8, 1,"
            " 'on_track', 'old', '2026-10-01 02:00:00')"
        )
        cursor.execute(
            "INSERT INTO metric_observations VALUES ('github', 'k1', '2026-09-30', 5, "
            "'2026-10-01 02:00:00', 'old')"
        )
        raw.commit()
    finally:
        raw.close()
        warehouse.close()


def test_a_warehouse_made_before_migrations_upgrades_in_place(warehouse_url):
    _legacy_warehouse(warehouse_url)
    warehouse = Warehouse(warehouse_url)
    assert current_version(warehouse.engine) == 0
    assert migrate(warehouse.engine) == list(range(1, LATEST + 1))
    # Nothing was dropped or rewritten.
    scores = warehouse.read_kr_scores()
    assert len(scores) == 1 and scores.loc[0, "run_id"] == "old" and scores.loc[0, "score"] == 0.8
    assert warehouse.count_rows("objective_scores") == 1
    assert warehouse.count_rows("metric_observations") == 1
    with warehouse.engine.connect() as connection:
        summary = connection.execute(
            text("SELECT objective_id, final_score, target_calibration FROM quarter_summary")
        ).all()
        indexes = {index["name"] for index in inspect(connection).get_indexes("kr_scores")}
    assert [tuple(row) for row in summary] == [("o", 0.8, "balanced")]
    assert {"kr_scores_quarter_as_of", "kr_scores_kr"} <= indexes
    # And the old warehouse takes new writes as usual.
    warehouse.replace_kr_scores(
        scores.drop(columns=["run_id", "computed_at"]), *[date(2026, 9, 30)] * 2, "new"
    )
    assert warehouse.read_kr_scores().loc[0, "run_id"] == "new"
    assert migrate(warehouse.engine) == []
    warehouse.close()


def test_a_failing_step_leaves_the_warehouse_as_it_was(warehouse_url, monkeypatch):
    def broken(connection) -> None:
        raise RuntimeError("step 2 broke")

    monkeypatch.setattr(migrations, "STEPS", (STEPS[0], Step(2, "broken", broken)))
    monkeypatch.setattr(migrations, "LATEST", 2)
    warehouse = Warehouse(warehouse_url)
    with pytest.raises(RuntimeError, match="step 2 broke"):
        migrate(warehouse.engine)
    # One transaction: step 1's tables went with it.
    with warehouse.engine.connect() as connection:
        assert inspect(connection).get_table_names() == []
    assert current_version(warehouse.engine) == 0
    warehouse.close()


def test_a_later_step_adds_a_table_and_keeps_the_data(warehouse_url, monkeypatch):
    """Room for later tables: a step appended after the latest one."""
    warehouse = Warehouse(warehouse_url)
    day = date(2026, 10, 1)
    row = dict.fromkeys(KR_SCORE_COLUMNS)
    row.update(
        quarter="2026-Q4",
        objective_id="o",
        kr_id="k",
        kr_title="K",
        as_of=day,
        kr_type="increase",
        status="no_data",
        stale=True,
        definition_hash="h",
    )
    warehouse.replace_kr_scores(pd.DataFrame([row]), day, day, "r")

    def add_example_table(connection) -> None:
        table = Table(
            "example_later_table",
            MetaData(),
            Column("metric_key", String(1000), nullable=False),
            Column("date", Date, nullable=False),
            Column("value", Float),
            Column("reason", String(200), nullable=False),
        )
        connection.execute(CreateTable(table))

    later = Step(LATEST + 1, "example_later_table", add_example_table)
    monkeypatch.setattr(migrations, "STEPS", (*STEPS, later))
    monkeypatch.setattr(migrations, "LATEST", LATEST + 1)
    assert migrate(warehouse.engine) == [LATEST + 1]
    assert versions(warehouse) == list(range(1, LATEST + 2))
    with warehouse.engine.connect() as connection:
        assert "example_later_table" in inspect(connection).get_table_names()
    assert warehouse.count_rows("kr_scores") == 1
    warehouse.close()


def test_a_warehouse_from_a_newer_release_is_refused(warehouse_url):
    warehouse = Warehouse(warehouse_url)
    warehouse.ensure_schema()
    with warehouse.engine.begin() as connection:
        connection.execute(
            schema.schema_version.insert().values(
                version=LATEST + 1, description="from the future", applied_at=date(2030, 1, 1)
            )
        )
    with pytest.raises(SchemaTooNewError, match="upgrade okr-metrics"):
        Warehouse(warehouse_url).ensure_schema()
    warehouse.close()


def test_two_processes_opening_a_new_warehouse_migrate_it_once(warehouse_url):
    warehouses = [Warehouse(warehouse_url), Warehouse(warehouse_url)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def open_it(warehouse: Warehouse) -> None:
        try:
            barrier.wait(timeout=30)
            warehouse.ensure_schema()
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=open_it, args=(w,)) for w in warehouses]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors[0]
    assert versions(warehouses[0]) == list(range(1, LATEST + 1))
    for warehouse in warehouses:
        warehouse.close()
