"""Dagster's own storage on PostgreSQL (dagster.yaml + DAGSTER_PG_*), and `okr demo` on PostgreSQL.

The `okr` subprocesses here run with their run history in a scratch database of the test
server and, for the demo, the warehouse there too; they must print the very scorecard the
all-SQLite demo prints.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from okr_metrics.pipelines.orchestration.storage import (
    DagsterPostgresSettingsError,
    postgres_url_from_env,
)

REPO = Path(__file__).resolve().parents[2]
OKR = str(Path(sys.executable).parent / "okr")
DAGSTER_PG = ("DAGSTER_PG_URL", "DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER")
DAGSTER_PG += ("DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB")
# Credentials and endpoints of the sources: the subprocesses start from none of them.
SOURCE_PREFIXES = ("GITHUB_", "JIRA_", "GA_", "GOOGLE_", "SALESFORCE_", "HUBSPOT_")


def test_no_dagster_pg_variable_means_sqlite():
    assert postgres_url_from_env({}) is None
    assert postgres_url_from_env({"DAGSTER_PG_PASSWORD": ""}) is None


def test_one_url_gets_the_psycopg2_driver():
    url = postgres_url_from_env({"DAGSTER_PG_URL": "postgresql://dagster:s3cret@db:6432/runs"})
    assert url == "postgresql+psycopg2://dagster:s3cret@db:6432/runs"


def test_url_parts_are_quoted_and_the_port_defaults():
    url = postgres_url_from_env(
        {
            "DAGSTER_PG_HOST": "db.internal",
            "DAGSTER_PG_USER": "dagster",
            "DAGSTER_PG_PASSWORD": "p@ss:word/1",
            "DAGSTER_PG_DB": "dagster",
        }
    )
    assert url == "postgresql+psycopg2://dagster:p%40ss%3Aword%2F1@db.internal:5432/dagster"


def test_some_parts_without_the_others_is_an_error_naming_them():
    with pytest.raises(DagsterPostgresSettingsError, match="DAGSTER_PG_USER, DAGSTER_PG_DB"):
        postgres_url_from_env({"DAGSTER_PG_HOST": "db"})
    with pytest.raises(DagsterPostgresSettingsError, match="not a PostgreSQL URL"):
        postgres_url_from_env({"DAGSTER_PG_URL": "sqlite:///x.db"})


def test_dagster_yaml_stays_on_sqlite_without_the_variables(tmp_path, monkeypatch):
    from dagster import DagsterInstance
    from dagster._core.storage.runs import SqliteRunStorage

    for name in DAGSTER_PG:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    shutil.copyfile(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        assert isinstance(instance.run_storage, SqliteRunStorage)
        assert instance.get_runs() == []
    assert (tmp_path / "history" / "runs.db").exists()


def okr_env(tmp_path: Path, name: str, warehouse_url: str, dagster_pg_url: str | None) -> dict:
    """The environment of one `okr` subprocess: its own Dagster home, no source settings."""
    home = tmp_path / name
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(SOURCE_PREFIXES) and key not in (*DAGSTER_PG, "OKR_DEFS")
    }
    env.update(
        DAGSTER_HOME=str(home),
        OKR_WAREHOUSE_URL=warehouse_url,
        OKR_REPORTS_DIR=str(home / "reports"),
    )
    if dagster_pg_url:
        env["DAGSTER_PG_URL"] = dagster_pg_url
    return env


def recorded_runs(database_url: str) -> list[tuple[str, str]]:
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT run_id, status FROM runs")).all()
    finally:
        engine.dispose()
    return [tuple(row) for row in rows]


def test_okr_run_keeps_its_dagster_run_in_postgresql(
    tmp_path, sandbox, postgres_database, postgres_schemas, monkeypatch
):
    with postgres_schemas() as warehouse_url:
        env = okr_env(tmp_path, "dagster", warehouse_url, postgres_database)
        env.update(GITHUB_API_URL=sandbox.url, GITHUB_TOKEN="sandbox-token")
        result = subprocess.run(
            [OKR, "run", "--date", "2026-10-20", "--trailing-days", "1"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = recorded_runs(postgres_database)
    assert len(runs) == 1 and runs[0][1] == "SUCCESS"
    assert f"run {runs[0][0]}: done" in result.stderr
    # Nothing of the run went to SQLite under DAGSTER_HOME.
    assert not (tmp_path / "dagster" / "history" / "runs.db").exists()

    # The instance the UI and the daemon would load sees it, and so does one rebuilt from
    # its serialized reference (how Dagster hands the instance to run workers), which
    # holds no password or URL.
    from dagster import DagsterInstance
    from dagster._serdes import deserialize_value, serialize_value

    monkeypatch.setenv("DAGSTER_PG_URL", postgres_database)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    with DagsterInstance.from_config(str(tmp_path / "dagster")) as instance:
        assert [run.run_id for run in instance.get_runs()] == [runs[0][0]]
        reference = serialize_value(instance.get_ref())
    assert "127.0.0.1" not in reference
    with DagsterInstance.from_ref(deserialize_value(reference)) as rebuilt:
        assert [run.run_id for run in rebuilt.get_runs()] == [runs[0][0]]


def test_okr_demo_on_postgresql_prints_the_sqlite_scorecard(
    tmp_path, postgres_database, postgres_schemas
):
    """`okr demo` with the warehouse and Dagster on PostgreSQL, beside an all-SQLite one."""
    with postgres_schemas() as warehouse_url:
        envs = {
            "sqlite": okr_env(tmp_path, "sqlite", f"sqlite:///{tmp_path / 'w.db'}", None),
            "postgresql": okr_env(tmp_path, "postgresql", warehouse_url, postgres_database),
        }
        # Both at once: two cores, half the wait.
        demos = {
            name: subprocess.Popen(
                [OKR, "demo"],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name, env in envs.items()
        }
        outputs = {name: demo.communicate(timeout=600) for name, demo in demos.items()}
    for name, demo in demos.items():
        assert demo.returncode == 0, (name, outputs[name][1][-3000:])
    sqlite_card, postgres_card = outputs["sqlite"][0], outputs["postgresql"][0]
    assert "  " in postgres_card and len(postgres_card.splitlines()) > 5
    assert postgres_card == sqlite_card
    assert [status for _, status in recorded_runs(postgres_database)] == ["SUCCESS"]
