"""Secrets: recognisable credentials for every source, a run with faults, and nowhere a trace.

Every connected source gets a token of its own (`<source>-secret-<random hex>`); Jira's
basic auth also gets its base64 form looked for. A backfill runs as a separate `okr`
process against the sandbox while it answers some sources with 401, 429 and 500, so
that errors, retries and failed sources all happen; then `okr scorecard` reads the
result. None of the values may appear in:

- the commands' stdout and stderr;
- the text of the exceptions a connector raises on a refused or failing request (and
  their causes), or in any log record, when called in this process;
- Dagster's run records, run config, tags and every event of the event log, read through
  the instance; and the bytes of every file under DAGSTER_HOME (SQLite storage, compute
  logs, the instance's settings);
- any column of any table or view of the warehouse, and its file's bytes (SQLite);
- the HTML file `okr report` writes, and the pages `okr serve` serves.

On PostgreSQL the warehouse URL and Dagster's own storage URL (DAGSTER_PG_URL, a database
of its own) carry passwords too, which must not appear either, and Dagster's database
is searched like the warehouse.
"""

from __future__ import annotations

import base64
import logging
import re
import secrets
import traceback
import urllib.request
from collections.abc import Iterable
from datetime import date
from pathlib import Path

import pytest
from dagster._serdes import serialize_value
from okr_processes import REPO, OkrHome, backfill_args
from sqlalchemy import MetaData, Table, create_engine, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from okr_metrics.connectors.base import SourceSettings
from okr_metrics.connectors.errors import SourceError
from okr_metrics.connectors.registry import connected_sources
from okr_metrics.pipelines.definitions import load_definitions
from okr_metrics.pipelines.jobs.collect import series_requests
from okr_metrics.pipelines.orchestration.resources import accepted_options
from okr_metrics.pipelines.orchestration.runs import dagster_instance
from okr_metrics.pipelines.settings import Settings

WINDOW = ("2026-10-01", "2026-10-03")
USER = "okr@example.com"
# Faults by API: some retried to success, some failing their source for good.
FAULTS = [
    {"path_prefix": "/repos", "status": 429, "retry_after": 0, "times": 2},
    {"path_prefix": "/rest/api/3/search", "status": 401},
    {"path_prefix": "/v1beta/properties", "status": 500},
    {"path_prefix": "/services/data", "status": 401},
    {"path_prefix": "/crm/v3/objects", "status": 429, "retry_after": 0, "times": 1},
]
FAILING = {"jira", "google_analytics", "salesforce"}


def recognisable_tokens() -> dict[str, str]:
    """A token per source that takes a token, unique to this test run."""
    return {
        source.name: f"{source.name}-secret-{secrets.token_hex(12)}"
        for source in connected_sources().values()
        if source.connector_class().env.token
    }


def needles(tokens: dict[str, str], passwords: Iterable[str] = ()) -> dict[str, str]:
    """What to look for: each token, its random part alone, its base64 forms."""
    found = {}
    for source, token in tokens.items():
        found[f"{source} token"] = token
        found[f"{source} token's random part"] = token.rsplit("-", 1)[1]
        found[f"{source} token in base64"] = base64.b64encode(token.encode()).decode()
        basic = base64.b64encode(f"{USER}:{token}".encode()).decode()
        found[f"{source} basic credentials"] = basic
    for number, password in enumerate(passwords):
        found[f"password {number}"] = password
    return found


def leaks(text: str | bytes, looked_for: dict[str, str]) -> list[str]:
    if isinstance(text, bytes):
        return [name for name, value in looked_for.items() if value.encode() in text]
    return [name for name, value in looked_for.items() if value in text]


def database_text(url: str) -> str:
    """Every value of every column of every table and view, as text."""
    engine = create_engine(url, poolclass=NullPool)
    parts = []
    try:
        inspector = inspect(engine)
        names = inspector.get_table_names() + inspector.get_view_names()
        assert names, f"no tables in {make_url(url).render_as_string()}"
        metadata = MetaData()
        with engine.connect() as connection:
            for name in names:
                table = Table(name, metadata, autoload_with=connection)
                for row in connection.execute(select(table)):
                    parts.append(f"{name}: " + "\t".join(map(str, row)))
    finally:
        engine.dispose()
    return "\n".join(parts)


def with_password(url: str, password: str) -> str:
    """The test server trusts every local connection: the password is carried, not checked."""
    return make_url(url).set(password=password).render_as_string(hide_password=False)


def served_pages(home: OkrHome, paths: list[str]) -> tuple[dict[str, str], str]:
    """`okr serve` on a free port: each page's HTML, and what the command printed."""
    server = home.okr("serve", "--port", "0")
    try:
        first = server.stdout.readline()
        match = re.search(r"http://[^/\s]+/", first)
        assert match, first + server.stderr.read()
        pages = {}
        for path in paths:
            with urllib.request.urlopen(match.group(0).rstrip("/") + path, timeout=60) as page:
                assert page.status == 200, path
                pages[f"page {path}"] = page.read().decode()
    finally:
        server.terminate()
        rest, errors = server.communicate(timeout=60)
    return pages, first + rest + errors


@pytest.fixture
def dagster_database(request, warehouse_url):
    """Dagster's own storage on PostgreSQL next to a PostgreSQL warehouse; None on SQLite."""
    if not warehouse_url.startswith("postgresql"):
        return None
    return request.getfixturevalue("postgres_database")


