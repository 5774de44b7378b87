"""The folders install as the one package `okr_metrics`, every subpackage with them."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import okr_metrics.connectors
import okr_metrics.pipelines
import okr_metrics.warehouse

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("connectors", "pipelines", "warehouse")


def test_the_package_is_the_repository_folders():
    for package, folder in (
        (okr_metrics.connectors, "connectors"),
        (okr_metrics.pipelines, "pipelines"),
        (okr_metrics.warehouse, "warehouse"),
    ):
        assert Path(package.__file__).resolve().parent == ROOT / folder


def test_a_wheel_holds_every_module_under_okr_metrics(tmp_path):
    # Built from a copy of the tracked files: setuptools leaves build/ in the source tree.
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    source = tmp_path / "source"
    for name in tracked:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(tmp_path), str(source)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    tracked = [name for name in tracked if name.startswith(tuple(f"{f}/" for f in FOLDERS))]
    expected = {f"okr_metrics/{name}" for name in tracked if name.endswith((".py", ".sql"))}
    assert expected - names == set()
    assert not any(name.startswith(FOLDERS) for name in names)  # never the bare folders
