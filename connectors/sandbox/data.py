"""The sandbox's sample data: one object per API, created by that API's module.

An API module's `register(router, data)` calls `data.source(name, factory)` to get (or
create) its data object (`ApiData.of(data)` in `api.py` does it for a subclass of
`ApiData`); tests reach it as an attribute, e.g. `sandbox.data.github`.

`volume` scales how many items the generators make a day (the benchmarks and the company
simulation ask for a busier company: `SandboxData(volume={"jira": 3, "github": 18})`);
at the default, 1, the sample data is exactly what it always was. `first_day` (default
2025-01-01) starts the data later, which keeps a sandbox of thousands of repositories or
projects small; the data then differs from the default's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime, timezone
from typing import Any, TypeVar

T = TypeVar("T")

# The first day of generated sample data, for every source.
FIRST_DAY = date(2025, 1, 1)


class SandboxData:
    """Deterministic sample data of every source, generated up to `now` (UTC).

    `now` (default: the current time) is the sandbox's horizon: nothing is created,
    merged, closed or published after it, so every day up to yesterday is complete.
    `volume` scales the items a day (a number for every source, or one per source);
    `first_day` is the first day of data.
    """

    def __init__(
        self,
        now: datetime | None = None,
        volume: float | Mapping[str, float] = 1.0,
        first_day: date | None = None,
    ) -> None:
        now = now or datetime.now(timezone.utc)
        self.now = now if now.tzinfo else now.replace(tzinfo=timezone.utc)
        self.first_day = first_day or FIRST_DAY
        self._volume = volume if isinstance(volume, Mapping) else {}
        self._default_volume = 1.0 if isinstance(volume, Mapping) else float(volume)
        for name, factor in {"": self._default_volume, **self._volume}.items():
            if not factor > 0:
                raise ValueError(f"sandbox volume of {name or 'every source'!r} must be > 0")
        self._sources: dict[str, Any] = {}

    def volume(self, source: str) -> float:
        """How many times the default daily items source `source` generates (default 1)."""
        return float(self._volume.get(source, self._default_volume))

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


def scaled(count: int, volume: float) -> int:
    """`count` items at `volume` times the default (unchanged at 1, so is the sample data)."""
    return count if volume == 1 else round(count * volume)
