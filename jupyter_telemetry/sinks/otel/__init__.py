"""The OpenTelemetry sink: each recorded event becomes one OTel log record.

This package holds every OpenTelemetry import of jupyter_telemetry; the OTel
logs API is still underscore-private and moves between minor releases, so
the tested range is pinned in pyproject.toml.

Mapping: ``event_name`` is the schema ``$id``; ``body`` is the event exactly
as written to the JSON line (decoded from that line, so a value OTLP cannot
encode never reaches an exporter); ``timestamp`` is ``__timestamp__``;
severity INFO; attributes ``jupyter.event.schema_id``,
``jupyter.event.schema_version`` and ``jupyter.event.metadata_version``; the
trace and span ids of the span active when the event was recorded.

Modules: ``_sink`` (the queue and worker thread every EventLog with OTel
output has), ``_export`` (record building, the provider and exporter an
EventLog builds, the OTLP encoder), ``_process`` (the export process that
runs that provider and exporter away from the application's GIL).
"""

from ._export import (
    METADATA,
    PROTOCOLS,
    SCHEMA_ID,
    SCHEMA_VERSION,
    SCOPE,
    OTLPSettings,
    encode_logs,
)
from ._sink import MAX_BATCH_BYTES, PAYLOAD, OTelSink, installed_provider

__all__ = [
    "MAX_BATCH_BYTES",
    "METADATA",
    "PAYLOAD",
    "PROTOCOLS",
    "SCHEMA_ID",
    "SCHEMA_VERSION",
    "SCOPE",
    "OTLPSettings",
    "OTelSink",
    "encode_logs",
    "installed_provider",
]
