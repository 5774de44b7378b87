"""`okr health` and `okr purge-runs`: the commands a server's timers run (docs/deploy.md).

`okr health` prints one line per check and exits 1 when the newest finished `nightly` run
failed, a source failed in it, or the newest scores in `kr_scores` are older than
`--max-age-days`; it reads Dagster's run history and the warehouse's `source_runs` and
`kr_scores`. `okr purge-runs` deletes the runs Dagster would otherwise keep forever.
`main.build_parser` adds both commands (`add_commands`).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from okr_metrics.pipelines.settings import Settings

DEFAULT_MAX_AGE_DAYS = 2
EXIT_HEALTHY, EXIT_UNHEALTHY = 0, 1


@dataclass(frozen=True)
class Check:
    """One line of `okr health`: `ok`, `note` (never fails) or `FAILED`."""

    state: str
    message: str

    def __str__(self) -> str:
        return f"{self.state:<6} {self.message}"


def _first_line(error: BaseException) -> str:
    # Driver errors name the host and the database, never the password.
    return f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error) else ''}"


def nightly_checks(settings: Settings) -> tuple[list[Check], str | None]:
    """How the newest finished `nightly` run ended, and its run id (None: no such run)."""
    from okr_metrics.pipelines.orchestration.upkeep import newest_scheduled_run

    try:
        run = newest_scheduled_run(settings)
    except Exception as error:  # an unreachable instance is itself the finding
        return [Check("FAILED", f"Dagster run history unreadable: {_first_line(error)}")], None
    if run is None:
        return [Check("note", "no finished nightly run yet (is the schedule on?)")], None
    text = f"nightly run {run.run_id} for {run.as_of or '?'} ({run.created_at:%Y-%m-%d %H:%M} UTC)"
    return [Check("FAILED" if run.failed else "ok", f"{text}: {run.status}")], run.run_id


def warehouse_checks(
    settings: Settings, run_id: str | None, max_age_days: int, today: date
) -> list[Check]:
    """The sources of run `run_id` (else each source's newest outcome), and freshness."""
    from sqlalchemy.exc import SQLAlchemyError

    from okr_metrics.warehouse.store import Warehouse

    checks = []
    try:
        with Warehouse(settings.warehouse_url) as warehouse:
            if run_id is not None:
                sources: list[dict[str, Any]] = warehouse.source_runs(run_id)
            else:
                sources = warehouse.latest_source_runs().to_dict("records")
            newest = warehouse.latest_as_of()
            scores = warehouse.read_kr_scores(newest[1], newest[1]) if newest else None
    except SQLAlchemyError as error:
        return [Check("FAILED", f"warehouse unreadable: {_first_line(error)}")]
    for row in sorted(sources, key=lambda row: row["source"]):
        where = f"in run {run_id}" if run_id else f"in run {row['run_id']}"
        if row["status"] == "failed":
            checks.append(
                Check("FAILED", f"source {row['source']} failed {where}: {row['reason']}")
            )
        else:
            detail = f": {row['reason']}" if row["reason"] else ""
            checks.append(Check("ok", f"source {row['source']} {row['status']} {where}{detail}"))
    if newest is None or scores is None:
        return [*checks, Check("FAILED", "kr_scores holds no scores yet")]
    as_of = newest[1]
    age = (today - as_of).days
    state = "FAILED" if age > max_age_days else "ok"
    checks.append(
        Check(state, f"newest scores for {as_of}, {age} day(s) old (at most {max_age_days})")
    )
    stale = int(scores["stale"].fillna(False).astype(bool).sum())
    checks.append(Check("note", f"{stale} of {len(scores)} KRs stale on {as_of}"))
    return checks


def health_checks(settings: Settings, max_age_days: int, today: date | None = None) -> list[Check]:
    """Every check of `okr health`, in the order printed."""
    today = today or datetime.now(UTC).date()
    checks, run_id = nightly_checks(settings)
    return checks + warehouse_checks(settings, run_id, max_age_days, today)


def cmd_health(args: argparse.Namespace, settings: Settings) -> int:
    checks = health_checks(settings, args.max_age_days)
    for check in checks:
        print(check)
    return EXIT_UNHEALTHY if any(check.state == "FAILED" for check in checks) else EXIT_HEALTHY


def cmd_purge_runs(args: argparse.Namespace, settings: Settings) -> int:
    from okr_metrics.pipelines.orchestration.upkeep import purge_runs

    before = datetime.now(UTC) - timedelta(days=args.older_than_days)
    deleted = purge_runs(settings, before)
    print(f"deleted {deleted} finished run(s) created before {before:%Y-%m-%d %H:%M} UTC")
    return EXIT_HEALTHY


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of days, got {text!r}") from None
    if days < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1 day, got {days}")
    return days


def add_commands(commands: Any) -> None:
    """Add `health` and `purge-runs` to the `okr` parser's subcommands."""
    health = commands.add_parser(
        "health", help="exit 1 when the nightly run or a source failed, or scores are old"
    )
    health.add_argument(
        "--max-age-days",
        type=_days,
        default=DEFAULT_MAX_AGE_DAYS,
        help=f"newest scores may be this many days old (default: {DEFAULT_MAX_AGE_DAYS})",
    )
    health.set_defaults(handler=cmd_health)

    purge = commands.add_parser(
        "purge-runs", help="delete finished Dagster runs and their event logs older than N days"
    )
    purge.add_argument("--older-than-days", type=_days, required=True, metavar="N")
    purge.set_defaults(handler=cmd_purge_runs)
