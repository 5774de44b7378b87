"""`okr serve` in a subprocess, `okr scorecard` with and without a terminal, and the wheel."""

from __future__ import annotations

import os
import pty
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import requests
from pagetools import LAST_DAY, REPO, parse

from okr_metrics.pipelines.cli.main import EXIT_OK, EXIT_USAGE, main
from okr_metrics.pipelines.cli.scorecard import render_scorecard
from okr_metrics.pipelines.dashboard.charts import SPARK_BLOCKS, sparkline
from okr_metrics.warehouse.store import Warehouse

OKR = str(Path(sys.executable).parent / "okr")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def okr_env(url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OKR_", "DAGSTER_"))}
    return {**env, "OKR_WAREHOUSE_URL": url, "OKR_DEFS": str(REPO / "okr_defs"), **extra}


def test_okr_serve_binds_to_127_0_0_1_and_needs_the_token(built_warehouse):
    port = free_port()
    env = okr_env(f"sqlite:///{built_warehouse}", OKR_DASHBOARD_TOKEN="serve-token-1234")
    server = subprocess.Popen(
        [OKR, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline()
        assert line.startswith(f"dashboard on http://127.0.0.1:{port}/ (token required")
        base = f"http://127.0.0.1:{port}"
        assert requests.get(base + "/healthz", timeout=10).text == "ok"
        assert requests.get(base + "/", timeout=10).status_code == 401
        page = requests.get(
            base + "/", headers={"Authorization": "Bearer serve-token-1234"}, timeout=30
        )
        assert page.status_code == 200
        assert parse(page.text).one(data_field="as-of").text == LAST_DAY.isoformat()
        # Only on the loopback address.
        for address in {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None)}:
            if address.startswith("127.") or ":" in address:
                continue
            with socket.socket() as probe:
                probe.settimeout(1)
                assert probe.connect_ex((address, port)) != 0, address
    finally:
        server.terminate()
        _, err = server.communicate(timeout=20)
    assert "serve-token-1234" not in err


def test_okr_serve_on_a_busy_port_is_one_line(built_warehouse, capsys, monkeypatch):
    monkeypatch.setenv("OKR_WAREHOUSE_URL", f"sqlite:///{built_warehouse}")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert main(["serve", "--port", str(busy.getsockname()[1])]) == EXIT_USAGE
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("okr serve: cannot listen on 127.0.0.1:")


def test_the_scorecard_draws_sparklines_in_a_terminal_only(built_warehouse, monkeypatch, capsys):
    monkeypatch.setenv("OKR_WAREHOUSE_URL", f"sqlite:///{built_warehouse}")
    monkeypatch.setenv("OKR_DEFS", str(REPO / "okr_defs"))
    # Piped (capsys is no terminal): no trend column, no block characters.
    assert main(["scorecard"]) == EXIT_OK
    plain = capsys.readouterr().out
    assert not set(SPARK_BLOCKS) & set(plain) and " trend " not in plain
    # The numbers as the dashboard writes them.
    assert re.search(r"\n  dau +\d{2},\d{3} +13,000 ", plain)
    assert re.search(r"\n  push-opt-in +\d{2}% +70% ", plain)
    # In a terminal: each KR's sparkline of its quarter so far.
    card = render_scorecard(Warehouse(f"sqlite:///{built_warehouse}"), sparklines=True)
    with sqlite3.connect(built_warehouse) as connection:
        values = [
            row[0]
            for row in connection.execute(
                "SELECT value FROM kr_scores WHERE quarter = '2026-Q4' AND kr_id = 'dau' "
                "ORDER BY as_of"
            )
        ]
    (line,) = [text for text in card.splitlines() if text.startswith("  dau ")]
    assert sparkline(values) in line and len(sparkline(values)) == 16


def test_okr_scorecard_in_a_real_terminal_has_the_trend_column(built_warehouse):
    env = okr_env(f"sqlite:///{built_warehouse}")
    controller, terminal = pty.openpty()
    process = subprocess.Popen([OKR, "scorecard"], env=env, stdout=terminal, stderr=terminal)
    os.close(terminal)
    output = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            chunk = os.read(controller, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    process.wait(timeout=60)
    os.close(controller)
    text = output.decode("utf-8")
    assert " trend " in text and set(SPARK_BLOCKS) & set(text)


def test_a_wheel_holds_the_templates(tmp_path):
    # Built from a copy of the tracked files, as tests/test_packaging.py does.
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    source = tmp_path / "source"
    for name in tracked:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(source)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = [n for n in tracked if n.startswith("pipelines/dashboard/templates/")]
    assert len(templates) >= 8
    assert {f"okr_metrics/{n}" for n in templates} - names == set()
