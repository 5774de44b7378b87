"""GitHub's part of the sandbox: pull requests, issues and releases of any repository.

`register(router, data)` (a built-in API of the sandbox, `registry.py`) serves
`GET /repos/{owner}/{repo}/{pulls,issues,releases}` and the `/repositories/{id}/...`
form GitHub's `Link` headers point at, in GitHub's wire format: real field names,
filters and sorting, `per_page`/`page` with a `Link` header, rate-limit headers,
GitHub's error bodies.

Every repository name gets deterministic sample data on first request (seeded by
the name), from 2025-01-01 up to the sandbox's horizon. Tests replace a repository
with a few hand-written items through `sandbox.data.github.set_repo(...)`.
"""

from __future__ import annotations

import copy
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

from okr_metrics.connectors.sandbox.api import (
    JSON_UTF8,
    Api,
    ApiData,
    ApiError,
    Listings,
    parse_moment,
    timestamp,
    token_problem,
)
from okr_metrics.connectors.sandbox.data import SandboxData, scaled
from okr_metrics.connectors.sandbox.server import Router, SandboxRequest, SandboxResponse

API_ROOT = "https://api.github.com"  # replaced by the sandbox's own URL when served
DOCS = "https://docs.github.com/rest"
API_VERSION = "2022-11-28"
RATE_LIMIT = 5000

LABELS = ["bug", "enhancement", "performance", "customer-reported", "documentation"]
_LABEL_COLORS = {
    "bug": "d73a4a",
    "enhancement": "a2eeef",
    "performance": "fbca04",
    "customer-reported": "b60205",
    "documentation": "0075ca",
}
_USERS = ["octocat", "hubot", "monalisa", "mona-dev", "defunkt", "mojombo"]
_PR_TITLES = ["Fix", "Add", "Refactor", "Speed up", "Document", "Remove", "Update"]
_TOPICS = ["login flow", "search", "billing page", "API client", "caching", "onboarding", "export"]
_STATES = ("open", "closed", "all")
# GitHub's timestamp format is `api.timestamp`'s default: `2026-10-15T09:12:33Z`.


def parse_time(value: str | datetime | None) -> datetime | None:
    return None if value is None else parse_moment(value)


def _label(full_name: str, name: str) -> dict[str, Any]:
    return {
        "id": random.Random(f"label:{name}").randint(10**9, 10**10),
        "node_id": f"LA_{name}",
        "url": f"{API_ROOT}/repos/{full_name}/labels/{name}",
        "name": name,
        "color": _LABEL_COLORS.get(name, "ededed"),
        "default": name in ("bug", "enhancement", "documentation"),
        "description": None,
    }


def _user(login: str) -> dict[str, Any]:
    return {
        "login": login,
        "id": random.Random(f"user:{login}").randint(10**6, 10**8),
        "type": "User",
        "site_admin": False,
        "html_url": f"https://github.com/{login}",
    }


@dataclass
class GitHubRepo:
    """One repository's items, as GitHub sends them (timestamps as `...Z` strings)."""

    full_name: str
    id: int
    pulls: list[dict[str, Any]] = field(default_factory=list)
    issues: list[dict[str, Any]] = field(default_factory=list)  # issues only, not PRs
    releases: list[dict[str, Any]] = field(default_factory=list)

    def issue_listing(self) -> list[dict[str, Any]]:
        """What `GET /issues` lists: the issues and every pull request as an issue."""
        return self.issues + [_pull_as_issue(self.full_name, pull) for pull in self.pulls]


