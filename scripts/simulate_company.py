"""Simulation: a company of 500 teams and 10,000 KRs, one nightly run, against the APIs' rate limits.

Not a test. It writes the company's definitions to a temporary folder (the quarter
2026-Q3 split over one file a team, `benchmarks/company.py`: GA4 over 50 properties, a
repository a team, a Jira project to five teams, one Salesforce org and one HubSpot
portal), serves the sandbox with its default volume a key (data from 2026-06-01), runs `okr run --date 2026-09-30` in a fresh
process (after a quarter's `okr backfill` with `--backfill`), and prints the run's wall
time, the requests it made to each API against that API's published limit, and which
limit binds first: the share of each allowance one nightly run uses, the number of KRs
at which a nightly run would use all of it (requests grow with the KRs), and the least
time the per-second limits allow the run's requests (such a limit binds where that time
reaches the run's wall time: its "share" is the run's average pace against the limit).
Without `--backfill` the nightly run is a quarter's first, which reads each series from
the quarter's first day; with it, the steady state.

The published limits (read 2026-12; check your plan's):

- GitHub: 5,000 requests an hour per user token (15,000 for a GitHub App of an
  Enterprise Cloud organization), https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api
- Google Analytics Data API, core quota per property: 200,000 tokens a day and 40,000
  an hour (Analytics 360: 2,000,000 and 400,000), 10 concurrent requests; most requests
  cost under 10 tokens (the model here: 10),
  https://developers.google.com/analytics/devguides/reporting/data/v1/quotas
- Salesforce: a rolling 24-hour allocation per org of 100,000 requests plus 1,000 per
  user licence (Enterprise; 5,000 for Unlimited), https://developer.salesforce.com/docs/platform/salesforce-app-limits-cheatsheet/guide/salesforce-app-limits-platform-api.html
- HubSpot: private apps 100 requests per 10 seconds (190 on Professional and
  Enterprise) and a daily 250,000 to 1,000,000; the CRM search endpoints 5 requests a
  second per account, https://developers.hubspot.com/docs/api/usage-details
- Jira Cloud: apps (Forge, Connect, OAuth 2.0) spend an hourly points quota, 1 point a
  request plus 1 per object returned (the model here: 65,000 points an hour, the global
  pool; tiers differ), and every client, API-token scripts like this connector
  included, is held to per-second burst limits per endpoint,
  https://developer.atlassian.com/cloud/jira/platform/rate-limiting/

    .venv/bin/python scripts/simulate_company.py                 # nightly, ~10,000 KRs
    .venv/bin/python scripts/simulate_company.py --backfill      # the quarter first
    .venv/bin/python scripts/simulate_company.py --teams 50 --krs 1000 --salesforce-licences 300
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from company import Keys, write_definitions  # noqa: E402
from pipeline_runs import (  # noqa: E402
    DATA_FIRST_DAY,
    HORIZON,
    NIGHTLY_AS_OF,
    QUARTER,
    START,
    Run,
    base_env,
    okr,
    run_okr,
)
from requests_floor import ApiSandboxes  # noqa: E402

from okr_metrics.connectors.sandbox import SandboxData  # noqa: E402

BACKFILL_END = date(2026, 9, 29)
GA4_TOKENS_PER_REQUEST = 10
JIRA_POINTS_PER_HOUR = 65_000


@dataclass(frozen=True)
class Limit:
    """One published allowance: `amount` requests (or tokens, points) per `window` seconds."""

    api: str
    name: str
    amount: float
    window: float
    unit: str = "requests"

    @property
    def per_second(self) -> float:
        return self.amount / self.window


def limits(args: argparse.Namespace) -> list[Limit]:
    return [
        Limit("github", "5,000 an hour per token", 5_000 * args.github_tokens, 3600),
        Limit("google_analytics", "40,000 tokens an hour per property", 40_000, 3600, "tokens"),
        Limit("google_analytics", "200,000 tokens a day per property", 200_000, 86400, "tokens"),
        Limit(
            "salesforce",
            f"100,000 + 1,000 x {args.salesforce_licences} licences a day",
            100_000 + 1_000 * args.salesforce_licences,
            86400,
        ),
        Limit("hubspot", "search: 5 a second", 5, 1),
        Limit("hubspot", "190 per 10 seconds", 190, 10),
        Limit("jira", f"{JIRA_POINTS_PER_HOUR:,} points an hour (apps)", JIRA_POINTS_PER_HOUR, 3600, "points"),
    ]  # fmt: skip


def spend(api: str, made: int, items: int, busiest_key: int) -> dict[str, float]:
    """What a run spends of each unit: requests; GA4 tokens (of its busiest property);
    Jira points (a request plus an object returned)."""
    if api == "google_analytics":
        return {"requests": made, "tokens": busiest_key * GA4_TOKENS_PER_REQUEST}
    if api == "jira":
        return {"requests": made, "points": made + items}
    return {"requests": made}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=500)
    parser.add_argument("--krs", type=int, default=10_000)
    parser.add_argument("--backfill", action="store_true", help="backfill the quarter first")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="sandbox latency a request")
    parser.add_argument("--github-tokens", type=int, default=1)
    parser.add_argument("--salesforce-licences", type=int, default=100)
    args = parser.parse_args()

    # A repository a team; a Jira project and a GA4 property shared by a few teams.
    keys = Keys(properties=50, repos=args.teams, projects=max(1, args.teams // 5))
    with tempfile.TemporaryDirectory(prefix="okr-company-") as folder:
        work = Path(folder)
        definitions = work / "okr_defs"
        files = write_definitions(definitions, QUARTER, krs=args.krs, teams=args.teams, keys=keys)
        print(
            f"{args.krs:,} KRs of {args.teams} teams in {len(files) - 1} files "
            f"({QUARTER}); sandbox at default volume, {args.latency_ms:.0f} ms a request"
        )
        sandbox = ApiSandboxes(data=SandboxData(first_day=DATA_FIRST_DAY, now=HORIZON))
        with sandbox:
            sandbox.latency_seconds = args.latency_ms / 1000
            env = base_env(work, definitions, sandbox.urls)
            if args.backfill:
                backfill = run_okr(
                    sandbox,
                    okr("backfill", "--from", str(START), "--to", str(BACKFILL_END)),
                    env,
                    START,
                )
                print(
                    f"backfill {START}..{BACKFILL_END}: {backfill.wall:.1f} s, exit {backfill.code}"
                )
                summarise(backfill, args)
            nightly_start = date(2026, 9, 28)
            nightly = run_okr(sandbox, okr("run", "--date", str(NIGHTLY_AS_OF)), env, nightly_start)
        print(f"nightly run for {NIGHTLY_AS_OF}: {nightly.wall:.1f} s, exit {nightly.code}")
        if nightly.code not in (0, 2):
            print("\n".join(nightly.output.strip().splitlines()[-10:]))
        summarise(nightly, args)
    return 0 if nightly.code in (0, 2) else 1


def summarise(run: Run, args: argparse.Namespace) -> None:
    """The requests per API against each published limit, and which binds first."""
    made, exchanges = run.made, run.exchanges
    items: dict[str, int] = defaultdict(int)
    per_key: dict[str, int] = defaultdict(int)
    for exchange in exchanges:
        items[exchange.api] += exchange.items
        if exchange.api == "google_analytics":
            per_key[exchange.query.split(":")[0]] += 1
    busiest_property = max(per_key.values(), default=made.get("google_analytics", 0))
    print(
        f"{'API':<17} {'requests':>9}  {'limit':<40} {'share':>7} {'binds at KRs':>13} {'least s':>8}"
    )
    binding = []
    for limit in limits(args):
        count = made.get(limit.api, 0)
        used = spend(limit.api, count, items.get(limit.api, 0), busiest_property)[limit.unit]
        if limit.window <= 10:
            # A per-second limit: the run's pace (its requests over its wall time) against it.
            share = used / max(run.wall, 1e-9) / limit.per_second
        else:
            share = used / limit.amount
        # Requests grow with the KRs: the scale at which one nightly run spends it all.
        at_krs = args.krs / share if share else math.inf
        # A per-second limit sets the least time the run's requests take.
        least = f"{used / limit.per_second:.1f}" if limit.window <= 10 else ""
        binding.append((at_krs, limit))
        print(
            f"{limit.api:<17} {count:>9,}  {limit.name:<40} {share:>6.1%} "
            f"{at_krs:>13,.0f} {least:>8}"
        )
    at_krs, first = min(binding, key=lambda pair: pair[0])
    print(
        f"binds first: {first.api} ({first.name}), at about {at_krs:,.0f} KRs a nightly run "
        f"on this company's mix"
    )


if __name__ == "__main__":
    sys.exit(main())
