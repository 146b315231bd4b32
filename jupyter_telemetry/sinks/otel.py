"""The OpenTelemetry sink: each recorded event becomes one OTel log record.

This is the only module that imports OpenTelemetry; its logs API is still
underscore-private and moves between minor releases, so the tested range is
pinned in pyproject.toml.

Mapping: ``event_name`` is the schema ``$id``; ``body`` is the event exactly
as written to the JSON line (decoded from that line, so a value OTLP cannot
encode never reaches the exporter); ``timestamp`` is ``__timestamp__``;
severity INFO; attributes ``jupyter.event.schema_id``,
``jupyter.event.schema_version`` and ``jupyter.event.metadata_version``; the
active span's trace and span ids come from the current context.
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
from opentelemetry import trace
from opentelemetry._logs import LoggerProvider as APILoggerProvider
from opentelemetry._logs import SeverityNumber, get_logger_provider
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import Resource

from .._capsule import CAPSULE_KEYS, METADATA_VERSION
from .._version import __version__
from . import Emission

SCHEMA_ID = "jupyter.event.schema_id"
SCHEMA_VERSION = "jupyter.event.schema_version"
METADATA = "jupyter.event.metadata_version"
PAYLOAD = "jupyter.event.payload"  # span events only: attributes cannot hold a map
SCOPE = "jupyter_telemetry"
PROTOCOLS = ("grpc", "http/protobuf")

_diagnostics = logging.getLogger("jupyter_telemetry")


@dataclass(frozen=True)
class OTLPSettings:
    """Where an EventLog-built provider exports: traits first, then ``OTEL_*`` variables."""

    endpoint: str  #: full URL of the logs endpoint
    protocol: str  #: ``grpc`` or ``http/protobuf``
    headers: Mapping[str, str] | None
    service_name: str | None  #: ``None``: leave it to OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES
    timeout: float  #: seconds one export (with its retries) may take
    max_queue_size: int

    @classmethod
    def resolve(
        cls,
        endpoint: str | None,
        protocol: str | None,
        headers: Mapping[str, str] | None,
        service_name: str | None,
        default_service_name: str,
        timeout: float,
        max_queue_size: int,
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
        return cls(full, protocol, headers, service_name, timeout, max_queue_size)

    def exporter(self) -> LogRecordExporter:
        """A new OTLP exporter (a fresh connection: used again after ``fork``)."""
        headers = dict(self.headers) if self.headers else None
        if self.protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc._log_exporter import (
                OTLPLogExporter as GRPCExporter,
            )

            return GRPCExporter(
                endpoint=self.endpoint,
                insecure=self.endpoint.startswith("http://") or None,
                headers=headers,
                timeout=self.timeout,
            )
        from opentelemetry.exporter.otlp.proto.http._log_exporter import (
            OTLPLogExporter as HTTPExporter,
        )

        return HTTPExporter(endpoint=self.endpoint, headers=headers, timeout=self.timeout)

    def provider(self) -> tuple[LoggerProvider, BoundedBatchProcessor]:
        resource = Resource.create({"service.name": self.service_name} if self.service_name else {})
        provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
        processor = BoundedBatchProcessor(self.exporter, max_queue_size=self.max_queue_size)
        provider.add_log_record_processor(processor)
        return provider, processor


def installed_provider() -> APILoggerProvider | None:
    """The application's global logger provider, if it installed an SDK one."""
    provider = get_logger_provider()
    return provider if isinstance(provider, LoggerProvider) else None


