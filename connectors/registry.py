"""Which sources exist: the built-in ones and those other packages add.

A source is a name, the pydantic model of its YAML keys and, once built, its
connector class. Third-party packages add a source through the entry point group
`okr_metrics.connectors`, whose value is a `Source` object.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connectors.base import Connector
    from connectors.params import MetricParams

ENTRY_POINT_GROUP = "okr_metrics.connectors"


@dataclass(frozen=True)
class Source:
    name: str
    params: str  # "module:Class" of the MetricParams model
    connector: str | None = None  # "module:Class" of the Connector; None until built
    sandbox: str | None = None  # "module:function" registering the sandbox routes

    def params_model(self) -> type[MetricParams]:
        return _load(self.params)

    def connector_class(self) -> type[Connector] | None:
        return _load(self.connector) if self.connector else None


BUILTIN_SOURCES = (
    Source("google_analytics", "connectors.google_analytics.params:GoogleAnalyticsMetric"),
    Source("jira", "connectors.jira.params:JiraMetric"),
    Source(
        "github",
        "connectors.github.params:GitHubMetric",
        connector="connectors.github.client:GitHubConnector",
        sandbox="connectors.github.sandbox:register",
    ),
    Source("salesforce", "connectors.salesforce.params:SalesforceMetric"),
    Source("hubspot", "connectors.hubspot.params:HubSpotMetric"),
    Source("manual", "connectors.manual.params:ManualMetric"),
)


def _load(target: str):
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


@cache
def sources() -> dict[str, Source]:
    """Every known source by name: built-in first, then entry points."""
    found = {source.name: source for source in BUILTIN_SOURCES}
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        source = entry_point.load()
        if not isinstance(source, Source):
            raise TypeError(
                f"entry point {entry_point.name!r} must point at a connectors.registry.Source"
            )
        found[source.name] = source
    return found


def connected_sources() -> dict[str, Source]:
    """The sources that have a connector (and so a Dagster observation asset)."""
    return {name: source for name, source in sources().items() if source.connector}
