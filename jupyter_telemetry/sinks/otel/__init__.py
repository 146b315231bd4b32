"""The OpenTelemetry sink: each recorded event becomes one OTel log record.

This package holds every OpenTelemetry import of jupyter_telemetry, and
importing it imports none: ``_config`` decides from traits and ``OTEL_*``
variables whether there is any OTel output, and only then does ``EventLog``
import ``_sink`` (and with it the SDK, protobuf and grpc).

Mapping: ``event_name`` is the schema ``$id``; ``body`` is the event map as
written to the JSON line (capsule keys removed); ``timestamp`` is
``__timestamp__``; severity INFO; attributes ``jupyter.event.schema_id``,
``jupyter.event.schema_version`` (as given: int or str) and
``jupyter.event.metadata_version``; the trace and span ids of the span active
when the event was recorded. Values OTLP cannot hold travel in the form
``_records`` documents (big ints as strings, deep nesting as JSON text,
out-of-range timestamps in ``jupyter.event.timestamp``).

Modules: ``_config`` (settings, OTel-free), ``_records`` (event → record
values; ``Logger.emit``), ``_encode`` (event → OTLP bytes), ``_transport``
and ``_grpc`` (the SDK's exporters and their optional seams), ``_pipelines``
(what a worker does with a batch), ``_sink`` (queue, workers, counters),
``_lifetime`` (exit, fork and multiprocessing hooks).
"""

from ._config import (
    METADATA,
    PAYLOAD,
    PROTOCOLS,
    SCHEMA_ID,
    SCHEMA_VERSION,
    SCOPE,
    TIMESTAMP,
    OTLPSettings,
    global_provider,
)

__all__ = [
    "METADATA",
    "PAYLOAD",
    "PROTOCOLS",
    "SCHEMA_ID",
    "SCHEMA_VERSION",
    "SCOPE",
    "TIMESTAMP",
    "OTLPSettings",
    "global_provider",
]
