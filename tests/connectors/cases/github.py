"""The GitHub connector's contract case: issues opened, over GitHub's recorded pagination.

The pages are `tests/fixtures/github/paginate-issues.json` (octokit/fixtures): five pages
of three issues, whose `Link` headers send pages 2 to 5 to `/repositories/{id}/issues`
with the recorded parameters; the connector must follow them as given.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from urllib.parse import parse_qsl

from okr_metrics.connectors.base import SourceSettings
from okr_metrics.connectors.github.params import GitHubMetric

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "github"
RECORDED_ORIGIN = "https://api.github.com"
# Headers of the recording that describe its own transfer, not GitHub's answer.
TRANSFER_HEADERS = {"content-length", "connection", "date"}
JUL_18, JUL_19, JUL_20 = date(2022, 7, 18), date(2022, 7, 19), date(2022, 7, 20)


def recorded_pages() -> list[dict]:
    interactions = json.loads((FIXTURES / "paginate-issues.json").read_text())
    return [i for i in interactions if i["method"] == "get" and "/issues" in i["path"]]


class GitHubCase:
    source = "github"
    http = True
    secret = "contract-secret-token"
    window = (JUL_18, JUL_20)
    page_size = 3  # the recording's per_page

    def __init__(self) -> None:
        self.pages = recorded_pages()
        self.repo = "/".join(self.pages[0]["path"].split("/")[2:4])

    def settings(self, url: str) -> SourceSettings:
        return SourceSettings(base_url=url, token=self.secret)

    def metric(self) -> GitHubMetric:
        return GitHubMetric(source="github", repo=self.repo, count="opened_issues")

    def records(self, url: str) -> tuple[list[dict], dict[date, float]]:
        # The first request is the connector's own; the later ones, the Link headers' URLs.
        first = {
            "state": "all",
            "sort": "updated",
            "direction": "desc",
            "per_page": "3",
            "since": "2022-07-18T00:00:00Z",
        }
        exchanges = []
        for number, page in enumerate(self.pages):
            path, _, query = page["path"].partition("?")
            raw = page["rawHeaders"]
            headers = {
                name: value.replace(RECORDED_ORIGIN, url)
                for name, value in zip(raw[::2], raw[1::2], strict=True)
                if name.lower() not in TRANSFER_HEADERS
            }
            exchanges.append(
                {
                    "request": {
                        "method": "GET",
                        "path": path,
                        "query": first if number == 0 else dict(parse_qsl(query)),
                    },
                    "response": {
                        "status": page["status"],
                        "headers": headers,
                        "body": page["response"],
                    },
                }
            )
        # The recording's 13 issues were all opened on July 19 (UTC); none is a pull request.
        return exchanges, {JUL_18: 0.0, JUL_19: 13.0, JUL_20: 0.0}

    def no_records(self, url: str) -> tuple[list[dict], dict[date, float]]:
        (first, *_), _ = self.records(url)
        empty = {"headers": {"Content-Type": "application/json; charset=utf-8"}, "body": []}
        return [{"request": first["request"], "response": empty}], dict.fromkeys(
            (JUL_18, JUL_19, JUL_20), 0.0
        )

    def error_body(self, status: int, message: str) -> dict:
        """GitHub's error body (`errors.json` shows one)."""
        return {
            "message": message,
            "documentation_url": "https://docs.github.com/rest",
            "status": str(status),
        }


CASE = GitHubCase()
