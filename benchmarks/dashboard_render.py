"""Benchmark: the dashboard's quarter overview of 1,000 KRs, rendered over HTTP.

Not a test: it prints timings. It writes a SQLite warehouse with 250 objectives x 4 KRs
over a whole quarter (92 days, 92,000 `kr_scores` rows), serves the dashboard on
127.0.0.1 with uvicorn, and times `GET /` (the overview of the newest day, with a trend
chart per KR) and `GET /?team=...`. The baseline, measured in the same process, is the
bare SQL of the overview: the same three queries (the objectives of the day, the KRs of
the day, the quarter's daily values), fetched with no rendering. It also prints the
query plans, to show each query runs on an index of `kr_scores` / `objective_scores`.

    python benchmarks/dashboard_render.py            # target: GET / under 1 s
    python benchmarks/dashboard_render.py --krs 4000
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import requests
import uvicorn
from sqlalchemy import select

from okr_metrics.pipelines.dashboard import board
from okr_metrics.pipelines.dashboard.web import create_app
from okr_metrics.pipelines.scoring.rules import KR_SCORE_COLUMNS, OBJECTIVE_SCORE_COLUMNS
from okr_metrics.warehouse.schema import kr_scores, objective_scores
from okr_metrics.warehouse.store import Warehouse

QUARTER, FIRST, LAST = "2026-Q4", date(2026, 10, 1), date(2026, 12, 31)
TARGET_SECONDS = 1.0


def quarter_of_scores(krs: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every KR and objective on every day of the quarter (synthetic, deterministic)."""
    rng = np.random.default_rng(11)
    days = pd.date_range(FIRST, LAST).date
    n = len(days)
    kr_ids = [f"kr-{index:04d}" for index in range(krs)]
    objective_of = [f"objective-{index // 4:03d}" for index in range(krs)]
    pace = rng.uniform(-0.1, 1.3, size=(krs, 1)) * np.arange(1, n + 1) / n
    noise = rng.normal(0, 0.02, size=(krs, n))
    progress = pace + noise
    key_results = pd.DataFrame(
        {
            "quarter": QUARTER,
            "objective_id": np.repeat(objective_of, n),
            "kr_id": np.repeat(kr_ids, n),
            "kr_title": np.repeat([f"Key result {kr_id}" for kr_id in kr_ids], n),
            "owner": np.repeat([f"team-{index % 12:02d}" for index in range(krs)], n),
            "as_of": np.tile(days, krs),
            "kr_type": "increase",
            "value": (progress * 10000).ravel(),
            "start": 0.0,
            "target": 10000.0,
            "progress": progress.ravel(),
            "score": progress.clip(0, 1).ravel(),
            "expected_progress": np.tile(np.arange(1, n + 1) / n, krs),
            "status": np.where(progress.ravel() > 0.5, "on_track", "at_risk"),
            "stale": False,
            "last_observed": np.tile(days, krs),
            "forecast_value": (pace[:, -1:] * 10000).repeat(n, axis=1).ravel(),
            "forecast_score": pace[:, -1:].clip(0, 1).repeat(n, axis=1).ravel(),
            "forecast_method": "linear",
            "definition_hash": "0123456789abcdef",
        },
        columns=KR_SCORE_COLUMNS,
    )
    key_results["forecast_low"] = key_results["forecast_value"] * 0.9
    key_results["forecast_high"] = key_results["forecast_value"] * 1.1
    objectives_count = (krs + 3) // 4
    objectives = pd.DataFrame(
        {
            "quarter": QUARTER,
            "objective_id": np.repeat([f"objective-{i:03d}" for i in range(objectives_count)], n),
            "title": np.repeat([f"Objective {i}" for i in range(objectives_count)], n),
            "owner": np.repeat([f"team-{i % 12:02d}" for i in range(objectives_count)], n),
            "aligns_to": "company",
            "as_of": np.tile(days, objectives_count),
            "score": 0.6,
            "coverage": 1.0,
            "status": "at_risk",
        },
        columns=OBJECTIVE_SCORE_COLUMNS,
    )
    return key_results, objectives


