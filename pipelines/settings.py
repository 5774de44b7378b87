"""The pipeline's configuration: read from the environment once, then passed down.

`Settings.from_env()` is called at the two entry points, the `okr` command (`main`) and
the Dagster code location (`defs`, when Dagster loads it), and nowhere else; everything
below them gets a `Settings` (or the values in it) as an argument. A bad value fails
there, as one line that names the variable (`SettingsError`).

| variable | field | default |
| --- | --- | --- |
| `OKR_WAREHOUSE_URL` | `warehouse_url` | `sqlite:///.okr/warehouse.db` |
| `OKR_DEFS` | `definitions_path` | `okr_defs` |
| `OKR_TRAILING_DAYS` | `trailing_days` (a whole number, at least 1) | 3 |
| `OKR_HTTP_MAX_ATTEMPTS` | `http.max_attempts` | 5 |
| `OKR_HTTP_BACKOFF_SECONDS` | `http.backoff_seconds` | 1.0 |
| `OKR_HTTP_MAX_WAIT_SECONDS` | `http.max_wait_seconds` | 300.0 |
| `DAGSTER_HOME` | `dagster_home` | unset: the CLI uses `.okr/dagster` |
| `OKR_DASHBOARD_TOKEN` | `dashboard_token` (a secret: in no repr) | unset: the dashboard asks for none |
| `OKR_REPORTS_DIR` | `reports_dir` (where `okr report` and the `okr/report` asset write) | `.okr/reports` |
| `OKR_ALERT_WEBHOOK_URL`, `OKR_ALERT_WEBHOOK_URL_<ROUTE>` | `alert_webhooks` (secrets) | unset: alerts are only recorded |
| `OKR_SCHEDULE_ON` | `schedule_on`: the `nightly` schedule starts on (`1`) or off (`0`) | off |
| `OKR_SCHEDULE_CRON` | `schedule_cron`: when `nightly` runs, in UTC (five cron fields) | `0 2 * * *` |
| `OKR_EXECUTOR` | `executor`: `in_process` (one process per run) or `multiprocess` (a process per step, API calls bounded by Dagster pools) | `in_process` |
| each source's variables (`SourceEnv`) | `sources[name]` | the source's default base URL |

Plain Python: no Dagster here (the resources in `orchestration/resources.py` are built
from a `Settings`).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from okr_metrics.connectors.base import SourceSettings
from okr_metrics.pipelines.vocabulary.terms import ALERT_WEBHOOK_VARIABLE
from okr_metrics.warehouse.store import DEFAULT_URL, warehouse_url

if TYPE_CHECKING:
    from okr_metrics.connectors.registry import Source

WAREHOUSE_URL_VARIABLE = "OKR_WAREHOUSE_URL"
DEFINITIONS_VARIABLE = "OKR_DEFS"
TRAILING_DAYS_VARIABLE = "OKR_TRAILING_DAYS"
MAX_ATTEMPTS_VARIABLE = "OKR_HTTP_MAX_ATTEMPTS"
BACKOFF_VARIABLE = "OKR_HTTP_BACKOFF_SECONDS"
MAX_WAIT_VARIABLE = "OKR_HTTP_MAX_WAIT_SECONDS"
DAGSTER_HOME_VARIABLE = "DAGSTER_HOME"
DASHBOARD_TOKEN_VARIABLE = "OKR_DASHBOARD_TOKEN"
REPORTS_DIR_VARIABLE = "OKR_REPORTS_DIR"
DEFAULT_REPORTS_DIR = ".okr/reports"
SCHEDULE_ON_VARIABLE = "OKR_SCHEDULE_ON"
EXECUTOR_VARIABLE = "OKR_EXECUTOR"
EXECUTORS = ("in_process", "multiprocess")
SCHEDULE_CRON_VARIABLE = "OKR_SCHEDULE_CRON"

DEFAULT_DEFS = "okr_defs"
DEFAULT_TRAILING_DAYS = 3
# Where the `okr` command keeps its Dagster instance when DAGSTER_HOME is not set.
DEFAULT_DAGSTER_HOME = ".okr/dagster"
DEFAULT_SCHEDULE_CRON = "0 2 * * *"
_SWITCH = {"1": True, "true": True, "yes": True, "on": True}
_SWITCH |= {"0": False, "false": False, "no": False, "off": False}
# Five fields of digits, names, `*`, `/`, `,`, `-` or `?`; Dagster checks the rest when it loads.
_CRON = re.compile(r"^\s*[\w*/,?-]+(\s+[\w*/,?-]+){4}\s*$")


class SettingsError(ValueError):
    """A variable holds a value the pipeline cannot use: one line naming each such variable."""


@dataclass(frozen=True)
class HttpSettings:
    """Retries of every source's HTTP client (`connectors.http.HttpClient`)."""

    max_attempts: int = 5
    backoff_seconds: float = 1.0
    max_wait_seconds: float = 300.0

    def client_options(self) -> dict[str, Any]:
        """The `HttpClient` keyword arguments, for `Connector.from_settings(settings, **options)`."""
        return {
            "max_attempts": self.max_attempts,
            "backoff_base": self.backoff_seconds,
            "max_wait": self.max_wait_seconds,
        }


