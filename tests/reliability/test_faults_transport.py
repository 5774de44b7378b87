"""Transport faults against the sandbox, for every API source: bursts of 5xx, connection
resets, read timeouts, a body that stops halfway or stalls, a slow drip.

Each transient fault gives the series of the run without it; a fault that outlasts the
retries fails the source with one line. The clients get short timeouts (0.3 s a read,
a 0.5 s deadline per request) so that nothing waits long.
"""

from __future__ import annotations

import pytest
from fault_sources import SOURCES, Sleeps, connector, fault_free, series

from okr_metrics.connectors.base import SourceError

ALL = list(SOURCES)
QUICK = {"timeout": (1.0, 0.3), "deadline": 0.5}

TRANSIENT = {
    "500 burst": {"status": 500, "times": 3},
    "502 burst": {"status": 502, "times": 3},
    "503 burst": {"status": 503, "times": 3},
    "connection reset": {"transport": "reset", "times": 2},
    "read timeout": {"delay_seconds": 0.6, "times": 1},
    "truncated body": {"transport": "truncate", "times": 2},
    "stall mid-body": {"transport": "stall", "transport_seconds": 0.6, "times": 1},
    "slow drip": {"transport": "drip", "transport_seconds": 0.05, "times": 1},
}
WAITS = {1: [0.5], 2: [0.5, 1.0], 3: [0.5, 1.0, 2.0]}


@pytest.mark.parametrize("fault", TRANSIENT)
@pytest.mark.parametrize("name", ALL)
def test_a_transient_fault_gives_the_fault_free_series(sandbox, name, fault):
    source = SOURCES[name]
    expected = fault_free(source, sandbox)
    spec = TRANSIENT[fault]
    sandbox.add_fault(path_prefix=source.path, **spec)
    sleeps = Sleeps()
    assert series(source, connector(source, sandbox, sleeps, **QUICK)) == expected
    assert sleeps == WAITS[spec["times"]]


PERSISTENT = {
    "503": ({"status": 503}, "last server error (HTTP 503)"),
    "connection reset": ({"transport": "reset"}, "last connection error"),
    "read timeout": ({"delay_seconds": 0.6}, "last timeout (limit connect 1.0 s, read 0.3 s)"),
    "stall mid-body": (
        {"transport": "stall", "transport_seconds": 0.6},
        "last timeout while reading the body",
    ),
    "truncated body": ({"transport": "truncate"}, "last connection broken while reading the body"),
    "slow drip": (
        {"transport": "drip", "transport_seconds": 0.05},
        "last the answer took longer than 0.5 s (deadline)",
    ),
}


@pytest.mark.parametrize("fault", PERSISTENT)
@pytest.mark.parametrize("name", ["github", "hubspot"])
def test_a_fault_that_outlasts_the_retries_fails_the_source_in_one_line(sandbox, name, fault):
    source = SOURCES[name]
    spec, reason = PERSISTENT[fault]
    sandbox.add_fault(path_prefix=source.path, **spec)
    sleeps = Sleeps()
    with pytest.raises(SourceError) as failure:
        series(source, connector(source, sandbox, sleeps, max_attempts=3, **QUICK))
    message = str(failure.value)
    assert failure.value.source == name and "\n" not in message
    assert message.startswith(f"{name}: gave up after 3 attempts on ")
    assert message.endswith(reason)
    assert sleeps == [0.5, 1.0]


def test_the_deadline_bounds_a_drip_the_read_timeout_never_sees(sandbox):
    """Each byte arrives well within the read timeout: only the deadline ends the attempt."""
    source = SOURCES["jira"]
    sandbox.add_fault(path_prefix=source.path, transport="drip", transport_seconds=0.05)
    with pytest.raises(SourceError) as failure:
        series(
            source,
            connector(source, sandbox, Sleeps(), max_attempts=1, timeout=(1.0, 5.0), deadline=0.4),
        )
    assert str(failure.value).endswith("last the answer took longer than 0.4 s (deadline)")
