"""Which sources exist: the built-in ones and those other packages add.

A source is a name, the pydantic model of its YAML keys and, once built, its
connector class. Third-party packages add a source through the entry point group
`okr_metrics.connectors`, whose value is a `Source` object.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from okr_metrics.connectors.base import Connector
    from okr_metrics.connectors.params import MetricParams

ENTRY_POINT_GROUP = "okr_metrics.connectors"


@dataclass(frozen=True)
class Source:
    name: str
    params: str  # "module:Class" of the MetricParams model
    connector: str | None = None  # "module:Class" of the Connector; None until built

    def params_model(self) -> type[MetricParams]:
        return _load(self.params)

    def connector_class(self) -> type[Connector] | None:
        return _load(self.connector) if self.connector else None


BUILTIN_SOURCES = (
    Source(
        "google_analytics",
        "okr_metrics.connectors.google_analytics.params:GoogleAnalyticsMetric",
        connector="okr_metrics.connectors.google_analytics.client:GoogleAnalyticsConnector",
    ),
    Source(
        "jira",
        "okr_metrics.connectors.jira.params:JiraMetric",
        connector="okr_metrics.connectors.jira.client:JiraConnector",
    ),
    Source(
        "github",
        "okr_metrics.connectors.github.params:GitHubMetric",
        connector="okr_metrics.connectors.github.client:GitHubConnector",
    ),
    Source(
        "salesforce",
        "okr_metrics.connectors.salesforce.params:SalesforceMetric",
        connector="okr_metrics.connectors.salesforce.client:SalesforceConnector",
    ),
    Source(
        "hubspot",
        "okr_metrics.connectors.hubspot.params:HubSpotMetric",
        connector="okr_metrics.connectors.hubspot.client:HubSpotConnector",
    ),
    Source(
        "manual",
        "okr_metrics.connectors.manual.params:ManualMetric",
        connector="okr_metrics.connectors.manual.client:ManualConnector",
    ),
)


def _load(target: str):
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


class RegistryError(Exception):
    """A connector package's entry point is broken; the message names the entry point."""


@cache
def sources() -> dict[str, Source]:
    """Every known source by name: built-in first, then entry points.

    Cached for the life of the process: a package installed later is seen by the next
    process (or after `sources.cache_clear()`).
    """
    found = {source.name: source for source in BUILTIN_SOURCES}
    added_by: dict[str, str] = {}
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        source = _source_of(entry_point)
        if source.name in found:
            owner = added_by.get(source.name, "okr-metrics itself (a built-in source)")
            raise RegistryError(
                f"{_describe(entry_point)} adds source {source.name!r}, which {owner} "
                "already provides; uninstall one of the two packages"
            )
        found[source.name] = source
        added_by[source.name] = _distribution(entry_point)
    return found


def _distribution(entry_point: EntryPoint) -> str:
    dist = getattr(entry_point, "dist", None)
    return f"package {dist.name}" if dist is not None else "an unknown package"


def _describe(entry_point: EntryPoint) -> str:
    return (
        f"entry point {entry_point.name!r} = {entry_point.value!r} of {_distribution(entry_point)} "
        f"(group {ENTRY_POINT_GROUP!r})"
    )


def _source_of(entry_point: EntryPoint) -> Source:
    """Load one entry point and check it is a `Source` named like the entry point."""
    try:
        source = entry_point.load()
    except Exception as error:
        raise RegistryError(
            f"{_describe(entry_point)} cannot be loaded: {type(error).__name__}: {error}"
        ) from error
    if not isinstance(source, Source):
        raise RegistryError(
            f"{_describe(entry_point)} must point at a connectors.registry.Source, "
            f"not a {type(source).__name__}"
        )
    if source.name != entry_point.name:
        raise RegistryError(
            f"{_describe(entry_point)} points at Source {source.name!r}: "
            "name the entry point after its source"
        )
    return source


def connected_sources() -> dict[str, Source]:
    """The sources that have a connector (and so a Dagster observation asset)."""
    return {name: source for name, source in sources().items() if source.connector}
