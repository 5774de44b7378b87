"""Which APIs the sandbox serves: its own modules, and those other packages add.

An API module is a `register(router, data)` function that adds the API's routes to the
`Router` and keeps its sample data in `data` (see `api.py`). The built-in ones are the
modules of this package named in `BUILTIN_APIS`; a third-party package adds one through
the entry point group `okr_metrics.sandboxes`, named after its source, whose value is
its `register` function:

    [project.entry-points."okr_metrics.sandboxes"]
    pagerduty = "okr_pagerduty.sandbox:register"

The production registry (`connectors/registry.py`) never names a test double: a source
and its sandbox API only share a name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from okr_metrics.connectors.sandbox.data import SandboxData
    from okr_metrics.connectors.sandbox.server import Router

ENTRY_POINT_GROUP = "okr_metrics.sandboxes"
# The modules of this package that serve an API, each with `register(router, data)`.
BUILTIN_APIS = ("google_analytics", "jira", "github", "salesforce", "hubspot")

Registrar = Callable[["Router", "SandboxData"], None]
# A registrar, or where to find one: "module:function".
RegistrarTarget = str | Registrar


class SandboxPluginError(Exception):
    """An `okr_metrics.sandboxes` entry point is broken; the message names it."""


def builtin_targets() -> list[str]:
    """The `module:function` of every built-in API module."""
    return [f"okr_metrics.connectors.sandbox.{name}:register" for name in BUILTIN_APIS]


def registrars() -> list[Registrar]:
    """Every API the sandbox serves by default: the built-in ones, then the entry points."""
    found = [load(target) for target in builtin_targets()]
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name in BUILTIN_APIS:
            raise SandboxPluginError(
                f"entry point {entry_point.name!r} (group {ENTRY_POINT_GROUP!r}) adds a sandbox "
                "API that okr-metrics itself provides; rename the entry point"
            )
        found.append(_load_entry_point(entry_point))
    return found


def load(target: RegistrarTarget) -> Registrar:
    """A registrar given as such or as `module:function`."""
    if callable(target):
        return target
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute or "register")


def load_all(targets: Iterable[RegistrarTarget]) -> list[Registrar]:
    return [load(target) for target in targets]


def _load_entry_point(entry_point: EntryPoint) -> Registrar:
    where = (
        f"entry point {entry_point.name!r} = {entry_point.value!r} (group {ENTRY_POINT_GROUP!r})"
    )
    try:
        registrar = entry_point.load()
    except Exception as error:
        raise SandboxPluginError(f"{where} cannot be loaded: {error!r}") from error
    if not callable(registrar):
        raise SandboxPluginError(f"{where} must point at a `register(router, data)` function")
    return registrar
