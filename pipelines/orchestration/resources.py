"""Dagster resources: typed, and built from a `Settings` (`build_resources`).

Secrets reach Dagster only as `EnvVar` references, so the UI and run metadata show the
variable's name, never its value: the warehouse URL (it may hold a password) and each
source's token, user and credentials file, whenever the value came from the process
environment. Values set in code (the demo's placeholder credentials) are no secrets and
are passed as they are. `sandbox_resources` aims every source at the sandbox, for
`okr demo`, by replacing resources rather than the environment.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from dagster import ConfigurableResource, EnvVar

from okr_metrics.connectors.base import Connector, SourceSettings
from okr_metrics.connectors.registry import Source, connected_sources
from okr_metrics.pipelines.definitions import Definitions, load_definitions
from okr_metrics.pipelines.settings import (
    DEFAULT_DEFS,
    DEFAULT_REPORTS_DIR,
    WAREHOUSE_URL_VARIABLE,
    HttpSettings,
    Settings,
)
from okr_metrics.warehouse.store import DEFAULT_URL, Warehouse

# The demo's placeholder credentials: the sandbox checks that some are sent, not which.
SANDBOX_TOKEN = "sandbox-token"
SANDBOX_USER = "demo@example.com"

_HTTP = HttpSettings()


def secret(variable: str | None, value: str | None) -> str | None:
    """`EnvVar(variable)` when the process environment holds this very value, else the value.

    Dagster resolves the reference from the environment of the process that runs the
    step; comparing the values (not reading settings) makes sure it resolves to what the
    `Settings` say.
    """
    if variable and value is not None and os.environ.get(variable) == value:
        return EnvVar(variable)
    return value


def source_resource_key(source: str) -> str:
    return f"{source}_source"


class OkrDefinitionsResource(ConfigurableResource):
    """Where the YAML definitions live (`Settings.definitions_path`, `OKR_DEFS`)."""

    path: str = DEFAULT_DEFS

    def load(self) -> Definitions:
        return load_definitions(self.path)


class ReportsResource(ConfigurableResource):
    """Where the quarter reports are written (`Settings.reports_dir`, `OKR_REPORTS_DIR`)."""

    folder: str = DEFAULT_REPORTS_DIR


class WarehouseResource(ConfigurableResource):
    """The warehouse (`Settings.warehouse_url`, `OKR_WAREHOUSE_URL`)."""

    url: str = DEFAULT_URL

    def open(self) -> Warehouse:
        return Warehouse(self.url)


class SourceResource(ConfigurableResource):
    """One source's endpoint and credentials (see `connectors.base.SourceEnv`), and the
    retry settings of its HTTP client."""

    source: str
    base_url: str | None = None
    token: str | None = None
    user: str | None = None
    credentials_file: str | None = None
    max_attempts: int = _HTTP.max_attempts
    backoff_seconds: float = _HTTP.backoff_seconds
    max_wait_seconds: float = _HTTP.max_wait_seconds

    def settings(self) -> SourceSettings:
        return SourceSettings(self.base_url, self.token, self.user, self.credentials_file)

    def client_options(self) -> dict[str, Any]:
        """The keyword arguments for the source's `HttpClient`."""
        return HttpSettings(
            self.max_attempts, self.backoff_seconds, self.max_wait_seconds
        ).client_options()

    def connector(self, connector_class: type[Connector]) -> tuple[Connector | None, str | None]:
        """The connector built from these settings, or None and why it must be skipped."""
        settings = self.settings()
        skip_reason = connector_class.missing_settings(settings)
        if skip_reason:
            return None, skip_reason
        options = accepted_options(connector_class.from_settings, self.client_options())
        return connector_class.from_settings(settings, **options), None


def accepted_options(factory: Any, options: dict[str, Any]) -> dict[str, Any]:
    """The `options` that `factory` takes: all with `**kwargs`, else those it names.

    A connector without an HTTP client (the manual check-ins) takes none of them.
    """
    parameters = inspect.signature(factory).parameters.values()
    if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters):
        return dict(options)
    names = {parameter.name for parameter in parameters}
    return {name: value for name, value in options.items() if name in names}


def _http_fields(http: HttpSettings) -> dict[str, Any]:
    return {
        "max_attempts": http.max_attempts,
        "backoff_seconds": http.backoff_seconds,
        "max_wait_seconds": http.max_wait_seconds,
    }


def source_resource(source: Source, settings: Settings) -> SourceResource:
    """The resource of one source, from its `SourceSettings` in `settings`."""
    connector: type[Connector] = source.connector_class()
    env = connector.env
    values = settings.source(source.name) or SourceSettings.from_env(env, {})
    return SourceResource(
        source=source.name,
        base_url=values.base_url,
        token=secret(env.token, values.token),
        user=secret(env.user, values.user),
        credentials_file=secret(env.credentials_file, values.credentials_file),
        **_http_fields(settings.http),
    )


class AlertWebhooks:
    """The alert webhook URLs by variable (`Settings.alert_webhooks`), for `okr/kr_alerts`.

    A plain object, not a configurable resource: Dagster then has no configuration of it
    to show, so the URLs (secrets) never reach the UI, the run config or the event log.
    Each process that loads the code location reads them from its own settings.
    """

    def __init__(self, urls: Mapping[str, str]) -> None:
        self._urls = MappingProxyType(dict(urls))

    def urls(self) -> Mapping[str, str]:
        return self._urls

    def __repr__(self) -> str:
        return f"AlertWebhooks({sorted(self._urls)!r})"


def build_resources(settings: Settings, sources: Iterable[Source]) -> dict[str, Any]:
    """Every resource the assets need: the definitions, the warehouse, the alert webhooks
    and one per source."""
    resources: dict[str, Any] = {
        "okr_definitions": OkrDefinitionsResource(path=settings.definitions_path),
        "warehouse": WarehouseResource(url=secret(WAREHOUSE_URL_VARIABLE, settings.warehouse_url)),
        "reports": ReportsResource(folder=settings.reports_dir),
        "alert_webhooks": AlertWebhooks(settings.alert_webhooks),
    }
    for source in sources:
        resources[source_resource_key(source.name)] = source_resource(source, settings)
    return resources


def sandbox_resources(
    settings: Settings, url: str, sources: Iterable[Source] | None = None
) -> dict[str, Any]:
    """Source resources that aim every source (default: every connected one) at the
    sandbox on `url` (`okr demo`).

    Each variable a source's connector declares gets the sandbox's value: the base URL,
    placeholder credentials, and no credentials file; the rest stays as `settings` say.
    Pass them to `build_definitions(settings, resources=...)`: nothing else changes.
    """
    if sources is None:
        sources = connected_sources().values()
    resources: dict[str, Any] = {}
    for source in sources:
        env = source.connector_class().env
        values = settings.source(source.name) or SourceSettings.from_env(env, {})
        resources[source_resource_key(source.name)] = SourceResource(
            source=source.name,
            base_url=url if env.base_url else values.base_url,
            token=SANDBOX_TOKEN if env.token else values.token,
            user=SANDBOX_USER if env.user else values.user,
            credentials_file=None if env.credentials_file else values.credentials_file,
            **_http_fields(settings.http),
        )
    return resources
