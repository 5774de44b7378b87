"""docs/deploy.md and deploy/ as the deployment tests read them.

The page marks each command block the tests run with `<!-- deploy-test: NAME -->` and
each SQL query with `<!-- deploy-test-sql: NAME (warehouse|dagster) -->`; `commands` and
`queries` return them as printed. `environment_file` fills in a copy of
deploy/okr-metrics.env.example, line by line, so the tests use the template itself.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "deploy.md"
DEPLOY = REPO / "deploy"
ENV_EXAMPLE = DEPLOY / "okr-metrics.env.example"
# The folder the page's commands find `dagster`, `dagster-daemon` and `okr` in (the page
# activates the server's .venv; the tests use the one running them).
BIN = Path(sys.executable).parent
# The variables a child process must not inherit from the shell that runs the tests.
FOREIGN_PREFIXES = ("OKR_", "DAGSTER_", "GITHUB_", "JIRA_", "GA_", "GOOGLE_", "SALESFORCE_")
FOREIGN_PREFIXES += ("HUBSPOT_",)

_COMMAND = re.compile(r"<!-- deploy-test: (?P<name>[\w-]+) -->\n```sh\n(?P<body>.*?)\n```", re.S)
_QUERY = re.compile(
    r"<!-- deploy-test-sql: (?P<name>\w+) \((?P<database>warehouse|dagster)\) -->\n"
    r"```sql\n(?P<body>.*?)\n```",
    re.S,
)
_ASSIGNMENT = re.compile(r"^(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")


def commands() -> dict[str, str]:
    """The page's tested command blocks, by name."""
    return {m["name"]: m["body"] for m in _COMMAND.finditer(PAGE.read_text(encoding="utf-8"))}


def queries() -> dict[str, tuple[str, str]]:
    """The page's tested SQL, by name: (database, query)."""
    text = PAGE.read_text(encoding="utf-8")
    return {m["name"]: (m["database"], m["body"]) for m in _QUERY.finditer(text)}


def example_variables() -> dict[str, str]:
    """Each variable of the environment template with its value as written."""
    found = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = _ASSIGNMENT.match(line)
        if match:
            found[match["name"]] = match["value"]
    return found


def environment_file(path: Path, values: Mapping[str, str]) -> Path:
    """Write the template to `path` with `values` filled in (each must be in it)."""
    unknown = set(values) - set(example_variables())
    assert not unknown, f"not in {ENV_EXAMPLE.name}: {sorted(unknown)}"
    lines = []
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = _ASSIGNMENT.match(line)
        if match and match["name"] in values:
            line = f'{match["name"]}="{values[match["name"]]}"'
        lines.append(line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def base_environment() -> dict[str, str]:
    """The test process's environment without any okr-metrics or Dagster variable."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(FOREIGN_PREFIXES)}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def shell(block: str, env_file: Path) -> list[str]:
    """bash running `block` with the environment file loaded, as the page says to."""
    script = f"set -euo pipefail\nset -a; . {shlex.quote(str(env_file))}; set +a\n{block}\n"
    return ["bash", "-c", script]


def run(block: str, env_file: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        shell(block, env_file),
        cwd=REPO,
        env=base_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start(block: str, env_file: Path, log: Path, **options) -> subprocess.Popen:
    """`block` in the background, in a process group of its own, output to `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(
            shell(block, env_file),
            cwd=REPO,
            env=base_environment(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **options,
        )


def _group_alive(process: subprocess.Popen) -> bool:
    process.poll()  # reap the group's leader, or it lingers as a zombie
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop(processes: list[subprocess.Popen], grace: float = 15) -> None:
    """SIGTERM each process's group, then SIGKILL what is left after `grace` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(_group_alive(p) for p in processes):
            time.sleep(0.2)
        if not any(_group_alive(p) for p in processes):
            break
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)


def tail(log: Path, lines: int = 40) -> str:
    if not log.exists():
        return f"({log.name}: no output)"
    text = log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    return f"--- {log.name}\n" + "\n".join(text)
