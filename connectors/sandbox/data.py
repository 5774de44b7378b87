"""The sandbox's sample data: one object per API, created by that API's module.

An API module's `register(router, data)` calls `data.source(name, factory)` to get (or
create) its data object (`ApiData.of(data)` in `api.py` does it for a subclass of
`ApiData`); tests reach it as an attribute, e.g. `sandbox.data.github`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timezone
from typing import Any, TypeVar

T = TypeVar("T")

# The first day of generated sample data, for every source.
FIRST_DAY = date(2025, 1, 1)


class SandboxData:
    """Deterministic sample data of every source, generated up to `now` (UTC).

    `now` (default: the current time) is the sandbox's horizon: nothing is created,
    merged, closed or published after it, so every day up to yesterday is complete.
    """

    def __init__(self, now: datetime | None = None) -> None:
        now = now or datetime.now(timezone.utc)
        self.now = now if now.tzinfo else now.replace(tzinfo=timezone.utc)
        self.first_day = FIRST_DAY
        self._sources: dict[str, Any] = {}

    def source(self, name: str, factory: Callable[[SandboxData], T]) -> T:
        """The data object of source `name`, created by `factory(self)` on first use."""
        if name not in self._sources:
            self._sources[name] = factory(self)
        return self._sources[name]

    def __getattr__(self, name: str) -> Any:
        sources = self.__dict__.get("_sources", {})
        if name in sources:
            return sources[name]
        raise AttributeError(f"no sandbox data for source {name!r} (is its sandbox registered?)")
