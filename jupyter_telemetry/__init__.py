"""Record schema-validated events from Jupyter applications.

Events go to standard ``logging`` handlers as JSON lines and, when
configured, to OpenTelemetry collectors as log records.
"""

from __future__ import annotations

from typing import Any

from ._capsule import METADATA_VERSION as TELEMETRY_METADATA_VERSION
from ._version import __version__, version_info
from .bridge import JupyterEventsHandler
from .errors import (
    EventSerializationError,
    EventTooLargeError,
    EventValidationError,
    InvalidSchemaError,
    SchemaLoadError,
    SchemaRegistrationError,
    UnregisteredSchemaError,
)
from .eventlog import EventLog

__all__ = [
    "TELEMETRY_METADATA_VERSION",
    "EventLog",
    "EventSerializationError",
    "EventTooLargeError",
    "EventValidationError",
    "InvalidSchemaError",
    "JupyterEventsHandler",
    "SchemaLoadError",
    "SchemaRegistrationError",
    "UnregisteredSchemaError",
    "__version__",
    "version_info",
]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """Jupyter Server's entry point: the extension lives in ``server_extension``."""
    return [{"module": "jupyter_telemetry.server_extension"}]
