"""Record schema-validated events from Jupyter applications.

Events go to standard ``logging`` handlers as JSON lines and, when
configured, to OpenTelemetry collectors as log records.
"""

from __future__ import annotations

from .errors import (
    EventSerializationError,
    EventValidationError,
    InvalidSchemaError,
    SchemaLoadError,
    SchemaRegistrationError,
    UnregisteredSchemaError,
)
from .eventlog import EventLog

__version__ = "0.2.0"

__all__ = [
    "EventLog",
    "EventSerializationError",
    "EventValidationError",
    "InvalidSchemaError",
    "SchemaLoadError",
    "SchemaRegistrationError",
    "UnregisteredSchemaError",
    "__version__",
]
