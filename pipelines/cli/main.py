"""The `okr` command: lint definitions, run and backfill through Dagster, print scorecards.

Every command that computes scores runs the real Dagster job in-process against a
persistent instance (`DAGSTER_HOME`, default `.okr/dagster`), so its runs show in
`dagster dev`.

Exit codes: 0 success; 1 lint errors or a failed run; 2 bad usage or definitions
the run needs are missing or invalid; 3 the run finished but a source failed or some
rows failed validation (those KRs carry their last value, flagged stale).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

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


def dagster_instance():
    """The persistent Dagster instance: `DAGSTER_HOME`, else `.okr/dagster`.

    The folder is created when missing and gets a copy of ./dagster.yaml when it has
    none (`.okr/dagster`, which the project owns, always gets the current one).
    """
    from dagster import DagsterInstance

    own_home = not os.environ.get("DAGSTER_HOME")
    home = Path(os.environ.get("DAGSTER_HOME") or ".okr/dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    settings = home / "dagster.yaml"
    if Path("dagster.yaml").is_file() and (own_home or not settings.exists()):
        shutil.copyfile("dagster.yaml", settings)
    os.environ["DAGSTER_HOME"] = str(home)
    return DagsterInstance.get()


def run_window(start: date, end: date) -> RunOutcome:
    """Materialize every asset for the days start..end in one Dagster run."""
    from okr_metrics.pipelines.orchestration.definitions import JOB_NAME, build_definitions
    from okr_metrics.pipelines.orchestration.schedules import partition_range_tags

    job = build_definitions().resolve_job_def(JOB_NAME)
    days = (end - start).days + 1
    progress_log.info(f"run: {start}..{end} ({days} day{'s' * (days != 1)}) in one Dagster run")
    with dagster_instance() as instance:
        result = job.execute_in_process(
            instance=instance,
            tags=partition_range_tags(start, end),
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
    outcome = RunOutcome(result.run_id, result.success, start, end)
    from okr_metrics.pipelines.orchestration.assets import EXPECTATIONS_CHECK, FETCH_CHECK

    evaluations = result.get_asset_check_evaluations()
    rejected = {
        evaluation.asset_key.path[-1]: evaluation.metadata["rejected_rows"].value
        for evaluation in evaluations
        if evaluation.check_name == EXPECTATIONS_CHECK and not evaluation.passed
    }
    for evaluation in evaluations:
        if evaluation.check_name != FETCH_CHECK:
            continue
        source = evaluation.asset_key.path[-1]
        metadata = {key: value.value for key, value in evaluation.metadata.items()}
        if not metadata.get("series_requested"):
            continue  # no KR in the window uses this source
        if rejected.get(source):
            outcome.rejected[source] = rejected[source]
        if evaluation.passed:
            outcome.sources[source] = "ok"
        elif metadata.get("skipped"):
            outcome.sources[source] = f"skipped: {metadata['skipped']}"
        else:
            reasons = sorted(set((metadata.get("failures") or {}).values()))
            outcome.sources[source] = "failed: " + "; ".join(reasons)
    if not result.success:
        failures = [
            event.step_failure_data.error.message.strip().splitlines()[0]
            for event in result.all_events
            if event.is_step_failure and event.step_failure_data.error
        ]
        outcome.failure = "; ".join(failures) or "the run failed"
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


def cmd_lint(args: argparse.Namespace) -> int:
    from okr_metrics.pipelines.definitions import load_definitions
    from okr_metrics.pipelines.jobs.collect import lint_source_inputs

    definitions = load_definitions(args.defs)
    definitions.problems += lint_source_inputs(definitions)
    for problem in definitions.problems:
        print(problem)
    errors, warnings = len(definitions.errors), len(definitions.warnings)
    files = len(definitions.files)
    summary = f"{files} quarter{'s' * (files != 1)} valid, {errors} error(s), {warnings} warning(s)"
    print(summary, file=sys.stderr)
    return EXIT_FAILED if errors else EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from okr_metrics.pipelines.definitions import load_definitions
    from okr_metrics.pipelines.orchestration.schedules import nightly_window, trailing_days

    as_of = args.date or yesterday()
    if as_of > yesterday():
        raise UsageError(f"--date {as_of}: the newest day that can be scored is {yesterday()}")
    days = args.trailing_days if args.trailing_days is not None else trailing_days()
    start, end = nightly_window(as_of, days)
    definitions = load_definitions(args.defs)
    _check_definitions(definitions, as_of, as_of)
    outcome = run_window(start, end)
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


def cmd_backfill(args: argparse.Namespace) -> int:
    from okr_metrics.pipelines.definitions import load_definitions

    start, end = backfill_window(args)
    definitions = load_definitions(args.defs)
    _check_definitions(definitions, start, end)
    outcome = run_window(start, end)
    report(outcome, definitions)
    return outcome.exit_code


def cmd_scorecard(args: argparse.Namespace) -> int:
    from okr_metrics.pipelines.cli.scorecard import ScorecardError, render_scorecard
    from okr_metrics.pipelines.definitions import load_definitions
    from okr_metrics.warehouse.store import Warehouse

    # The definitions only order the output; the numbers come from the warehouse.
    order = [
        item.id
        for okr_file in load_definitions(args.defs).files.values()
        for objective in okr_file.objectives
        for item in (objective, *objective.key_results)
    ]
    try:
        text = render_scorecard(
            Warehouse(),
            quarter=str(args.quarter) if args.quarter else None,
            as_of=args.as_of,
            output_format=args.format,
            order=order,
        )
    except ScorecardError as error:
        raise UsageError(str(error)) from None
    print(text)
    return EXIT_OK


def cmd_sandbox(args: argparse.Namespace) -> int:
    from okr_metrics.connectors.sandbox import Sandbox

    try:
        sandbox = Sandbox(port=args.port)
    except OSError as error:
        raise UsageError(f"cannot listen on 127.0.0.1:{args.port}: {error.strerror}") from None
    print(f"sandbox serving the sample APIs on {sandbox.url} (Ctrl-C to stop)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        sandbox.serve_forever()
    return EXIT_OK


def point_sources_at(url: str) -> None:
    """Aim every connected source at the sandbox, with placeholder credentials."""
    from okr_metrics.connectors.registry import connected_sources

    for source in connected_sources().values():
        env = source.connector_class().env
        if env.base_url:
            os.environ[env.base_url] = url
        if env.token:
            os.environ[env.token] = "sandbox-token"
        if env.user:
            os.environ[env.user] = "demo@example.com"
        if env.credentials_file:
            os.environ.pop(env.credentials_file, None)


def cmd_demo(args: argparse.Namespace) -> int:
    from okr_metrics.connectors.sandbox import Sandbox
    from okr_metrics.pipelines.definitions import load_definitions
    from okr_metrics.pipelines.vocabulary.quarters import Quarter

    end = yesterday()
    quarter = Quarter.containing(end)
    defined = [q for q in load_definitions(args.defs).files if q.start <= end]
    if quarter not in defined and defined:
        # No definitions for this quarter yet: show the newest quarter that has them.
        quarter = max(defined)
        progress_log.info(f"demo: no definitions for {Quarter.containing(end)}; using {quarter}")
    with Sandbox() as sandbox:
        progress_log.info(f"demo: sandbox APIs on {sandbox.url}")
        point_sources_at(sandbox.url)
        args.quarter, args.date_from, args.date_to = quarter, None, None
        code = cmd_backfill(args)
    if code == EXIT_FAILED:
        return code
    args.quarter, args.as_of, args.format = quarter, None, "table"
    cmd_scorecard(args)
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
    backfill.set_defaults(handler=cmd_backfill)

    scorecard = with_defs(
        commands.add_parser("scorecard", help="print objectives and KRs from the warehouse")
    )
    scorecard.add_argument("--quarter", type=_quarter, help="default: the newest scored quarter")
    scorecard.add_argument("--as-of", type=_date, help="default: the newest scored day")
    scorecard.add_argument("--format", choices=["table", "json", "csv"], default="table")
    scorecard.set_defaults(handler=cmd_scorecard)

    sandbox = commands.add_parser("sandbox", help="serve the sample APIs on 127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8765, help="default: 8765")
    sandbox.set_defaults(handler=cmd_sandbox)

    demo = with_defs(
        commands.add_parser("demo", help="backfill this quarter against the sandbox, print it")
    )
    demo.set_defaults(handler=cmd_demo)
    return parser


class _LineFormatter(logging.Formatter):
    """The project's lines as they are; a library's warnings say which library spoke."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        if record.name == progress_log.name or record.name.startswith(progress_log.name + "."):
            return message
        return f"{record.name}: {record.levelname.lower()}: {message}"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Dagster flags single-run backfill policies as beta; that is not the user's concern.
    warnings.filterwarnings("ignore", message=".*is currently in beta.*")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LineFormatter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    progress_log.setLevel(logging.INFO)
    if getattr(args, "defs", None):
        os.environ["OKR_DEFS"] = args.defs
    args.defs = os.environ.get("OKR_DEFS") or "okr_defs"
    try:
        return args.handler(args)
    except UsageError as error:
        print(f"okr {args.command}: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
