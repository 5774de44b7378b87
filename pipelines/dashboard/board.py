"""The dashboard's read model: what each page shows, read from the warehouse per request.

Plain SQLAlchemy Core over `okr_metrics.warehouse.schema` (and the `kr_weekly` and
`quarter_summary` views), each query narrowed by quarter and as-of day so it runs on the
tables' indexes. Called by `dashboard.web` (the pages) and `dashboard.report` (the
mailable file); no HTTP and no Dagster here.

A page is "as of" one day: the quarter's newest scored day on or before the day asked
for (the newest scored day of all when none is asked for), and it reads no row dated
after it, so `?as_of=` shows the board as it stood that day.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    Connection,
    Date,
    Float,
    Integer,
    String,
    column,
    func,
    select,
    table,
    text,
    type_coerce,
)

from okr_metrics.pipelines.dashboard.formats import (
    MISSING,
    ValueFormat,
    format_score,
    format_share,
    grade,
    is_missing,
    value_format,
)
from okr_metrics.pipelines.vocabulary.quarters import Quarter
from okr_metrics.warehouse.schema import (
    checkins,
    kr_definitions,
    kr_final_scores,
    kr_scores,
    metric_observations,
    objective_scores,
    rejected_observations,
    source_runs,
)

kr_weekly = table(
    "kr_weekly",
    column("quarter", String),
    column("kr_id", String),
    column("objective_id", String),
    column("kr_title", String),
    column("owner", String),
    column("week_start", Date),
    column("as_of", Date),
    column("value", Float),
    column("previous_value", Float),
    column("value_change", Float),
    column("score", Float),
    column("previous_score", Float),
    column("score_change", Float),
    column("status", String),
    column("previous_status", String),
    column("status_changed", Integer),
    column("stale", Boolean),
    column("became_stale", Integer),
    column("last_observed", Date),
)

quarter_summary = table(
    "quarter_summary",
    column("quarter", String),
    column("objective_id", String),
    column("title", String),
    column("owner", String),
    column("as_of", Date),
    column("final_score", Float),
    column("status", String),
    column("coverage", Float),
    column("krs", Integer),
    column("krs_with_data", Integer),
    column("share_at_or_above_0_7", Float),
    column("mean_progress", Float),
    column("target_calibration", String),
)

STATUS_LABELS = {
    "achieved": "achieved",
    "on_track": "on track",
    "at_risk": "at risk",
    "off_track": "off track",
    "no_data": "no data",
    "baseline": "baseline — not scored",
}
# Worst first: the order a weekly check-in reads them in.
STATUS_RANK = {
    "off_track": 0,
    "at_risk": 1,
    "no_data": 2,
    "on_track": 3,
    "achieved": 4,
    "baseline": 5,
}
# KR types whose progress is paced against expected_progress (maintain KRs are not).
PACED_TYPES = ("increase", "decrease", "milestone")

# The kr_scores columns the overview reads for each KR.
_KR_COLUMNS = [
    kr_scores.c[name]
    for name in (
        "quarter",
        "objective_id",
        "kr_id",
        "kr_title",
        "owner",
        "as_of",
        "kr_type",
        "value",
        "start",
        "target",
        "progress",
        "score",
        "expected_progress",
        "status",
        "stale",
        "last_observed",
        "forecast_value",
        "forecast_score",
        "forecast_method",
        "forecast_low",
        "forecast_high",
        "p_achieve",
        "definition_hash",
        "commitment",
        "low",
        "high",
        "carried",
    )
]


# ---------------------------------------------------------------------------
# Which quarter, which day, which team


@dataclass(frozen=True)
class View:
    """What a page shows: a quarter as of one scored day, for one team or all."""

    quarter: Quarter | None
    as_of: date | None  # None: nothing scored on or before the day asked for
    team: str | None = None
    requested_as_of: date | None = None
    requested_quarter: str | None = None
    newest: date | None = None  # the quarter's newest scored day
    teams: tuple[str, ...] = ()
    quarters: tuple[str, ...] = ()

    @property
    def is_latest(self) -> bool:
        return self.as_of is not None and self.as_of == self.newest

    @property
    def expected_progress(self) -> float | None:
        if self.quarter is None or self.as_of is None:
            return None
        return self.quarter.days_elapsed(self.as_of) / self.quarter.days

    def query(self, **changes: Any) -> dict[str, str]:
        """The query string that keeps this view (team, as_of, quarter), with `changes`."""
        params = {
            "team": self.team or "",
            "as_of": self.requested_as_of.isoformat() if self.requested_as_of else "",
            "quarter": self.requested_quarter or "",
        }
        params.update({key: "" if value is None else str(value) for key, value in changes.items()})
        return {key: value for key, value in params.items() if value}


class BadRequest(ValueError):
    """A query parameter the board cannot use: one line naming it."""


def parse_as_of(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"as_of={text!r}: expected a day as YYYY-MM-DD") from None


def parse_quarter(text: str | None) -> Quarter | None:
    if not text:
        return None
    try:
        return Quarter.parse(text)
    except ValueError as error:
        raise BadRequest(f"quarter: {error}") from None


def resolve_view(
    connection: Connection,
    quarter: str | None = None,
    as_of: str | date | None = None,
    team: str | None = None,
) -> View:
    """The view for the page's `?quarter=`, `?as_of=` and `?team=`.

    A day asked for picks its own quarter (it wins over `quarter`); a quarter alone is
    shown as of its newest scored day; neither: the newest scored day of all.
    """
    requested = as_of if isinstance(as_of, date) else parse_as_of(as_of)
    chosen = parse_quarter(quarter)
    if requested is not None:
        chosen = Quarter.containing(requested)
    if chosen is None:
        newest_day = connection.execute(select(func.max(kr_scores.c.as_of))).scalar()
        if newest_day is None:
            return View(None, None, team or None, quarters=())
        chosen = Quarter.parse(
            connection.execute(
                select(kr_scores.c.quarter).where(kr_scores.c.as_of == newest_day).limit(1)
            ).scalar_one()
        )
    name = str(chosen)
    newest = connection.execute(
        select(func.max(kr_scores.c.as_of)).where(kr_scores.c.quarter == name)
    ).scalar()
    shown = newest
    if requested is not None and newest is not None and requested < newest:
        shown = connection.execute(
            select(func.max(kr_scores.c.as_of)).where(
                kr_scores.c.quarter == name, kr_scores.c.as_of <= requested
            )
        ).scalar()
    quarters = tuple(
        connection.execute(
            select(objective_scores.c.quarter).distinct().order_by(objective_scores.c.quarter)
        ).scalars()
    )
    teams: tuple[str, ...] = ()
    if shown is not None:
        owners = set(
            connection.execute(
                select(kr_scores.c.owner)
                .where(kr_scores.c.quarter == name, kr_scores.c.as_of == shown)
                .distinct()
            ).scalars()
        ) | set(
            connection.execute(
                select(objective_scores.c.owner)
                .where(objective_scores.c.quarter == name, objective_scores.c.as_of == shown)
                .distinct()
            ).scalars()
        )
        teams = tuple(sorted(owner for owner in owners if owner))
    return View(
        quarter=chosen,
        as_of=shown,
        team=team or None,
        requested_as_of=requested,
        requested_quarter=quarter or None,
        newest=newest,
        teams=teams,
        quarters=quarters,
    )


# ---------------------------------------------------------------------------
# The quarter overview


class ScoredRow:
    """A warehouse row shown on a page: its columns read as attributes, and the score
    and status as the pages write them. Subclasses hold the row in `row`."""

    row: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["row"][name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def score_text(self) -> str:
        return format_score(self.row["score"])

    @property
    def grade(self) -> str:
        return grade(self.row["score"], self.row.get("commitment"))

    @property
    def committed(self) -> bool:
        return self.row.get("commitment") == "committed"

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.row["status"], self.row["status"])

    @property
    def raw_score(self) -> str:
        score = self.row["score"]
        return "" if is_missing(score) else repr(float(score))


@dataclass
class KeyResultCard(ScoredRow):
    """One KR as of the view's day, with its quarter so far (for the trend chart)."""

    row: dict[str, Any]
    fmt: ValueFormat
    objective_owner: str | None = None
    trend: list[tuple[date, float | None]] = field(default_factory=list)
    definition: dict[str, Any] | None = None

    @property
    def title(self) -> str:
        return self.row["kr_title"]

    @property
    def value_text(self) -> str:
        return self.fmt(self.row["value"])

    @property
    def start_text(self) -> str:
        return self.fmt(self.row["start"])

    @property
    def target_text(self) -> str:
        if self.row["kr_type"] == "maintain_between":
            return f"{self.fmt(self.row.get('low'))} to {self.fmt(self.row.get('high'))}"
        if self.row["kr_type"] == "baseline":
            return "not scored"
        return self.fmt(self.row["target"])

    @property
    def carried_text(self) -> str | None:
        """A running total's part carried from earlier quarters."""
        carried = self.row.get("carried")
        return None if is_missing(carried) else self.fmt(carried)

    @property
    def checkpoints(self) -> list[tuple[date, float]]:
        """The phased targets of the definition the row was scored with."""
        found = []
        for checkpoint in (self.definition or {}).get("checkpoints") or ():
            try:
                found.append((date.fromisoformat(checkpoint["date"]), float(checkpoint["target"])))
            except (KeyError, TypeError, ValueError):
                continue
        return found

    @property
    def forecast_text(self) -> str:
        return self.fmt(self.row["forecast_value"])

    @property
    def band_text(self) -> str | None:
        low, high = self.row.get("forecast_low"), self.row.get("forecast_high")
        if is_missing(low) or is_missing(high):
            return None
        return f"{self.fmt(low)} – {self.fmt(high)}"

    @property
    def p_achieve_text(self) -> str | None:
        chance = self.row.get("p_achieve")
        return None if is_missing(chance) else format_share(chance, 0)

    @property
    def bar_percent(self) -> float:
        score = self.row["score"]
        return 0.0 if is_missing(score) else round(max(0.0, min(1.0, score)) * 100, 1)

    @property
    def progress_text(self) -> str:
        progress = self.row["progress"]
        return MISSING if is_missing(progress) else format_share(progress, 0)

    @property
    def expected_percent(self) -> float | None:
        """Where the expected-progress mark sits on the bar; None for maintain KRs."""
        expected = self.row["expected_progress"]
        if self.row["kr_type"] not in PACED_TYPES or is_missing(expected):
            return None
        return round(max(0.0, min(1.0, expected)) * 100, 1)


