"""Building OTel log records, and the pipeline of a provider an EventLog builds.

:class:`Records` turns an :class:`Emission` into one ``Logger.emit`` call
(the mapping is in the package docstring). :class:`OwnedPipeline` is what an
EventLog builds from :class:`OTLPSettings`: a provider whose only processor
collects the records, and an OTLP exporter that sends them in batches. It runs
in the export process (``_process``) or, with ``otlp_subprocess`` off, on the
sink's worker thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from opentelemetry._logs import Logger as APILogger
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as _GRPCExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as _HTTPExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import Resource

from ..._capsule import CAPSULE_KEYS, METADATA_VERSION
from ..._version import __version__
from .. import Emission

SCHEMA_ID = "jupyter.event.schema_id"
SCHEMA_VERSION = "jupyter.event.schema_version"
METADATA = "jupyter.event.metadata_version"
SCOPE = "jupyter_telemetry"
PROTOCOLS = ("grpc", "http/protobuf")


@dataclass(frozen=True)
class OTLPSettings:
    """Where an EventLog-built provider exports: traits first, then ``OTEL_*`` variables."""

    endpoint: str  #: full URL of the logs endpoint
    protocol: str  #: ``grpc`` or ``http/protobuf``
    headers: Mapping[str, str] | None  #: ``None``: the exporter reads OTEL_EXPORTER_OTLP_*HEADERS
    service_name: str | None  #: ``None``: left to OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES
    timeout: float  #: seconds one export, retries included, may take

    @classmethod
    def resolve(
        cls,
        endpoint: str | None,
        protocol: str | None,
        headers: Mapping[str, str] | None,
        service_name: str | None,
        default_service_name: str,
        timeout: float,
        env: Mapping[str, str] = os.environ,
    ) -> OTLPSettings | None:
        """Settings for an EventLog-built provider, or ``None`` when no endpoint is configured."""
        protocol = (
            protocol
            or env.get("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL")
            or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "grpc"
        )
        if protocol not in PROTOCOLS:
            raise ValueError(f"OTLP protocol must be one of {PROTOCOLS}, got {protocol!r}")
        full = None if endpoint else env.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
        base = endpoint or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        if not (full or base):
            return None
        if not full:
            assert base is not None
            full = base if protocol == "grpc" else base.rstrip("/") + "/v1/logs"
        if (
            service_name is None
            and "OTEL_SERVICE_NAME" not in env
            and ("service.name=" not in env.get("OTEL_RESOURCE_ATTRIBUTES", ""))
        ):
            service_name = default_service_name
        return cls(full, protocol, headers, service_name, timeout)

    def exporter(self) -> LogRecordExporter:
        """A new OTLP exporter: a fresh connection (built again in a forked child)."""
        headers = dict(self.headers) if self.headers else None
        if self.protocol == "grpc":
            insecure = True if self.endpoint.startswith("http://") else None
            return _FastGRPCExporter(
                endpoint=self.endpoint, insecure=insecure, headers=headers, timeout=self.timeout
            )
        return _HTTPExporter(endpoint=self.endpoint, headers=headers, timeout=self.timeout)

    def resource(self) -> Resource:
        """The resource: this service name, then ``OTEL_*`` variables and the SDK's defaults."""
        return Resource.create({"service.name": self.service_name} if self.service_name else {})


class Records:
    """Emits events as log records through one ``Logger``; reports failures, never raises."""

    def __init__(self, logger: APILogger, report: Callable[[], None]) -> None:
        self._logger = logger
        self._report = report  # called inside ``except``, once per failure streak
        self._attributes: dict[tuple[str, int | str], dict[str, Any]] = {}
        self._failing = False

    def emit(self, emission: Emission, context: Any) -> bool:
        """``Logger.emit`` one record for ``emission`` in ``context``; ``False`` if it raised."""
        try:
            self._logger.emit(
                timestamp=emission.time_ns,
                context=context,
                severity_number=SeverityNumber.INFO,
                severity_text="INFO",
                body=body(emission),
                attributes=self.attributes(emission),
                event_name=emission.schema_id,
            )
        except Exception:
            if not self._failing:  # once per failure streak, not per event
                self._failing = True
                self._report()
            return False
        self._failing = False
        return True

    def attributes(self, emission: Emission) -> dict[str, Any]:
        key = (emission.schema_id, emission.version)
        cached = self._attributes.get(key)
        if cached is None:
            cached = self._attributes[key] = attributes(emission)
        return cached


def attributes(emission: Emission) -> dict[str, Any]:
    """The attributes every record (and span event) of ``emission`` carries."""
    return {
        SCHEMA_ID: emission.schema_id,
        SCHEMA_VERSION: emission.version,
        METADATA: METADATA_VERSION,
    }


def body(emission: Emission) -> dict[str, Any]:
    """The event as written to the JSON line, without the capsule fields."""
    decoded: dict[str, Any] = orjson.loads(emission.line)
    for name in CAPSULE_KEYS:
        del decoded[name]
    return decoded


