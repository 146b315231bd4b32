"""The OpenTelemetry sink: each recorded event becomes one OTel log record.

This is the only module that imports OpenTelemetry; its logs API is still
underscore-private and moves between minor releases, so the tested range is
pinned in pyproject.toml.

Mapping: ``event_name`` is the schema ``$id``; ``body`` is the event exactly
as written to the JSON line (decoded from that line, so a value OTLP cannot
encode never reaches an exporter); ``timestamp`` is ``__timestamp__``;
severity INFO; attributes ``jupyter.event.schema_id``,
``jupyter.event.schema_version`` and ``jupyter.event.metadata_version``; the
trace and span ids of the span active when the event was recorded.

``record_event`` only appends to a bounded queue. One worker thread per sink
turns queued events into records with ``Logger.emit`` (passing the caller's
context) and, for a provider the EventLog built, exports them in batches.
So neither the network nor an application's synchronous processor can block
the caller, and every record that is not delivered is counted.
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry._logs import LoggerProvider as APILoggerProvider
from opentelemetry._logs import SeverityNumber, get_logger_provider
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as _GRPCExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as _HTTPExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import Resource

from .._capsule import CAPSULE_KEYS, METADATA_VERSION
from .._version import __version__
from . import Emission

SCHEMA_ID = "jupyter.event.schema_id"
SCHEMA_VERSION = "jupyter.event.schema_version"
METADATA = "jupyter.event.metadata_version"
PAYLOAD = "jupyter.event.payload"  # span events only: their attributes cannot hold a map
SCOPE = "jupyter_telemetry"
PROTOCOLS = ("grpc", "http/protobuf")
MAX_BATCH_BYTES = 1_000_000  #: UTF-8 bytes of JSON per export request (a bigger event goes alone)

_diagnostics = logging.getLogger("jupyter_telemetry")


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

    def provider(self) -> LoggerProvider:
        """A provider with this service name and no processor (the sink adds its own)."""
        resource = Resource.create({"service.name": self.service_name} if self.service_name else {})
        return LoggerProvider(resource=resource, shutdown_on_exit=False)


def installed_provider() -> APILoggerProvider | None:
    """The application's global logger provider, if it installed an SDK one."""
    provider = get_logger_provider()
    return provider if isinstance(provider, LoggerProvider) else None


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


