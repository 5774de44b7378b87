"""Fixtures shared by the whole test suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# --- the sandbox (connectors) ---------------------------------------------------------------
# One sandbox server for the whole session; tests that use it start with no faults, no
# latency and an empty request log. Tests that set repositories use names of their own.


@pytest.fixture(scope="session")
def sandbox() -> Iterator[object]:
    """The running sandbox (`.url`, `.data`, `.add_fault`, `.requests`), started once."""
    from connectors.sandbox import Sandbox

    with Sandbox() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_sandbox(request: pytest.FixtureRequest) -> None:
    """Forget the faults and recorded requests of earlier tests (only where the sandbox is used)."""
    if "sandbox" in request.fixturenames:
        request.getfixturevalue("sandbox").reset()


# --- end of the sandbox block ------------------------------------------------------------------
