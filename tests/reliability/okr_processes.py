"""`okr` as a separate process against the test sandbox: what the crash, concurrency and
secrets tests share.

Each `OkrHome` is a scratch Dagster home and warehouse; `okr(...)` starts the real `okr`
command there with every source aimed at the sandbox, so a test can run two at once,
kill one, or read what a run left behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.pool import NullPool

from okr_metrics.connectors.registry import connected_sources
from okr_metrics.warehouse.schema import kr_scores, metric_observations, objective_scores

REPO = Path(__file__).resolve().parents[2]
OKR = Path(sys.executable).parent / "okr"
# Written by a run, so never equal between two runs: left out of comparisons.
RUN_COLUMNS = {"run_id", "computed_at", "collected_at"}
COMPARED_TABLES = (kr_scores, objective_scores, metric_observations)
KEYS = {
    "kr_scores": ["quarter", "kr_id", "as_of"],
    "objective_scores": ["quarter", "objective_id", "as_of"],
    "metric_observations": ["metric_key", "date"],
}


def source_variables(sandbox_url: str, tokens: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every connected source's variables, aimed at the sandbox.

    `tokens` gives a source's token (default `token-<source>`); a source with a user
    (Jira) gets `okr@example.com`.
    """
    tokens = tokens or {}
    variables = {}
    for source in connected_sources().values():
        env = source.connector_class().env
        if env.base_url:
            variables[env.base_url] = sandbox_url
        if env.token:
            variables[env.token] = tokens.get(source.name, f"token-{source.name}")
        if env.user:
            variables[env.user] = "okr@example.com"
    return variables


def _clean_environment() -> dict[str, str]:
    """This process's environment without any source, warehouse or Dagster setting."""
    names = {
        name
        for source in connected_sources().values()
        for name in source.connector_class().env.names()
    }
    return {
        key: value
        for key, value in os.environ.items()
        if key not in names
        and not key.startswith(("OKR_", "DAGSTER_"))
        # the test server's URL stays: it is not a setting of the run
        or key in ("OKR_TEST_POSTGRES_URL", "OKR_REQUIRE_POSTGRES")
    }


@dataclass
class OkrHome:
    """A scratch Dagster home and a warehouse, and the environment of an `okr` there."""

    root: Path
    warehouse_url: str
    sandbox_url: str
    tokens: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster"

    @property
    def env(self) -> dict[str, str]:
        return {
            **_clean_environment(),
            **source_variables(self.sandbox_url, self.tokens),
            "OKR_DEFS": str(REPO / "okr_defs"),
            "OKR_WAREHOUSE_URL": self.warehouse_url,
            "DAGSTER_HOME": str(self.dagster_home),
            "OKR_REPORTS_DIR": str(self.root / "reports"),
            # Retries quick enough for a test; the sandbox's faults are counted, not timed.
            "OKR_HTTP_BACKOFF_SECONDS": "0.05",
            **self.extra,
        }

    def okr(self, *args: str) -> subprocess.Popen[str]:
        """Start `okr ARGS...` here; its stdout and stderr are pipes."""
        return subprocess.Popen(
            [str(OKR), *args],
            cwd=REPO,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run `okr ARGS...` here to the end."""
        return subprocess.run(
            [str(OKR), *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def backfill_args(start: str, end: str) -> tuple[str, ...]:
    return ("backfill", "--from", start, "--to", end)


def table_rows(warehouse_url: str) -> dict[str, pd.DataFrame]:
    """Every row of the score and observation tables, without the columns a run stamps,
    sorted by key: two warehouses that hold the same numbers give equal frames."""
    engine = create_engine(warehouse_url, poolclass=NullPool)
    try:
        frames = {}
        with engine.connect() as connection:
            for table in COMPARED_TABLES:
                result = connection.execute(select(table))
                frame = pd.DataFrame(result.all(), columns=list(result.keys()))
                frame = frame.drop(columns=[c for c in frame.columns if c in RUN_COLUMNS])
                frames[table.name] = frame.sort_values(KEYS[table.name]).reset_index(drop=True)
        return frames
    finally:
        engine.dispose()


def assert_same_rows(found: dict[str, pd.DataFrame], expected: dict[str, pd.DataFrame]) -> None:
    """The same rows, key for key and value for value (no duplicate, none lost)."""
    for name, frame in expected.items():
        keys = KEYS[name]
        assert not found[name].duplicated(keys).any(), f"{name}: duplicated keys"
        assert len(found[name]) == len(frame), f"{name}: {len(found[name])} rows, not {len(frame)}"
        pd.testing.assert_frame_equal(found[name], frame, check_dtype=False, obj=name)


@dataclass(frozen=True)
class CleanRun:
    """What one uninterrupted backfill of a window wrote, and how many API requests it made."""

    rows: dict[str, pd.DataFrame]
    requests: int


_clean_runs: dict[tuple[str, str, str], CleanRun] = {}


def clean_run(sandbox, root: Path, start: str, end: str) -> CleanRun:
    """Backfill start..end on a fresh SQLite warehouse, once per sandbox and window.

    It runs in this process (`okr`'s `main`, with the environment an `OkrHome` gives),
    which saves a process start. The sandbox must be free of faults; its request log is
    reset.
    """
    from okr_metrics.pipelines.cli.main import EXIT_OK, main

    key = (sandbox.url, start, end)
    if key not in _clean_runs:
        sandbox.reset()
        home = OkrHome(root, f"sqlite:///{root / 'clean.db'}", sandbox.url)
        env = home.env
        with pytest.MonkeyPatch.context() as patch:
            for name in set(os.environ) - set(env):
                patch.delenv(name)
            for name, value in env.items():
                patch.setenv(name, value)
            patch.chdir(REPO)
            assert main(list(backfill_args(start, end))) == EXIT_OK
        _clean_runs[key] = CleanRun(table_rows(home.warehouse_url), sandbox.request_count())
        sandbox.reset()
    return _clean_runs[key]
