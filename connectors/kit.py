"""The connector kit: what a connector is asked (`SeriesRequest`, over a `Window`), how it
reads a record's fields (`Record`, `parse_timestamp`), and how it answers (a daily frame).

Every connector gets one `SeriesRequest` per series: the metric (already checked against
the connector's `params_model`), the `Window` of days in the definitions' time zone, and
what the pipeline knows about who asks (the KR, the quarter, the definitions folder). It
turns records into observations, `(timestamp or day, amount)`, and the frame helpers
bucket them into the window's days:

| helper | for | rows |
| --- | --- | --- |
| `daily_totals` | counts and sums of events | every day of the window, 0.0 when nothing happened |
| `daily_values` | an API that reports one value a day | every day (0.0 when left out), or only the days given (`fill=None`) |
| `daily_ratio` | a share of two totals | only the days whose denominator is not 0 |

A record whose field cannot be read (missing, of the wrong type, an unparseable date) is a
one-line `SourceError` naming the source, the record, the field and the value: never a
`KeyError` or `TypeError` out of a run. A field the API always sends, null or not, is read
with `present=True`: its absence means the API renamed or dropped it, and a series that
silently counted nothing would be wrong. `distinct(records)` keeps one record per id, for
APIs that repeat a record on two pages when it moves while they are read.

A run asks a connector for all of a source's series at once (`daily_series_many`), and
the connector's `plan(requests)` merges them into the fewest queries its API needs: a
`Plan` of `SharedQuery`s, each the requests one query answers, over the `Window` that
spans theirs. `Plan.grouped(requests, shape)` puts requests of an equal `shape` (what
the query sends: endpoint, filters) into one query; `Plan.separate` gives each its own.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from operator import attrgetter
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar, overload
from zoneinfo import ZoneInfo

import pandas as pd

from okr_metrics.connectors.errors import SourceError
from okr_metrics.connectors.params import MetricParams

Moment = datetime | date
Observation = tuple[Moment, float]
M = TypeVar("M", bound=MetricParams)
_Item = TypeVar("_Item")

# --- the window ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """The days `first` through `last` (both included) in the time zone `timezone`.

    Checked once, when made: a window that ends before it starts is a `ValueError`, and
    so is an unknown time zone.
    """

    first: date
    last: date
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError(f"window ends ({self.last}) before it starts ({self.first})")
        try:
            ZoneInfo(self.timezone)
        except (KeyError, ValueError):
            raise ValueError(f"unknown time zone {self.timezone!r}") from None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def days(self) -> list[date]:
        """Every day of the window, in order."""
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.first <= day <= self.last

    def midnight(self, day: date) -> datetime:
        """The first instant of `day` in the window's time zone (an aware datetime)."""
        return datetime.combine(day, time.min, tzinfo=self.zone)

    @property
    def start(self) -> datetime:
        """The first instant of the window: local midnight of its first day."""
        return self.midnight(self.first)

    @property
    def end(self) -> datetime:
        """The first instant after the window: local midnight of the day after its last."""
        return self.midnight(self.last + timedelta(days=1))

    @property
    def start_ms(self) -> int:
        return epoch_ms(self.start)

    @property
    def end_ms(self) -> int:
        return epoch_ms(self.end)

    def day_of(self, moment: Moment) -> date:
        """The day of the window's time zone an instant falls on; a date is its own day."""
        if isinstance(moment, datetime):
            return moment.astimezone(self.zone).date()
        return moment

    def chunks(self, days: int) -> list[Window]:
        """The window cut into consecutive windows of at most `days` days (APIs that page
        by date range)."""
        if days < 1:
            raise ValueError(f"a chunk holds at least one day, not {days}")
        found, first = [], self.first
        while first <= self.last:
            last = min(self.last, first + timedelta(days=days - 1))
            found.append(Window(first, last, self.timezone))
            first = last + timedelta(days=1)
        return found


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since 1970-01-01 UTC."""
    return int(moment.timestamp()) * 1000 + moment.microsecond // 1000


# --- the request -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SeriesRequest(Generic[M]):
    """One series a connector is asked for: `daily_series(request)`.

    `metric_key` defaults to the metric's own key in the window's time zone. The rest is
    what the pipeline knows about who asks, for the sources that need it (a per-KR series
    such as check-ins): `kr_id`, the one KR reading the series (None when several do);
    `quarter`, the definitions file's quarter (None when the window spans files);
    `sibling_kr_ids`, every KR of that quarter reading the same source, in file order; and
    `definitions_root`, the definitions folder (for files kept beside them).

    A connector's `fetch` may annotate its request `SeriesRequest[ItsMetric]`: the kit
    has checked the metric against its `params_model`.
    """

    metric: M
    window: Window
    metric_key: str = ""
    kr_id: str | None = None
    quarter: str | None = None
    sibling_kr_ids: tuple[str, ...] = ()
    definitions_root: Path | None = None

    def __post_init__(self) -> None:
        if not self.metric_key:
            key = self.metric.metric_key(
                timezone=self.window.timezone, quarter=self.quarter or "", kr_id=self.kr_id or ""
            )
            object.__setattr__(self, "metric_key", key)

    @classmethod
    def of(
        cls,
        metric: M,
        start: date,
        end: date,
        timezone: str = "UTC",
        **context: Any,
    ) -> SeriesRequest[M]:
        """`SeriesRequest(metric, Window(start, end, timezone), **context)`."""
        return cls(metric, Window(start, end, timezone), **context)

    @property
    def start(self) -> date:
        return self.window.first

    @property
    def end(self) -> date:
        return self.window.last

    @property
    def timezone(self) -> str:
        return self.window.timezone


# --- the plan: requests merged into shared queries ------------------------------------------


@dataclass(frozen=True)
class SharedQuery(Generic[M]):
    """One query that answers several requests: `shape` is what they share (the
    connector's own description of the query: endpoint, filters), `window` spans all of
    their windows; each request keeps its own days client-side."""

    shape: Hashable
    requests: tuple[SeriesRequest[M], ...]

    @property
    def window(self) -> Window:
        first = min(request.start for request in self.requests)
        last = max(request.end for request in self.requests)
        return Window(first, last, self.requests[0].timezone)

    @property
    def metric_keys(self) -> tuple[str, ...]:
        return tuple(request.metric_key for request in self.requests)


@dataclass(frozen=True)
class Plan(Generic[M]):
    """The queries a connector sends for a batch of requests (`Connector.plan`)."""

    queries: tuple[SharedQuery[M], ...]

    @classmethod
    def separate(cls, requests: Sequence[SeriesRequest[M]]) -> Plan[M]:
        """One query per request."""
        return cls(tuple(SharedQuery(request.metric_key, (request,)) for request in requests))

    @classmethod
    def grouped(
        cls,
        requests: Sequence[SeriesRequest[M]],
        shape: Callable[[SeriesRequest[M]], Hashable | None],
        *,
        most: int | None = None,
        across_gaps: bool = False,
    ) -> Plan[M]:
        """Requests of an equal `shape` (and time zone) share one query, in the order first
        asked; a request whose shape is None has a query of its own.

        `most`: at most this many requests a query. Windows that neither overlap nor touch
        get queries of their own, unless `across_gaps` (an API listing newest first reads
        the days between anyway).
        """
        groups: dict[tuple[Hashable, str], list[int]] = {}
        queries: list[tuple[int, SharedQuery[M]]] = []
        for index, request in enumerate(requests):
            found = shape(request)
            if found is None:
                queries.append((index, SharedQuery(request.metric_key, (request,))))
            else:
                groups.setdefault((found, request.timezone), []).append(index)
        for (found, _), members in groups.items():
            runs = [members] if across_gaps else _touching(requests, members)
            for run in runs:
                size = most or len(run)
                for at in range(0, len(run), size):
                    part = run[at : at + size]
                    shared = SharedQuery(found, tuple(requests[i] for i in part))
                    queries.append((part[0], shared))
        return cls(tuple(query for _, query in sorted(queries, key=lambda item: item[0])))

    def sharing(self) -> list[tuple[str, ...]]:
        """The metric keys each query answers, in the plan's order (what a test inspects)."""
        return [query.metric_keys for query in self.queries]

    def __len__(self) -> int:
        return len(self.queries)


def _touching(requests: Sequence[SeriesRequest[M]], members: list[int]) -> list[list[int]]:
    """The requests (by index) in runs whose windows overlap or touch, each run in the
    order asked."""
    runs: list[list[int]] = []
    last: date | None = None
    for index in sorted(members, key=lambda i: requests[i].start):
        request = requests[index]
        if runs and last is not None and request.start <= last + timedelta(days=1):
            runs[-1].append(index)
            last = max(last, request.end)
        else:
            runs.append([index])
            last = request.end
    return [sorted(run) for run in runs]


# --- timestamps ------------------------------------------------------------------------------

# ISO 8601, extended: a date, or a date and time with `T` (or a space), optional seconds and
# fraction, and `Z`, `+05:30`, `+0530`, `+05` or no offset (UTC).
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r"(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?)?"
)
# The common shape of it, `2026-10-15T09:12:33.000+0000`, which `datetime.fromisoformat`
# reads to the same instant (it also takes shapes ISO 8601 has not, such as `09:12.5`).
_COMMON = re.compile(
    r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?(?:Z|[+-]\d\d(?::?\d\d)?)?", re.ASCII
)
_BASIC_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")
_EPOCH = re.compile(r"-?\d+")


