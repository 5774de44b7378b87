"""OKR definitions of a made-up company over the sandbox's five APIs, for the benchmarks.

`benchmarks/pipeline_runs.py` (`make bench`) writes the 20-KR quarter and the 1,000-KR
quarter with it, and `scripts/simulate_company.py` the 500-team company. All the
objectives share one file (`2026-Q3.yaml`), or the quarter is split over team-owned files
(`2026-Q3/_quarter.yaml` with the quarter's settings, then one `team-000.yaml` a team);
every KR names a metric of one source, cycling through templates so that every API
carries its share.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SOURCES = ("google_analytics", "github", "jira", "salesforce", "hubspot")


@dataclass(frozen=True)
class Keys:
    """How many distinct properties, repositories and projects the KRs spread over."""

    properties: int = 4
    repos: int = 4
    projects: int = 5

    def property(self, index: int) -> str:
        return str(300_000_000 + index % self.properties)

    def repo(self, index: int) -> str:
        return f"acme/service-{index % self.repos:03d}"

    def project(self, index: int) -> str:
        return "P" + _letters(index % self.projects)


def _letters(number: int) -> str:
    """0 -> "AA", 1 -> "AB", ...: Jira project keys are letters."""
    text = ""
    for _ in range(3):
        number, digit = divmod(number, 26)
        text = chr(ord("A") + digit) + text
    return text


def _ga(keys: Keys, n: int) -> dict[str, Any]:
    metric, kind = [
        ({"metric": "activeUsers", "filter": {"platform": ["iOS", "Android"]}}, "latest"),
        ({"metric": "sessions"}, "sum"),
        ({"metric": "averageSessionDuration"}, "mean_7d"),
        ({"metric": "screenPageViews", "filter": {"platform": ["web"]}}, "sum"),
    ][n % 4]
    return {
        "type": "increase",
        "start": 0,
        "target": 1_000_000,
        "metric": {
            "source": "google_analytics",
            "property": keys.property(n),
            **metric,
            "aggregate": kind,
        },
    }


def _ga_ratio(keys: Keys, n: int) -> dict[str, Any]:
    def events(name: str) -> dict[str, Any]:
        return {
            "source": "google_analytics",
            "property": keys.property(n),
            "metric": "eventCount",
            "filter": {"eventName": [name]},
        }

    return {
        "type": "increase",
        "start": 0.6,
        "target": 0.85,
        "metric": {
            "ratio": {
                "numerator": events("onboarding_complete"),
                "denominator": events("onboarding_start"),
            },
            "aggregate": "mean_7d",
        },
    }


def _github(keys: Keys, n: int) -> dict[str, Any]:
    count = ["merged_pull_requests", "merged_pull_requests", "releases", "opened_issues"][n % 4]
    metric: dict[str, Any] = {"source": "github", "repo": keys.repo(n), "count": count}
    if count == "opened_issues":
        metric["labels"] = ["bug"]
    return {"type": "increase", "start": 0, "target": 500, "metric": {**metric, "aggregate": "sum"}}


def _jira(keys: Keys, n: int) -> dict[str, Any]:
    project = keys.project(n)
    if n % 2 == 0:
        metric = {
            "source": "jira",
            "jql": f'project = {project} AND issuetype = "Support Ticket"',
            "measure": "resolved_within",
            "hours": 2,
        }
        return {"type": "increase", "start": 0.8, "target": 0.95, "metric": metric}
    metric = {
        "source": "jira",
        "jql": f"project = {project}",
        "count": "created",
        "aggregate": "sum",
    }
    return {"type": "increase", "start": 0, "target": 5_000, "metric": metric}


def _salesforce(keys: Keys, n: int) -> dict[str, Any]:
    segment = ["SMB", "Mid-Market", "Enterprise"][(n // 2) % 3]
    where = f"StageName = 'Closed Won' AND Segment__c = '{segment}'"
    if n % 2 == 0:
        metric = {"source": "salesforce", "where": where, "measure": "count", "aggregate": "sum"}
    else:
        metric = {
            "source": "salesforce",
            "where": where,
            "measure": "sum",
            "field": "Amount",
            "aggregate": "sum",
        }
    return {"type": "increase", "start": 0, "target": 1_000_000, "metric": metric}


def _hubspot(keys: Keys, n: int) -> dict[str, Any]:
    segment = ["smb", "mid_market", "enterprise"][(n // 2) % 3]
    filters = [
        {"property": "dealstage", "operator": "EQ", "value": "closedwon"},
        {"property": "customer_segment", "operator": "EQ", "value": segment},
    ]
    metric: dict[str, Any] = {"source": "hubspot", "object": "deals", "filters": filters}
    if n % 2:
        metric.update(measure="sum", field="amount")
    return {
        "type": "increase",
        "start": 0,
        "target": 1_000_000,
        "metric": {**metric, "aggregate": "sum"},
    }


# One KR of each template in turn: 20 KRs are 5 GA4 (one a ratio), 6 GitHub, 5 Jira,
# 2 Salesforce and 2 HubSpot.
TEMPLATES = (
    _ga, _github, _jira, _github, _salesforce, _ga, _jira, _github, _hubspot, _ga_ratio,
    _jira, _github, _ga, _salesforce, _jira, _github, _hubspot, _ga, _jira, _github,
)  # fmt: skip


def key_results(count: int, keys: Keys) -> Iterator[dict[str, Any]]:
    """`count` KR specs (no id or title yet), the n-th of each source on its n-th key."""
    seen: dict[Any, int] = {}
    for index in range(count):
        template = TEMPLATES[index % len(TEMPLATES)]
        n = seen.get(template, 0)
        seen[template] = n + 1
        yield template(keys, n)


def write_definitions(
    folder: Path, quarter: str, *, krs: int, teams: int = 1, keys: Keys | None = None
) -> list[Path]:
    """Write `krs` KRs for `quarter` into `folder`, spread over `teams` team-owned files
    (four KRs an objective where there are enough); return the files."""
    keys = keys or Keys()
    folder.mkdir(parents=True, exist_ok=True)
    specs = list(key_results(krs, keys))
    per_team = -(-krs // teams)
    files = []
    if teams > 1:
        (folder / quarter).mkdir(exist_ok=True)
        settings = {"quarter": quarter, "timezone": "UTC"}
        path = folder / quarter / "_quarter.yaml"
        path.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
        files.append(path)
    for team in range(teams):
        mine = specs[team * per_team : (team + 1) * per_team]
        if not mine:
            break
        objectives = []
        for first in range(0, len(mine), 4):
            number = len(objectives) + 1
            objectives.append(
                {
                    "id": f"team-{team:03d}-objective-{number}",
                    "title": f"Team {team} objective {number}",
                    "owner": f"team-{team:03d}",
                    "key_results": [
                        {
                            "id": f"team-{team:03d}-kr-{first + offset + 1}",
                            "title": f"Team {team} key result {first + offset + 1}",
                            **spec,
                        }
                        for offset, spec in enumerate(mine[first : first + 4])
                    ],
                }
            )
        if teams == 1:
            document = {"quarter": quarter, "timezone": "UTC", "objectives": objectives}
            path = folder / f"{quarter}.yaml"
        else:
            document = {"objectives": objectives}
            path = folder / quarter / f"team-{team:03d}.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        files.append(path)
    return files
