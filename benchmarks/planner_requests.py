"""Benchmark: the API requests a backfill of the sample definitions sends, with and without
the request planner.

Not a test: it prints, per source, the requests that `collect_source` sends to a sandbox
frozen in time (the golden backfill's: okr_defs/ from 2026-09-20 through 2026-11-15), once
with each series its own query (`plans_queries = False`, the baseline) and once with the
series merged into shared queries (`daily_series_many` and the connectors' `plan`), and
checks that both runs stored the same rows.

    python benchmarks/planner_requests.py                # okr_defs/
    python benchmarks/planner_requests.py --many         # a 21-KR quarter sharing more
    python benchmarks/planner_requests.py --defs DIR --from 2026-10-01 --to 2026-12-31

`--many` writes a 2026-Q4 of 21 KRs the way a team's quarter grows: pull requests of one
repository counted by label, issues opened and closed, GA4 events and platform metrics,
Jira created and resolved of one project, two Salesforce segments, a HubSpot count and sum
of one filter; and backfills 2026-10-01 through 2026-11-15.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

from okr_metrics.connectors.base import SourceSettings
from okr_metrics.connectors.registry import connected_sources
from okr_metrics.connectors.sandbox import Sandbox
from okr_metrics.connectors.sandbox.data import SandboxData
from okr_metrics.pipelines.definitions import load_definitions
from okr_metrics.pipelines.jobs.collect import collect_source, series_requests
from okr_metrics.warehouse.store import Warehouse

REPO = Path(__file__).resolve().parents[1]
HORIZON = datetime(2026, 11, 16, 6, 0, tzinfo=UTC)
API_SOURCES = ("github", "google_analytics", "hubspot", "jira", "salesforce")
WON = "{property: dealstage, operator: EQ, value: closedwon}"
MANY_METRICS = [
    *(
        f"{{source: github, repo: acme/analytics-dashboard, count: merged_pull_requests, "
        f"labels: [{labels}]}}"
        for labels in ("", "bug", "performance", "enhancement", "documentation")
    ),
    *(
        f"{{source: github, repo: acme/mobile-app, count: merged_pull_requests, labels: [{label}]}}"
        for label in ("bug", "enhancement")
    ),
    "{source: github, repo: acme/platform, count: opened_issues}",
    "{source: github, repo: acme/platform, count: closed_issues, labels: [bug]}",
    "{source: github, repo: acme/mobile-app, count: releases}",
    *(
        f"{{source: google_analytics, property: '123456789', metric: eventCount, "
        f"filter: {{eventName: [{event}]}}}}"
        for event in ("push_opt_in", "onboarding_complete", "article_view")
    ),
    *(
        f"{{source: google_analytics, property: '123456789', metric: {name}, "
        "filter: {platform: [iOS, Android]}}"
        for name in ("activeUsers", "sessions")
    ),
    "{source: jira, jql: 'project = SUP', count: created}",
    "{source: jira, jql: 'project = SUP', count: resolved}",
    "{source: salesforce, where: \"StageName = 'Closed Won' AND Segment__c = 'SMB'\", "
    "measure: sum, field: Amount}",
    "{source: salesforce, where: \"StageName = 'Closed Won' AND Product__c = 'Analytics "
    "Dashboard'\"}",
    f"{{source: hubspot, object: deals, filters: [{WON}], date_property: closedate}}",
    f"{{source: hubspot, object: deals, filters: [{WON}], date_property: closedate, "
    "measure: sum, field: amount}",
]


def write_many(folder: Path) -> Path:
    """The 21-KR quarter of `--many`, in `folder`."""
    key_results = "".join(
        f"      - {{id: kr-{number}, title: KR {number}, type: increase, start: 0, "
        f"target: 100, metric: {metric}}}\n"
        for number, metric in enumerate(MANY_METRICS, start=1)
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "2026-Q4.yaml").write_text(
        "quarter: 2026-Q4\ntimezone: UTC\nobjectives:\n  - id: everything\n"
        "    title: Everything\n    owner: product\n    key_results:\n" + key_results
    )
    return folder


def backfill(
    sandbox: Sandbox, defs: Path, first: date, last: date, db: Path, planning: bool
) -> tuple[dict[str, int], pd.DataFrame]:
    """Requests per source, and the rows stored, of one collect run of every API source."""
    definitions = load_definitions(defs)
    warehouse = Warehouse(f"sqlite:///{db}")
    sent: dict[str, int] = {}
    keys: list[str] = []
    for source in API_SOURCES:
        settings = SourceSettings(base_url=sandbox.url, token="bench", user="bench@example.com")
        connector = connected_sources()[source].connector_class().from_settings(settings)
        connector.plans_queries = planning
        before = sandbox.request_count()
        collect_source(
            source, connector, None, definitions, first, last, warehouse, "bench", lambda _: None
        )
        sent[source] = sandbox.request_count() - before
        keys += [r.metric_key for r in series_requests(definitions, source, first, last)]
    rows = warehouse.read_observations(keys, date(first.year, 1, 1), last)
    return sent, rows.sort_values(["metric_key", "date"]).reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--defs", type=Path, default=REPO / "okr_defs")
    parser.add_argument("--many", action="store_true", help="a 21-KR quarter (see above)")
    parser.add_argument("--from", dest="first", type=date.fromisoformat, default=date(2026, 9, 20))
    parser.add_argument("--to", dest="last", type=date.fromisoformat, default=date(2026, 11, 15))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch, Sandbox(data=SandboxData(now=HORIZON)) as box:
        if args.many:
            args.defs = write_many(Path(scratch) / "defs")
            args.first = max(args.first, date(2026, 10, 1))
        separate, rows_off = backfill(
            box, args.defs, args.first, args.last, Path(scratch) / "off.db", False
        )
        planned, rows_on = backfill(
            box, args.defs, args.first, args.last, Path(scratch) / "on.db", True
        )
    print(
        f"requests of a backfill of {'the 21-KR quarter' if args.many else args.defs} from {args.first} to {args.last}"
    )
    print(f"{'source':18} {'separate':>9} {'planned':>8} {'ratio':>6}")
    for source in API_SOURCES:
        ratio = planned[source] / separate[source] if separate[source] else 1.0
        print(f"{source:18} {separate[source]:9d} {planned[source]:8d} {ratio:6.2f}")
    total_off, total_on = sum(separate.values()), sum(planned.values())
    print(f"{'total':18} {total_off:9d} {total_on:8d} {total_on / total_off:6.2f}")
    same = rows_on.equals(rows_off)
    print(f"stored rows: {len(rows_on)}, {'the same' if same else 'DIFFERENT'} both ways")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