def looks_like_timestamp(text: str) -> bool:
    """Whether `text` is written as an ISO 8601 date or datetime (valid or not)."""
    return _ISO.fullmatch(text.strip()) is not None


def quick_instant(value: Any) -> datetime | None:
    """The instant of text in the shape most APIs send (`2026-10-15T09:12:33.000+0000`),
    as `parse_timestamp` reads it; None for any other value (read it with that).

    The C parser reads that shape about four times faster than the expressions of
    `parse_timestamp`, and to the same instant."""
    if type(value) is not str or not _COMMON.fullmatch(value):
        return None
    try:
        found = datetime.fromisoformat(value)
    except ValueError:
        return None
    return found if found.tzinfo else found.replace(tzinfo=timezone.utc)


def parse_timestamp(value: Any, *, epoch: Literal["ms", "s"] | None = None) -> Moment:
    """An instant (an aware datetime) or a calendar day (a date), from what an API sends.

    Takes ISO 8601 datetimes (`2026-10-15T09:12:33Z`, `...33.123+05:30`, `...33.000+0000`;
    no offset means UTC), dates (`2026-10-15`, and the basic `20261015`), and, with
    `epoch`, whole numbers as epoch milliseconds (`"ms"`) or seconds (`"s"`). Raises
    `ValueError` for anything else (`Record.moment` turns it into a `SourceError`).
    """
    found = quick_instant(value)
    if found is not None:
        return found
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"not a timestamp: {value!r}")
    text = str(value).strip()
    if epoch and _EPOCH.fullmatch(text):
        seconds = int(text) / 1000 if epoch == "ms" else int(text)
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {value!r}")
    return _parse_text(text)