def _frozen(mapping: Mapping[str, SourceSettings]) -> Mapping[str, SourceSettings]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class Settings:
    """Everything the pipeline reads from its environment, resolved and checked."""

    warehouse_url: str = DEFAULT_URL
    definitions_path: str = DEFAULT_DEFS
    trailing_days: int = DEFAULT_TRAILING_DAYS
    http: HttpSettings = field(default_factory=HttpSettings)
    # None: not set; the `okr` command then keeps its own instance in DEFAULT_DAGSTER_HOME.
    dagster_home: str | None = None
    # When set, every dashboard request must carry it (`okr serve`); a secret.
    dashboard_token: str | None = field(default=None, repr=False)
    # The folder of the quarter reports (`<quarter>.html`).
    reports_dir: str = DEFAULT_REPORTS_DIR
    # The `nightly` schedule: on when the code location loads, and its cron (UTC).
    schedule_on: bool = False
    schedule_cron: str = DEFAULT_SCHEDULE_CRON
    # How a run executes its steps: EXECUTORS.
    executor: str = EXECUTORS[0]
    # Each connected source's settings, by source name (read-only).
    sources: Mapping[str, SourceSettings] = field(default_factory=lambda: _frozen({}), hash=False)
    # Webhook URLs by variable (OKR_ALERT_WEBHOOK_URL and its routes); secrets, never shown.
    alert_webhooks: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )

    def __post_init__(self) -> None:
        if not isinstance(self.sources, MappingProxyType):
            object.__setattr__(self, "sources", _frozen(self.sources))
        if not isinstance(self.alert_webhooks, MappingProxyType):
            object.__setattr__(self, "alert_webhooks", MappingProxyType(dict(self.alert_webhooks)))

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        sources: Iterable[Source] | None = None,
    ) -> Settings:
        """Read the settings from `environ` (default: the process environment).

        `sources` defaults to every connected source (`connectors.registry`); each gets
        its `SourceSettings` from the variables its connector's `env` names. Raises
        `SettingsError` naming every variable whose value is unusable.
        """
        environ = os.environ if environ is None else environ
        if sources is None:
            from okr_metrics.connectors.registry import connected_sources

            sources = connected_sources().values()
        problems: list[str] = []

        url = warehouse_url(environ)
        try:
            make_url(url)
        except ArgumentError:
            # Never echo the value: a database URL may hold a password.
            problems.append(
                f"{WAREHOUSE_URL_VARIABLE} is not a database URL "
                "(expected e.g. postgresql+psycopg2://user:password@host/db or sqlite:///path)"
            )

        trailing = DEFAULT_TRAILING_DAYS
        raw = _read(environ, TRAILING_DAYS_VARIABLE)
        if raw is not None:
            try:
                trailing = int(raw)
            except ValueError:
                problems.append(
                    f"{TRAILING_DAYS_VARIABLE} must be a whole number of days, got {raw!r}"
                )
            else:
                if trailing < 1:
                    problems.append(f"{TRAILING_DAYS_VARIABLE} must be at least 1, got {trailing}")

        defaults = HttpSettings()
        max_attempts = _number(environ, MAX_ATTEMPTS_VARIABLE, defaults.max_attempts, problems)
        backoff = _number(environ, BACKOFF_VARIABLE, defaults.backoff_seconds, problems)
        max_wait = _number(environ, MAX_WAIT_VARIABLE, defaults.max_wait_seconds, problems)
        if math.isinf(max_attempts):
            problems.append(f"{MAX_ATTEMPTS_VARIABLE} must be a finite number, got 'inf'")
            max_attempts = defaults.max_attempts

        schedule_on = False
        raw = _read(environ, SCHEDULE_ON_VARIABLE)
        if raw is not None:
            if raw.strip().lower() not in _SWITCH:
                problems.append(f"{SCHEDULE_ON_VARIABLE} must be 1 or 0, got {raw!r}")
            schedule_on = _SWITCH.get(raw.strip().lower(), False)
        schedule_cron = _read(environ, SCHEDULE_CRON_VARIABLE) or DEFAULT_SCHEDULE_CRON
        if not _CRON.match(schedule_cron):
            problems.append(
                f"{SCHEDULE_CRON_VARIABLE} must be five cron fields (e.g. '0 2 * * *'), "
                f"got {schedule_cron!r}"
            )

        executor = (_read(environ, EXECUTOR_VARIABLE) or EXECUTORS[0]).strip().lower()
        if executor not in EXECUTORS:
            problems.append(
                f"{EXECUTOR_VARIABLE} must be in_process or multiprocess, got {executor!r}"
            )
            executor = EXECUTORS[0]

        source_settings = {}
        for source in sources:
            connector = source.connector_class()
            if connector is not None:
                source_settings[source.name] = SourceSettings.from_env(connector.env, environ)

        webhooks = _alert_webhooks(environ, problems)

        if problems:
            raise SettingsError("; ".join(problems))
        return cls(
            warehouse_url=url,
            definitions_path=_read(environ, DEFINITIONS_VARIABLE) or DEFAULT_DEFS,
            trailing_days=trailing,
            http=HttpSettings(int(max_attempts), backoff, max_wait),
            dagster_home=_read(environ, DAGSTER_HOME_VARIABLE),
            dashboard_token=_read(environ, DASHBOARD_TOKEN_VARIABLE),
            reports_dir=_read(environ, REPORTS_DIR_VARIABLE) or DEFAULT_REPORTS_DIR,
            schedule_on=schedule_on,
            schedule_cron=" ".join(schedule_cron.split()),
            executor=executor,
            sources=source_settings,
            alert_webhooks=webhooks,
        )

    def with_definitions(self, path: str | os.PathLike[str] | None) -> Settings:
        """The same settings reading the definitions at `path` (unchanged when None)."""
        return self if path is None else replace(self, definitions_path=str(path))

    def source(self, name: str) -> SourceSettings | None:
        """The settings of source `name`, or None when it was not read (not connected)."""
        return self.sources.get(name)

    @property
    def dagster_home_path(self) -> Path:
        """The Dagster instance's folder: DAGSTER_HOME, else DEFAULT_DAGSTER_HOME (absolute)."""
        return Path(self.dagster_home or DEFAULT_DAGSTER_HOME).resolve()

    def __repr__(self) -> str:  # never print a password or a token
        try:
            shown = make_url(self.warehouse_url).render_as_string(hide_password=True)
        except ArgumentError:
            shown = "<unparsable>"
        return (
            f"Settings(warehouse_url={shown!r}, definitions_path={self.definitions_path!r}, "
            f"trailing_days={self.trailing_days}, http={self.http!r}, "
            f"dagster_home={self.dagster_home!r}, schedule_on={self.schedule_on}, "
            f"schedule_cron={self.schedule_cron!r}, "
            f"dashboard_token={'set' if self.dashboard_token else 'unset'}, "
            f"reports_dir={self.reports_dir!r}, "
            f"sources={dict(self.sources)!r}, "
            f"alert_webhooks={sorted(self.alert_webhooks)!r})"
        )