class OwnedPipeline:
    """An EventLog-built provider with its collecting processor and exporter.

    ``send`` emits a batch through the provider and exports what was emitted in
    one request. Not thread-safe: one caller (a worker thread or the export
    process) owns it.
    """

    #: gRPC forbids a fork during a call: a fork must wait for the batch in hand
    fork_safe = False

    def __init__(
        self, settings: OTLPSettings, resource: Resource, report: Callable[[], None]
    ) -> None:
        self.provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
        self._collect = _Collect()
        self.provider.add_log_record_processor(self._collect)
        self.records = Records(self.provider.get_logger(SCOPE, __version__), report)
        self.exporter = settings.exporter()

    def send(self, batch: Sequence[tuple[Emission, Any]]) -> tuple[int, int]:
        """Emit and export ``batch`` of ``(emission, context)``; ``(exported, failed)``."""
        emitted = 0
        for emission, context in batch:
            emitted += self.records.emit(emission, context)
        failed = len(batch) - emitted
        records = self._collect.take()
        if not records:
            return 0, failed
        try:
            ok = self.exporter.export(records) is LogRecordExportResult.SUCCESS
        except Exception:  # an exporter must not raise; one that does loses its batch
            ok = False
        return (len(records), failed) if ok else (0, failed + len(records))

    def shutdown(self, idle: bool = True) -> None:
        """Stop the exporter: interrupts a retry back-off under way."""
        self.exporter.shutdown()  # type: ignore[no-untyped-call]

    def forget(self) -> None:
        """In a forked child: nothing to let go of (the exporter is left to the parent)."""


class _Collect(LogRecordProcessor):
    """Gathers the records the worker emits, for the worker to export in one batch."""

    def __init__(self) -> None:
        self.records: list[ReadableLogRecord] = []

    def on_emit(self, log_record: Any) -> None:
        self.records.append(
            ReadableLogRecord(
                log_record=log_record.log_record,
                resource=log_record.resource,
                instrumentation_scope=log_record.instrumentation_scope,
                limits=log_record.limits,
            )
        )

    def take(self) -> list[ReadableLogRecord]:
        records, self.records = self.records, []
        return records

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


# -- encoding -------------------------------------------------------------------
# The SDK's encoder builds every nested protobuf message and then copies it
# into its parent; filling the request in place gives the same bytes for a
# fraction of the CPU (benchmarks/README.md), which matters because export
# runs on a thread that shares the GIL with the application.


def _fill(target: AnyValue, value: Any) -> None:
    kind = type(value)
    if kind is str:
        target.string_value = value
    elif kind is int:
        target.int_value = value
    elif kind is bool:
        target.bool_value = value
    elif kind is float:
        target.double_value = value
    elif value is None:
        target.SetInParent()  # present but empty, as the SDK writes it
    elif isinstance(value, bool):  # the rest in the SDK encoder's order
        target.bool_value = value
    elif isinstance(value, str):
        target.string_value = value
    elif isinstance(value, int):
        target.int_value = value
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, bytes):
        target.bytes_value = value
    elif isinstance(value, Sequence):
        target.array_value.SetInParent()  # an empty array is still an array
        values = target.array_value.values
        for item in value:
            _fill(values.add(), item)
    elif isinstance(value, Mapping):
        target.kvlist_value.SetInParent()
        _fill_pairs(target.kvlist_value.values, value)
    else:
        raise TypeError(f"cannot encode {kind.__name__} in an OTLP value")


def _fill_pairs(target: Any, pairs: Mapping[str, Any]) -> None:
    for key, value in pairs.items():
        entry: KeyValue = target.add()
        entry.key = str(key)
        _fill(entry.value, value)


def encode_logs(batch: Sequence[ReadableLogRecord]) -> ExportLogsServiceRequest:
    """The OTLP request for ``batch``: byte-for-byte what the SDK's encoder builds."""
    request = ExportLogsServiceRequest()
    groups: dict[Any, dict[Any, Any]] = {}
    last_resource: Any = None
    scopes: dict[Any, Any] | None = None
    for readable in batch:
        resource, scope = readable.resource, readable.instrumentation_scope
        if resource is not last_resource:  # Resource.__hash__ serialises it to JSON
            scopes = groups.get(resource)
            last_resource = resource
        if scopes is None:
            resource_logs = request.resource_logs.add()
            _fill_pairs(resource_logs.resource.attributes, dict(resource.attributes))
            resource_logs.schema_url = resource.schema_url
            scopes = groups[resource] = {None: resource_logs}
        scope_logs = scopes.get(scope)
        if scope_logs is None:
            scope_logs = scopes[scope] = scopes[None].scope_logs.add()
            if scope is not None:
                scope_logs.scope.name = scope.name
                scope_logs.scope.version = scope.version or ""
                _fill_pairs(scope_logs.scope.attributes, dict(scope.attributes or {}))
                scope_logs.schema_url = scope.schema_url or ""
        record = readable.log_record
        out = scope_logs.log_records.add()
        out.time_unix_nano = record.timestamp or 0
        out.observed_time_unix_nano = record.observed_timestamp or 0
        if record.span_id:
            out.span_id = record.span_id.to_bytes(8, "big")
        if record.trace_id:
            out.trace_id = record.trace_id.to_bytes(16, "big")
        out.flags = int(record.trace_flags or 0)
        _fill(out.body, record.body)
        if record.severity_text:
            out.severity_text = record.severity_text
        _fill_pairs(out.attributes, dict(record.attributes or {}))
        out.dropped_attributes_count = readable.dropped_attributes
        if record.severity_number is not None:
            out.severity_number = record.severity_number.value
        if record.event_name:
            out.event_name = record.event_name
    return request


class _FastGRPCExporter(_GRPCExporter):
    """The SDK's OTLP/gRPC log exporter (retries, TLS, headers) with the in-place encoder."""

    def _translate_data(self, data: Sequence[ReadableLogRecord]) -> ExportLogsServiceRequest:
        return encode_logs(data)
