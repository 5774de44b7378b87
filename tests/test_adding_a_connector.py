"""docs/adding-a-connector.md, followed verbatim in a scratch copy of the repository.

The guide's `**File `path`**` blocks are written as new files and its `**Edit `path`**`
block is added to `BUILTIN_SOURCES`; the scratch copy is imported as `okr_metrics`
through a folder of symlinks on PYTHONPATH (found before the editable install's finder),
then the new source's tests and `okr lint` must pass on it. The guide must stay small:
at most 6 files touched and under 150 lines of Python.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "adding-a-connector.md"
MAX_FILES, MAX_PYTHON_LINES = 6, 150

# `**File `path`**` or `**Edit `path`**` (anything after it on the line), then a fenced block.
BLOCK = re.compile(
    r"^\*\*(?P<kind>File|Edit) `(?P<path>[^`]+)`\*\*[^\n]*\n\s*\n?"
    r"```(?P<lang>[\w-]*)\n(?P<body>.*?)^```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)

DEFINITIONS = """\
quarter: 2026-Q4
timezone: UTC
objectives:
  - id: reliability
    title: Keep the analytics dashboard up
    owner: analytics-team
    key_results:
      - id: dashboard-incidents
        title: High-urgency dashboard incidents from 1 to 0.3 a day
        type: decrease
        start: 1
        target: 0.3
        metric:
          source: pagerduty
          urgency: high
          service_ids: [PIJ90N7]
          aggregate: mean_7d
"""


def guide_blocks() -> list[tuple[str, str, str, str]]:
    """(kind, path, language, body) of every file block of the guide, in order."""
    return [(m["kind"], m["path"], m["lang"], m["body"]) for m in BLOCK.finditer(GUIDE.read_text())]


def tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, text=True
    ).stdout
    return [name for name in listed.split("\0") if name]


def add_to_builtin_sources(registry: Path, entry: str) -> None:
    text = registry.read_text()
    start = text.index("BUILTIN_SOURCES = (")
    end = text.index("\n)\n", start)  # the tuple's closing parenthesis
    registry.write_text(text[:end] + "\n" + entry.rstrip("\n") + text[end:])


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_guide_followed_verbatim_adds_a_working_source(tmp_path):
    blocks = guide_blocks()
    assert blocks, f"no **File `...`** / **Edit `...`** blocks in {GUIDE}"
    kinds = {(kind, path) for kind, path, _, _ in blocks}
    assert ("Edit", "connectors/registry.py") in kinds

    scratch = tmp_path / "repo"
    for name in tracked_files():
        if (ROOT / name).is_file():
            (scratch / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, scratch / name)

    touched: set[str] = set()
    python_lines = 0
    for kind, path, lang, body in blocks:
        target = scratch / path
        if kind == "File":
            assert not target.exists(), f"the guide creates {path}, which already exists"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(body)
        else:
            assert path == "connectors/registry.py", f"unexpected edit of {path}"
            add_to_builtin_sources(target, body)
        touched.add(path)
        if lang == "python" or path.endswith(".py"):
            python_lines += sum(1 for line in body.splitlines() if line.strip())

    # `okr_metrics.<folder>` -> the scratch folders, ahead of the editable install.
    package = tmp_path / "tree" / "okr_metrics"
    package.mkdir(parents=True)
    for folder in ("connectors", "pipelines", "warehouse"):
        (package / folder).symlink_to(scratch / folder, target_is_directory=True)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "tree"), "PYTHONDONTWRITEBYTECODE": "1"}

    print(f"\nadding-a-connector: {len(touched)} files touched, {python_lines} lines of Python")
    for path in sorted(touched):
        print(f"  {path}")

    where = run(
        [sys.executable, "-c", "import okr_metrics.connectors as c; print(c.__file__)"],
        scratch,
        env,
    )
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).resolve().is_relative_to(scratch.resolve()), where.stdout

    tests = run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "tests/connectors/test_pagerduty.py",
        ],
        scratch,
        env,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert " passed" in tests.stdout and "failed" not in tests.stdout, tests.stdout

    definitions = tmp_path / "pagerduty.yaml"
    definitions.write_text(DEFINITIONS)
    lint = run(
        [
            sys.executable,
            "-m",
            "okr_metrics.pipelines.cli.main",
            "lint",
            "--defs",
            str(definitions),
        ],
        scratch,
        env,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "0 error(s)" in lint.stdout + lint.stderr, lint.stdout + lint.stderr

    assert len(touched) <= MAX_FILES, sorted(touched)
    assert python_lines < MAX_PYTHON_LINES, python_lines
