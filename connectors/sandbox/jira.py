"""Jira Cloud's part of the sandbox: issue search by JQL, in Jira's wire format.

`register(router, data)` (a built-in API of the sandbox, `registry.py`) serves
`POST /rest/api/3/search/jql` (and its `GET` form): a JQL query, `fields`, `maxResults`
and `nextPageToken` in; `issues`, `nextPageToken` and `isLast` out. The removed
`/rest/api/3/search` (and `/rest/api/2/search`) answers 410 Gone with Jira's body.
Requests need basic auth (`email:api-token`); without it, or with the token `invalid`,
the answer is Jira's 401.

The sandbox cannot run any JQL. It understands the subset the connector sends:
`field = value` / `field != value` on `project`, `issuetype` (`type`) and `status`,
comparisons of `created` and `resolved` (`resolutiondate`) with dates
(`"yyyy-MM-dd"`, `"yyyy/MM/dd"`, optionally with ` HH:mm`, read in `user_timezone`),
joined by `AND` and `OR`, with parentheses and a final `ORDER BY` of `created`,
`resolved`, `key` or `id` (the last two by id; `ASC`, the default here, or `DESC`;
ties by id). Anything else is a 400 with Jira's error body.

A query's matches are worked out once and kept for its later pages, and a query that
starts `(...) AND` reuses the kept matches of its parenthesised part (a search sliced by
`created` filters its search's matches rather than every issue again).

Every project key gets deterministic sample data on first request (seeded by the key;
a query without a `project` clause searches the projects seen so far):
support tickets and a few bugs and tasks every day from 2025-01-01 up to the sandbox's
horizon. Tests replace a project with hand-written issues through
`sandbox.data.jira.set_issues(...)`, make searches whose JQL holds some text fail with
`sandbox.data.jira.refuse(...)`, and read what the sandbox was asked in
`sandbox.data.jira.searches`.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import json
import random
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from okr_metrics.connectors.sandbox import api
from okr_metrics.connectors.sandbox.data import SandboxData, scaled
from okr_metrics.connectors.sandbox.server import Router, SandboxRequest, SandboxResponse

SITE = "https://your-domain.atlassian.net"  # replaced by the sandbox's own URL when served
DEFAULT_MAX_RESULTS = 50
MAX_RESULTS_CAP = 100  # what Jira allows per page when fields are asked for
REMOVED_V3 = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)
REMOVED_V2 = (
    "The requested API has been removed. Please use the newer, enhanced search-based API "
    "instead. Deprecation details are available at "
    "https://developer.atlassian.com/changelog/#CHANGE-2046."
)
NOT_AUTHENTICATED = "Client must be authenticated to access this resource."
UNBOUNDED = (
    "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
)

_ISSUE_TYPES = {"Support Ticket": "10005", "Bug": "10004", "Task": "10002", "Story": "10001"}
_SUMMARIES = [
    "Cannot log in",
    "Export times out",
    "Invoice shows the wrong amount",
    "Password reset email not received",
    "Dashboard loads slowly",
    "Question about SSO",
    "Webhook not firing",
]


def jira_timestamp(moment: datetime, zone: ZoneInfo) -> str:
    """Jira's format: `2026-10-15T09:12:33.123+0530` (milliseconds, no colon in the offset)."""
    return api.timestamp(moment, zone=zone, millis=True, z=False)