def _parse_text(text: str) -> Moment:
    """An ISO 8601 date or datetime, or a basic date, read by the expressions above."""
    basic = _BASIC_DATE.fullmatch(text)
    if basic:
        return date(*map(int, basic.groups()))
    found = _ISO.fullmatch(text)
    if not found:
        raise ValueError(f"not a timestamp: {text!r}")
    year, month, day, hour, minute, second, fraction, utc, sign, off_h, off_m = found.groups()
    if hour is None:
        return date(int(year), int(month), int(day))
    offset = timedelta(hours=int(off_h or 0), minutes=int(off_m or 0))
    zone = timezone(-offset if sign == "-" else offset) if sign else timezone.utc
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    return datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro, zone
    )


def parse_day(value: Any) -> date:
    """A calendar day written as a date (`2026-10-15`, `20261015`); raises `ValueError`."""
    found = parse_timestamp(value)
    if isinstance(found, datetime):
        raise ValueError(f"not a date: {value!r}")
    return found


# --- records ---------------------------------------------------------------------------------


_ABSENT = object()
_PATHS: dict[str, tuple[str, ...]] = {}  # a dotted path -> its parts, split once


def lookup(data: Any, path: str, default: Any = None) -> Any:
    """The value at a dotted path (`fields.created`) of a JSON body, or `default` when the
    path is not there."""
    parts = _PATHS.get(path)
    if parts is None:
        parts = _PATHS[path] = tuple(path.split("."))
    for part in parts:
        if type(data) is dict or isinstance(data, Mapping):
            data = data.get(part, _ABSENT)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return default
        if data is _ABSENT:
            return default
    return data


