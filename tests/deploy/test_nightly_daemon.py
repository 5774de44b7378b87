"""The nightly automation end to end, set up as docs/deploy.md says.

On a scratch PostgreSQL server (one database for Dagster's storage, one for the
warehouse), with the environment file made from deploy/okr-metrics.env.example and
the sources aimed at the sandbox, the test runs the page's blocks as printed: the
instance (`dagster instance migrate`), the code server, the daemon and the webserver,
the first backfill (of a past quarter, so it cannot touch the nightly run's days), the
schedule listing, then `okr health` and the page's monitoring SQL. `OKR_SCHEDULE_ON=1`
and `OKR_SCHEDULE_CRON="* * * * *"` make the daemon launch the nightly run at the next
minute; the test waits for that run (bounded) and checks its success, its source
outcomes and its kr_scores rows, whose values follow from the hand-written GitHub
releases below. Every process is stopped (its whole process group) at the end.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from deploy_page import commands, environment_file, queries, run, start, stop, tail
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from okr_metrics.pipelines.vocabulary.quarters import Quarter

pytestmark = pytest.mark.postgresql

REPO_NAME = "acme/nightly-deploy-test"
# The backfilled quarter counts another repository's releases: the nightly run's series
# is then new to the warehouse and fetched from its quarter's first day.
BACKFILL_REPO_NAME = "acme/nightly-deploy-test-earlier"
# From the services' start to the nightly run's end: the code server's load, the wait for
# the next minute, and the run (its steps in subprocesses) on a busy 2-core machine.
RUN_DEADLINE_SECONDS = 420
FINISHED = ("SUCCESS", "FAILURE", "CANCELED")


def free_port() -> int:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        return listener.getsockname()[1]


@pytest.fixture
def databases(postgres_url: str, postgres_admin) -> Iterator[dict[str, str]]:
    """Two new databases on the test server: Dagster's storage and the warehouse."""
    names = {role: f"test_{role}_{uuid.uuid4().hex[:12]}" for role in ("dagster", "warehouse")}
    with postgres_admin.connect() as connection:
        for name in names.values():
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    base = make_url(postgres_url)
    yield {
        role: base.set(database=name).render_as_string(hide_password=False)
        for role, name in names.items()
    }
    with postgres_admin.connect() as connection:
        for name in names.values():
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def definitions(quarter: Quarter, repo: str) -> str:
    return f"""quarter: {quarter}
objectives:
  - id: ship
    title: Ship steadily
    owner: engineering
    key_results:
      - id: releases
        title: Ship 6 releases
        type: increase
        start: 0
        target: 6
        metric: {{source: github, repo: {repo}, count: releases, aggregate: sum}}
      - id: tickets
        title: Open 300 support tickets
        type: increase
        start: 0
        target: 300
        metric: {{source: jira, jql: project = SUP, count: created}}
"""


def at(day: date, hour: int) -> str:
    return f"{day.isoformat()}T{hour:02d}:00:00Z"


def query(url: str, sql: str, **params) -> list[dict]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return [dict(row) for row in connection.execute(text(sql), params).mappings()]
    finally:
        engine.dispose()


def nightly_runs(dagster_url: str) -> list[dict]:
    """The runs the `nightly` schedule launched, oldest first, with their tags."""
    runs = query(
        dagster_url,
        "SELECT r.run_id, r.status FROM runs r JOIN run_tags t ON t.run_id = r.run_id "
        "WHERE t.key = 'dagster/schedule_name' AND t.value = 'nightly' "
        "ORDER BY r.create_timestamp",
    )
    for found in runs:
        rows = query(
            dagster_url, "SELECT key, value FROM run_tags WHERE run_id = :id", id=found["run_id"]
        )
        found["tags"] = {row["key"]: row["value"] for row in rows}
    return runs


def webserver_schedule(port: int) -> dict | None:
    """The `nightly` schedule as the webserver's GraphQL API shows it, or None (not yet up)."""
    body = json.dumps(
        {
            "query": "{ scheduleOrError(scheduleSelector: {repositoryLocationName: "
            '"okr-metrics", repositoryName: "__repository__", scheduleName: "nightly"}) '
            "{ __typename ... on Schedule { cronSchedule scheduleState { status } } } }"
        }
    ).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            found = json.load(response)["data"]["scheduleOrError"]
    except (urllib.error.URLError, OSError, KeyError, TypeError):
        return None
    return found if found.get("__typename") == "Schedule" else None