class OTelSink:
    """Emit each event as an OTel log record through ``provider``, off the caller's thread.

    With ``exporter`` (a factory), the provider was built by the EventLog: the
    sink exports its records and shuts it down. Without, the provider belongs
    to the application, whose processors export; the sink only flushes it.
    Counters: :attr:`exported`, and :attr:`dropped` = queue full + export
    failed (after the exporter's own retries) + not delivered by shutdown;
    each record counts once, whichever thread gives up on it.

    ``os.fork()`` waits (at most ``export_timeout`` + 1 s) for the batch the
    worker has in hand: gRPC forbids a fork during a call, and a child forked
    mid-call hangs or sends the parent's batch a second time.
    """

    def __init__(
        self,
        provider: APILoggerProvider,
        *,
        exporter: Callable[[], LogRecordExporter] | None = None,
        span_events: bool = False,
        max_queue_size: int = 2048,
        max_batch_size: int = 512,
        schedule_delay: float = 0.5,
        exit_timeout: float = 5.0,
        export_timeout: float = 10.0,
    ) -> None:
        self.provider = provider
        self.owned = exporter is not None
        self._exporter_factory = exporter
        self._collect = _Collect() if exporter else None
        if self._collect is not None:
            provider.add_log_record_processor(self._collect)  # type: ignore[attr-defined]
        self._logger = provider.get_logger(SCOPE, __version__)
        self._span_events = span_events
        self._max_queue_size = max_queue_size
        self._batch_size = max_batch_size
        self._delay = schedule_delay
        self._fork_wait = export_timeout + 1.0
        self._attributes: dict[tuple[str, int | str], dict[str, Any]] = {}
        self._failing = False
        self._start()
        _SINKS.add(self)
        atexit.register(_shutdown_at_exit, weakref.ref(self), exit_timeout)

    def _reset(self) -> None:
        self.exported = self.dropped_queue_full = self.dropped_export_failed = 0
        self._unsent_at_shutdown = self._refused_after_stop = 0
        # Only the callers' drop counters: held for one increment, never while the
        # worker works, so a caller dropping records never waits for the worker.
        self._drop_lock = threading.Lock()
        self._queue: collections.deque[tuple[Emission, Any]] = collections.deque()
        if self._collect is not None:
            self._collect.take()
        # _lock: the counters, and the hand-over of records between worker and shutdown.
        # _busy: held by the worker for a whole batch (taken, emitted, exported).
        # _gate: closed by os.fork() so the worker cannot start batch after batch.
        self._lock = threading.Lock()
        self._busy = threading.Lock()
        self._gate = threading.Lock()
        self._fork_held = False
        self._in_flight = 0  # records the worker took and has not counted yet
        self._abandoned = False  # shutdown counted what is left: the worker counts no more
        self._wake = threading.Event()
        self._waiters_lock = threading.Lock()
        self._waiters: list[threading.Event] = []

    def _start(self) -> None:
        self._reset()
        self._stopping = False
        self._exporter = self._exporter_factory() if self._exporter_factory else None
        self._worker = threading.Thread(
            target=self._run, name="jupyter_telemetry.otel", daemon=True
        )
        self._worker.start()

    # -- fork: the child starts empty, with its own thread and connection -------

    def _before_fork(self) -> None:
        self._gate.acquire()
        self._fork_held = self._busy.acquire(timeout=self._fork_wait)

    def _after_fork_in_parent(self) -> None:
        if self._fork_held:
            self._fork_held = False
            self._busy.release()
        self._gate.release()

    def _after_fork_in_child(self) -> None:
        # What the parent queued is the parent's to send; a sink the parent
        # shut down stays shut down.
        if self._stopping:
            self._reset()
            self._abandoned = True
        else:
            self._start()

    # -- the caller's side: O(1), never blocks --------------------------------

    def emit(self, emission: Emission) -> None:
        if self._span_events:
            self._add_span_event(emission)
        queue = self._queue
        if len(queue) >= self._max_queue_size or self._stopping:
            with self._drop_lock:  # callers on many threads: no increment may be lost
                if self._stopping:
                    self._refused_after_stop += 1
                else:
                    self.dropped_queue_full += 1
            return
        queue.append((emission, otel_context.get_current()))
        if len(queue) >= self._batch_size:
            self._wake.set()

    def _add_span_event(self, emission: Emission) -> None:
        span = trace.get_current_span()
        if span.is_recording():
            attributes = {
                **self._attributes_for(emission),
                PAYLOAD: orjson.dumps(_body(emission)).decode(),
            }
            span.add_event(emission.schema_id, attributes, timestamp=emission.time_ns)

    @property
    def queued(self) -> int:
        """Events waiting for the worker."""
        return len(self._queue)

    @property
    def dropped(self) -> int:
        return self.dropped_queue_full + self.dropped_export_failed + self.dropped_at_shutdown

    @property
    def dropped_at_shutdown(self) -> int:
        """Records still queued or in flight when shutdown gave up, or offered after it."""
        return self._unsent_at_shutdown + self._refused_after_stop

    # -- the worker's side ------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(self._delay)
            self._wake.clear()
            stopping = self._stopping
            with self._waiters_lock:
                waiters, self._waiters = self._waiters, []
            self._drain()
            for waiter in waiters:
                waiter.set()
            if stopping or self._abandoned:
                return

    def _drain(self) -> None:
        while self._queue:
            with self._gate:
                pass
            with self._busy:
                batch = self._take()
                if not batch:
                    return
                exported, failed = self._send(batch)
                with self._lock:
                    self._in_flight = 0
                    if not self._abandoned:
                        self.exported += exported
                        self.dropped_export_failed += failed

    def _take(self) -> list[tuple[Emission, Any]]:
        """The next batch: at most ``max_batch_size`` records and MAX_BATCH_BYTES of JSON.

        Collectors refuse requests over 4 MiB by default, and one refused
        request loses every record in it: an event that would take the batch
        over the limit starts the next one, so a big event travels alone.
        """
        queue = self._queue
        batch: list[tuple[Emission, Any]] = []
        size = 0
        with self._lock:
            if self._abandoned:
                return batch
            while queue and len(batch) < self._batch_size:
                line = queue[0][0].line
                size += len(line) if line.isascii() else len(line.encode())
                if batch and size > MAX_BATCH_BYTES:
                    break
                batch.append(queue.popleft())
            self._in_flight = len(batch)
        return batch

    def _send(self, batch: list[tuple[Emission, Any]]) -> tuple[int, int]:
        """Emit ``batch`` (and export it, for an owned provider); ``(exported, failed)``."""
        emitted = 0
        for emission, context in batch:
            emitted += self._emit(emission, context)
        failed = len(batch) - emitted
        if self._collect is None or self._exporter is None:
            return 0, failed
        records = self._collect.take()
        if self._export(self._exporter, records):
            return len(records), failed
        return 0, failed + len(records)

    def _emit(self, emission: Emission, context: Any) -> bool:
        try:
            self._logger.emit(
                timestamp=emission.time_ns,
                context=context,
                severity_number=SeverityNumber.INFO,
                severity_text="INFO",
                body=_body(emission),
                attributes=self._attributes_for(emission),
                event_name=emission.schema_id,
            )
        except Exception:
            if not self._failing:  # once per failure streak, not per event
                self._failing = True
                _diagnostics.exception("jupyter_telemetry: emitting an OTel log record failed")
            return False
        self._failing = False
        return True

    def _export(self, exporter: LogRecordExporter, batch: list[ReadableLogRecord]) -> bool:
        if not batch:
            return True
        try:
            return exporter.export(batch) is LogRecordExportResult.SUCCESS
        except Exception:  # an exporter must not raise; one that does loses its batch
            return False

    def _attributes_for(self, emission: Emission) -> dict[str, Any]:
        key = (emission.schema_id, emission.version)
        attributes = self._attributes.get(key)
        if attributes is None:
            attributes = self._attributes[key] = {
                SCHEMA_ID: emission.schema_id,
                SCHEMA_VERSION: emission.version,
                METADATA: METADATA_VERSION,
            }
        return attributes

    # -- Sink protocol ------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Emit and export everything queued; ``True`` when it all got through in time."""
        deadline = time.monotonic() + (30.0 if timeout is None else timeout)
        if self._stopping or not self._worker.is_alive():
            return False
        failed_before = self.dropped_export_failed
        done = threading.Event()
        with self._waiters_lock:
            self._waiters.append(done)
        self._wake.set()
        if not done.wait(max(0.0, deadline - time.monotonic())):
            return False
        if not self.owned:
            millis = int(max(0.0, deadline - time.monotonic()) * 1000)
            flush = getattr(self.provider, "force_flush", None)
            return bool(flush(millis)) if flush else True
        return self.dropped_export_failed == failed_before

    def shutdown(self, timeout: float | None = None) -> None:
        """Send what is queued within ``timeout`` seconds, then stop; count what was left."""
        if self._stopping:
            return
        if not self.owned:
            self.flush(timeout)
        deadline = time.monotonic() + (30.0 if timeout is None else timeout)
        self._stopping = True
        self._wake.set()
        self._worker.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            # Time is up: what is queued, and the batch in hand if the worker is
            # still at it, is not delivered; the worker leaves the counting to us.
            self._abandoned = True
            self._unsent_at_shutdown += len(self._queue) + self._in_flight
            self._queue.clear()
            self._in_flight = 0
        if self._exporter is not None:
            # Interrupts the exporter's retry back-off if an export is still under way.
            self._exporter.shutdown()  # type: ignore[no-untyped-call]
            self._worker.join(0.5)
        if self.dropped:
            _diagnostics.warning(
                "jupyter_telemetry: %d OpenTelemetry log record(s) were not delivered "
                "(queue full: %d, export failed: %d, unsent at shutdown: %d); "
                "the JSON-lines file still holds every event",
                self.dropped,
                self.dropped_queue_full,
                self.dropped_export_failed,
                self.dropped_at_shutdown,
            )


def _body(emission: Emission) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(emission.line)
    for name in CAPSULE_KEYS:
        del body[name]
    return body


def _shutdown_at_exit(ref: weakref.ReferenceType[OTelSink], timeout: float) -> None:
    # Bounded, unlike the SDK's own exit hook (30 s with the collector down).
    sink = ref()
    if sink is not None:
        sink.shutdown(timeout)


_SINKS: weakref.WeakSet[OTelSink] = weakref.WeakSet()


def _for_every_sink(method: Callable[[OTelSink], None]) -> Callable[[], None]:
    def hook() -> None:
        for sink in list(_SINKS):
            method(sink)

    return hook


if hasattr(os, "register_at_fork"):  # POSIX only
    os.register_at_fork(
        before=_for_every_sink(OTelSink._before_fork),
        after_in_parent=_for_every_sink(OTelSink._after_fork_in_parent),
        after_in_child=_for_every_sink(OTelSink._after_fork_in_child),
    )


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
    for readable in batch:
        resource, scope = readable.resource, readable.instrumentation_scope
        scopes = groups.get(resource)
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


__all__: Sequence[str] = ["OTLPSettings", "OTelSink", "encode_logs", "installed_provider"]
