"""One queued event → what a log record holds, in the form OTLP can carry.

Both paths — our encoder and ``Logger.emit`` into a provider — send the same
values: the event map as written to the JSON line, with what OTLP cannot hold
sent in a documented form instead of failing its batch:

- an integer outside int64 (orjson writes up to 2**64-1) → its decimal string;
- a map or array nested deeper than :data:`MAX_DEPTH` inside the event → its
  JSON text (collectors refuse messages nested ~100 deep);
- a ``__timestamp__`` a record cannot hold (before 1970, from 2554 on) → no
  ``timestamp`` (observed time still set), the text in :data:`TIMESTAMP`.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import orjson
from opentelemetry import trace
from opentelemetry._logs import Logger, LoggerProvider, SeverityNumber, get_logger_provider
from opentelemetry.sdk._logs import LoggerProvider as SDKLoggerProvider

from ..._capsule import METADATA_VERSION
from ._config import METADATA, SCHEMA_ID, SCHEMA_VERSION, TIMESTAMP

MAX_DEPTH = 16  #: maps/arrays deeper than this inside an event travel as JSON text
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
TIME_LIMIT = 2**64  #: time_unix_nano is an unsigned 64-bit count of nanoseconds


class Item(NamedTuple):
    """What the sink queues per event: no capsule dict, to keep the queue small."""

    line: str
    time_ns: int
    schema_id: str
    version: int | str
    context: Any  #: the OTel context current when the event was recorded
    observed_ns: int


#: ``item((line, time_ns, schema_id, version, context, observed_ns))``, built by
#: ``tuple.__new__`` in C (``Item(...)`` runs a generated Python ``__new__``).
item = functools.partial(tuple.__new__, Item)


def installed_provider() -> LoggerProvider | None:
    """The application's global logger provider, if it installed an SDK one."""
    provider = get_logger_provider()
    return provider if isinstance(provider, SDKLoggerProvider) else None


def attributes(schema_id: str, version: int | str, stamp: str | None = None) -> dict[str, Any]:
    """The attributes every record (and span event) of this schema carries."""
    found: dict[str, Any] = {
        SCHEMA_ID: schema_id,
        SCHEMA_VERSION: version,
        METADATA: METADATA_VERSION,
    }
    if stamp is not None:
        found[TIMESTAMP] = stamp
    return found


def split(line: str) -> tuple[dict[str, Any], str]:
    """``(event map without the capsule keys, __timestamp__ text)`` of one JSON line."""
    body: dict[str, Any] = orjson.loads(line)
    stamp = body.pop("__timestamp__")
    del body["__schema__"], body["__schema_version__"], body["__metadata_version__"]
    return body, stamp


def sanitise(value: Any, depth: int = 0) -> Any:
    """``value`` with what OTLP cannot hold in its documented form (module docstring)."""
    kind = type(value)
    if kind is int:
        return value if INT64_MIN <= value <= INT64_MAX else str(value)
    if kind is dict or kind is list:
        if depth >= MAX_DEPTH:
            return orjson.dumps(value).decode()
        if kind is dict:
            return {key: sanitise(item, depth + 1) for key, item in value.items()}
        return [sanitise(item, depth + 1) for item in value]
    return value


def span_ids(context: Any) -> tuple[int, int, int]:
    """``(trace_id, span_id, trace_flags)`` of the span in ``context``, as the SDK takes them."""
    if context:
        span = trace.get_current_span(context).get_span_context()
        return span.trace_id, span.span_id, int(span.trace_flags)
    return 0, 0, 0


def emit(logger: Logger, item: Item) -> None:
    """``Logger.emit`` the record of ``item``; raises what ``split`` or the logger raise."""
    body, stamp = split(item.line)
    in_range = 0 <= item.time_ns < TIME_LIMIT
    logger.emit(
        timestamp=item.time_ns if in_range else None,
        observed_timestamp=item.observed_ns,
        context=item.context,
        severity_number=SeverityNumber.INFO,
        severity_text="INFO",
        body=sanitise(body),
        attributes=attributes(item.schema_id, item.version, None if in_range else stamp),
        event_name=item.schema_id,
    )