@dataclass
class ObjectiveCard(ScoredRow):
    row: dict[str, Any]
    key_results: list[KeyResultCard] = field(default_factory=list)

    @property
    def coverage_text(self) -> str:
        coverage = self.row["coverage"]
        return MISSING if is_missing(coverage) else format_share(coverage, 0)


@dataclass(frozen=True)
class Attention:
    """A KR whose chance to end the quarter achieved fell this week."""

    kr_id: str
    kr_title: str
    owner: str | None
    before_as_of: date
    before: float
    now: float

    @property
    def drop(self) -> float:
        return self.before - self.now

    @property
    def text(self) -> str:
        return f"{format_share(self.before, 0)} → {format_share(self.now, 0)}"


ATTENTION_DAYS = 7
ATTENTION_LIMIT = 5
# A drop smaller than the shown precision (85% -> 85%) is no news.
ATTENTION_MIN_DROP = 0.005


def needs_attention(
    connection: Connection,
    quarter: str,
    as_of: date,
    kr_ids: set[str] | None = None,
    limit: int = ATTENTION_LIMIT,
) -> list[Attention]:
    """The KRs whose `p_achieve` dropped most since the week before `as_of`.

    "The week before" is the newest scored day of the quarter at least 7 days before
    `as_of`; only drops of at least `ATTENTION_MIN_DROP` count, largest first, at most `limit` (`kr_ids`: only these).
    """
    before_day = connection.execute(
        select(func.max(kr_scores.c.as_of)).where(
            kr_scores.c.quarter == quarter,
            kr_scores.c.as_of <= as_of - timedelta(days=ATTENTION_DAYS),
        )
    ).scalar()
    if before_day is None:
        return []
    rows = connection.execute(
        select(
            kr_scores.c.kr_id,
            kr_scores.c.kr_title,
            kr_scores.c.owner,
            kr_scores.c.as_of,
            kr_scores.c.p_achieve,
        ).where(
            kr_scores.c.quarter == quarter,
            kr_scores.c.as_of.in_([before_day, as_of]),
            kr_scores.c.p_achieve.is_not(None),
        )
    ).all()
    before = {row.kr_id: row.p_achieve for row in rows if row.as_of == before_day}
    found = [
        Attention(row.kr_id, row.kr_title, row.owner, before_day, before[row.kr_id], row.p_achieve)
        for row in rows
        if row.as_of == as_of
        and row.kr_id in before
        and (kr_ids is None or row.kr_id in kr_ids)
        and before[row.kr_id] - row.p_achieve >= ATTENTION_MIN_DROP
    ]
    found.sort(key=lambda item: (-item.drop, item.kr_id))
    return found[:limit]