class Record:
    """One record of a response, read field by field.

    `kind` and `id` name it in errors (`issue SUP-7`, `deals 77`); the id is given, or
    read from the first of `id_fields` the record has. A field it cannot read is a
    one-line `SourceError`: `<source>: issue SUP-7: fields.created is missing`,
    `<source>: deals 77: amount 'lots' is not a number`.
    """

    def __init__(
        self,
        source: str,
        data: Any,
        kind: str = "record",
        id: Any = None,
        *,
        id_fields: tuple[str, ...] = (),
    ) -> None:
        self.source, self.kind = source, kind
        if id is None:
            for name in id_fields:
                id = lookup(data, name)
                if id not in (None, ""):
                    break
        self.id = None if id in (None, "") else str(id)
        if type(data) is not dict and not isinstance(data, Mapping):
            raise self.error(f"is not an object: {_shown(data, 80)}")
        self.data = data

    def get(self, path: str) -> Any:
        return lookup(self.data, path)

    def has(self, path: str) -> bool:
        """Whether the record holds the field at all (null counts as held)."""
        return lookup(self.data, path, _ABSENT) is not _ABSENT

    def _check_present(self, path: str, present: bool) -> None:
        if present and not self.has(path):
            raise self.missing(path)

    def moment(
        self,
        path: str,
        *,
        required: bool = True,
        epoch: Literal["ms", "s"] | None = None,
        present: bool = False,
    ) -> Moment | None:
        """The field as a timestamp or a day; None when it is empty and not `required`
        (with `present`, the field must be there, even as null)."""
        self._check_present(path, present)
        value = self.get(path)
        if value is None or value == "":
            if required:
                raise self.missing(path)
            return None
        try:
            return parse_timestamp(value, epoch=epoch)
        except (ValueError, OverflowError):
            raise self.bad(path, value, "timestamp") from None

    @overload
    def instant(
        self, path: str, *, required: Literal[True] = True, present: bool = False
    ) -> datetime: ...
    @overload
    def instant(self, path: str, *, required: bool, present: bool = False) -> datetime | None: ...

    def instant(
        self, path: str, *, required: bool = True, present: bool = False
    ) -> datetime | None:
        """The field as an instant: a timestamp with a time of day (a date alone will not do)."""
        found = self.moment(path, required=required, present=present)
        if found is not None and not isinstance(found, datetime):
            raise self.bad(path, self.get(path), "timestamp with a time of day")
        return found

    def day(self, path: str) -> date:
        """The field as a calendar day (a date alone, `2026-10-15` or `20261015`)."""
        found = self.moment(path)
        if isinstance(found, datetime) or found is None:
            raise self.bad(path, self.get(path), "date")
        return found

    def number(self, path: str, *, required: bool = False, present: bool = False) -> float | None:
        """The field as a number (numbers may come as text); None when empty (with
        `present`, the field must be there, even as null)."""
        self._check_present(path, present)
        value = self.get(path)
        if value is None or (isinstance(value, str) and value.strip() == ""):
            if required:
                raise self.missing(path)
            return None
        if isinstance(value, bool):
            raise self.bad(path, value, "number")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise self.bad(path, value, "number") from None

    def error(self, message: str) -> SourceError:
        named = f"{self.kind} {self.id}" if self.id else self.kind
        return SourceError(self.source, f"{named}: {message}")

    def missing(self, path: str) -> SourceError:
        return self.error(f"{path} is missing")

    def bad(self, path: str, value: Any, what: str) -> SourceError:
        return self.error(f"{path} {_shown(value)} is not a {what}")


