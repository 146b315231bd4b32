"""Record schema-validated events from Jupyter applications.

Events go to standard ``logging`` handlers as JSON lines and, when
configured, to OpenTelemetry collectors as log records.
"""

from __future__ import annotations

from ._capsule import METADATA_VERSION as TELEMETRY_METADATA_VERSION
from ._version import __version__, version_info
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
    "SchemaLoadError",
    "SchemaRegistrationError",
    "UnregisteredSchemaError",
    "__version__",
    "version_info",
]