@dataclass
class Overview:
    view: View
    objectives: list[ObjectiveCard]
    attention: list[Attention] = field(default_factory=list)
    # KRs whose owners' confidence disagrees with their status (the kr_confidence view).
    disagreements: list[dict[str, Any]] = field(default_factory=list)
    # The quarter's frozen grades (kr_final_scores), once it has closed.
    final_grades: list[dict[str, Any]] = field(default_factory=list)

    @property
    def key_results(self) -> list[KeyResultCard]:
        return [kr for objective in self.objectives for kr in objective.key_results]

    def card(self, kr_id: str) -> KeyResultCard:
        return next(kr for kr in self.key_results if kr.kr_id == kr_id)

    def status_counts(self) -> list[tuple[str, str, int]]:
        counts: dict[str, int] = defaultdict(int)
        for kr in self.key_results:
            counts[kr.row["status"]] += 1
        order = ("achieved", "on_track", "at_risk", "off_track", "no_data")
        return [(status, STATUS_LABELS[status], counts[status]) for status in order]


def _ranked(ids: Sequence[str], order: Sequence[str]) -> list[str]:
    """`ids` in the definitions' order; ids it does not list go last, by name."""
    rank = {item: index for index, item in enumerate(order)}
    return sorted(ids, key=lambda item: (rank.get(item, len(rank)), item))