def bare_sql(warehouse: Warehouse, as_of: date) -> int:
    """The overview's queries, fetched and nothing else (the baseline)."""
    with warehouse.engine.connect() as connection:
        rows = connection.execute(
            select(objective_scores).where(
                objective_scores.c.quarter == QUARTER, objective_scores.c.as_of == as_of
            )
        ).all()
        rows += connection.execute(
            select(kr_scores).where(kr_scores.c.quarter == QUARTER, kr_scores.c.as_of == as_of)
        ).all()
        rows += connection.execute(
            select(kr_scores.c.kr_id, kr_scores.c.as_of, kr_scores.c.value)
            .where(kr_scores.c.quarter == QUARTER, kr_scores.c.as_of <= as_of)
            .order_by(kr_scores.c.as_of)
        ).all()
    return len(rows)


def plans(warehouse: Warehouse, as_of: date) -> list[str]:
    """SQLite's plan of each overview query: each line should name an index."""
    queries = [
        select(objective_scores).where(
            objective_scores.c.quarter == QUARTER, objective_scores.c.as_of == as_of
        ),
        select(kr_scores).where(kr_scores.c.quarter == QUARTER, kr_scores.c.as_of == as_of),
        select(kr_scores.c.kr_id, kr_scores.c.as_of, kr_scores.c.value)
        .where(kr_scores.c.quarter == QUARTER, kr_scores.c.as_of <= as_of)
        .order_by(kr_scores.c.as_of),
    ]
    lines = []
    with warehouse.engine.connect() as connection:
        for query in queries:
            compiled = query.compile(connection, compile_kwargs={"literal_binds": True})
            for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"):
                lines.append(row[-1])
    return lines


def timed(function, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--krs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="okr-dashboard-bench-"))
    warehouse = Warehouse(f"sqlite:///{folder / 'warehouse.db'}")
    key_results, objectives = quarter_of_scores(args.krs)
    warehouse.replace_kr_scores(key_results, FIRST, LAST, "bench")
    warehouse.replace_objective_scores(objectives, FIRST, LAST, "bench")
    print(f"warehouse: {args.krs} KRs x {(LAST - FIRST).days + 1} days = {len(key_results):,} rows")

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(warehouse), log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    base = f"http://127.0.0.1:{port}"
    session = requests.Session()
    first = session.get(base + "/", timeout=60)  # compiles the templates once
    assert first.status_code == 200 and first.text.count('data-chart="trend"') == args.krs

    sql = timed(lambda: bare_sql(warehouse, LAST), args.repeat)
    page = timed(lambda: session.get(base + "/", timeout=60).raise_for_status(), args.repeat)
    team = timed(lambda: session.get(base + "/?team=team-03", timeout=60), args.repeat)
    with warehouse.engine.connect() as connection:
        view = board.resolve_view(connection)
        model = timed(lambda: board.load_overview(connection, view), args.repeat)

    def line(name: str, times: list[float]) -> str:
        return f"  {name:<34} median {statistics.median(times) * 1000:7.1f} ms   best {min(times) * 1000:7.1f} ms"

    print(
        f"overview of {args.krs} KRs ({len(first.content) / 1e6:.1f} MB of HTML), {args.repeat} runs each:"
    )
    print(line("baseline: the bare SQL", sql))
    print(line("read model (board.load_overview)", model))
    print(line("GET / (query, render, HTTP)", page))
    print(line("GET /?team=team-03", team))
    ratio = statistics.median(page) / statistics.median(sql)
    print(f"  GET / takes {ratio:.1f}x the bare SQL")
    verdict = "ok" if statistics.median(page) < TARGET_SECONDS else "TOO SLOW"
    print(f"  target: GET / under {TARGET_SECONDS:.0f} s: {verdict}")
    print("query plans (SQLite):")
    for text in plans(warehouse, LAST):
        print(f"  {text}")
    server.should_exit = True
    thread.join(timeout=10)
    return 0 if verdict == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
