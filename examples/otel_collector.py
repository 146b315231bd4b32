"""Record events inside a trace span and export both to an OpenTelemetry collector.

The application owns its ``TracerProvider`` (spans go to the collector through
a ``BatchSpanProcessor``); the EventLog exports each event as an OTel log
record carrying the active span's trace and span ids, and — with
``span_events=True`` — also adds it to that span as a span event.

Run it against any OTLP collector (gRPC by default)::

    OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 python examples/otel_collector.py

``OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`` (endpoint :4318) and
``OTEL_SERVICE_NAME`` are honoured too. Exits with status 1 when the
collector did not accept every log record.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from jupyter_telemetry import EventLog

HERE = Path(__file__).resolve().parent
SCHEMA_ID = "https://events.example.org/jupyter/file-opened"


def span_exporter(endpoint: str, protocol: str) -> SpanExporter:
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
        OTLPSpanExporter as GRPCSpanExporter,
    )

    return GRPCSpanExporter(endpoint=endpoint, insecure=endpoint.startswith("http://"))


def main() -> int:
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4317")
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    service = os.environ.get("OTEL_SERVICE_NAME", "otel-collector-example")

    tracing = TracerProvider(resource=Resource.create({"service.name": service}))
    tracing.add_span_processor(BatchSpanProcessor(span_exporter(endpoint, protocol)))

    eventlog = EventLog(
        allowed_schemas=[SCHEMA_ID],
        otlp_endpoint=endpoint,
        otlp_protocol=protocol,
        service_name=service,
        span_events=True,  # each event also becomes an event of the active span
    )
    eventlog.register_schema_file(HERE / "schemas" / "file-opened.yaml")

    events = [
        {"path": "/home/ada/analysis.ipynb", "kind": "notebook"},
        {"path": "/home/ada/data.csv", "kind": "file", "size": 2048},
    ]
    with tracing.get_tracer("examples.otel_collector").start_as_current_span("open files") as span:
        for event in events:
            eventlog.record_event(SCHEMA_ID, 1, event)

    # Flush before exit: both exporters batch in the background.
    eventlog.shutdown(timeout=10)
    tracing.shutdown()  # exports the span; the SDK logs a failure, it does not count it

    trace_id = format(span.get_span_context().trace_id, "032x")
    print(f"sent to {endpoint} ({protocol}) as service {service!r}:")
    print(f"  span 'open files' (trace {trace_id}) with {len(events)} span events")
    print(f"  {len(events)} log records named {SCHEMA_ID}")
    if eventlog.otel_dropped:
        print(f"NOT delivered: {eventlog.otel_dropped} log record(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
