"""The sandbox: a local test double of the APIs the connectors call (see `server.py`)."""

from connectors.sandbox.data import SandboxData
from connectors.sandbox.server import (
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
