"""Dagster resources: thin wrappers that carry settings from environment variables.

Secrets reach Dagster only as `EnvVar` references, so the UI and run metadata show
the variable's name, never its value.
"""

from __future__ import annotations

import os

from dagster import ConfigurableResource, EnvVar

from okr_metrics.connectors.base import Connector, SourceSettings
from okr_metrics.connectors.registry import Source
from okr_metrics.pipelines.definitions import Definitions, load_definitions
from okr_metrics.warehouse.store import DEFAULT_URL, Warehouse

DEFAULT_DEFS = "okr_defs"


def env_or(name: str | None, default: str | None = None) -> EnvVar | str | None:
    """`EnvVar(name)` when the variable is set, else the default (Dagster has no optional EnvVar)."""
    if name and os.environ.get(name):
        return EnvVar(name)
    return default


class OkrDefinitionsResource(ConfigurableResource):
    """Where the YAML definitions live (`OKR_DEFS`)."""

    path: str = DEFAULT_DEFS

    def load(self) -> Definitions:
        return load_definitions(self.path)


class WarehouseResource(ConfigurableResource):
    """The warehouse (`OKR_WAREHOUSE_URL`)."""

    url: str = DEFAULT_URL

    def open(self) -> Warehouse:
        return Warehouse(self.url)


class SourceResource(ConfigurableResource):
    """One source's endpoint and credentials; see `connectors.base.SourceEnv`."""

    source: str
    base_url: str | None = None
    token: str | None = None
    user: str | None = None
    credentials_file: str | None = None

    def settings(self) -> SourceSettings:
        return SourceSettings(self.base_url, self.token, self.user, self.credentials_file)


def source_resource(source: Source) -> SourceResource:
    connector: type[Connector] = source.connector_class()
    env = connector.env
    return SourceResource(
        source=source.name,
        base_url=env_or(env.base_url, env.default_base_url),
        token=env_or(env.token),
        user=env_or(env.user),
        credentials_file=env_or(env.credentials_file),
    )