def _pull(full_name: str, repo_id: int, spec: Mapping[str, Any]) -> dict[str, Any]:
    """A pull request in the wire format of `GET /repos/{owner}/{repo}/pulls`."""
    number = spec["number"]
    created = parse_time(spec["created_at"])
    merged = parse_time(spec.get("merged_at"))
    closed = parse_time(spec.get("closed_at")) or merged
    updated = parse_time(spec.get("updated_at")) or max(t for t in (created, merged, closed) if t)
    labels = [
        name if isinstance(name, Mapping) else _label(full_name, name)
        for name in spec.get("labels", ())
    ]
    login = spec.get("user", _USERS[number % len(_USERS)])
    pull = {
        "url": f"{API_ROOT}/repos/{full_name}/pulls/{number}",
        "id": repo_id % 10**6 * 10**5 + number,
        "node_id": f"PR_{repo_id}_{number}",
        "html_url": f"https://github.com/{full_name}/pull/{number}",
        "diff_url": f"https://github.com/{full_name}/pull/{number}.diff",
        "patch_url": f"https://github.com/{full_name}/pull/{number}.patch",
        "issue_url": f"{API_ROOT}/repos/{full_name}/issues/{number}",
        "number": number,
        "state": "closed" if closed else "open",
        "locked": False,
        "title": spec.get("title", f"Pull request {number}"),
        "user": login if isinstance(login, Mapping) else _user(login),
        "body": spec.get("body"),
        "labels": labels,
        "created_at": timestamp(created),
        "updated_at": timestamp(updated),
        "closed_at": timestamp(closed) if closed else None,
        "merged_at": timestamp(merged) if merged else None,
        "merge_commit_sha": f"{random.Random(f'sha:{full_name}:{number}').getrandbits(160):040x}",
        "draft": bool(spec.get("draft", False)),
        "author_association": "MEMBER",
    }
    extra = {k: v for k, v in spec.items() if k not in pull and k not in ("user",)}
    return {**pull, **extra}


def _issue(full_name: str, repo_id: int, spec: Mapping[str, Any]) -> dict[str, Any]:
    """An issue in the wire format of `GET /repos/{owner}/{repo}/issues`."""
    number = spec["number"]
    created = parse_time(spec["created_at"])
    closed = parse_time(spec.get("closed_at"))
    updated = parse_time(spec.get("updated_at")) or max(t for t in (created, closed) if t)
    labels = [
        name if isinstance(name, Mapping) else _label(full_name, name)
        for name in spec.get("labels", ())
    ]
    login = spec.get("user", _USERS[number % len(_USERS)])
    url = f"{API_ROOT}/repos/{full_name}/issues/{number}"
    issue = {
        "url": url,
        "repository_url": f"{API_ROOT}/repos/{full_name}",
        "labels_url": f"{url}/labels{{/name}}",
        "comments_url": f"{url}/comments",
        "events_url": f"{url}/events",
        "html_url": f"https://github.com/{full_name}/issues/{number}",
        "id": repo_id % 10**6 * 10**5 + 50_000 + number,
        "node_id": f"I_{repo_id}_{number}",
        "number": number,
        "title": spec.get("title", f"Issue {number}"),
        "user": login if isinstance(login, Mapping) else _user(login),
        "labels": labels,
        "state": "closed" if closed else "open",
        "locked": False,
        "assignee": None,
        "assignees": [],
        "milestone": None,
        "comments": spec.get("comments", 0),
        "created_at": timestamp(created),
        "updated_at": timestamp(updated),
        "closed_at": timestamp(closed) if closed else None,
        "author_association": "MEMBER",
        "active_lock_reason": None,
        "body": spec.get("body"),
        "state_reason": spec.get("state_reason", "completed" if closed else None),
    }
    extra = {k: v for k, v in spec.items() if k not in issue and k not in ("user",)}
    return {**issue, **extra}


