"""Packaging: the folders `connectors/`, `pipelines/` and `warehouse/` install as `okr_metrics`.

Everything else is declared in pyproject.toml. The package list is found here rather
than listed there, so a new folder (a connector's, say) is installed without an edit.
"""

from pathlib import Path

from setuptools import find_namespace_packages, setup

FOLDERS = ("connectors", "pipelines", "warehouse")


def packages() -> list[str]:
    """Every folder below the three that holds Python code, as `okr_metrics.<folder>...`."""
    root = Path(__file__).resolve().parent
    found = []
    for folder in FOLDERS:
        found.append(f"okr_metrics.{folder}")
        for name in find_namespace_packages(str(root / folder), exclude=["*__pycache__*"]):
            if any((root / folder / name.replace(".", "/")).glob("*.py")):
                found.append(f"okr_metrics.{folder}.{name}")
    return sorted(found)


setup(
    packages=packages(),
    package_dir={f"okr_metrics.{folder}": folder for folder in FOLDERS},
    package_data={
        "okr_metrics.warehouse": ["sql/*.sql"],
        "okr_metrics.pipelines.dashboard": ["templates/*.html", "templates/*.css"],
    },
)