class BoundedBatchProcessor(LogRecordProcessor):
    """Batch records to an exporter on a worker thread; never blocks, never grows.

    ``on_emit`` appends to a bounded queue (dropping the new record when the
    queue is full) and returns. Every record that is not delivered is counted
    in :attr:`dropped`: queue overflow, failed exports (after the exporter's
    own retries) and records still queued when ``shutdown`` ran out of time.
    After ``os.fork()`` the child starts with an empty queue, a new worker and
    a new exporter: the parent's queue is the parent's to send.
    """

    def __init__(
        self,
        exporter_factory: Callable[[], LogRecordExporter],
        max_queue_size: int = 2048,
        max_export_batch_size: int = 512,
        schedule_delay: float = 1.0,
    ) -> None:
        self._factory = exporter_factory
        self._max_queue_size = max_queue_size
        self._batch_size = max_export_batch_size
        self._delay = schedule_delay
        self.dropped_queue_full = 0
        self.dropped_export_failed = 0
        self.dropped_at_shutdown = 0
        self.exported = 0
        self._start()
        reinit = weakref.WeakMethod(self._after_fork)
        os.register_at_fork(after_in_child=lambda: (m := reinit()) and m())

    def _start(self) -> None:
        self._exporter = self._factory()
        self._queue: collections.deque[ReadableLogRecord] = collections.deque()
        self._wake = threading.Event()
        self._flush_lock = threading.Lock()
        self._flushed: list[threading.Event] = []
        self._stopping = False
        self._worker = threading.Thread(
            target=self._run, name="jupyter_telemetry.otel", daemon=True
        )
        self._worker.start()

    def _after_fork(self) -> None:
        self.dropped_queue_full = self.dropped_export_failed = self.dropped_at_shutdown = 0
        self.exported = 0
        self._start()

    @property
    def dropped(self) -> int:
        return self.dropped_queue_full + self.dropped_export_failed + self.dropped_at_shutdown

    def on_emit(self, log_record: Any) -> None:
        queue = self._queue
        if len(queue) >= self._max_queue_size or self._stopping:
            if self._stopping:
                self.dropped_at_shutdown += 1
            else:
                self.dropped_queue_full += 1
            return
        queue.append(
            ReadableLogRecord(
                log_record=log_record.log_record,
                resource=log_record.resource,
                instrumentation_scope=log_record.instrumentation_scope,
                limits=log_record.limits,
            )
        )
        if len(queue) >= self._batch_size:
            self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait(self._delay)
            self._wake.clear()
            stopping = self._stopping
            with self._flush_lock:
                waiters, self._flushed = self._flushed, []
            self._export_all()
            for waiter in waiters:
                waiter.set()
            if stopping:
                return

    def _export_all(self) -> None:
        queue = self._queue
        while queue:
            batch = [queue.popleft() for _ in range(min(self._batch_size, len(queue)))]
            try:
                ok = self._exporter.export(batch) is LogRecordExportResult.SUCCESS
            except Exception:  # an exporter must not raise; one that does loses its batch
                ok = False
            if ok:
                self.exported += len(batch)
            else:
                self.dropped_export_failed += len(batch)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export what is queued; ``True`` when it was all delivered within the timeout."""
        if self._stopping or not self._worker.is_alive():
            return False
        done = threading.Event()
        failed_before = self.dropped_export_failed
        with self._flush_lock:
            self._flushed.append(done)
        self._wake.set()
        return done.wait(timeout_millis / 1000) and self.dropped_export_failed == failed_before

    def shutdown(self, timeout_millis: int = 30000) -> None:
        """Send what is queued within the timeout, then stop; count what was left."""
        if self._stopping:
            return
        deadline = time.monotonic() + timeout_millis / 1000
        self._stopping = True
        self._wake.set()
        self._worker.join(max(0.0, deadline - time.monotonic()))
        # Interrupts the exporter's retry back-off if an export is still under way.
        self._exporter.shutdown()  # type: ignore[no-untyped-call]
        self._worker.join(0.5)
        self.dropped_at_shutdown += len(self._queue)
        self._queue.clear()


class OTelSink:
    """Emit each event as an OTel log record through ``provider``.

    When ``processor`` is given, the provider was built by the EventLog and is
    shut down with it; otherwise it belongs to the application and is only
    flushed.
    """

    def __init__(
        self,
        provider: APILoggerProvider,
        processor: BoundedBatchProcessor | None = None,
        span_events: bool = False,
        owned: bool = False,
        exit_timeout: float = 5.0,
    ) -> None:
        self.provider = provider
        self.processor = processor
        self.owned = owned
        self._logger = provider.get_logger(SCOPE, __version__)
        self._span_events = span_events
        self._attributes: dict[tuple[str, int | str], dict[str, Any]] = {}
        self._failing = False
        self._closed = False
        if owned:
            atexit.register(_shutdown_at_exit, weakref.ref(self), exit_timeout)

    def emit(self, emission: Emission) -> None:
        key = (emission.schema_id, emission.version)
        attributes = self._attributes.get(key)
        if attributes is None:
            attributes = self._attributes[key] = {
                SCHEMA_ID: emission.schema_id,
                SCHEMA_VERSION: emission.version,
                METADATA: METADATA_VERSION,
            }
        body = orjson.loads(emission.line)
        for name in CAPSULE_KEYS:
            del body[name]
        try:
            self._logger.emit(
                timestamp=emission.time_ns,
                severity_number=SeverityNumber.INFO,
                severity_text="INFO",
                body=body,
                attributes=attributes,
                event_name=emission.schema_id,
            )
            if self._span_events:
                span = trace.get_current_span()
                if span.is_recording():
                    span.add_event(
                        emission.schema_id,
                        {**attributes, PAYLOAD: orjson.dumps(body).decode()},
                        timestamp=emission.time_ns,
                    )
        except Exception:
            if not self._failing:  # once per failure streak, not per event
                self._failing = True
                _diagnostics.exception("jupyter_telemetry: emitting an OTel log record failed")
        else:
            self._failing = False

    @property
    def dropped(self) -> int:
        return self.processor.dropped if self.processor else 0

    def flush(self, timeout: float | None = None) -> bool:
        millis = int((30.0 if timeout is None else timeout) * 1000)
        flush = getattr(self.provider, "force_flush", None)
        return bool(flush(millis)) if flush else True

    def shutdown(self, timeout: float | None = None) -> None:
        if not self.owned:
            self.flush(timeout)
            return
        if self._closed:
            return
        self._closed = True
        assert self.processor is not None
        self.processor.shutdown(int((30.0 if timeout is None else timeout) * 1000))
        if self.processor.dropped:
            p = self.processor
            _diagnostics.warning(
                "jupyter_telemetry: %d OpenTelemetry log record(s) were not delivered "
                "(queue full: %d, export failed: %d, unsent at shutdown: %d); "
                "the JSON-lines file still holds every event",
                p.dropped,
                p.dropped_queue_full,
                p.dropped_export_failed,
                p.dropped_at_shutdown,
            )


def _shutdown_at_exit(ref: weakref.ReferenceType[OTelSink], timeout: float) -> None:
    # Bounded, unlike the SDK's own exit hook (30 s with the collector down).
    sink = ref()
    if sink is not None:
        sink.shutdown(timeout)


__all__: Sequence[str] = ["BoundedBatchProcessor", "OTLPSettings", "OTelSink", "installed_provider"]