def _pull_as_issue(full_name: str, pull: Mapping[str, Any]) -> dict[str, Any]:
    """A pull request as the issues endpoint lists it: an issue with a `pull_request` key."""
    number = pull["number"]
    url = f"{API_ROOT}/repos/{full_name}/issues/{number}"
    return {
        "url": url,
        "repository_url": f"{API_ROOT}/repos/{full_name}",
        "labels_url": f"{url}/labels{{/name}}",
        "comments_url": f"{url}/comments",
        "events_url": f"{url}/events",
        "html_url": pull["html_url"],
        "id": pull["id"] + 50_000,
        "node_id": f"PRI_{number}",
        "number": number,
        "title": pull["title"],
        "user": pull["user"],
        "labels": pull["labels"],
        "state": pull["state"],
        "locked": False,
        "assignee": None,
        "assignees": [],
        "milestone": None,
        "comments": 0,
        "created_at": pull["created_at"],
        "updated_at": pull["updated_at"],
        "closed_at": pull["closed_at"],
        "author_association": "MEMBER",
        "active_lock_reason": None,
        "draft": pull["draft"],
        "pull_request": {
            "url": pull["url"],
            "html_url": pull["html_url"],
            "diff_url": pull["diff_url"],
            "patch_url": pull["patch_url"],
            "merged_at": pull["merged_at"],
        },
        "body": pull["body"],
        "state_reason": None,
    }


def _release(full_name: str, repo_id: int, index: int, spec: Mapping[str, Any]) -> dict[str, Any]:
    """A release in the wire format of `GET /repos/{owner}/{repo}/releases`."""
    created = parse_time(spec["created_at"])
    published = parse_time(spec.get("published_at"))
    draft = bool(spec.get("draft", False)) or published is None
    tag = spec.get("tag_name", f"v1.{index}.0")
    release_id = spec.get("id", repo_id % 10**6 * 10**4 + index)
    release = {
        "url": f"{API_ROOT}/repos/{full_name}/releases/{release_id}",
        "assets_url": f"{API_ROOT}/repos/{full_name}/releases/{release_id}/assets",
        "html_url": f"https://github.com/{full_name}/releases/tag/{tag}",
        "id": release_id,
        "node_id": f"RE_{repo_id}_{index}",
        "tag_name": tag,
        "target_commitish": "main",
        "name": spec.get("name", tag),
        "draft": draft,
        "prerelease": bool(spec.get("prerelease", False)),
        "author": _user(spec.get("user", _USERS[index % len(_USERS)])),
        "created_at": timestamp(created),
        "published_at": None if draft else timestamp(published),
        "assets": [],
        "tarball_url": f"{API_ROOT}/repos/{full_name}/tarball/{tag}",
        "zipball_url": f"{API_ROOT}/repos/{full_name}/zipball/{tag}",
        "body": spec.get("body", f"Release {tag}"),
    }
    extra = {k: v for k, v in spec.items() if k not in release and k not in ("user",)}
    return {**release, **extra}


def repository_id(full_name: str) -> int:
    """A stable numeric id for a repository name (GitHub's `/repositories/{id}`)."""
    return random.Random(f"github-repository-id:{full_name.lower()}").randint(10**8, 10**9 - 1)