def _definitions(connection: Connection, quarter: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Each (kr_id, definition_hash) of the quarter's kr_definitions, with its JSON parsed."""
    query = select(
        kr_definitions.c.kr_id,
        kr_definitions.c.definition_hash,
        kr_definitions.c.definition,
        kr_definitions.c.metric_keys,
    ).where(kr_definitions.c.quarter == quarter)
    found = {}
    for kr_id, definition_hash, definition, metric_keys in connection.execute(query):
        found[(kr_id, definition_hash)] = {
            "definition": _json(definition, {}),
            "metric_keys": _json(metric_keys, []),
        }
    return found


def _json(text: str | None, default: Any) -> Any:
    try:
        return json.loads(text) if text else default
    except ValueError:
        return default


def _shown(team: str | None, kr_owner: str | None, objective_owner: str | None) -> bool:
    """The team filter: a team sees its own KRs and every KR of the objectives it owns."""
    return team is None or team in (kr_owner, objective_owner)


def load_overview(
    connection: Connection, view: View, order: Sequence[str] = (), trends: bool = True
) -> Overview:
    """Every objective of the view's day with its KRs (team-filtered), and their trends."""
    if view.quarter is None or view.as_of is None:
        return Overview(view, [])
    quarter = str(view.quarter)
    objective_rows = {
        row["objective_id"]: dict(row)
        for row in connection.execute(
            select(objective_scores).where(
                objective_scores.c.quarter == quarter, objective_scores.c.as_of == view.as_of
            )
        ).mappings()
    }
    kr_rows = [
        dict(row)
        for row in connection.execute(
            select(*_KR_COLUMNS).where(
                kr_scores.c.quarter == quarter, kr_scores.c.as_of == view.as_of
            )
        ).mappings()
    ]
    definitions = _definitions(connection, quarter)
    by_objective: dict[str, list[KeyResultCard]] = defaultdict(list)
    for row in kr_rows:
        objective = objective_rows.get(row["objective_id"])
        objective_owner = objective["owner"] if objective else None
        if not _shown(view.team, row["owner"], objective_owner):
            continue
        stored = definitions.get((row["kr_id"], row["definition_hash"]), {})
        definition = stored.get("definition")
        by_objective[row["objective_id"]].append(
            KeyResultCard(
                row=row,
                fmt=value_format(row["kr_type"], row["start"], row["target"], definition),
                objective_owner=objective_owner,
                definition=definition,
            )
        )
    if trends:
        _attach_trends(connection, quarter, view, by_objective)
    objectives = []
    wanted = set(by_objective) | {
        objective_id
        for objective_id, row in objective_rows.items()
        if view.team is None or row["owner"] == view.team
    }
    for objective_id in _ranked(list(wanted), order):
        row = objective_rows.get(objective_id) or {
            "quarter": quarter,
            "objective_id": objective_id,
            "title": objective_id,
            "owner": None,
            "aligns_to": None,
            "as_of": view.as_of,
            "score": None,
            "coverage": None,
            "status": "no_data",
        }
        krs = {kr.kr_id: kr for kr in by_objective.get(objective_id, [])}
        ranked = [krs[kr_id] for kr_id in _ranked(list(krs), order)]
        objectives.append(ObjectiveCard(row=row, key_results=ranked))
    shown = {kr.kr_id for krs in by_objective.values() for kr in krs}
    attention = needs_attention(connection, quarter, view.as_of, shown)
    return Overview(
        view,
        objectives,
        attention,
        disagreements=[
            row
            for row in confidence_rows(connection, quarter, view.as_of)
            if row["disagreement"] and row["kr_id"] in shown
        ],
        final_grades=[
            row for row in final_grade_rows(connection, quarter) if row["kr_id"] in shown
        ],
    )


def confidence_rows(connection: Connection, quarter: str, as_of: date) -> list[dict[str, Any]]:
    """Each KR's newest confidence on or before `as_of` and its disagreement, by KR id."""
    query = text(
        "SELECT kr_id, kr_title, owner, status, confidence, confidence_date, confidence_note, "
        "disagreement FROM kr_confidence WHERE quarter = :quarter AND as_of = :as_of "
        "AND confidence IS NOT NULL ORDER BY kr_id"
    )
    rows = connection.execute(query, {"quarter": quarter, "as_of": as_of}).mappings()
    return [dict(row) for row in rows]


def final_grade_rows(connection: Connection, quarter: str) -> list[dict[str, Any]]:
    """The quarter's frozen grades, computed and overridden, by KR id."""
    query = select(kr_final_scores).where(kr_final_scores.c.quarter == quarter)
    rows = connection.execute(query.order_by(kr_final_scores.c.kr_id)).mappings()
    return [dict(row) for row in rows]


def _attach_trends(
    connection: Connection,
    quarter: str,
    view: View,
    by_objective: Mapping[str, list[KeyResultCard]],
) -> None:
    """Each card's daily values from the quarter's first day through the view's day.

    One query on (quarter, kr_id, as_of), the primary key, for the whole board.
    """
    cards = {kr.kr_id: kr for krs in by_objective.values() for kr in krs}
    if not cards:
        return
    # The day as the database gives it (text on SQLite), converted once per distinct day
    # rather than once per row: a board of 1,000 KRs reads 92,000 rows.
    day_text = type_coerce(kr_scores.c.as_of, String)
    query = (
        select(kr_scores.c.kr_id, day_text, kr_scores.c.value)
        .where(kr_scores.c.quarter == quarter, kr_scores.c.as_of <= view.as_of)
        .order_by(kr_scores.c.as_of)  # the (quarter, as_of) index's own order: no sort
    )
    if view.team is not None and len(cards) <= 500:
        query = query.where(kr_scores.c.kr_id.in_(sorted(cards)))
    days: dict[Any, date] = {}
    for kr_id, as_of, value in connection.execute(query):
        card = cards.get(kr_id)
        if card is None:
            continue
        day = days.get(as_of)
        if day is None:
            day = days[as_of] = (
                as_of if isinstance(as_of, date) else date.fromisoformat(str(as_of)[:10])
            )
        card.trend.append((day, value))


# ---------------------------------------------------------------------------
# One key result's page


@dataclass
class DefinitionPeriod:
    """One definition a KR was scored with, the days it was used for, and what changed."""

    definition_hash: str
    first_as_of: date
    last_as_of: date
    title: str
    kr_type: str
    start: Any
    target: Any
    owner: str | None
    changes: list[tuple[str, str, str]] = field(default_factory=list)
    metric_keys: list[str] = field(default_factory=list)
    definition: dict[str, Any] | None = None


@dataclass
class KeyResultPage:
    view: View
    kr: KeyResultCard
    objective: dict[str, Any] | None
    days: list[dict[str, Any]]
    definitions: list[DefinitionPeriod]
    metric_keys: list[str]
    observations: list[dict[str, Any]]
    rejected: list[dict[str, Any]]
    sources: list[dict[str, Any]]
    checkins: list[dict[str, Any]]
    confidence: dict[str, Any] | None = None  # the newest, with its disagreement
    final_grade: dict[str, Any] | None = None  # once the quarter has closed

    @property
    def sources_known(self) -> bool:
        return bool(self.metric_keys)


class NotFound(LookupError):
    """No such KR (or nothing scored) in the quarter asked for."""


def source_of(metric_key: str) -> str:
    """The source a series belongs to: 'github:count=releases;...' -> 'github'."""
    return metric_key.split(":", 1)[0]


def load_key_result(
    connection: Connection, view: View, kr_id: str, order: Sequence[str] = ()
) -> KeyResultPage:
    if view.quarter is None or view.as_of is None:
        raise NotFound(f"nothing scored in {view.quarter or 'the warehouse'} yet")
    quarter = str(view.quarter)
    days = [
        dict(row)
        for row in connection.execute(
            select(*_KR_COLUMNS)
            .where(
                kr_scores.c.quarter == quarter,
                kr_scores.c.kr_id == kr_id,
                kr_scores.c.as_of <= view.as_of,
            )
            .order_by(kr_scores.c.as_of)
        ).mappings()
    ]
    if not days:
        raise NotFound(f"no key result {kr_id!r} in {quarter} as of {view.as_of}")
    latest = days[-1]
    objective = (
        connection.execute(
            select(objective_scores).where(
                objective_scores.c.quarter == quarter,
                objective_scores.c.objective_id == latest["objective_id"],
                objective_scores.c.as_of == latest["as_of"],
            )
        )
        .mappings()
        .first()
    )
    stored = [
        dict(row)
        for row in connection.execute(
            select(kr_definitions)
            .where(
                kr_definitions.c.quarter == quarter,
                kr_definitions.c.kr_id == kr_id,
                kr_definitions.c.first_as_of <= view.as_of,
            )
            .order_by(kr_definitions.c.first_as_of)
        ).mappings()
    ]
    periods = _definition_periods(days, stored)
    current = periods[-1] if periods else None
    card = KeyResultCard(
        row=latest,
        fmt=value_format(
            latest["kr_type"],
            latest["start"],
            latest["target"],
            current.definition if current else None,
        ),
        objective_owner=objective["owner"] if objective else None,
        trend=[(day["as_of"], day["value"]) for day in days],
        definition=current.definition if current else None,
    )
    metric_keys = sorted({key for period in periods for key in period.metric_keys})
    return KeyResultPage(
        view=view,
        kr=card,
        objective=dict(objective) if objective else None,
        days=days,
        definitions=periods,
        metric_keys=metric_keys,
        observations=_observations(connection, metric_keys, view.quarter.start, view.as_of),
        rejected=_rejected(connection, metric_keys, view.quarter.start, view.as_of),
        sources=_source_runs(connection, metric_keys, view.quarter.start, view.as_of),
        checkins=[
            dict(row)
            for row in connection.execute(
                select(
                    checkins.c.date,
                    checkins.c.value,
                    checkins.c.note,
                    checkins.c.file,
                    checkins.c.line,
                    checkins.c.confidence,
                )
                .where(
                    checkins.c.quarter == quarter,
                    checkins.c.kr_id == kr_id,
                    checkins.c.date <= view.as_of,
                )
                .order_by(checkins.c.date.desc())
            ).mappings()
        ],
        confidence=next(
            (
                row
                for row in confidence_rows(connection, quarter, latest["as_of"])
                if row["kr_id"] == kr_id
            ),
            None,
        ),
        final_grade=next(
            (row for row in final_grade_rows(connection, quarter) if row["kr_id"] == kr_id), None
        ),
    )


def _flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """A definition as dotted keys: {'metric': {'repo': 'a'}} -> {'metric.repo': 'a'}."""
    if isinstance(value, Mapping):
        flat: dict[str, str] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(value, list):
        return {prefix: json.dumps(value, ensure_ascii=False)}
    return {prefix: "" if value is None else str(value)}


def _definition_periods(
    days: Sequence[Mapping[str, Any]], stored: Sequence[Mapping[str, Any]]
) -> list[DefinitionPeriod]:
    """The definitions a KR was scored with, oldest first, each with what changed from
    the one before: from kr_definitions where it has them, else from the score rows."""
    periods: list[DefinitionPeriod] = []
    if stored:
        for row in stored:
            periods.append(
                DefinitionPeriod(
                    definition_hash=row["definition_hash"],
                    first_as_of=row["first_as_of"],
                    last_as_of=row["last_as_of"],
                    title=row["kr_title"],
                    kr_type=row["kr_type"],
                    start=row["start"],
                    target=row["target"],
                    owner=row["owner"],
                    metric_keys=list(_json(row["metric_keys"], [])),
                    definition=_json(row["definition"], {}),
                )
            )
    else:
        for day in days:
            if periods and periods[-1].definition_hash == day["definition_hash"]:
                periods[-1].last_as_of = day["as_of"]
                continue
            periods.append(
                DefinitionPeriod(
                    definition_hash=day["definition_hash"],
                    first_as_of=day["as_of"],
                    last_as_of=day["as_of"],
                    title=day["kr_title"],
                    kr_type=day["kr_type"],
                    start=day["start"],
                    target=day["target"],
                    owner=day["owner"],
                )
            )
    for before, after in zip(periods, periods[1:], strict=False):
        if before.definition and after.definition:
            old, new = _flatten(before.definition), _flatten(after.definition)
            after.changes = [
                (key, old.get(key, ""), new.get(key, ""))
                for key in sorted(set(old) | set(new))
                if old.get(key, "") != new.get(key, "")
            ]
        else:
            after.changes = [
                (label, _plain(getattr(before, name)), _plain(getattr(after, name)))
                for label, name in (
                    ("title", "title"),
                    ("type", "kr_type"),
                    ("start", "start"),
                    ("target", "target"),
                    ("owner", "owner"),
                )
                if getattr(before, name) != getattr(after, name)
            ]
    return periods


def _plain(value: Any) -> str:
    if is_missing(value):
        return ""
    if isinstance(value, float) and value == int(value):
        return str(int(value))
    return str(value)


def _observations(
    connection: Connection, metric_keys: Sequence[str], start: date, end: date
) -> list[dict[str, Any]]:
    if not metric_keys:
        return []
    table_ = metric_observations
    query = (
        select(
            table_.c.date,
            table_.c.metric_key,
            table_.c.source,
            table_.c.value,
            table_.c.collected_at,
            table_.c.run_id,
        )
        .where(table_.c.metric_key.in_(list(metric_keys)), table_.c.date.between(start, end))
        .order_by(table_.c.date.desc(), table_.c.metric_key)
    )
    return [dict(row) for row in connection.execute(query).mappings()]


def _rejected(
    connection: Connection, metric_keys: Sequence[str], start: date, end: date
) -> list[dict[str, Any]]:
    """Rejected rows of the KR's series whose fetch overlapped the quarter up to `end`."""
    if not metric_keys:
        return []
    table_ = rejected_observations
    query = (
        select(
            table_.c.date,
            table_.c.metric_key,
            table_.c.source,
            table_.c.raw_value,
            table_.c.expectation,
            table_.c.reason,
            table_.c.collected_at,
        )
        .where(
            table_.c.metric_key.in_(list(metric_keys)),
            table_.c.window_start <= end,
            table_.c.window_end >= start,
        )
        .order_by(table_.c.date.desc(), table_.c.metric_key)
    )
    return [dict(row) for row in connection.execute(query).mappings()]


def _source_runs(
    connection: Connection, metric_keys: Sequence[str], start: date, end: date
) -> list[dict[str, Any]]:
    """How the KR's sources fared in each run whose window touched the quarter up to `end`."""
    sources = sorted({source_of(key) for key in metric_keys})
    if not sources:
        return []
    table_ = source_runs
    query = (
        select(table_)
        .where(
            table_.c.source.in_(sources),
            table_.c.window_start <= end,
            table_.c.window_end >= start,
        )
        .order_by(table_.c.recorded_at.desc(), table_.c.source)
    )
    return [dict(row) for row in connection.execute(query).mappings()]


# ---------------------------------------------------------------------------
# The weekly check-in


@dataclass
class WeeklyItem(ScoredRow):
    row: dict[str, Any]
    fmt: ValueFormat
    notes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def value_text(self) -> str:
        return self.fmt(self.row["value"])

    @property
    def value_change_text(self) -> str:
        return self.fmt.delta(self.row["value_change"])

    @property
    def score_change_text(self) -> str:
        change = self.row["score_change"]
        if is_missing(change):
            return MISSING
        text = f"{abs(change):.2f}"
        return "±0.00" if round(change, 2) == 0 else ("+" if change > 0 else "−") + text

    @property
    def previous_status_label(self) -> str | None:
        previous = self.row["previous_status"]
        return STATUS_LABELS.get(previous, previous) if previous else None

    @property
    def moved_up(self) -> bool:
        change = self.row["score_change"]
        return not is_missing(change) and change > 0.005

    @property
    def worsened(self) -> bool:
        previous = self.row["previous_status"]
        return bool(
            self.row["status_changed"]
            and previous
            and STATUS_RANK.get(self.row["status"], 9) < STATUS_RANK.get(previous, 9)
        )

    @property
    def behind(self) -> bool:
        return self.row["status"] in ("at_risk", "off_track")


@dataclass
class TeamWeek:
    team: str
    items: list[WeeklyItem]

    @property
    def progress(self) -> list[WeeklyItem]:
        """Progress made: KRs whose score went up this week."""
        return sorted(
            (item for item in self.items if item.moved_up),
            key=lambda item: -(item.row["score_change"] or 0),
        )

    @property
    def blockers(self) -> list[WeeklyItem]:
        """What blocks it: KRs that went stale, have no data, or slipped a status."""
        return [
            item
            for item in self.items
            if item.row["became_stale"]
            or item.row["stale"]
            or item.row["status"] == "no_data"
            or item.worsened
        ]

    @property
    def help_needed(self) -> list[WeeklyItem]:
        """What help is needed: KRs at risk or off track, worst first."""
        return sorted(
            (item for item in self.items if item.behind),
            key=lambda item: (STATUS_RANK.get(item.row["status"], 9), item.row["score"] or 0),
        )

    @property
    def notes(self) -> list[tuple[WeeklyItem, dict[str, Any]]]:
        return [(item, note) for item in self.items for note in item.notes]


@dataclass
class Weekly:
    view: View
    week_start: date | None
    week_end: date | None
    teams: list[TeamWeek]


def load_weekly(connection: Connection, view: View, order: Sequence[str] = ()) -> Weekly:
    """The newest week (from kr_weekly) whose last scored day is on or before the view's
    day, per team, with the check-in notes written that week."""
    if view.quarter is None or view.as_of is None:
        return Weekly(view, None, None, [])
    quarter = str(view.quarter)
    week_start = connection.execute(
        select(func.max(kr_weekly.c.week_start)).where(
            kr_weekly.c.quarter == quarter, kr_weekly.c.as_of <= view.as_of
        )
    ).scalar()
    if week_start is None:
        return Weekly(view, None, None, [])
    rows = [
        dict(row)
        for row in connection.execute(
            select(kr_weekly).where(
                kr_weekly.c.quarter == quarter, kr_weekly.c.week_start == week_start
            )
        ).mappings()
    ]
    objective_owners = dict(
        connection.execute(
            select(objective_scores.c.objective_id, objective_scores.c.owner).where(
                objective_scores.c.quarter == quarter, objective_scores.c.as_of == view.as_of
            )
        ).all()
    )
    bounds = dict(
        connection.execute(
            select(kr_scores.c.kr_id, kr_scores.c.kr_type).where(
                kr_scores.c.quarter == quarter, kr_scores.c.as_of == view.as_of
            )
        ).all()
    )
    week_end = min(week_start + timedelta(days=6), view.as_of)
    notes: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in connection.execute(
        select(checkins.c.kr_id, checkins.c.date, checkins.c.value, checkins.c.note)
        .where(
            checkins.c.quarter == quarter,
            checkins.c.date.between(week_start, min(week_end, view.as_of)),
        )
        .order_by(checkins.c.date)
    ).mappings():
        notes[row["kr_id"]].append(dict(row))
    definitions = _definitions(connection, quarter)
    targets = {
        kr_id: (start, target, definition_hash)
        for kr_id, start, target, definition_hash in connection.execute(
            select(
                kr_scores.c.kr_id,
                kr_scores.c.start,
                kr_scores.c.target,
                kr_scores.c.definition_hash,
            ).where(kr_scores.c.quarter == quarter, kr_scores.c.as_of == view.as_of)
        )
    }
    by_team: dict[str, list[WeeklyItem]] = defaultdict(list)
    rank = {item: index for index, item in enumerate(order)}
    for row in sorted(rows, key=lambda r: (rank.get(r["kr_id"], len(rank)), r["kr_id"])):
        objective_owner = objective_owners.get(row["objective_id"])
        if not _shown(view.team, row["owner"], objective_owner):
            continue
        start, target, definition_hash = targets.get(row["kr_id"], (None, None, None))
        stored = definitions.get((row["kr_id"], definition_hash), {})
        fmt = value_format(bounds.get(row["kr_id"]), start, target, stored.get("definition"))
        by_team[row["owner"] or objective_owner or "unowned"].append(
            WeeklyItem(row=row, fmt=fmt, notes=notes.get(row["kr_id"], []))
        )
    teams = [TeamWeek(team, by_team[team]) for team in sorted(by_team)]
    return Weekly(view, week_start, week_end, teams)


# ---------------------------------------------------------------------------
# Alignment


@dataclass
class AlignmentNode:
    objective_id: str
    objective: ObjectiveCard | None  # None: a parent id that is no objective of the quarter
    children: list[AlignmentNode] = field(default_factory=list)

    @property
    def teams(self) -> list[str]:
        if self.objective is None:
            return []
        return sorted({kr.owner for kr in self.objective.key_results if kr.owner})


def load_alignment(
    connection: Connection, view: View, order: Sequence[str] = ()
) -> tuple[Overview, list[AlignmentNode]]:
    """The objectives as a tree by `aligns_to`: roots are objectives aligned to nothing,
    and parent ids that are not objectives themselves (a company goal, say)."""
    overview = load_overview(connection, view, order, trends=False)
    cards = {objective.objective_id: objective for objective in overview.objectives}
    nodes: dict[str, AlignmentNode] = {
        objective_id: AlignmentNode(objective_id, card) for objective_id, card in cards.items()
    }
    roots: list[AlignmentNode] = []
    for objective_id, card in cards.items():
        parent = card.row.get("aligns_to")
        node = nodes[objective_id]
        if not parent or parent == objective_id:
            roots.append(node)
            continue
        if parent not in nodes:
            nodes[parent] = AlignmentNode(parent, None)
            roots.append(nodes[parent])
        nodes[parent].children.append(node)
    # An aligns_to cycle has no root: show its members at the top rather than lose them.
    reached: set[str] = set()

    def walk(node: AlignmentNode) -> None:
        if node.objective_id in reached:
            return
        reached.add(node.objective_id)
        for child in node.children:
            walk(child)

    for root in roots:
        walk(root)
    for objective_id in cards:
        if objective_id not in reached:
            roots.append(nodes[objective_id])
            walk(nodes[objective_id])
    rank = {item: index for index, item in enumerate(order)}
    roots.sort(
        key=lambda node: (
            node.objective is not None,
            rank.get(node.objective_id, len(rank)),
            node.objective_id,
        )
    )
    return overview, roots


# ---------------------------------------------------------------------------
# Quarters


@dataclass
class QuarterRow:
    quarter: str
    as_of: date
    in_progress: bool
    objectives: list[dict[str, Any]]

    @property
    def mean_score(self) -> float | None:
        scores = [
            row["final_score"] for row in self.objectives if not is_missing(row["final_score"])
        ]
        return sum(scores) / len(scores) if scores else None

    @property
    def mean_score_text(self) -> str:
        return format_score(self.mean_score)

    @property
    def grade(self) -> str:
        return grade(self.mean_score)


@dataclass
class TeamCalibration:
    team: str
    counts: dict[str, int]

    @property
    def verdict(self) -> str:
        """What the team's targets tend to be, across its objectives and quarters."""
        easy, hard = self.counts.get("too_easy", 0), self.counts.get("too_hard", 0)
        judged = easy + hard + self.counts.get("balanced", 0)
        if not judged:
            return "no data"
        if easy * 2 >= judged and easy > hard:
            return "too easy"
        if hard * 2 >= judged and hard > easy:
            return "too hard"
        return "balanced"


def load_quarters(
    connection: Connection, view: View, order: Sequence[str] = ()
) -> tuple[list[QuarterRow], list[TeamCalibration]]:
    """Each quarter's objectives at their final (or, for the view's quarter, current) day
    from quarter_summary, newest quarter first; and per team, how its objectives'
    target_calibration fell across those quarters.

    With a day asked for, quarters after it are left out and its own quarter is shown
    as of that day (from objective_scores: calibration needs the quarter's end).
    """
    rows = [
        dict(row)
        for row in connection.execute(
            select(quarter_summary).order_by(quarter_summary.c.quarter.desc())
        ).mappings()
    ]
    by_quarter: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if view.team is None or row["owner"] == view.team:
            by_quarter[row["quarter"]].append(row)
    shown_quarter = str(view.quarter) if view.quarter else None
    result: list[QuarterRow] = []
    rank = {item: index for index, item in enumerate(order)}
    for quarter_name in sorted(by_quarter, reverse=True):
        quarter = Quarter.parse(quarter_name)
        if view.requested_as_of is not None and quarter.start > view.requested_as_of:
            continue
        objectives = sorted(
            by_quarter[quarter_name],
            key=lambda r: (rank.get(r["objective_id"], len(rank)), r["objective_id"]),
        )
        as_of = max(row["as_of"] for row in objectives)
        if quarter_name == shown_quarter and view.as_of is not None and view.as_of < as_of:
            objectives = _objectives_as_of(connection, quarter_name, view, rank)
            as_of = view.as_of
        in_progress = as_of < quarter.end
        result.append(QuarterRow(quarter_name, as_of, in_progress, objectives))
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for quarter_row in result:
        if quarter_row.in_progress:
            continue  # a quarter under way has no verdict yet
        for row in quarter_row.objectives:
            if row.get("target_calibration"):
                counts[row["owner"] or "unowned"][row["target_calibration"]] += 1
    calibration = [TeamCalibration(team, dict(counts[team])) for team in sorted(counts)]
    return result, calibration


def _objectives_as_of(
    connection: Connection, quarter: str, view: View, rank: Mapping[str, int]
) -> list[dict[str, Any]]:
    query = select(objective_scores).where(
        objective_scores.c.quarter == quarter, objective_scores.c.as_of == view.as_of
    )
    if view.team is not None:
        query = query.where(objective_scores.c.owner == view.team)
    found = []
    for row in connection.execute(query).mappings():
        found.append(
            {
                "quarter": quarter,
                "objective_id": row["objective_id"],
                "title": row["title"],
                "owner": row["owner"],
                "as_of": row["as_of"],
                "final_score": row["score"],
                "status": row["status"],
                "coverage": row["coverage"],
                "krs": None,
                "krs_with_data": None,
                "share_at_or_above_0_7": None,
                "mean_progress": None,
                "target_calibration": None,
            }
        )
    return sorted(found, key=lambda r: (rank.get(r["objective_id"], len(rank)), r["objective_id"]))