@dataclass(frozen=True)
class JiraIssue:
    """One issue as the sandbox keeps it; `*_text` is served verbatim when given."""

    id: int
    key: str
    project: str
    issuetype: str
    summary: str
    created: datetime
    resolved: datetime | None
    created_text: str | None = None
    resolved_text: str | None = None
    # The served `created` and `resolutiondate` per time zone, worked out on first use:
    # a quarter's searches serve each issue's instants again and again, and a big
    # sandbox's instants outnumber any shared cache of formatted times.
    _served_times: dict[ZoneInfo, tuple[str, str | None]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def status(self) -> str:
        return "Done" if self.resolved else "Open"

    def served_times(self, zone: ZoneInfo) -> tuple[str, str | None]:
        """(`created`, `resolutiondate`) as Jira writes them for a user in `zone`."""
        found = self._served_times.get(zone)
        if found is None:
            created = self.created_text or jira_timestamp(self.created, zone)
            resolved = None
            if self.resolved:
                resolved = self.resolved_text or jira_timestamp(self.resolved, zone)
            found = self._served_times[zone] = (created, resolved)
        return found


class JiraSandboxData(api.ApiData):
    """The issues of every project, generated on first use or set by tests."""

    name = "jira"

    def __init__(self, data: SandboxData) -> None:
        super().__init__(data)
        # The time zone of the API user's profile: Jira reads JQL dates and writes
        # timestamps in it.
        self.user_timezone = "UTC"
        self.max_results = api.Limits(MAX_RESULTS_CAP)  # issues a page holds at most
        self.searches: list[dict[str, Any]] = []  # every search request body, in order
        self._projects: dict[str, list[JiraIssue]] = {}
        self._versions: dict[str, int] = {}
        self._refusals: list[tuple[str, int, str]] = []

    # -- for tests --------------------------------------------------------------------

    def set_issues(self, project: str, issues: Iterable[Mapping[str, Any]]) -> None:
        """Replace a project's issues with these (`created`, optional `resolutiondate`,
        `issuetype` (default "Support Ticket"), `summary`, `key`, `id`).

        Timestamps are strings (served exactly as given, e.g. `...+0530`) or datetimes.
        """
        key = project.upper()
        built = []
        for number, spec in enumerate(issues, start=1):
            created, resolved = spec["created"], spec.get("resolutiondate")
            built.append(
                JiraIssue(
                    id=int(spec.get("id", _project_base_id(key) + number)),
                    key=str(spec.get("key", f"{key}-{number}")),
                    project=key,
                    issuetype=str(spec.get("issuetype", "Support Ticket")),
                    summary=str(spec.get("summary", f"Issue {number}")),
                    created=api.parse_moment(created),
                    resolved=api.parse_moment(resolved) if resolved else None,
                    created_text=created if isinstance(created, str) else None,
                    resolved_text=resolved if isinstance(resolved, str) else None,
                )
            )
        with self._lock:
            self._projects[key] = built
            self._versions[key] = self._versions.get(key, 0) + 1

    def restore(self, project: str) -> None:
        """Serve the project's generated issues again, after `set_issues` replaced them
        (a sandbox shared by several tests: one test's issues must not be the next's)."""
        key = project.upper()
        with self._lock:
            if self._projects.pop(key, None) is not None:
                self._versions[key] = self._versions.get(key, 0) + 1

    def refuse(self, jql_part: str, message: str, status: int = 400) -> None:
        """Answer every search whose JQL contains `jql_part` with `status` and Jira's
        error body saying `message` (until `stop_refusing`)."""
        with self._lock:
            self._refusals.append((jql_part, status, message))

    def stop_refusing(self) -> None:
        with self._lock:
            self._refusals.clear()

    def refusal(self, jql: str) -> api.ApiError | None:
        with self._lock:
            for part, status, message in self._refusals:
                if part in jql:
                    return api.ApiError(message, status=status)
        return None

    def set_max_results(self, size: int | None, project: str | None = None) -> None:
        """Cap the issues per page (of searches naming `project`, or of all); None: default."""
        with self._lock:
            self.max_results.set(size, project)

    def issues(self, project: str) -> list[JiraIssue]:
        """The project's issues (generated on first use)."""
        key = project.upper()
        with self._lock:
            if key not in self._projects:
                self._projects[key] = self._generate(key)
                self._versions[key] = self._versions.get(key, 0) + 1
            return list(self._projects[key])

    def version(self, project: str) -> int:
        with self._lock:
            return self._versions.get(project.upper(), 0)

    def cap_for(self, projects: Iterable[str]) -> int:
        with self._lock:
            return self.max_results.of(*projects)

    # -- generation -------------------------------------------------------------------

    def _generate(self, project: str) -> list[JiraIssue]:
        """Support tickets (20-50 a day, most resolved within 2 hours) and some other work.

        The random stream depends on the key only; the horizon merely cuts what has not
        happened yet, so two sandboxes agree on every day both have seen.
        """
        rng = random.Random(f"jira:{project}")
        now, volume = self.now, self.data.volume(self.name)
        issues: list[JiraIssue] = []
        day = datetime.combine(self.first_day, time.min, tzinfo=timezone.utc)
        base_id, number = _project_base_id(project), 0
        while day.date() <= now.date():
            # The share resolved within 2 hours improves slowly, from about 80% to 95%.
            elapsed = (day.date() - self.first_day).days / 730
            within_share = min(0.95, max(0.8, 0.8 + 0.12 * elapsed + rng.uniform(-0.02, 0.03)))
            kinds = ["Support Ticket"] * scaled(rng.randint(20, 50), volume) + [
                rng.choice(["Bug", "Task", "Story"])
                for _ in range(scaled(rng.randint(2, 8), volume))
            ]
            created_today = sorted((rng.randrange(86400), kind) for kind in kinds)
            for seconds, kind in created_today:
                number += 1
                created = day + timedelta(seconds=seconds, milliseconds=rng.randrange(1000))
                if kind == "Support Ticket":
                    hours = (
                        rng.uniform(0.2, 2.0)
                        if rng.random() < within_share
                        else rng.uniform(2.0, 30.0)
                    )
                else:
                    hours = rng.uniform(4, 24 * 20) if rng.random() < 0.7 else None
                summary = rng.choice(_SUMMARIES)
                if created > now:
                    continue
                resolved = created + timedelta(hours=hours) if hours is not None else None
                issues.append(
                    JiraIssue(
                        id=base_id + number,
                        key=f"{project}-{number}",
                        project=project,
                        issuetype=kind,
                        summary=summary,
                        created=created,
                        resolved=resolved if resolved and resolved <= now else None,
                    )
                )
            day += timedelta(days=1)
        return issues


def _project_base_id(project: str) -> int:
    digest = hashlib.sha256(project.encode()).digest()
    return 10_000 + int.from_bytes(digest[:3], "big") * 1000


# --- JQL: the subset the connector sends ------------------------------------------------


class JqlError(api.BadRequest, ValueError):
    """A query the sandbox cannot run; the message is Jira's `errorMessages` entry."""


_TOKEN = re.compile(
    r"""\s*(?:(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<op>!=|>=|<=|=|>|<|~|!~)"""
    r"""|(?P<paren>[(),])|(?P<word>[^\s()=!<>~,"']+))"""
)
_DATE_FIELDS = {"created": "created", "createddate": "created", "resolved": "resolved"}
_DATE_FIELDS["resolutiondate"] = "resolved"
_TEXT_FIELDS = {"project": "project", "issuetype": "issuetype", "type": "issuetype"}
_TEXT_FIELDS["status"] = "status"
_DATE_FORMATS = ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d")
_ORDER_FIELDS = {"created": "created", "createddate": "created", "resolved": "resolved"}
_ORDER_FIELDS.update(resolutiondate="resolved", key="id", issuekey="id", id="id")

Predicate = Callable[[JiraIssue], bool]


@dataclass
class Query:
    predicate: Predicate
    projects: set[str]  # the keys of `project = KEY` clauses
    # `ORDER BY`: (attribute, descending) pairs; none: by id
    order: list[tuple[str, bool]] = field(default_factory=list)
    # a query `(<base>) AND <rest>`: the base's text and the rest's predicate
    base: str | None = None
    rest: Predicate | None = None
    # when the rest is only `created` comparisons: (operator, moment) each
    rest_bounds: list[tuple[str, datetime]] | None = None


def parse_jql(jql: str, zone: ZoneInfo) -> Query:
    spans: list[tuple[int, int]] = []
    tokens = _tokenize(jql, spans)
    parser = _JqlParser(tokens, zone)
    query = parser.parse()
    if parser.base is not None:
        first, last = parser.base
        query.base = jql[spans[first][1] : spans[last][0]]
        query.rest, query.rest_bounds = parser.rest, parser.rest_bounds
    return query


def _tokenize(jql: str, spans: list[tuple[int, int]] | None = None) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(jql):
        if jql[position:].strip() == "":
            break
        found = _TOKEN.match(jql, position)
        if not found or found.end() == position:
            raise JqlError(
                f"Error in the JQL Query: The character '{jql[position]}' is a reserved JQL character."
            )
        kind = found.lastgroup or "word"
        text = found.group(kind)
        if kind == "string":
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        tokens.append((kind, text))
        if spans is not None:
            spans.append((found.start(kind), found.end()))
        position = found.end()
    return tokens


class _JqlParser:
    def __init__(self, tokens: list[tuple[str, str]], zone: ZoneInfo) -> None:
        self.tokens, self.position, self.zone = tokens, 0, zone
        self.projects: set[str] = set()
        # `(<base>) AND <rest>` at the top: the tokens of the parentheses, the rest's terms
        self.base: tuple[int, int] | None = None
        self.rest: Predicate | None = None
        self.created_bounds: dict[Predicate, tuple[str, datetime]] = {}  # by clause
        self.rest_bounds: list[tuple[str, datetime]] | None = None

    def parse(self) -> Query:
        if not self.tokens or self._at_order_by():
            raise JqlError(UNBOUNDED)
        predicate = self._expression(top=True)
        order: list[tuple[str, bool]] = []
        if self._at_order_by():
            order = self._order_by()
        if self.position < len(self.tokens):
            self._unsupported(self.tokens[self.position][1])
        return Query(predicate, self.projects, order)

    def _order_by(self) -> list[tuple[str, bool]]:
        self.position += 1
        if not self._peek_word("by"):
            raise JqlError("Error in the JQL Query: Expecting 'by' but got 'EOF'.")
        self.position += 1
        order = []
        while True:
            kind, text = self._next("a field name")
            name = text.lower()
            attribute = _ORDER_FIELDS.get(name) if kind in ("word", "string") else None
            if attribute is None:
                self._unsupported(f"ORDER BY {text}")
            descending = False
            if self._peek_word("asc") or self._peek_word("desc"):
                descending = self.tokens[self.position][1].lower() == "desc"
                self.position += 1
            order.append((str(attribute), descending))
            if self.position < len(self.tokens) and self.tokens[self.position] == ("paren", ","):
                self.position += 1
                continue
            return order

    def _expression(self, top: bool = False) -> Predicate:
        # OR binds looser than AND, as in JQL.
        alternatives = [self._conjunction(top)]
        while self._peek_word("or"):
            self.position += 1
            alternatives.append(self._conjunction())
            self.base = self.rest = self.rest_bounds = None  # not `(<base>) AND <rest>`
        if len(alternatives) == 1:
            return alternatives[0]
        return lambda issue: any(alternative(issue) for alternative in alternatives)

    def _conjunction(self, top: bool = False) -> Predicate:
        opening = self.position
        terms = [self._term()]
        closing = self.position - 1
        while self._peek_word("and"):
            self.position += 1
            terms.append(self._term())
        if top and len(terms) > 1 and self.tokens[opening] == ("paren", "("):
            # the first term is a parenthesised group (`_term` read through its `)`)
            rest = terms[1:]
            self.base = (opening, closing)
            self.rest = rest[0] if len(rest) == 1 else lambda i: all(t(i) for t in rest)
            if all(term in self.created_bounds for term in rest):
                self.rest_bounds = [self.created_bounds[term] for term in rest]
        if len(terms) == 1:
            return terms[0]
        return lambda issue: all(term(issue) for term in terms)

    def _term(self) -> Predicate:
        kind, text = self._next("a field name or '('")
        if (kind, text) == ("paren", "("):
            inner = self._expression()
            if self._next("')'") != ("paren", ")"):
                raise JqlError("Error in the JQL Query: Expecting ')' before the end of the query.")
            return inner
        if kind != "word" and kind != "string":
            raise JqlError(f"Error in the JQL Query: Expecting a field name but got '{text}'.")
        if text.lower() == "not":
            self._unsupported("NOT")
        name = text.lower()
        op_kind, op = self._next("an operator")
        if op_kind != "op":
            if op_kind == "word":
                self._unsupported(op.upper())
            raise JqlError(f"Error in the JQL Query: Expecting operator but got '{op}'.")
        value_kind, value = self._next("a value")
        if value_kind not in ("word", "string"):
            raise JqlError(
                f"Error in the JQL Query: Expecting either a value, list or function but got '{value}'."
            )
        if name in _DATE_FIELDS:
            return self._date_clause(_DATE_FIELDS[name], text, op, value)
        if name in _TEXT_FIELDS:
            return self._text_clause(_TEXT_FIELDS[name], op, value)
        raise JqlError(f"Field '{text}' does not exist or you do not have permission to view it.")

    def _text_clause(self, attribute: str, op: str, value: str) -> Predicate:
        if op not in ("=", "!="):
            self._unsupported(op)
        wanted = value.casefold()
        if attribute == "project" and op == "=":
            self.projects.add(value.upper())

        def matches(issue: JiraIssue) -> bool:
            return (str(getattr(issue, attribute)).casefold() == wanted) == (op == "=")

        return matches

    def _date_clause(self, attribute: str, written: str, op: str, value: str) -> Predicate:
        moment = None
        for pattern in _DATE_FORMATS:
            try:
                moment = datetime.strptime(value, pattern).replace(tzinfo=self.zone)
                break
            except ValueError:
                continue
        if moment is None:
            raise JqlError(
                f"Date value '{value}' for field '{written}' is invalid. Valid formats include: "
                "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period "
                "format e.g. '-5d', '4w 2d'."
            )
        compare = {
            "=": lambda a: a == moment,
            "!=": lambda a: a != moment,
            ">": lambda a: a > moment,
            ">=": lambda a: a >= moment,
            "<": lambda a: a < moment,
            "<=": lambda a: a <= moment,
        }.get(op)
        if compare is None:
            self._unsupported(op)

        def matches(issue: JiraIssue) -> bool:
            stamp = issue.created if attribute == "created" else issue.resolved
            return stamp is not None and compare(stamp)  # type: ignore[misc]

        if attribute == "created" and op in ("<", "<=", ">", ">="):
            self.created_bounds[matches] = (op, moment)
        return matches

    # -- helpers ------------------------------------------------------------------------

    def _next(self, expected: str) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            raise JqlError(f"Error in the JQL Query: Expecting {expected} but got 'EOF'.")
        token = self.tokens[self.position]
        self.position += 1
        return token

    def _peek_word(self, word: str) -> bool:
        return (
            self.position < len(self.tokens)
            and self.tokens[self.position][0] == "word"
            and self.tokens[self.position][1].lower() == word
        )

    def _at_order_by(self) -> bool:
        return self._peek_word("order")

    def _unsupported(self, what: str) -> None:
        raise JqlError(
            f"Error in the JQL Query: the okr-metrics sandbox does not support '{what}' "
            "(it understands project, issuetype and status with = or !=, created and resolved "
            "compared with dates, AND, OR, parentheses and ORDER BY)."
        )


# --- the HTTP side -----------------------------------------------------------------------


def error_body(status: int, message: str) -> dict[str, Any]:
    """Jira's error body."""
    return {"errorMessages": [message], "errors": {}}


JIRA = api.Api("application/json;charset=UTF-8", error_body)


def check_auth(request: SandboxRequest) -> SandboxResponse | None:
    """Jira Cloud's answer to missing or bad basic-auth credentials."""
    if api.token_problem(request, scheme="basic") is None:
        return None
    headers = {
        "Content-Type": "text/plain;charset=UTF-8",
        "WWW-Authenticate": 'OAuth realm="https%3A%2F%2Fyour-domain.atlassian.net"',
        "X-Seraph-LoginReason": "AUTHENTICATED_FAILED",
    }
    return SandboxResponse(401, NOT_AUTHENTICATED, headers)


class _JiraRoutes:
    def __init__(self, jira: JiraSandboxData) -> None:
        self.jira = jira
        # Keyed by the projects' versions as well, so kept matches never go stale.
        self._matches = api.Listings(64)
        # a kept list of matches (by id) -> (it, its issues by `created`, their `created`)
        self._by_created: OrderedDict[int, tuple[list, list, list]] = OrderedDict()
        self._lock = threading.Lock()

    def search(self, request: SandboxRequest) -> SandboxResponse:
        if request.method == "POST":
            body = request.body if isinstance(request.body, Mapping) else None
            if body is None:
                raise api.BadRequest("Request body is missing or not a JSON object.")
        else:  # the GET form: the same parameters in the query string
            body = dict(request.query)
            fields = [value for name, value in request.query_items if name == "fields"]
            if fields:
                body["fields"] = [f for value in fields for f in value.split(",")]
        with self.jira._lock:
            self.jira.searches.append(json.loads(json.dumps(body)))
        jql = body.get("jql")
        if not isinstance(jql, str) or not jql.strip():
            raise api.BadRequest(UNBOUNDED)
        refused = self.jira.refusal(jql)
        if refused is not None:
            raise refused
        zone = ZoneInfo(self.jira.user_timezone)
        query = parse_jql(jql, zone)
        try:
            requested = int(body.get("maxResults", DEFAULT_MAX_RESULTS))
        except (TypeError, ValueError):
            raise api.BadRequest("The value of 'maxResults' is invalid.") from None
        size = max(1, min(requested, self.jira.cap_for(query.projects)))
        offset = 0
        token = body.get("nextPageToken")
        if token:
            offset = _read_token(token, jql)
            if offset is None:
                raise api.BadRequest("The provided next page token is invalid or expired.")
        matched = self._matched(jql, query)
        page = matched[offset : offset + size]
        fields = _requested_fields(body.get("fields"))
        answer: dict[str, Any] = {
            "issues": [_served(issue, fields, request.base_url, zone) for issue in page]
        }
        if offset + size < len(matched):
            answer["nextPageToken"] = _make_token(jql, offset + size)
            answer["isLast"] = False
        else:
            answer["isLast"] = True
        return JIRA.reply(answer)

    def removed(self, request: SandboxRequest) -> SandboxResponse:
        message = REMOVED_V2 if request.path.startswith("/rest/api/2/") else REMOVED_V3
        raise api.ApiError(message, status=410)

    def _matched(self, jql: str, query: Query) -> list[JiraIssue]:
        projects = sorted(query.projects)
        if not projects:
            # Without a project clause: every project the sandbox has seen.
            projects = sorted(self.jira._projects)
        key = (jql, self.jira.user_timezone, tuple((p, self.jira.version(p)) for p in projects))
        return self._matches.items(key, False, lambda: self._work_out(query, projects))

    def _work_out(self, query: Query, projects: list[str]) -> list[JiraIssue]:
        if query.base is not None and query.rest is not None:
            # `(<base>) AND <rest>`: the base's matches (kept), then the rest's terms.
            for project in query.projects:
                self.jira.issues(project)  # a base without a project clause sees these too
            base = parse_jql(query.base, ZoneInfo(self.jira.user_timezone))
            within = self._matched(query.base, base)
            if query.rest_bounds is not None:
                found = self._created_between(within, query.rest_bounds)
            else:
                rest = query.rest
                found = [issue for issue in within if rest(issue)]
        else:
            found = [
                issue
                for project in projects
                for issue in self.jira.issues(project)
                if query.predicate(issue)
            ]
        found.sort(key=lambda issue: issue.id)
        for attribute, descending in reversed(query.order):
            found.sort(key=_sort_key(attribute), reverse=descending)
        return found

    def _created_between(
        self, issues: list[JiraIssue], bounds: list[tuple[str, datetime]]
    ) -> list[JiraIssue]:
        """The issues whose `created` meets every bound, found by bisection in the
        issues sorted by `created` (kept for the slices of one search)."""
        with self._lock:
            by_created = self._by_created.get(id(issues))
        if by_created is None or by_created[0] is not issues:
            ordered = sorted(issues, key=lambda issue: issue.created)
            by_created = (issues, ordered, [issue.created for issue in ordered])
            with self._lock:
                self._by_created[id(issues)] = by_created
                while len(self._by_created) > 16:
                    self._by_created.popitem(last=False)
        _, ordered, moments = by_created
        low, high = 0, len(ordered)
        for op, moment in bounds:
            if op == ">=":
                low = max(low, bisect.bisect_left(moments, moment))
            elif op == ">":
                low = max(low, bisect.bisect_right(moments, moment))
            elif op == "<":
                high = min(high, bisect.bisect_left(moments, moment))
            else:
                high = min(high, bisect.bisect_right(moments, moment))
        return ordered[low:high]


def _sort_key(attribute: str) -> Callable[[JiraIssue], tuple]:
    """An `ORDER BY` field's key; an unresolved issue sorts after every resolved one."""
    if attribute == "id":
        return lambda issue: (issue.id,)
    if attribute == "created":
        return lambda issue: (issue.created,)
    return lambda issue: (issue.resolved is None, issue.resolved or issue.created)


def _make_token(jql: str, offset: int) -> str:
    digest = hashlib.sha256(jql.encode()).hexdigest()[:12]
    raw = json.dumps({"q": digest, "at": offset}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_token(token: Any, jql: str) -> int | None:
    if not isinstance(token, str):
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        content = json.loads(raw)
        digest = hashlib.sha256(jql.encode()).hexdigest()[:12]
        if content.get("q") != digest:
            return None
        return int(content["at"])
    except (ValueError, TypeError, KeyError, binascii.Error):
        return None


def _requested_fields(fields: Any) -> set[str]:
    if isinstance(fields, str):
        fields = fields.split(",")
    if not isinstance(fields, list):
        return set()  # Jira's default: ids only
    names = {str(f).strip() for f in fields}
    if names & {"*all", "*navigable"}:
        names |= {
            "created",
            "resolutiondate",
            "summary",
            "issuetype",
            "project",
            "status",
            "updated",
        }
    return names


def _served(issue: JiraIssue, fields: set[str], base_url: str, zone: ZoneInfo) -> dict[str, Any]:
    """An issue in the wire format of the search response (only the fields asked for are
    worked out: a page is a hundred issues)."""
    wanted = fields - {"id", "key"}
    if not wanted:
        return {"id": str(issue.id)}
    served: dict[str, Any] = {
        "expand": "",
        "id": str(issue.id),
        "self": f"{base_url}/rest/api/3/issue/{issue.id}",
        "key": issue.key,
    }
    found: dict[str, Any] = {}
    for name in sorted(wanted):
        if name in _FIELD_VALUES:
            found[name] = _FIELD_VALUES[name](issue, base_url, zone)
    served["fields"] = found
    return served


def _created(issue: JiraIssue, zone: ZoneInfo) -> str:
    return issue.served_times(zone)[0]


def _resolved(issue: JiraIssue, zone: ZoneInfo) -> str | None:
    return issue.served_times(zone)[1]


def _issuetype(issue: JiraIssue, base_url: str) -> dict[str, Any]:
    type_id = _ISSUE_TYPES.get(issue.issuetype, "10000")
    return {
        "self": f"{base_url}/rest/api/3/issuetype/{type_id}",
        "id": type_id,
        "name": issue.issuetype,
        "subtask": False,
    }


# A served field's value: (issue, base_url, zone) -> value
_FIELD_VALUES: dict[str, Callable[[JiraIssue, str, ZoneInfo], Any]] = {
    "created": lambda issue, _, zone: _created(issue, zone),
    "resolutiondate": lambda issue, _, zone: _resolved(issue, zone),
    "updated": lambda issue, _, zone: _resolved(issue, zone) or _created(issue, zone),
    "summary": lambda issue, _, __: issue.summary,
    "issuetype": lambda issue, base_url, _: _issuetype(issue, base_url),
    "project": lambda issue, base_url, _: {
        "self": f"{base_url}/rest/api/3/project/{issue.project}",
        "key": issue.project,
        "name": issue.project.title(),
    },
    "status": lambda issue, _, __: {"name": issue.status},
}


def register(router: Router, data: SandboxData) -> None:
    """Serve Jira's search endpoints from `data.jira` (what `okr sandbox` and the tests call)."""
    routes = _JiraRoutes(JiraSandboxData.of(data))
    for method in ("POST", "GET"):
        JIRA.add(router, method, "/rest/api/3/search/jql", routes.search, auth=check_auth)
        for version in ("2", "3", "latest"):
            JIRA.add(router, method, f"/rest/api/{version}/search", routes.removed)
