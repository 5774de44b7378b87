"""The folders install as the one package `okr_metrics`, every subpackage with them."""

from __future__ import annotations

from pathlib import Path

import tomllib

import okr_metrics.connectors
import okr_metrics.pipelines
import okr_metrics.warehouse

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("connectors", "pipelines", "warehouse")


def test_every_package_folder_is_installed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
    listed = set(config["setuptools"]["packages"])
    on_disk = {
        "okr_metrics." + ".".join(init.parent.relative_to(ROOT).parts)
        for folder in FOLDERS
        for init in (ROOT / folder).rglob("__init__.py")
    }
    assert on_disk == listed
    assert config["setuptools"]["package-dir"] == {f"okr_metrics.{f}": f for f in FOLDERS}


def test_the_package_is_the_repository_folders():
    for package, folder in (
        (okr_metrics.connectors, "connectors"),
        (okr_metrics.pipelines, "pipelines"),
        (okr_metrics.warehouse, "warehouse"),
    ):
        assert Path(package.__file__).resolve().parent == ROOT / folder
