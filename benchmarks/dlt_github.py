"""The baseline of the dlt comparison: GitHub's closed pull requests by dlt's `rest_api` source.

`benchmarks/pipeline_runs.py` runs it in a fresh process against the sandbox it serves,
beside `okr backfill` reading the same endpoint, and compares the wall times. It is dlt
at its best for this job: one resource per repository, parallelized; GitHub's `Link`
header paging at 100 a page; an incremental cursor on `updated_at` with `row_order:
desc`, so each newest-first list stops at the window; loaded as `jsonl` files to a
local folder. Needs the `bench` extra (`pip install -e '.[bench]'`).

    python benchmarks/dlt_github.py --base-url http://127.0.0.1:8765 \\
        --since 2026-07-01T00:00:00Z --folder /tmp/dlt acme/service-000 acme/service-001
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import dlt
from dlt.sources.rest_api import rest_api_source


def pulls_source(base_url: str, token: str, repos: list[str], since: str):
    return rest_api_source(
        {
            "client": {
                "base_url": base_url.rstrip("/") + "/",
                "auth": {"type": "bearer", "token": token},
                "paginator": {"type": "header_link"},
            },
            "resources": [
                {
                    "name": "pulls_" + repo.replace("/", "__").replace("-", "_"),
                    "table_name": "pulls",
                    "parallelized": True,
                    "primary_key": "id",
                    "write_disposition": "append",
                    "endpoint": {
                        "path": f"repos/{repo}/pulls",
                        "params": {
                            "state": "closed",
                            "sort": "updated",
                            "direction": "desc",
                            "per_page": 100,
                        },
                        "incremental": {
                            "cursor_path": "updated_at",
                            "initial_value": since,
                            "row_order": "desc",
                        },
                    },
                }
                for repo in repos
            ],
        }
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--since", required=True, help="ISO 8601, UTC")
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("repos", nargs="+")
    args = parser.parse_args()
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    pipeline = dlt.pipeline(
        pipeline_name="github_pulls",
        pipelines_dir=str(args.folder / "pipelines"),
        destination=dlt.destinations.filesystem(bucket_url=str(args.folder / "data")),
        dataset_name="github",
    )
    token = os.environ.get("GITHUB_TOKEN", "")
    info = pipeline.run(
        pulls_source(args.base_url, token, args.repos, args.since), loader_file_format="jsonl"
    )
    rows = pipeline.last_trace.last_normalize_info.row_counts.get("pulls", 0)
    print(f"dlt loaded {rows} pull requests ({len(info.load_packages)} load package)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
