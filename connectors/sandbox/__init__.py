"""The sandbox: a local test double of the APIs the connectors call (see `server.py`)."""

from okr_metrics.connectors.sandbox.data import SandboxData
from okr_metrics.connectors.sandbox.server import (
    Fault,
    RecordedRequest,
    Router,
    Sandbox,
    SandboxRequest,
    SandboxResponse,
)

__all__ = [
    "Fault",
    "RecordedRequest",
    "Router",
    "Sandbox",
    "SandboxData",
    "SandboxRequest",
    "SandboxResponse",
]
