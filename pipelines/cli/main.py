"""The `okr` command: lint definitions, run and backfill through Dagster, print scorecards,
serve the dashboard and write the report.

Every command that computes scores runs the real Dagster job in-process against a
persistent instance (`DAGSTER_HOME`, default `.okr/dagster`), so its runs show in
`dagster dev`. The environment is read once, in `main` (`Settings.from_env`), and the
settings are handed to each command; a bad value is one line naming the variable (exit 2).

Exit codes: 0 success; 1 lint errors or a failed run; 2 bad usage or definitions
the run needs are missing or invalid; 3 the run finished but a source failed or some
rows failed validation (those KRs carry their last value, flagged stale).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import logging
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Imported when a command runs: `okr --help` needs neither pandas nor SQLAlchemy.
    from okr_metrics.pipelines.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_SOURCE_FAILED = 0, 1, 2, 3

progress_log = logging.getLogger("okr_metrics")


def yesterday() -> date:
    return datetime.now(UTC).date() - timedelta(days=1)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad date {text!r}: expected YYYY-MM-DD") from None


def _quarter(text: str):
    from okr_metrics.pipelines.vocabulary.quarters import Quarter

    try:
        return Quarter.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


# ---------------------------------------------------------------------------
# Running the Dagster job


@dataclass
class RunOutcome:
    run_id: str
    success: bool
    start: date
    end: date
    # source -> "ok" | "skipped: why" | "failed: why"
    sources: dict[str, str] = field(default_factory=dict)
    # source -> rows that failed validation (kept out of the scores)
    rejected: dict[str, int] = field(default_factory=dict)
    failure: str | None = None

    @property
    def exit_code(self) -> int:
        if not self.success:
            return EXIT_FAILED
        if self.rejected or any(state.startswith("failed") for state in self.sources.values()):
            return EXIT_SOURCE_FAILED
        return EXIT_OK


def run_window(
    start: date,
    end: date,
    settings: Settings | None = None,
    resources: Mapping[str, Any] | None = None,
    deliver_alerts: bool = False,
) -> RunOutcome:
    """Materialize every asset for the days start..end in one Dagster run (posting the
    new alerts with `deliver_alerts`).

    `settings` default to `Settings.from_env()`; `resources` replace those the settings
    give (`okr demo` passes the sandbox's). Each source's outcome is what the run
    recorded in the warehouse's `source_runs`.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from okr_metrics.pipelines.orchestration.runs import materialize_window
    from okr_metrics.pipelines.settings import Settings
    from okr_metrics.warehouse.store import Warehouse

    settings = Settings.from_env() if settings is None else settings
    days = (end - start).days + 1
    progress_log.info(f"run: {start}..{end} ({days} day{'s' * (days != 1)}) in one Dagster run")
    run = materialize_window(settings, start, end, resources, deliver_alerts)
    outcome = RunOutcome(run.run_id, run.success, start, end, failure=run.failure)
    try:
        with Warehouse(settings.warehouse_url) as warehouse:
            recorded = warehouse.source_runs(run.run_id)
    except SQLAlchemyError:
        if run.success:
            raise
        recorded = []  # the run failed, perhaps on the warehouse itself: its reason says why
    for row in recorded:
        source = row["source"]
        if row["status"] == "ok":
            outcome.sources[source] = "ok"
        else:
            outcome.sources[source] = f"{row['status']}: {row['reason']}"
        if row["rejected_rows"]:
            outcome.rejected[source] = row["rejected_rows"]
    return outcome


def unconnected_sources(definitions, start: date, end: date) -> list[str]:
    """Sources the KRs of start..end use that have no connector yet."""
    from okr_metrics.connectors.registry import connected_sources
    from okr_metrics.pipelines.vocabulary.quarters import quarters_between

    used = set()
    for quarter in quarters_between(start, end):
        okr_file = definitions.for_quarter(quarter)
        if okr_file is not None:
            used |= {params.source for params in okr_file.series_by_key().values()}
    return sorted(used - set(connected_sources()))


def report(outcome: RunOutcome, definitions=None) -> None:
    if definitions is not None:
        for source in unconnected_sources(definitions, outcome.start, outcome.end):
            outcome.sources.setdefault(source, "skipped: no connector installed")
    for source, state in sorted(outcome.sources.items()):
        if outcome.rejected.get(source):
            state += (
                f" ({outcome.rejected[source]} rows failed validation; see rejected_observations)"
            )
        progress_log.info(f"source {source}: {state}")
    if outcome.failure:
        progress_log.error(f"run {outcome.run_id} failed: {outcome.failure}")
    else:
        progress_log.info(f"run {outcome.run_id}: done")


def _check_definitions(definitions, start: date, end: date) -> None:
    """Refuse to run over quarters whose definitions are missing or broken."""
    from okr_metrics.pipelines.jobs.score import missing_definitions
    from okr_metrics.pipelines.vocabulary.quarters import quarters_between

    missing = [
        missing_definitions(definitions, quarter)
        for quarter in quarters_between(start, end)
        if definitions.for_quarter(quarter) is None
    ]
    if missing:
        raise UsageError("; ".join(missing))


# ---------------------------------------------------------------------------
# Commands


def cmd_lint(args: argparse.Namespace, settings: Settings) -> int:
    from okr_metrics.pipelines.definitions import load_definitions
    from okr_metrics.pipelines.jobs.collect import lint_source_inputs
    from okr_metrics.pipelines.jobs.grades import with_checkin_and_grade_problems

    definitions = load_definitions(settings.definitions_path)
    definitions.problems += lint_source_inputs(definitions)
    definitions.problems = with_checkin_and_grade_problems(definitions)
    for problem in definitions.problems:
        print(problem)
    errors, warnings = len(definitions.errors), len(definitions.warnings)
    files = len(definitions.files)
    summary = f"{files} quarter{'s' * (files != 1)} valid, {errors} error(s), {warnings} warning(s)"
    print(summary, file=sys.stderr)
    return EXIT_FAILED if errors else EXIT_OK


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from okr_metrics.pipelines.definitions import load_definitions
    from okr_metrics.pipelines.orchestration.schedules import nightly_window

    as_of = args.date or yesterday()
    if as_of > yesterday():
        raise UsageError(f"--date {as_of}: the newest day that can be scored is {yesterday()}")
    days = args.trailing_days if args.trailing_days is not None else settings.trailing_days
    start, end = nightly_window(as_of, days)
    definitions = load_definitions(settings.definitions_path)
    _check_definitions(definitions, as_of, as_of)
    outcome = run_window(start, end, settings, deliver_alerts=True)
    report(outcome, definitions)
    return outcome.exit_code


def backfill_window(args: argparse.Namespace) -> tuple[date, date]:
    from okr_metrics.pipelines.orchestration.partitions import FIRST_DAY

    if args.quarter is not None:
        if args.date_from or args.date_to:
            raise UsageError("give a QUARTER or --from/--to, not both")
        start, end = args.quarter.start, min(args.quarter.end, yesterday())
        if start > yesterday():
            raise UsageError(f"{args.quarter} has not started yet")
    else:
        if not (args.date_from and args.date_to):
            raise UsageError("give a QUARTER (e.g. 2026-Q3) or both --from and --to")
        start, end = args.date_from, args.date_to
        if start > end:
            raise UsageError(f"--from {start} is after --to {end}")
        if end > yesterday():
            raise UsageError(f"--to {end}: the newest day that can be scored is {yesterday()}")
    if start < date.fromisoformat(FIRST_DAY):
        raise UsageError(f"days before {FIRST_DAY} cannot be scored")
    return start, end


def cmd_backfill(
    args: argparse.Namespace, settings: Settings, resources: Mapping[str, Any] | None = None
) -> int:
    from okr_metrics.pipelines.definitions import load_definitions

    start, end = backfill_window(args)
    definitions = load_definitions(settings.definitions_path)
    _check_definitions(definitions, start, end)
    deliver = getattr(args, "deliver_alerts", False)
    outcome = run_window(start, end, settings, resources, deliver_alerts=deliver)
    report(outcome, definitions)
    return outcome.exit_code


def definitions_order(settings: Settings) -> list[str]:
    """Objective and KR ids as the definitions list them: they only order the output."""
    from okr_metrics.pipelines.dashboard.report import definitions_order as order_of
    from okr_metrics.pipelines.definitions import load_definitions

    return order_of(load_definitions(settings.definitions_path))


def cmd_scorecard(args: argparse.Namespace, settings: Settings) -> int:
    from okr_metrics.pipelines.cli.scorecard import ScorecardError, render_scorecard
    from okr_metrics.warehouse.store import Warehouse

    # The definitions only order the output; the numbers come from the warehouse.
    order = definitions_order(settings)
    try:
        text = render_scorecard(
            Warehouse(settings.warehouse_url),
            quarter=str(args.quarter) if args.quarter else None,
            as_of=args.as_of,
            output_format=args.format,
            order=order,
            sparklines=sys.stdout.isatty(),
        )
    except ScorecardError as error:
        raise UsageError(str(error)) from None
    print(text)
    return EXIT_OK


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """The dashboard over the warehouse, until Ctrl-C; 127.0.0.1 unless told otherwise."""
    import socket

    import uvicorn

    from okr_metrics.pipelines.dashboard.web import create_app
    from okr_metrics.warehouse.store import Warehouse

    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((args.host, args.port))
        # Listening now: requests made once the line below is printed wait in the backlog.
        listener.listen(2048)
    except OSError as error:
        listener.close()
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {error.strerror}") from None
    app = create_app(
        Warehouse(settings.warehouse_url),
        token=settings.dashboard_token,
        order=definitions_order(settings),
    )
    host = f"[{args.host}]" if ":" in args.host else args.host
    port = listener.getsockname()[1]
    if args.host not in LOOPBACK_HOSTS and not settings.dashboard_token:
        progress_log.warning(
            f"serve: {args.host} is reachable from other machines and OKR_DASHBOARD_TOKEN "
            "is not set: anyone who reaches it sees the OKRs"
        )
    guard = "token required" if settings.dashboard_token else "no token"
    print(f"dashboard on http://{host}:{port}/ ({guard}; Ctrl-C to stop)", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[listener])
    return EXIT_OK


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from okr_metrics.pipelines.dashboard.report import ReportError, write_report
    from okr_metrics.warehouse.store import Warehouse

    try:
        path = write_report(
            Warehouse(settings.warehouse_url),
            quarter=str(args.quarter) if args.quarter else None,
            as_of=args.as_of,
            path=args.out,
            folder=settings.reports_dir,
            order=definitions_order(settings),
        )
    except ReportError as error:
        raise UsageError(str(error)) from None
    except OSError as error:
        raise UsageError(f"cannot write {args.out or 'the report'}: {error.strerror}") from None
    print(path)
    return EXIT_OK


def cmd_sandbox(args: argparse.Namespace, settings: Settings) -> int:
    from okr_metrics.connectors.sandbox import Sandbox

    try:
        sandbox = Sandbox(port=args.port)
    except OSError as error:
        raise UsageError(f"cannot listen on 127.0.0.1:{args.port}: {error.strerror}") from None
    print(f"sandbox serving the sample APIs on {sandbox.url} (Ctrl-C to stop)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        sandbox.serve_forever()
    return EXIT_OK


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Backfill this quarter (and the one before, when defined) with every source on the
    sandbox, then print this quarter's scorecard.

    The sources reach the sandbox through resources built for it (`sandbox_resources`):
    the settings and the process environment stay as they are.
    """
    from okr_metrics.connectors.sandbox import Sandbox
    from okr_metrics.pipelines.definitions import load_definitions
    from okr_metrics.pipelines.orchestration.resources import sandbox_resources
    from okr_metrics.pipelines.vocabulary.quarters import Quarter

    end = yesterday()
    quarter = Quarter.containing(end)
    defined = [q for q in load_definitions(settings.definitions_path).files if q.start <= end]
    if quarter not in defined and defined:
        # No definitions for this quarter yet: show the newest quarter that has them.
        quarter = max(defined)
        progress_log.info(f"demo: no definitions for {Quarter.containing(end)}; using {quarter}")
    # The quarter before it too, when defined: the demo shows a closed quarter's grades.
    first = max((q for q in defined if q < quarter), default=quarter).start
    with Sandbox() as sandbox:
        progress_log.info(f"demo: sandbox APIs on {sandbox.url}")
        args.quarter, args.date_from = None, first
        args.date_to = min(quarter.end, end)
        code = cmd_backfill(args, settings, sandbox_resources(settings, sandbox.url))
    if code == EXIT_FAILED:
        return code
    args.quarter, args.as_of, args.format = quarter, None, "table"
    cmd_scorecard(args, settings)
    return code


# ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="okr",
        description="Collect the numbers behind OKR key results, score them, write a scorecard.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_defs(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument(
            "--defs",
            default=None,
            help="definitions folder or file (default: $OKR_DEFS or okr_defs/)",
        )
        return sub

    lint = with_defs(commands.add_parser("lint", help="validate the OKR definitions"))
    lint.set_defaults(handler=cmd_lint)

    run = with_defs(commands.add_parser("run", help="the nightly run for one day, through Dagster"))
    run.add_argument("--date", type=_date, help="as-of day (default: yesterday, UTC)")
    run.add_argument(
        "--trailing-days",
        type=int,
        default=None,
        help="days re-pulled, ending on --date (default: $OKR_TRAILING_DAYS or 3)",
    )
    run.set_defaults(handler=cmd_run)

    backfill = with_defs(
        commands.add_parser("backfill", help="score a quarter or a date range in one Dagster run")
    )
    backfill.add_argument("quarter", nargs="?", type=_quarter, help="e.g. 2026-Q3")
    backfill.add_argument("--from", dest="date_from", type=_date, help="first day, YYYY-MM-DD")
    backfill.add_argument("--to", dest="date_to", type=_date, help="last day, YYYY-MM-DD")
    backfill.add_argument(
        "--deliver-alerts",
        action="store_true",
        help="post the alerts of these days to the webhook too (default: only record them)",
    )
    backfill.set_defaults(handler=cmd_backfill)

    scorecard = with_defs(
        commands.add_parser("scorecard", help="print objectives and KRs from the warehouse")
    )
    scorecard.add_argument("--quarter", type=_quarter, help="default: the newest scored quarter")
    scorecard.add_argument("--as-of", type=_date, help="default: the newest scored day")
    scorecard.add_argument("--format", choices=["table", "json", "csv"], default="table")
    scorecard.set_defaults(handler=cmd_scorecard)

    serve = with_defs(
        commands.add_parser("serve", help="the live, read-only web dashboard over the warehouse")
    )
    serve.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1 (this machine)")
    serve.add_argument("--port", type=int, default=8080, help="default: 8080")
    serve.set_defaults(handler=cmd_serve)

    report_command = with_defs(
        commands.add_parser("report", help="write the quarter's overview as one HTML file")
    )
    report_command.add_argument(
        "--quarter", type=_quarter, help="default: the newest scored quarter"
    )
    report_command.add_argument("--as-of", type=_date, help="default: the newest scored day")
    report_command.add_argument(
        "--out", default=None, help="the file to write (default: .okr/reports/QUARTER.html)"
    )
    report_command.set_defaults(handler=cmd_report)

    sandbox = commands.add_parser("sandbox", help="serve the sample APIs on 127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8765, help="default: 8765")
    sandbox.set_defaults(handler=cmd_sandbox)

    demo = with_defs(
        commands.add_parser(
            "demo", help="backfill this quarter and the last against the sandbox, print it"
        )
    )
    demo.set_defaults(handler=cmd_demo)

    from okr_metrics.pipelines.cli.upkeep import add_commands

    add_commands(commands)  # health, purge-runs

    from okr_metrics.pipelines.cli import checkin, plan

    checkin.add_command(commands)
    plan.add_command(commands)
    return parser


class _LineFormatter(logging.Formatter):
    """The project's lines as they are; a library's warnings say which library spoke."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        if record.name == progress_log.name or record.name.startswith(progress_log.name + "."):
            return message
        return f"{record.name}: {record.levelname.lower()}: {message}"


def main(argv: Sequence[str] | None = None) -> int:
    # A run allocates millions of lasting objects (Dagster, pandas, Great Expectations,
    # a quarter's rows): at Python's default thresholds the cycle collector spends
    # seconds of a large backfill walking them again and again.
    gc.set_threshold(10_000, 20, 20)
    args = build_parser().parse_args(argv)
    from okr_metrics.pipelines.settings import Settings, SettingsError

    # Dagster flags single-run backfill policies as beta; that is not the user's concern.
    warnings.filterwarnings("ignore", message=".*is currently in beta.*")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LineFormatter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    progress_log.setLevel(logging.INFO)
    try:
        # The one reading of the environment; --defs wins over OKR_DEFS.
        settings = Settings.from_env().with_definitions(getattr(args, "defs", None))
        return args.handler(args, settings)
    except (UsageError, SettingsError) as error:
        print(f"okr {args.command}: {error}", file=sys.stderr)
        return EXIT_USAGE


def run() -> None:
    """The `okr` command: `main`, then the interpreter's exit without its last walk of the
    heap. Python's shutdown runs the cycle collector over every object still alive (the
    imported libraries, a run's frames and rows: about a second here); frozen, they are
    left to the process's end. Exit handlers, flushes and thread joins run as always."""
    _fewer_malloc_arenas()
    code = main()
    gc.freeze()
    sys.exit(code)


# glibc's mallopt option for the number of malloc arenas (malloc.h).
_M_ARENA_MAX = -8


def _fewer_malloc_arenas() -> None:
    """Two malloc arenas rather than glibc's eight a core: a run's fetch threads each
    get an arena of their own otherwise, and each arena keeps the memory its thread
    freed (about 7 MiB of a 1,000-KR backfill's peak). As `MALLOC_ARENA_MAX=2` would,
    which an operator's own setting overrides; nothing to do off glibc."""
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_ARENA_MAX, 2)
    except (OSError, AttributeError):  # not glibc (musl has no mallopt to speak of)
        return


if __name__ == "__main__":
    run()
