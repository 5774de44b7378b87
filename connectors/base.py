"""The connector: what every source implements, and the settings it is built from.

A connector turns one metric of one source into a daily series. It is plain Python
(no Dagster): the Dagster assets in `pipelines/` build it from a `SourceSettings` and
call `daily_series_many(requests)` with every `SeriesRequest` (`connectors/kit.py`) of
the source a run needs (or `daily_series(request)` for one). The kit checks each
request's metric against the connector's `params_model` once, here, and its window once,
when the `Window` is made; a connector implements `fetch(request)`. A connector whose API
can answer several requests with one query also implements `plan(requests)`, which
merges them into `SharedQuery`s, and `fetch_shared(query)`, which answers one.

Sources behind an HTTP API build on `connectors.http.HttpConnector`, which adds the
client, the auth and the vendor's error shape to this.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import ClassVar, TypeAlias

import pandas as pd

from okr_metrics.connectors.errors import SourceError
from okr_metrics.connectors.kit import Plan, SeriesRequest, SharedQuery, Window, empty_series
from okr_metrics.connectors.params import MetricParams

__all__ = [
    "Connector",
    "Plan",
    "SeriesAnswer",
    "SeriesRequest",
    "SharedQuery",
    "SourceEnv",
    "SourceError",
    "SourceSettings",
    "Window",
    "empty_series",
    "only_answer",
]


# A series' daily frame, or why the source could not give it.
SeriesAnswer: TypeAlias = pd.DataFrame | SourceError


@dataclass(frozen=True)
class _SourceFields:
    """What configures a source: where its API is, and the credentials to call it."""

    base_url: str | None = None
    token: str | None = None
    user: str | None = None
    credentials_file: str | None = None


@dataclass(frozen=True)
class SourceEnv(_SourceFields):
    """Which environment variables configure a source (names, never values), and the base
    URL it has when its variable is not set."""

    default_base_url: str | None = None

    def names(self) -> tuple[str, ...]:
        """Every variable named (what a test clears so that no real token reaches an API)."""
        found = (getattr(self, item.name) for item in fields(_SourceFields))
        return tuple(name for name in found if name)


@dataclass(frozen=True)
class SourceSettings(_SourceFields):
    """Resolved settings of a source, as the Dagster resource or the caller hands them over."""

    @classmethod
    def from_env(cls, env_names: SourceEnv, environ: Mapping[str, str]) -> SourceSettings:
        def read(name: str | None) -> str | None:
            return (environ.get(name) or None) if name else None

        found = {item.name: read(getattr(env_names, item.name)) for item in fields(_SourceFields)}
        return cls(**{**found, "base_url": found["base_url"] or env_names.default_base_url})

    def __repr__(self) -> str:  # never print a token
        return f"SourceSettings(base_url={self.base_url!r}, token={'***' if self.token else None})"


def only_answer(answers: Mapping[str, SeriesAnswer], request: SeriesRequest) -> pd.DataFrame:
    """The request's frame among a query's answers; its error raised (a connector's
    `fetch` through its own `fetch_shared`)."""
    answer = answers[request.metric_key]
    if isinstance(answer, SourceError):
        raise answer
    return answer


class Connector(abc.ABC):
    """One source: declares `source`, `params_model`, `env`; implements `from_settings`
    and `fetch`."""

    source: ClassVar[str]
    params_model: ClassVar[type[MetricParams]]
    env: ClassVar[SourceEnv]
    # The `expectation` of the rows the source refuses itself (`rejected_rows`).
    row_expectation: ClassVar[str] = "valid_source_row"
    # Whether `daily_series_many` merges requests into shared queries (`plan`); False
    # sends one query per request (the same numbers, more requests).
    plans_queries: bool = True
    # Whether `fetch_shared` may run for several planned queries at once, on threads
    # (`query_concurrency` says how many): a connector whose caches and client are
    # thread-safe says True. The built-in HTTP sources do.
    concurrent_queries: ClassVar[bool] = False

    @classmethod
    def missing_settings(cls, settings: SourceSettings) -> str | None:
        """Why the source must be skipped (no credentials), or None when it can run."""
        missing = []
        if cls.env.base_url and not settings.base_url:
            missing.append(cls.env.base_url)
        if cls.env.token and not settings.token and not settings.credentials_file:
            missing.append(cls.env.token)
        if cls.env.user and not settings.user:
            missing.append(cls.env.user)
        return f"{', '.join(missing)} not set" if missing else None

    @classmethod
    @abc.abstractmethod
    def from_settings(cls, settings: SourceSettings) -> Connector:
        """Build the connector; called only when `missing_settings` returned None."""

    def daily_series(self, request: SeriesRequest) -> pd.DataFrame:
        """The metric's daily values over the request's window (both ends included).

        Returns a frame with columns `date` (datetime.date) and `value` (float): counts
        and sums have a row on every day of the window (0 when nothing happened);
        timestamps are bucketed into days in the window's time zone. Raises
        `SourceError` with a one-line reason when the source fails, and `TypeError` for
        a metric of another source.
        """
        self.check(request)
        return self.fetch(request)

    def daily_series_many(self, requests: Sequence[SeriesRequest]) -> dict[str, SeriesAnswer]:
        """Every request's series (as `daily_series` gives it), by `metric_key`, from the
        fewest queries the source needs (`plan`).

        Errors stay per series: a query that fails is the `SourceError` of the requests
        it answers, and only theirs. Raises `TypeError` for a metric of another source and
        `ValueError` when two requests have one key.
        """
        keys = [request.metric_key for request in requests]
        if len(set(keys)) != len(keys):
            twice = sorted({key for key in keys if keys.count(key) > 1})
            raise ValueError(f"{self.source}: series requested twice: {', '.join(twice)}")
        for request in requests:
            self.check(request)
        plan = self.plan(requests) if self.plans_queries else Plan.separate(requests)
        queries = list(plan.queries)
        width = min(len(queries), self.query_concurrency()) if self.concurrent_queries else 1
        answers: dict[str, SeriesAnswer] = {}
        if width <= 1:
            for query in queries:
                answers.update(self._answer(query))
        else:
            # Independent queries side by side; the HTTP client's per-host limiter still
            # decides how many requests are out at once.
            with ThreadPoolExecutor(width, thread_name_prefix=f"okr-{self.source}-q") as pool:
                for answered in pool.map(self._answer, queries):
                    answers.update(answered)
        return {key: answers[key] for key in keys}

    def _answer(self, query: SharedQuery) -> Mapping[str, SeriesAnswer]:
        try:
            return self.fetch_shared(query)
        except SourceError as error:
            return dict.fromkeys(query.metric_keys, error)

    def query_concurrency(self) -> int:
        """How many planned queries `daily_series_many` runs at once when
        `concurrent_queries` is True (HTTP sources: what their host may have in flight)."""
        return 1

    def plan(self, requests: Sequence[SeriesRequest]) -> Plan:
        """Which requests share a query; by default none do (`Plan.separate`).

        A connector that overrides this also overrides `fetch_shared`.
        """
        return Plan.separate(requests)

    def fetch_shared(self, query: SharedQuery) -> Mapping[str, SeriesAnswer]:
        """The series of every request of one planned query, by `metric_key`; a
        `SourceError` raised here is the error of all of them.

        By default, each request on its own (`daily_series`), each error its own.
        """
        answers: dict[str, SeriesAnswer] = {}
        for request in query.requests:
            try:
                answers[request.metric_key] = self.daily_series(request)
            except SourceError as error:
                answers[request.metric_key] = error
        return answers

    @classmethod
    def check(cls, request: SeriesRequest) -> None:
        """The request's metric must be this source's (`params_model`)."""
        if not isinstance(request.metric, cls.params_model):
            raise TypeError(
                f"{cls.__name__} needs a {cls.params_model.__name__}, "
                f"not {type(request.metric).__name__}"
            )

    @abc.abstractmethod
    def fetch(self, request: SeriesRequest) -> pd.DataFrame:
        """`daily_series` once the request is checked: the source's own work."""

    def rejected_rows(self, request: SeriesRequest) -> dict[str, pd.DataFrame]:
        """Rows the source itself refused while reading the request's series, by series key.

        For sources that read a file whole (check-ins): each frame (columns date,
        raw_value, reason; all text) is the complete current set of its key's
        rejections, stored with `row_expectation`, and replaces what was stored before.
        Most sources refuse nothing themselves: validation rejects their rows.
        """
        return {}

    @classmethod
    def lint_inputs(cls, requests: list[SeriesRequest]) -> list[tuple[str, int, str]]:
        """Problems in the source's own input files, as (file, line, message), for `okr lint`.

        For sources that read files beside the definitions (check-ins); the rows listed
        here are those `rejected_rows` refuses in a run.
        """
        return []

    def finish(self) -> None:
        """Called once after the run's last series of this source (e.g. to log a quota summary)."""
        return None
