"""The registry: built-in sources, and sources that installed packages add by entry point.

Each test installs a fake distribution (a `*.dist-info` folder with an
`entry_points.txt`) and its module into a temporary folder on `sys.path`, which is
what `pip install` of a connector package amounts to for `importlib.metadata`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest

from okr_metrics.connectors.base import Connector, SeriesRequest, SourceSettings
from okr_metrics.connectors.params import MetricParams
from okr_metrics.connectors.registry import (
    BUILTIN_SOURCES,
    ENTRY_POINT_GROUP,
    RegistryError,
    Source,
    connected_sources,
    sources,
)

ROOT = Path(__file__).parents[2]
MODULE = "okr_fake_pager"

FAKE_MODULE = '''
"""A connector package as a third party would write it."""

from typing import ClassVar, Literal

import pandas as pd

from okr_metrics.connectors.base import Connector, SourceEnv, SourceSettings
from okr_metrics.connectors.params import MetricParams
from okr_metrics.connectors.registry import Source


class FakePagerMetric(MetricParams):
    source: Literal["fake_pager"]
    service: str


class FakePagerConnector(Connector):
    source: ClassVar[str] = "fake_pager"
    params_model: ClassVar[type[MetricParams]] = FakePagerMetric
    env: ClassVar[SourceEnv] = SourceEnv(base_url="FAKE_PAGER_URL", token="FAKE_PAGER_TOKEN")

    @classmethod
    def from_settings(cls, settings: SourceSettings) -> "FakePagerConnector":
        return cls()

    def fetch(self, request):
        return pd.DataFrame({"date": [request.start], "value": [1.0]})


SOURCE = Source(
    "fake_pager", "okr_fake_pager:FakePagerMetric", connector="okr_fake_pager:FakePagerConnector"
)
GITHUB_AGAIN = Source("github", "okr_fake_pager:FakePagerMetric")
NOT_A_SOURCE = {"name": "fake_pager", "params": "okr_fake_pager:FakePagerMetric"}
'''

DEFINITIONS = """\
quarter: 2026-Q4
objectives:
  - id: reliability
    title: Keep the service reliable
    owner: platform
    key_results:
      - id: incidents
        title: At most 2 incidents a day
        type: maintain_below
        target: 2
        metric: {source: fake_pager, service: PABC123}
      - id: releases
        title: Ship 6 releases
        type: increase
        start: 0
        target: 6
        metric: {source: github, repo: acme/web, count: releases}
"""


@pytest.fixture
def install(tmp_path, monkeypatch) -> Iterator[Callable[..., Path]]:
    """`install(entry_points)`: a fake package on sys.path whose entry points are these lines."""

    def installed(*lines: str, name: str = "okr-fake-pager") -> Path:
        site = tmp_path / "site-packages"
        site.mkdir(exist_ok=True)
        (site / f"{MODULE}.py").write_text(FAKE_MODULE)
        dist_info = site / f"{name.replace('-', '_')}-1.0.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        (dist_info / "entry_points.txt").write_text(
            f"[{ENTRY_POINT_GROUP}]\n" + "\n".join(lines) + "\n"
        )
        monkeypatch.syspath_prepend(str(site))
        sources.cache_clear()
        return site

    yield installed
    sources.cache_clear()
    sys.modules.pop(MODULE, None)


def test_the_builtin_sources_are_listed_first():
    assert list(sources())[: len(BUILTIN_SOURCES)] == [s.name for s in BUILTIN_SOURCES]
    for source in sources().values():
        assert issubclass(source.params_model(), MetricParams)
    for source in connected_sources().values():
        assert issubclass(source.connector_class(), Connector)


def test_no_registered_sources_variable_reaches_a_test(monkeypatch):
    """tests/conftest.py clears every variable a registered connector's `env` names."""
    names = [
        name
        for source in connected_sources().values()
        for name in source.connector_class().env.names()
    ]
    assert {"GITHUB_TOKEN", "JIRA_EMAIL", "GOOGLE_APPLICATION_CREDENTIALS"} <= set(names)
    assert not [name for name in names if name in os.environ]


