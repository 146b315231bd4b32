"""Record schema-validated events from Jupyter applications.

Events go to standard ``logging`` handlers as JSON lines and, when
configured, to OpenTelemetry collectors as log records.
"""

from __future__ import annotations

from ._version import __version__
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
    "EventLog",
    "EventSerializationError",
    "EventTooLargeError",
    "EventValidationError",
    "InvalidSchemaError",
    "SchemaLoadError",
    "SchemaRegistrationError",
    "UnregisteredSchemaError",
    "__version__",
]