def test_the_daemon_runs_the_nightly_schedule_as_the_deploy_page_says(
    tmp_path: Path, sandbox, databases: dict[str, str]
):
    blocks = commands()
    today = datetime.now(UTC).date()
    yesterday = today - timedelta(days=1)
    # A past quarter for the backfill, ended well before the nightly run's trailing days.
    backfill_quarter = Quarter.containing(today - timedelta(days=10)).previous()
    nightly_quarters = {Quarter.containing(today - timedelta(days=k)) for k in range(4)}
    defs = tmp_path / "okr_defs"
    defs.mkdir()
    (defs / f"{backfill_quarter}.yaml").write_text(
        definitions(backfill_quarter, BACKFILL_REPO_NAME), encoding="utf-8"
    )
    for quarter in nightly_quarters:
        (defs / f"{quarter}.yaml").write_text(definitions(quarter, REPO_NAME), encoding="utf-8")

    # Releases by hand: one in the backfilled quarter; two yesterday and one on the first
    # day of yesterday's quarter (when that is not yesterday itself).
    release_days = [yesterday, yesterday]
    if Quarter.containing(yesterday).start < yesterday:
        release_days.append(Quarter.containing(yesterday).start)
    for repo, days in (
        (BACKFILL_REPO_NAME, [backfill_quarter.start + timedelta(days=4)]),
        (REPO_NAME, release_days),
    ):
        sandbox.data.github.set_repo(
            repo,
            releases=[
                {"created_at": at(day, 9 + i), "published_at": at(day, 9 + i), "tag_name": f"v{i}"}
                for i, day in enumerate(days)
            ],
        )

    web_port = free_port()
    env_file = environment_file(
        tmp_path / "okr-metrics.env",
        {
            "DAGSTER_HOME": str(tmp_path / "dagster"),
            "OKR_REPORTS_DIR": str(tmp_path / "reports"),
            "DAGSTER_PG_HOST": make_url(databases["dagster"]).host,
            "DAGSTER_PG_PORT": str(make_url(databases["dagster"]).port),
            "DAGSTER_PG_USER": make_url(databases["dagster"]).username,
            "DAGSTER_PG_DB": make_url(databases["dagster"]).database,
            "OKR_CODE_SERVER_HOST": "127.0.0.1",
            "OKR_CODE_SERVER_PORT": str(free_port()),
            "OKR_WEBSERVER_PORT": str(web_port),
            "OKR_WAREHOUSE_URL": databases["warehouse"],
            "OKR_DEFS": str(defs),
            "OKR_SCHEDULE_ON": "1",
            "OKR_SCHEDULE_CRON": "* * * * *",
            "GITHUB_API_URL": sandbox.url,
            "GITHUB_TOKEN": "sandbox-token",
            "JIRA_BASE_URL": sandbox.url,
            "JIRA_EMAIL": "demo@example.com",
            "JIRA_API_TOKEN": "sandbox-token",
        },
    )

    instance = run(blocks["instance"], env_file)
    assert instance.returncode == 0, instance.stderr[-3000:]
    assert (tmp_path / "dagster" / "dagster.yaml").read_text() == (
        Path(__file__).resolve().parents[2] / "deploy" / "dagster.yaml"
    ).read_text()

    logs = {name: tmp_path / f"{name}.log" for name in ("code-server", "daemon", "webserver")}
    services = []
    try:
        started = time.monotonic()
        for name, log in logs.items():
            services.append(start(blocks[name], env_file, log))
        # The page's backfill, of the past quarter, while the daemon waits for its minute.
        assert blocks["backfill"].count("2026-Q4") == 1
        backfill_log = tmp_path / "backfill.log"
        backfill = start(
            blocks["backfill"].replace("2026-Q4", str(backfill_quarter)), env_file, backfill_log
        )
        services.append(backfill)

        schedule = None
        while schedule is None and time.monotonic() - started < 180:
            time.sleep(2)
            schedule = webserver_schedule(web_port)
        assert schedule is not None, tail(logs["webserver"])
        phases = {"webserver shows the schedule": time.monotonic() - started}
        assert schedule["cronSchedule"] == "* * * * *"
        assert schedule["scheduleState"]["status"] == "RUNNING"

        listing = run(blocks["schedule"], env_file)
        assert listing.returncode == 0, listing.stderr[-3000:]
        assert "Schedule: nightly [RUNNING]" in listing.stdout
        assert "Cron Schedule: * * * * *" in listing.stdout

        assert (
            backfill.wait(timeout=max(RUN_DEADLINE_SECONDS - (time.monotonic() - started), 1)) == 0
        ), tail(backfill_log)
        phases["backfill done"] = time.monotonic() - started
        backfill_days = (backfill_quarter.end - backfill_quarter.start).days + 1
        backfilled = query(
            databases["warehouse"],
            "SELECT kr_id, as_of, value FROM kr_scores WHERE quarter = :q",
            q=str(backfill_quarter),
        )
        assert len(backfilled) == 2 * backfill_days
        last_day = {
            row["kr_id"]: row["value"] for row in backfilled if row["as_of"] == backfill_quarter.end
        }
        assert last_day["releases"] == 1

        first = None
        while time.monotonic() - started < RUN_DEADLINE_SECONDS:
            launched = nightly_runs(databases["dagster"])
            if launched and launched[0]["status"] in FINISHED:
                first = launched[0]
                break
            time.sleep(2)
        assert first is not None, "no nightly run finished in time\n" + "\n".join(
            tail(log) for log in logs.values()
        )
        phases["nightly run finished"] = time.monotonic() - started

        # The run: succeeded, for the day before its tick, over the trailing 3 days.
        assert first["status"] == "SUCCESS", tail(logs["code-server"], 80)
        tags = first["tags"]
        ticked = datetime.fromisoformat(tags[".dagster/scheduled_execution_time"])
        as_of = ticked.date() - timedelta(days=1)
        assert tags["dagster/asset_partition_range_end"] == as_of.isoformat()
        assert (
            tags["dagster/asset_partition_range_start"] == (as_of - timedelta(days=2)).isoformat()
        )

        # Its rows: each source ok, both KRs scored for each of its days by this run.
        outcomes = query(
            databases["warehouse"],
            "SELECT source, status FROM source_runs WHERE run_id = :id",
            id=first["run_id"],
        )
        assert sorted((row["source"], row["status"]) for row in outcomes) == [
            ("github", "ok"),
            ("jira", "ok"),
        ]
        scored = query(
            databases["warehouse"],
            "SELECT kr_id, as_of, value, run_id, stale FROM kr_scores WHERE as_of >= :first",
            first=as_of - timedelta(days=2),
        )
        assert len(scored) == 2 * 3
        assert {row["run_id"] for row in scored} == {first["run_id"]}
        on_day = {row["kr_id"]: row for row in scored if row["as_of"] == as_of}
        quarter_start = Quarter.containing(as_of).start
        expected = sum(quarter_start <= day <= as_of for day in release_days)
        assert on_day["releases"]["value"] == expected
        assert on_day["tickets"]["value"] is not None
        assert not any(row["stale"] for row in scored)

        health = run(blocks["health"], env_file)
        assert health.returncode == 0, health.stdout + health.stderr[-2000:]
        assert f"nightly run {first['run_id']} for {as_of}" in health.stdout
        assert f"source github ok in run {first['run_id']}" in health.stdout

        for name, (database, sql) in queries().items():
            rows = query(databases[database], sql)
            if name == "newest_source_outcomes":
                assert {(row["source"], row["status"]) for row in rows} == {
                    ("github", "ok"),
                    ("jira", "ok"),
                }
            else:  # failures and stale KRs: none in a healthy night
                assert rows == [], (name, rows)
        print("; ".join(f"{phase} after {seconds:.0f} s" for phase, seconds in phases.items()))
    finally:
        stop(services)