def test_an_installed_package_adds_a_source(install):
    install(f"fake_pager = {MODULE}:SOURCE")

    source = sources()["fake_pager"]
    assert isinstance(source, Source)
    assert "github" in sources()  # the built-ins stay
    metric = source.params_model().model_validate({"source": "fake_pager", "service": "PABC123"})
    assert metric.metric_key() == "fake_pager:service=PABC123"
    assert "fake_pager" in connected_sources()
    connector_class = source.connector_class()
    assert issubclass(connector_class, Connector)
    assert connector_class.missing_settings(SourceSettings()) == (
        "FAKE_PAGER_URL, FAKE_PAGER_TOKEN not set"
    )
    # The kit checks the metric and the window; the connector only fetches.
    series = connector_class.from_settings(SourceSettings()).daily_series(
        SeriesRequest.of(metric, date(2026, 10, 1), date(2026, 10, 2))
    )
    assert series.to_dict("list") == {"date": [date(2026, 10, 1)], "value": [1.0]}


def test_the_sources_are_read_once_per_process(install):
    assert "fake_pager" not in sources()
    site = install(f"fake_pager = {MODULE}:SOURCE")
    assert "fake_pager" in sources()
    # Uninstalling is seen only after the cache is cleared (in practice: the next process).
    (site / "okr_fake_pager-1.0.dist-info" / "entry_points.txt").write_text("")
    assert "fake_pager" in sources()


def test_a_new_process_accepts_the_new_sources_yaml_keys(install, tmp_path):
    """`okr lint` in a fresh process knows the installed source's keys, and only then."""
    site = install(f"fake_pager = {MODULE}:SOURCE")
    definitions = tmp_path / "2026-Q4.yaml"
    definitions.write_text(DEFINITIONS)

    def lint(*path: Path) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in (*path, ROOT))}
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "okr_metrics.pipelines.cli.main",
                "lint",
                "--defs",
                str(definitions),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    installed = lint(site)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "1 quarter valid, 0 error(s)" in installed.stderr

    without = lint()
    assert without.returncode == 1
    assert "unknown source 'fake_pager'" in without.stdout


def test_an_entry_point_that_is_not_a_source_is_named(install):
    install(f"fake_pager = {MODULE}:NOT_A_SOURCE")
    with pytest.raises(RegistryError) as raised:
        sources()
    message = str(raised.value)
    assert "entry point 'fake_pager'" in message
    assert f"{MODULE}:NOT_A_SOURCE" in message
    assert "okr-fake-pager" in message
    assert "must point at a connectors.registry.Source, not a dict" in message


def test_an_entry_point_that_cannot_be_imported_is_named(install):
    install("fake_pager = okr_no_such_module:SOURCE")
    with pytest.raises(RegistryError, match=r"entry point 'fake_pager'.*ModuleNotFoundError"):
        sources()


def test_an_entry_point_is_named_after_its_source(install):
    install(f"pager = {MODULE}:SOURCE")
    with pytest.raises(RegistryError, match="points at Source 'fake_pager'"):
        sources()


def test_a_package_cannot_replace_a_builtin_source(install):
    install(f"github = {MODULE}:GITHUB_AGAIN")
    with pytest.raises(RegistryError, match="adds source 'github'.*built-in"):
        sources()


def test_a_fixed_package_is_picked_up_without_a_restart(install):
    site = install(f"fake_pager = {MODULE}:NOT_A_SOURCE")
    with pytest.raises(RegistryError):
        sources()
    # A failed lookup is not cached: the next call reads the entry points again.
    (site / "okr_fake_pager-1.0.dist-info" / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nfake_pager = {MODULE}:SOURCE\n"
    )
    assert "fake_pager" in sources()