class GitHubSandboxData(ApiData):
    """The sandbox's GitHub repositories: generated on first use, or set by a test."""

    name = "github"

    def __init__(self, data: SandboxData) -> None:
        super().__init__(data)
        self._repos: dict[str, GitHubRepo] = {}
        self._missing: set[str] = set()

    # -- reading ------------------------------------------------------------------------

    def repo(self, full_name: str) -> GitHubRepo | None:
        """The repository (generated on first use), or None when it was removed."""
        key = full_name.lower()
        with self._lock:
            if key in self._missing:
                return None
            if key not in self._repos:
                self._repos[key] = self._generate(full_name)
            return self._repos[key]

    def by_id(self, repo_id: int) -> GitHubRepo | None:
        with self._lock:
            return next((r for r in self._repos.values() if r.id == repo_id), None)

    def pulls(self, full_name: str) -> list[dict[str, Any]]:
        """The repository's pull requests, as `GET /pulls?state=all` would list them (copies)."""
        return copy.deepcopy(self._existing(full_name).pulls)

    def issues(self, full_name: str, *, include_pulls: bool = False) -> list[dict[str, Any]]:
        """The repository's issues; with `include_pulls`, what `GET /issues` lists (copies)."""
        repo = self._existing(full_name)
        return copy.deepcopy(repo.issue_listing() if include_pulls else repo.issues)

    def releases(self, full_name: str) -> list[dict[str, Any]]:
        """The repository's releases, drafts included (copies)."""
        return copy.deepcopy(self._existing(full_name).releases)

    # -- writing ------------------------------------------------------------------------

    def set_repo(
        self,
        full_name: str,
        *,
        pulls: Iterable[Mapping[str, Any]] = (),
        issues: Iterable[Mapping[str, Any]] = (),
        releases: Iterable[Mapping[str, Any]] = (),
    ) -> GitHubRepo:
        """Replace a repository's items with these few (simple dicts; the rest is filled in).

        A pull request needs `created_at` and may give `merged_at`, `closed_at`,
        `updated_at`, `labels` (names), `draft`, `title`; an issue `created_at`,
        `closed_at`, `state_reason`, `labels`; a release `created_at`, `published_at`
        (None: a draft), `draft`, `prerelease`, `tag_name`. Timestamps are ISO strings
        (`2026-10-02T10:00:00Z`) or aware datetimes. Any other key is sent as given.
        Numbers follow creation order unless given.
        """
        pulls, issues, releases = list(pulls), list(issues), list(releases)
        ordered = sorted(
            [("pull", i, p) for i, p in enumerate(pulls)]
            + [("issue", i, s) for i, s in enumerate(issues)],
            key=lambda item: (parse_time(item[2]["created_at"]), item[0], item[1]),
        )
        numbers = {(kind, i): n for n, (kind, i, _) in enumerate(ordered, start=1)}
        repo_id = repository_id(full_name)
        repo = GitHubRepo(
            full_name=full_name,
            id=repo_id,
            pulls=[
                _pull(full_name, repo_id, {"number": numbers[("pull", i)], **spec})
                for i, spec in enumerate(pulls)
            ],
            issues=[
                _issue(full_name, repo_id, {"number": numbers[("issue", i)], **spec})
                for i, spec in enumerate(issues)
            ],
            releases=[_release(full_name, repo_id, i + 1, spec) for i, spec in enumerate(releases)],
        )
        with self._lock:
            self._missing.discard(full_name.lower())
            self._repos[full_name.lower()] = repo
        return repo

    def remove_repo(self, full_name: str) -> None:
        """Make the repository answer 404, as a deleted or private one does."""
        with self._lock:
            self._repos.pop(full_name.lower(), None)
            self._missing.add(full_name.lower())

    # -- internals ----------------------------------------------------------------------

    def _existing(self, full_name: str) -> GitHubRepo:
        repo = self.repo(full_name)
        if repo is None:
            raise KeyError(f"repository {full_name} was removed")
        return repo

    def _generate(self, full_name: str) -> GitHubRepo:
        """Sample items for every day from `first_day` through the horizon's day.

        The random stream depends on the name only; the horizon merely cuts what has
        not happened yet, so two sandboxes agree on every day both have seen.
        """
        rng = random.Random(f"github:{full_name.lower()}")
        now, volume = self.now, self.data.volume(self.name)
        pulls: list[dict[str, Any]] = []
        issues: list[dict[str, Any]] = []
        day = datetime.combine(self.first_day, datetime.min.time(), tzinfo=timezone.utc)
        next_release = day + timedelta(days=rng.randint(3, 10))
        release_specs: list[dict[str, Any]] = []
        number = 0
        while day.date() <= now.date():
            created_today = sorted(
                [(rng.randrange(86400), "pull") for _ in range(scaled(rng.randint(0, 6), volume))]
                + [
                    (rng.randrange(86400), "issue")
                    for _ in range(scaled(rng.randint(0, 5), volume))
                ]
            )
            for seconds, kind in created_today:
                number += 1
                created = day + timedelta(seconds=seconds)
                spec = (
                    self._pull_spec(rng, number, created)
                    if kind == "pull"
                    else self._issue_spec(rng, number, created)
                )
                spec = _cut_at(spec, now)
                if spec is None:
                    continue
                (pulls if kind == "pull" else issues).append(spec)
            if day.date() == next_release.date():
                release_specs.append(self._release_spec(rng, len(release_specs) + 1, day))
                next_release = day + timedelta(days=rng.randint(7, 13))
            day += timedelta(days=1)

        repo_id = repository_id(full_name)
        releases = []
        for index, spec in enumerate(release_specs, start=1):
            spec = _cut_at(spec, now)
            if spec is not None:
                releases.append(_release(full_name, repo_id, index, spec))
        # Newest first, as GitHub lists releases.
        releases.sort(key=lambda r: (r["created_at"], r["id"]), reverse=True)
        return GitHubRepo(
            full_name=full_name,
            id=repo_id,
            pulls=[_pull(full_name, repo_id, spec) for spec in pulls],
            issues=[_issue(full_name, repo_id, spec) for spec in issues],
            releases=releases,
        )

    @staticmethod
    def _pull_spec(rng: random.Random, number: int, created: datetime) -> dict[str, Any]:
        outcome = rng.random()
        after = timedelta(hours=rng.uniform(0.5, 120))
        labels = _pull_labels(rng)
        spec: dict[str, Any] = {
            "number": number,
            "created_at": created,
            "title": f"{rng.choice(_PR_TITLES)} {rng.choice(_TOPICS)}",
            "labels": labels,
            "user": rng.choice(_USERS),
            "draft": False,
            "_touched": timedelta(minutes=rng.uniform(0, 30)),
        }
        if outcome < 0.8:
            spec["merged_at"] = created + after
        elif outcome < 0.9:
            spec["closed_at"] = created + after * 2
        else:
            spec["draft"] = rng.random() < 0.4
        return spec

    @staticmethod
    def _issue_spec(rng: random.Random, number: int, created: datetime) -> dict[str, Any]:
        kind = rng.random()
        if kind < 0.3:
            labels = ["performance", "customer-reported"]
        elif kind < 0.8:
            labels = [rng.choice(LABELS)]
        elif kind < 0.9:
            labels = rng.sample(LABELS, 2)
        else:
            labels = []
        spec: dict[str, Any] = {
            "number": number,
            "created_at": created,
            "title": f"{rng.choice(['Crash in', 'Slow', 'Improve', 'Typo in', 'Broken'])} {rng.choice(_TOPICS)}",
            "labels": labels,
            "user": rng.choice(_USERS),
            "comments": rng.randint(0, 8),
            "_touched": timedelta(minutes=rng.uniform(0, 30)),
        }
        if rng.random() < 0.75:
            spec["closed_at"] = created + timedelta(hours=rng.uniform(2, 24 * 30))
            spec["state_reason"] = "completed" if rng.random() < 0.8 else "not_planned"
        return spec

    @staticmethod
    def _release_spec(rng: random.Random, index: int, day: datetime) -> dict[str, Any]:
        created = day + timedelta(seconds=rng.randrange(86400))
        prerelease = rng.random() < 0.15
        spec: dict[str, Any] = {
            "created_at": created,
            "tag_name": f"v1.{index}.0" + ("-rc.1" if prerelease else ""),
            "prerelease": prerelease,
            "user": rng.choice(_USERS),
        }
        if rng.random() < 0.12:
            spec["published_at"] = None  # a draft, never published
        else:
            spec["published_at"] = created + timedelta(hours=rng.uniform(0, 30))
        return spec