def _read(environ: Mapping[str, str], name: str) -> str | None:
    """The variable's value; unset and empty are the same (None)."""
    return environ.get(name) or None


def _number(environ: Mapping[str, str], name: str, default: float, problems: list[str]) -> float:
    """A non-negative number from `name`, or `default` when unset; problems are collected."""
    raw = _read(environ, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        problems.append(f"{name} must be a number, got {raw!r}")
        return default
    if math.isnan(value):
        problems.append(f"{name} must be a number, got {raw!r}")
        return default
    if value < 0:
        problems.append(f"{name} must not be negative, got {raw!r}")
        return default
    return value


def _alert_webhooks(environ: Mapping[str, str], problems: list[str]) -> dict[str, str]:
    """OKR_ALERT_WEBHOOK_URL and every OKR_ALERT_WEBHOOK_URL_<ROUTE>, by variable.

    A route's variable shares the prefix, so a definitions file can only ever point an
    alert at a webhook variable, never at another secret.
    """
    found = {}
    for name in sorted(environ):
        if name != ALERT_WEBHOOK_VARIABLE and not name.startswith(ALERT_WEBHOOK_VARIABLE + "_"):
            continue
        value = _read(environ, name)
        if value is None:
            continue
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            # Never echo the value: the URL is the secret.
            problems.append(
                f"{name} is not an http(s) URL (expected e.g. https://hooks.slack.com/...)"
            )
            continue
        found[name] = value
    return found
