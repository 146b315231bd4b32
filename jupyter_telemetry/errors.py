"""Errors raised by jupyter_telemetry.

Each error also subclasses the exception that code written against
jupyter-telemetry 0.1.0 already catches::

    Exception
    ├── jsonschema.ValidationError
    │   └── EventValidationError      event does not match its schema
    ├── jsonschema.SchemaError
    │   └── InvalidSchemaError        schema does not match its metaschema
    ├── ValueError
    │   ├── SchemaRegistrationError   schema lacks $id/version, is a duplicate, ...
    │   ├── SchemaLoadError           a file or URL could not be read or parsed
    │   ├── UnregisteredSchemaError   record_event for an unknown ($id, version)
    │   └── EventTooLargeError        the event's JSON line exceeds max_event_size
    └── TypeError
        └── EventSerializationError   event holds a value JSON cannot encode
"""

from __future__ import annotations

import jsonschema


class EventValidationError(jsonschema.ValidationError):
    """An event failed validation; nothing was written to any sink.

    ``schema_id`` and ``version`` name the schema; ``json_path`` (from
    jsonschema) names the failing location, e.g. ``$.ctx.count``.
    """

    schema_id: str
    version: str | int

    def __str__(self) -> str:
        # jsonschema's default dumps the whole schema and instance; the
        # message already names schema, version, path and reason.
        return self.message


class InvalidSchemaError(jsonschema.SchemaError):
    """A schema is not valid against its JSON Schema metaschema."""

    def __str__(self) -> str:
        return self.message


class SchemaRegistrationError(ValueError):
    """A schema cannot be registered (missing ``$id``/``version``, duplicate, ...)."""


class SchemaLoadError(ValueError):
    """A schema file or URL could not be read, fetched or parsed."""


class UnregisteredSchemaError(ValueError):
    """``record_event`` named a ``($id, version)`` that was never registered."""


class EventTooLargeError(ValueError):
    """The event's JSON line is longer than ``EventLog.max_event_size``; nothing was written."""


class EventSerializationError(TypeError):
    """The event holds a value that cannot be encoded as JSON; nothing was written."""


__all__ = [
    "EventSerializationError",
    "EventTooLargeError",
    "EventValidationError",
    "InvalidSchemaError",
    "SchemaLoadError",
    "SchemaRegistrationError",
    "UnregisteredSchemaError",
]
