"""The sandbox: a local test double of the APIs the connectors call, in a package of its own.

| module | what it holds |
| --- | --- |
| `server.py` | the server (`Sandbox`), its `Router`, faults and the request log |
| `registry.py` | which APIs it serves: `BUILTIN_APIS` and the entry point group `okr_metrics.sandboxes` |
| `api.py` | what the API modules share: replies and error bodies (`Api`), `BadRequest`, credential checks, the data-object base (`ApiData`), page-size `Limits`, timestamps |
| `data.py` | `SandboxData`: the horizon and every API's data object (`sandbox.data.github`) |
| `github.py`, `jira.py`, `google_analytics.py`, `salesforce.py`, `hubspot.py` | one API each: its routes, wire format and sample data |

The production code never imports it (the demo and the tests do); the production
registry (`connectors/registry.py`) never names it.
"""

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
