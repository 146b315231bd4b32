"""The OpenTelemetry sink: a bounded queue in front of one worker thread.

``record_event`` only appends ``(emission, context)`` to the queue. The worker
takes batches (at most ``max_batch_size`` records and MAX_BATCH_BYTES of
JSON) and either emits them through the application's provider with
``Logger.emit`` (its processors export), or hands them to the pipeline of a
provider the EventLog built: the export process by default, an in-thread
:class:`OwnedPipeline` otherwise. Every record that is not delivered is
counted, whichever thread gives up on it.
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import orjson
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry._logs import LoggerProvider as APILoggerProvider
from opentelemetry._logs import get_logger_provider
from opentelemetry.sdk._logs import LoggerProvider

from ..._version import __version__
from .. import Emission
from ._export import SCOPE, OTLPSettings, OwnedPipeline, Records, attributes, body
from ._process import ExportProcess

PAYLOAD = "jupyter.event.payload"  # span events only: their attributes cannot hold a map
MAX_BATCH_BYTES = 1_000_000  #: UTF-8 bytes of JSON per export request (a bigger event goes alone)

_diagnostics = logging.getLogger("jupyter_telemetry")


def installed_provider() -> APILoggerProvider | None:
    """The application's global logger provider, if it installed an SDK one."""
    provider = get_logger_provider()
    return provider if isinstance(provider, LoggerProvider) else None


class _Pipeline(Protocol):
    """Where the worker sends the batches of a provider the EventLog built."""

    #: whether ``os.fork()`` may come while :meth:`send` is under way
    fork_safe: bool

    def send(self, batch: Sequence[tuple[Emission, Any]]) -> tuple[int, int]:
        """Emit and export ``batch``; ``(exported, failed)``. Never raises."""

    def shutdown(self, idle: bool) -> None:
        """Stop; ``idle``: no thread is in :meth:`send`."""

    def forget(self) -> None:
        """In a forked child: let go of what belongs to the parent."""


class OTelSink:
    """Emit each event as an OTel log record, off the caller's thread.

    Either ``provider`` (the application's: its processors export, the sink
    only flushes it) or ``settings`` (the EventLog builds the provider and
    exporter; ``subprocess`` runs them in the export process, else on the
    worker thread). Counters: :attr:`exported`, and :attr:`dropped` = queue
    full + export failed (after the exporter's own retries) + not delivered by
    shutdown; each record counts once, whichever thread gives up on it.

    Unless the export process sends, ``os.fork()`` waits (at most
    ``export_timeout`` + 1 s) for the batch the worker has in hand: gRPC
    forbids a fork during a call, and a child forked mid-call hangs or sends
    the parent's batch a second time.
    """

    def __init__(
        self,
        provider: APILoggerProvider | None = None,
        *,
        settings: OTLPSettings | None = None,
        subprocess: bool = True,
        span_events: bool = False,
        max_queue_size: int = 2048,
        max_batch_size: int = 512,
        schedule_delay: float = 0.5,
        exit_timeout: float = 5.0,
        export_timeout: float = 10.0,
    ) -> None:
        if (provider is None) == (settings is None):
            raise TypeError("OTelSink needs either a provider or OTLP settings")
        self.provider = provider
        self.owned = settings is not None
        self._records: Records | None = None
        self._pipeline_factory: Callable[[], _Pipeline] | None = None
        if provider is not None:
            self._records = Records(provider.get_logger(SCOPE, __version__), _report_emit)
        elif settings is not None:
            resource = settings.resource()  # once: a restarted export process keeps its identity
            if subprocess:
                self._pipeline_factory = lambda: ExportProcess(settings, resource)
            else:
                self._pipeline_factory = lambda: OwnedPipeline(settings, resource, _report_emit)
        self._span_events = span_events
        self._max_queue_size = max_queue_size
        self._batch_size = max_batch_size
        self._delay = schedule_delay
        self._fork_wait = export_timeout + 1.0
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
        # _lock: the counters, and the hand-over of records between worker and shutdown.
        # _busy: held by the worker for a whole batch (taken, emitted, exported).
        # _gate: closed by os.fork() so the worker cannot start batch after batch.
        self._lock = threading.Lock()
        self._busy = threading.Lock()
        self._gate = threading.Lock()
        self._fork_held = self._fork_gated = False
        self._in_flight = 0  # records the worker took and has not counted yet
        self._abandoned = False  # shutdown counted what is left: the worker counts no more
        self._wake = threading.Event()
        self._waiters_lock = threading.Lock()
        self._waiters: list[threading.Event] = []

    def _start(self) -> None:
        self._reset()
        self._stopping = False
        self._pipeline = self._pipeline_factory() if self._pipeline_factory else None
        self._worker = threading.Thread(
            target=self._run, name="jupyter_telemetry.otel", daemon=True
        )
        self._worker.start()

    # -- fork: the child starts empty, with its own thread and connection -------

    def _before_fork(self) -> None:
        self._fork_gated = self._pipeline is None or not self._pipeline.fork_safe
        if self._fork_gated:
            self._gate.acquire()
            self._fork_held = self._busy.acquire(timeout=self._fork_wait)

    def _after_fork_in_parent(self) -> None:
        if self._fork_held:
            self._fork_held = False
            self._busy.release()
        if self._fork_gated:
            self._gate.release()

    def _after_fork_in_child(self) -> None:
        # What the parent queued is the parent's to send, with its export process
        # or connection; a sink the parent shut down stays shut down.
        if self._pipeline is not None:
            self._pipeline.forget()
            self._pipeline = None
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
            payload = orjson.dumps(body(emission)).decode()
            span.add_event(
                emission.schema_id,
                {**attributes(emission), PAYLOAD: payload},
                timestamp=emission.time_ns,
            )

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
        if self._pipeline is not None:
            return self._pipeline.send(batch)
        assert self._records is not None
        emitted = 0
        for emission, context in batch:
            emitted += self._records.emit(emission, context)
        return 0, len(batch) - emitted

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
        if self._pipeline is not None:
            # Interrupts an export still under way (a retry back-off, a hung collector).
            self._pipeline.shutdown(idle=not self._worker.is_alive())
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


def _report_emit() -> None:
    _diagnostics.exception("jupyter_telemetry: emitting an OTel log record failed")


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