def test_no_secret_reaches_output_logs_dagster_or_the_warehouse(
    sandbox, warehouse_url, dagster_database, tmp_path
):
    tokens = recognisable_tokens()
    passwords = []
    extra = {"OKR_HTTP_MAX_ATTEMPTS": "3"}
    if dagster_database is not None:
        passwords = [f"warehouse-pw-{secrets.token_hex(8)}", f"dagster-pw-{secrets.token_hex(8)}"]
        warehouse_url = with_password(warehouse_url, passwords[0])
        dagster_database = with_password(dagster_database, passwords[1])
        extra["DAGSTER_PG_URL"] = dagster_database
    looked_for = needles(tokens, passwords)
    home = OkrHome(tmp_path, warehouse_url, sandbox.url, tokens=tokens, extra=extra)
    for fault in FAULTS:
        sandbox.add_fault(**fault)

    backfill = home.run(*backfill_args(*WINDOW))
    scorecard = home.run("scorecard", "--quarter", "2026-Q4", "--format", "json")
    report_path = tmp_path / "report.html"
    report = home.run("report", "--quarter", "2026-Q4", "--out", str(report_path))
    pages, serve_output = served_pages(home, ["/", "/weekly", "/quarters", "/alignment"])
    # The faults happened: three sources failed, two got through their retries.
    assert backfill.returncode == 3, backfill.stderr[-3000:]
    for source in sorted(FAILING):
        assert f"source {source}: failed: " in backfill.stderr
    for source in ("github", "hubspot", "manual"):
        assert f"source {source}: ok" in backfill.stderr
    assert scorecard.returncode == 0, scorecard.stderr
    for name, text in {
        "backfill stdout": backfill.stdout,
        "backfill stderr": backfill.stderr,
        "scorecard stdout": scorecard.stdout,
        "scorecard stderr": scorecard.stderr,
        "report stderr": report.stderr,
        "report (the okr report file)": report_path.read_text(encoding="utf-8"),
        "okr serve output": serve_output,
        **pages,
    }.items():
        assert leaks(text, looked_for) == [], name

    # Dagster: every run, its config and tags, every event, through the instance ...
    env_home = str(home.dagster_home)
    with pytest.MonkeyPatch.context() as patch:
        if dagster_database is not None:
            patch.setenv("DAGSTER_PG_URL", dagster_database)
        with dagster_instance(Settings(dagster_home=env_home)) as instance:
            runs = instance.get_runs()
            assert len(runs) == 1
            events = instance.all_logs(runs[0].run_id)
            assert any(
                event.dagster_event and event.dagster_event.is_step_success for event in events
            )
            dagster_text = "\n".join(
                [serialize_value(run) for run in runs]
                + [serialize_value(event) for event in events]
                + [str(instance.get_run_record_by_id(runs[0].run_id))]
            )
    assert leaks(dagster_text, looked_for) == [], "Dagster run or event log"
    # ... and every byte under DAGSTER_HOME.
    files = [path for path in Path(env_home).rglob("*") if path.is_file()]
    assert any(path.suffix == ".db" for path in files) or dagster_database
    for path in files:
        assert leaks(path.read_bytes(), looked_for) == [], path
    if dagster_database is not None:
        assert leaks(database_text(dagster_database), looked_for) == [], "Dagster's database"

    # The warehouse: every column of every table and view, and the file itself.
    assert "source_runs" in (stored := database_text(warehouse_url))
    assert "Unauthorized" in stored or "401" in stored  # the failures' reasons are there
    assert leaks(stored, looked_for) == [], "warehouse"
    url = make_url(warehouse_url)
    if url.get_backend_name() == "sqlite":
        for path in Path(url.database).parent.glob(Path(url.database).name + "*"):
            assert leaks(path.read_bytes(), looked_for) == [], path


@pytest.mark.parametrize("status", [401, 403, 500])
def test_connector_errors_hold_no_token(sandbox, caplog, status):
    """Every source refused (or failing) in this process: its exception, causes and logs."""
    caplog.set_level(logging.DEBUG)
    tokens = recognisable_tokens()
    looked_for = needles(tokens)
    definitions = load_definitions(REPO / "okr_defs")
    sandbox.add_fault(status=status)
    day = date(2026, 10, 2)
    raised = 0
    for source in connected_sources().values():
        connector_class = source.connector_class()
        env = connector_class.env
        if not env.token:
            continue
        settings = SourceSettings(
            base_url=sandbox.url, token=tokens[source.name], user=USER if env.user else None
        )
        options = accepted_options(
            connector_class.from_settings, {"max_attempts": 2, "backoff_base": 0.01}
        )
        connector = connector_class.from_settings(settings, **options)
        (request, *_) = series_requests(definitions, source.name, day, day)
        with pytest.raises(SourceError) as caught:
            connector.daily_series(request)
        text = "".join(traceback.format_exception(caught.value))
        assert leaks(text + repr(caught.value) + repr(connector), looked_for) == [], source.name
        assert leaks(repr(settings) + str(settings), looked_for) == [], source.name
        raised += 1
    assert raised == len(tokens)
    records = "\n".join(
        f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        for record in caplog.records
    )
    assert leaks(records, looked_for) == [], "log records"
