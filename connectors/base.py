"""The connector kit: what every source implements, and the settings it is built from.

A connector turns one metric of one source into a daily series. It is plain Python
(no Dagster): the Dagster assets in `pipelines/` build it from a `SourceSettings`
and call `daily_series`.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd

from okr_metrics.connectors.params import MetricParams

if TYPE_CHECKING:
    from okr_metrics.connectors.http import HttpClient


class SourceError(Exception):
    """A source could not deliver a series; the message is one line and holds no secret."""

    def __init__(self, source: str, message: str):
        super().__init__(f"{source}: {message}")
        self.source = source
        self.reason = message


@dataclass(frozen=True)
class SourceEnv:
    """Which environment variables configure a source (names, never values)."""

    base_url: str | None = None
    default_base_url: str | None = None
    token: str | None = None
    user: str | None = None
    credentials_file: str | None = None


@dataclass(frozen=True)
class SourceSettings:
    """Resolved settings of a source, as the Dagster resource or the caller hands them over."""

    base_url: str | None = None
    token: str | None = None
    user: str | None = None
    credentials_file: str | None = None

    @classmethod
    def from_env(cls, env_names: SourceEnv, environ: Mapping[str, str]) -> SourceSettings:
        def read(name: str | None) -> str | None:
            return (environ.get(name) or None) if name else None

        return cls(
            base_url=read(env_names.base_url) or env_names.default_base_url,
            token=read(env_names.token),
            user=read(env_names.user),
            credentials_file=read(env_names.credentials_file),
        )

    def __repr__(self) -> str:  # never print a token
        return f"SourceSettings(base_url={self.base_url!r}, token={'***' if self.token else None})"


class Connector(abc.ABC):
    """One source. Subclasses declare `source`, `params_model`, `env` and implement two methods."""

    source: ClassVar[str]
    params_model: ClassVar[type[MetricParams]]
    env: ClassVar[SourceEnv]
    # The `expectation` of the rows the source refuses itself (`rejected_rows`).
    row_expectation: ClassVar[str] = "valid_source_row"

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
    def bearer_client(
        cls,
        settings: SourceSettings,
        headers: Mapping[str, str] | None = None,
        **client_options: Any,
    ) -> HttpClient:
        """The shared HTTP client for this source, sending `Authorization: Bearer <token>`.

        The token is registered for redaction; `client_options` go to `HttpClient`
        (e.g. `sleep`, `max_attempts`, `error_reason`).
        """
        from okr_metrics.connectors.http import HttpClient

        all_headers = {"Accept": "application/json", **(headers or {})}
        if settings.token:
            all_headers["Authorization"] = f"Bearer {settings.token}"
        return HttpClient(
            cls.source,
            settings.base_url or cls.env.default_base_url or "",
            headers=all_headers,
            secrets=[settings.token],
            token_env=cls.env.token,
            **client_options,
        )

    @classmethod
    @abc.abstractmethod
    def from_settings(cls, settings: SourceSettings) -> Connector:
        """Build the connector; called only when `missing_settings` returned None."""

    @abc.abstractmethod
    def daily_series(
        self, metric: MetricParams, start: date, end: date, timezone: str = "UTC"
    ) -> pd.DataFrame:
        """The metric's daily values from `start` through `end` (both included).

        Returns a frame with columns `date` (datetime.date) and `value` (float), one
        row per day; counts and sums have a row on every day of the window (0 when
        nothing happened). Timestamps are bucketed into days in `timezone`.
        Raises `SourceError` with a one-line reason when the source fails.
        """

    def rejected_rows(
        self, metric: MetricParams, start: date, end: date
    ) -> dict[str, pd.DataFrame]:
        """Rows the source itself refused while reading `metric`, by series key.

        For sources that read a file whole (check-ins): each frame (columns date,
        raw_value, reason; all text) is the complete current set of its key's
        rejections, stored with `row_expectation`, and replaces what was stored before.
        Most sources refuse nothing themselves: validation rejects their rows.
        """
        return {}

    @classmethod
    def lint_inputs(cls, metrics: list[MetricParams]) -> list[tuple[str, int, str]]:
        """Problems in the source's own input files, as (file, line, message), for `okr lint`.

        For sources that read files beside the definitions (check-ins); the rows listed
        here are those `rejected_rows` refuses in a run.
        """
        return []

    def finish(self) -> None:
        """Called once after the run's last series of this source (e.g. to log a quota summary)."""
        return None


def empty_series() -> pd.DataFrame:
    return pd.DataFrame({"date": pd.Series([], dtype=object), "value": pd.Series([], dtype=float)})
