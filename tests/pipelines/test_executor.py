"""The two executors (OKR_EXECUTOR) give the same warehouse, and the same Dagster keys.

One short window of two sources and the KR scores is backfilled on the
sandbox in process (one step fetches the sources at once) and with the multiprocess
executor (each source a step of its own, in its API's pool, in a child process that
rebuilds the job from the environment): the two warehouses hold the same rows, value
for value, and each run recorded a materialization per day of every asset it ran.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetKey, DagsterEventType
from sqlalchemy import create_engine, select
from sqlalchemy.pool import NullPool

from okr_metrics.connectors.registry import connected_sources
from okr_metrics.pipelines.orchestration.assets import observation_asset_key, source_pool
from okr_metrics.pipelines.orchestration.definitions import JOB_NAME, build_definitions
from okr_metrics.pipelines.orchestration.resources import sandbox_resources
from okr_metrics.pipelines.orchestration.runs import dagster_instance, materialize_window
from okr_metrics.pipelines.settings import Settings
from okr_metrics.warehouse.schema import kr_scores, metric_observations

REPO = Path(__file__).resolve().parents[2]
START, END = date(2026, 10, 5), date(2026, 10, 6)
SOURCES = ("github", "jira")
# Two rounds of step processes: the two sources side by side, then the KR scores.
SELECTION = [observation_asset_key(source) for source in SOURCES] + [AssetKey(["okr", "kr_scores"])]
STAMPED = {"run_id", "computed_at", "collected_at"}
KEYS = {"kr_scores": ["quarter", "kr_id", "as_of"], "metric_observations": ["metric_key", "date"]}


def _rows(url: str) -> dict[str, pd.DataFrame]:
    engine = create_engine(url, poolclass=NullPool)
    frames = {}
    with engine.connect() as connection:
        for table in (kr_scores, metric_observations):
            result = connection.execute(select(table))
            frame = pd.DataFrame(result.all(), columns=list(result.keys()))
            frame = frame.drop(columns=[c for c in frame.columns if c in STAMPED])
            frames[table.name] = frame.sort_values(KEYS[table.name]).reset_index(drop=True)
    engine.dispose()
    return frames


def _backfill(sandbox, root: Path, executor: str, monkeypatch) -> tuple[Settings, str]:
    home = root / "dagster"
    home.mkdir(parents=True)
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    url = f"sqlite:///{root / 'warehouse.db'}"
    # A multiprocess run's steps read the settings from the environment they inherit.
    monkeypatch.setenv("OKR_WAREHOUSE_URL", url)
    monkeypatch.setenv("OKR_DEFS", str(REPO / "okr_defs"))
    monkeypatch.setenv("OKR_REPORTS_DIR", str(root / "reports"))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("OKR_EXECUTOR", executor)
    settings = Settings.from_env()
    run = materialize_window(
        settings, START, END, sandbox_resources(settings, sandbox.url), asset_selection=SELECTION
    )
    assert run.success, run.failure
    return settings, run.run_id


def test_in_process_and_multiprocess_backfills_write_the_same_rows(sandbox, tmp_path, monkeypatch):
    in_process, in_process_run = _backfill(sandbox, tmp_path / "in", "in_process", monkeypatch)
    multiprocess, multiprocess_run = _backfill(
        sandbox, tmp_path / "multi", "multiprocess", monkeypatch
    )
    expected = _rows(in_process.warehouse_url)
    found = _rows(multiprocess.warehouse_url)
    assert len(expected["kr_scores"]) > 0
    assert set(expected["metric_observations"]["source"]) == set(SOURCES)
    for name, frame in expected.items():
        assert not found[name].duplicated(KEYS[name]).any(), f"{name}: duplicated keys"
        pd.testing.assert_frame_equal(found[name], frame, check_dtype=False, obj=name)

    days = {START.isoformat(), END.isoformat()}
    for settings, run_id, steps in (
        (in_process, in_process_run, {"observations", "okr__kr_scores"}),
        (multiprocess, multiprocess_run, {key.to_python_identifier() for key in SELECTION}),
    ):
        with dagster_instance(settings) as instance:
            started = {
                event.step_key
                for event in instance.all_logs(run_id, of_type=DagsterEventType.STEP_START)
            }
            assert started == steps
            for key in SELECTION:
                records = instance.fetch_materializations(key, limit=100).records
                assert {r.partition_key for r in records if r.run_id == run_id} == days, key


@pytest.mark.parametrize("executor", ["in_process", "multiprocess"])
def test_both_executors_have_the_same_asset_and_check_keys(executor):
    def keys(settings: Settings) -> tuple[set, set]:
        job = build_definitions(settings).resolve_job_def(JOB_NAME)
        graph = job.asset_layer.asset_graph
        return set(graph.get_all_asset_keys()), set(graph.asset_check_keys)

    default = Settings()
    assert keys(replace(default, executor=executor)) == keys(default)
    job = build_definitions(replace(default, executor=executor)).resolve_job_def(JOB_NAME)
    assert job.executor_def.name == executor
    pools = {node.name: node.pool for node in job.all_node_defs if node.pool}
    if executor == "multiprocess":
        sources = connected_sources()
        assert pools == {f"observations__{name}": source_pool(name) for name in sources}
    else:
        assert pools == {}  # one step: the sources are fetched at once, within host limits