def distinct(records: Iterable[Record]) -> list[Record]:
    """One record per id, the last one read (the freshest), in the order first read.

    APIs that page a list while it changes repeat a record that moved across a page
    boundary; counting it twice would be wrong. Records without an id are all kept.
    """
    return distinct_by(records, attrgetter("id"))


def distinct_by(items: Iterable[_Item], id_of: Callable[[_Item], str | None]) -> list[_Item]:
    """`distinct` of any items, each with the id `id_of` reads (None: no id, kept)."""
    by_id: dict[str, _Item] = {}
    anonymous: list[tuple[int, _Item]] = []
    order: dict[str, int] = {}
    for index, item in enumerate(items):
        key = id_of(item)
        if key is None:
            anonymous.append((index, item))
            continue
        order.setdefault(key, index)
        by_id[key] = item
    found = [(order[key], item) for key, item in by_id.items()] + anonymous
    return [item for _, item in sorted(found, key=lambda pair: pair[0])]


def _shown(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- the daily frame -------------------------------------------------------------------------


def series_frame(days: Iterable[date], values: Iterable[float]) -> pd.DataFrame:
    """The frame every connector returns: `date` (datetime.date) and `value` (float)."""
    return pd.DataFrame(
        {"date": pd.Series(list(days), dtype=object), "value": pd.Series(list(values), dtype=float)}
    )


def empty_series() -> pd.DataFrame:
    return series_frame([], [])


def totals_by_day(window: Window, observations: Iterable[Observation]) -> dict[date, float]:
    """The amounts added up per day of the window (instants bucketed in its time zone, days
    as they are); what falls outside the window is left out."""
    # `Window.day_of` and `in`, inlined: this loop runs once per record and series.
    zone, first, last = window.zone, window.first, window.last
    totals: defaultdict[date, float] = defaultdict(float)
    for moment, amount in observations:
        if isinstance(moment, datetime):
            day = moment.astimezone(zone).date()
        elif isinstance(moment, date):
            day = moment
        else:
            continue
        if first <= day <= last:
            totals[day] += amount
    return totals


def daily_totals(window: Window, observations: Iterable[Observation]) -> pd.DataFrame:
    """Counts or sums: a row on every day of the window, 0.0 when nothing happened."""
    totals = totals_by_day(window, observations)
    days = window.days
    return series_frame(days, (totals.get(day, 0.0) for day in days))


def daily_counts(window: Window, moments: Iterable[Moment]) -> pd.DataFrame:
    """`daily_totals` of events that count one each."""
    return daily_totals(window, ((moment, 1.0) for moment in moments))


def daily_values(
    window: Window,
    values: Iterable[tuple[date, float]],
    *,
    source: str,
    fill: float | None = 0.0,
) -> pd.DataFrame:
    """One value a day as a source reports it; a day reported twice is a `SourceError`.

    `fill` is the value of a day left out (None: no row, for sparse series).
    """
    found: dict[date, float] = {}
    for day, value in values:
        if day in found:
            raise SourceError(source, f"the report lists {day} twice")
        found[day] = value
    if fill is None:
        days = sorted(day for day in found if day in window)
        return series_frame(days, (found[day] for day in days))
    days = window.days
    return series_frame(days, (found.get(day, fill) for day in days))


def daily_ratio(
    window: Window, numerator: Mapping[date, float], denominator: Mapping[date, float]
) -> pd.DataFrame:
    """A share per day, on the days whose denominator is not 0 (the others have no row)."""
    days = [day for day in window.days if denominator.get(day)]
    return series_frame(days, (numerator.get(day, 0) / denominator[day] for day in days))