def _pull_labels(rng: random.Random) -> list[str]:
    kind = rng.random()
    if kind < 0.4:
        return []
    if kind < 0.9:
        return [rng.choice(["bug", "enhancement", "documentation", "performance"])]
    return ["performance", "customer-reported"]


def _cut_at(spec: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    """The item as it stands at `now`: None if not created yet, later events undone."""
    spec = dict(spec)
    touched = spec.pop("_touched", timedelta(0))
    if spec["created_at"] > now:
        return None
    for name in ("merged_at", "closed_at", "published_at"):
        if spec.get(name) is not None and spec[name] > now:
            spec[name] = None
            if name == "closed_at":
                spec.pop("state_reason", None)
    if "published_at" in spec:
        return spec
    events = [t for t in (spec["created_at"], spec.get("merged_at"), spec.get("closed_at")) if t]
    # A last comment or label change shortly after the last event, never in the future.
    spec["updated_at"] = min(now, max(events) + touched)
    return spec


# --- the HTTP side -----------------------------------------------------------------------


def error_body(status: int, message: str) -> dict[str, Any]:
    """GitHub's error body."""
    docs = f"{DOCS}/overview/rate-limits-for-the-rest-api" if "rate limit" in message else DOCS
    if "rate limit" in message:
        message = "API rate limit exceeded for user ID 1."
    return {"message": message, "documentation_url": docs, "status": str(status)}


GITHUB = Api(JSON_UTF8, error_body)


def check_auth(request: SandboxRequest) -> SandboxResponse | None:
    """GitHub's answers to a missing or bad token."""
    problem = token_problem(request)
    if problem is None:
        return None
    return GITHUB.error(
        401, "Requires authentication" if problem == "missing" else "Bad credentials"
    )


class _GitHubRoutes:
    def __init__(self, github: GitHubSandboxData) -> None:
        self.github = github
        self._lock = threading.Lock()
        self._listings = Listings()
        self._used = 0
        self._reset = 0

    def pulls(self, request: SandboxRequest) -> SandboxResponse:
        repo, state = self._listed(request)
        query = request.query
        sort = query.get("sort", "created")
        direction = query.get("direction", "desc" if sort == "created" else "asc")
        key = "updated_at" if sort == "updated" else "created_at"

        def listed() -> list[dict[str, Any]]:
            return [p for p in repo.pulls if state == "all" or p["state"] == state]

        return self._page(request, repo, "pulls", listed, key, direction)

    def issues(self, request: SandboxRequest) -> SandboxResponse:
        repo, state = self._listed(request)
        query = request.query
        since = None
        if query.get("since"):
            try:
                since = timestamp(parse_moment(query["since"]))
            except ValueError:
                raise self._invalid("since", query["since"]) from None
        wanted = {
            name.strip().casefold() for name in query.get("labels", "").split(",") if name.strip()
        }

        def listed() -> list[dict[str, Any]]:
            items = [i for i in repo.issue_listing() if state == "all" or i["state"] == state]
            if since is not None:
                items = [i for i in items if i["updated_at"] >= since]
            if wanted:
                items = [
                    i
                    for i in items
                    if wanted <= {label["name"].casefold() for label in i["labels"]}
                ]
            return items

        sort = query.get("sort", "created")
        key = {"updated": "updated_at", "comments": "comments"}.get(sort, "created_at")
        return self._page(request, repo, "issues", listed, key, query.get("direction", "desc"))

    def releases(self, request: SandboxRequest) -> SandboxResponse:
        repo = self._repo(request)
        return self._page(
            request, repo, "releases", lambda: list(repo.releases), "created_at", "desc"
        )

    # -- helpers ------------------------------------------------------------------------

    def _repo(self, request: SandboxRequest) -> GitHubRepo:
        """The repository of the path; a 404 when there is none."""
        params = request.path_params
        try:
            repo = (
                self.github.by_id(int(params["repository_id"]))
                if "repository_id" in params
                else self.github.repo(f"{params['owner']}/{params['repo']}")
            )
        except ValueError:  # not a number
            repo = None
        if repo is None:
            raise ApiError("Not Found", status=404, headers=self._rate_headers())
        return repo

    def _listed(self, request: SandboxRequest) -> tuple[GitHubRepo, str]:
        """The repository of the path and the `state` its items are filtered by."""
        repo = self._repo(request)
        state = request.query.get("state", "open")
        if state not in _STATES:
            raise self._invalid("state", state)
        return repo, state

    def _page(
        self,
        request: SandboxRequest,
        repo: GitHubRepo,
        kind: str,
        listed: Callable[[], list[dict[str, Any]]],
        key: str,
        direction: str,
    ) -> SandboxResponse:
        def work_out() -> list[dict[str, Any]]:
            items = sorted(listed(), key=lambda item: (item[key], item.get("number", item["id"])))
            if direction != "asc":
                items.reverse()
            return items

        per_page = _int(request.query.get("per_page"), 30, 1, 100)
        page = _int(request.query.get("page"), 1, 1, 10**6)
        listing = (
            kind,
            id(repo),
            repo.id,
            tuple(sorted((n, v) for n, v in request.query_items if n not in ("page", "per_page"))),
        )
        items = self._listings.items(listing, page == 1, work_out)
        last_page = max(1, -(-len(items) // per_page))
        chosen = items[(page - 1) * per_page : page * per_page]
        headers = self._rate_headers()
        link = _link_header(request, f"/repositories/{repo.id}/{kind}", page, last_page, len(items))
        if link:
            headers["Link"] = link
        response = GITHUB.reply(chosen, 200, headers)
        response.served_root = (API_ROOT, request.base_url)  # its URLs point at this server
        return response

    def _rate_headers(self) -> dict[str, str]:
        now = time.time()
        with self._lock:
            if now >= self._reset:
                self._reset, self._used = int(now) + 3600, 0
            self._used += 1
            used, reset = self._used, self._reset
        return {
            "x-ratelimit-limit": str(RATE_LIMIT),
            "x-ratelimit-remaining": str(max(0, RATE_LIMIT - used)),
            "x-ratelimit-reset": str(reset),
            "x-ratelimit-used": str(used),
            "x-ratelimit-resource": "core",
            "x-github-api-version-selected": API_VERSION,
            "x-github-media-type": "github.v3; format=json",
        }

    def _invalid(self, name: str, value: str) -> ApiError:
        body = {
            "message": "Validation Failed",
            "errors": [{"resource": "Search", "field": name, "code": "invalid", "value": value}],
            "documentation_url": DOCS,
            "status": "422",
        }
        return ApiError("Validation Failed", status=422, headers=self._rate_headers(), body=body)


def _int(text: str | None, default: int, low: int, high: int) -> int:
    try:
        return min(high, max(low, int(text))) if text else default
    except ValueError:
        return default


def _link_header(
    request: SandboxRequest, path: str, page: int, last_page: int, total: int
) -> str | None:
    """GitHub's `Link` header: prev, next, last, first, with the request's own parameters."""
    if total == 0 or (page == 1 and last_page == 1):
        return None
    kept = [(name, value) for name, value in request.query_items if name != "page"]

    def url(number: int) -> str:
        return f"{request.base_url}{path}?{urlencode([*kept, ('page', str(number))])}"

    links = []
    if page > 1:
        links.append(f'<{url(min(page - 1, last_page))}>; rel="prev"')
    if page < last_page:
        links.append(f'<{url(page + 1)}>; rel="next"')
        links.append(f'<{url(last_page)}>; rel="last"')
    if page > 1:
        links.append(f'<{url(1)}>; rel="first"')
    return ", ".join(links)


def register(router: Router, data: SandboxData) -> None:
    """Serve GitHub's endpoints from `data.github` (what `okr sandbox` and the tests call)."""
    routes = _GitHubRoutes(GitHubSandboxData.of(data))
    for kind in ("pulls", "issues", "releases"):
        handler = getattr(routes, kind)
        for prefix in ("/repos/{owner}/{repo}", "/repositories/{repository_id}"):
            GITHUB.add(router, "GET", f"{prefix}/{kind}", handler, auth=check_auth)
