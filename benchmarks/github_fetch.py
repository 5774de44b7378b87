"""The like-for-like side of the dlt comparison: the GitHub connector's fetch alone.

`benchmarks/pipeline_runs.py` runs it in a fresh process against the sandbox it serves,
beside `dlt_github.py` (dlt's `rest_api` source) and `okr backfill` on the same
repositories. It builds the connector as a run does, from `GITHUB_API_URL` and
`GITHUB_TOKEN`, and asks `daily_series_many` for the series the backfill's definitions
hold (the merged pull requests of each repository, --from through --to): the same
listings, pages and stop as the backfill's fetch, without Dagster, Great Expectations or
the warehouse (it imports the connector only: requests, pandas, pydantic).

    GITHUB_API_URL=http://127.0.0.1:8765 GITHUB_TOKEN=sandbox-token \\
        python benchmarks/github_fetch.py --from 2026-07-01 --to 2026-09-29 \\
        acme/service-000 acme/service-001
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from datetime import date

from okr_metrics.connectors.base import SourceError, SourceSettings
from okr_metrics.connectors.github.client import GitHubConnector
from okr_metrics.connectors.github.params import GitHubMetric
from okr_metrics.connectors.kit import SeriesRequest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="first", type=date.fromisoformat, required=True)
    parser.add_argument("--to", dest="last", type=date.fromisoformat, required=True)
    parser.add_argument("repos", nargs="+")
    args = parser.parse_args()
    connector = GitHubConnector.from_settings(
        SourceSettings.from_env(GitHubConnector.env, os.environ)
    )
    requests = [
        SeriesRequest.of(
            GitHubMetric(source="github", repo=repo, count="merged_pull_requests"),
            args.first,
            args.last,
        )
        for repo in args.repos
    ]
    started = time.perf_counter()
    answers = connector.daily_series_many(requests)
    seconds = time.perf_counter() - started
    failed = [answer for answer in answers.values() if isinstance(answer, SourceError)]
    for error in failed:
        print(error, file=sys.stderr)
    merged = sum(
        int(answer["value"].sum())
        for answer in answers.values()
        if not isinstance(answer, SourceError)
    )
    print(f"fetched {len(answers)} series ({merged} merged pull requests) in {seconds:.2f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    # The collector settings of the `okr` command (pipelines/cli/main.py): its thresholds
    # while the answers are read, and the exit without a last walk of the heap.
    gc.set_threshold(10_000, 20, 20)
    code = main()
    gc.freeze()
    sys.exit(code)
