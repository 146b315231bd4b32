"""The OpenTelemetry sink: a bounded queue in front of its worker threads.

``record_event`` only appends a small :class:`~._records.Item` to the queue
(O(1), under a lock held for that append only). Worker threads take batches
(at most ``max_batch_size`` records and MAX_BATCH_BYTES of JSON) and either
``Logger.emit`` them into the application's provider (one worker: its
processors export), or encode and export them themselves (two workers, each
with its own exporter, so one encodes while the other's batch is in flight).

Lifetime: the threads hold the sink's :class:`_Core`, never the sink, so an
EventLog that is garbage-collected stops them (a finaliser); one exit hook
stops every sink together, bounded by the largest ``exit_timeout``;
``multiprocessing`` children flush through multiprocessing's own finalisers
(they end with ``os._exit``); after ``os.fork()`` the child starts afresh
(the parent's queue is the parent's to send) and the parent never waits.
A child forked while one of our gRPC calls was in flight (gRPC then skips its
fork handlers: its state in the child is unusable), or with gRPC's fork
support turned off, never calls into gRPC: its records are counted under
``grpc_unsafe_after_fork`` with one warning.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable

import orjson
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry._logs import LoggerProvider as APILoggerProvider

from .. import Emission
from ._config import PAYLOAD, OTLPSettings
from ._encode import Encoder
from ._lifetime import CORES, PARKED, install
from ._pipelines import Counts, Emitting, Owned, Pipeline
from ._records import TIME_LIMIT, Item, attributes, item, split
from ._transport import Transport, resource

MAX_BATCH_BYTES = 1_000_000  #: UTF-8 bytes of JSON per export request (a bigger event goes alone)
REASONS = (
    "queue_full",
    "export_failed",
    "unencodable",
    "unsent_at_shutdown",
    "grpc_unsafe_after_fork",
)
_OFF = ("0", "false", "no", "off")  # gRPC's spellings of a false GRPC_ENABLE_FORK_SUPPORT

_diagnostics = logging.getLogger("jupyter_telemetry")


class _Core:
    """Queue, counters and threads of one sink. Threads reference this, not the sink."""

    def __init__(
        self,
        new_pipeline: Callable[[Callable[[str], None]], Pipeline],
        workers: int,
        max_queue_size: int,
        max_queue_bytes: int,
        max_batch_size: int,
        schedule_delay: float,
        exit_timeout: float,
        target: str,
        grpc: bool = False,
    ) -> None:
        self.new_pipeline = new_pipeline
        self.workers = workers
        self.max_queue_size, self.max_queue_bytes = max_queue_size, max_queue_bytes
        self.batch_size, self.delay = max_batch_size, schedule_delay
        self.exit_timeout = exit_timeout
        self.target = target
        self.grpc = grpc
        self.stopping = False
        #: why this process must not export (a reason in REASONS), for good: a grandchild inherits it
        self.off: str | None = None
        self._fresh()

    def _fresh(self) -> None:
        """Everything per process: a forked child calls this again, so it starts empty."""
        self.lock = threading.Lock()
        self.settled_cond = threading.Condition(self.lock)
        self.take_lock = threading.Lock()
        self.wake = threading.Event()
        self.queue: collections.deque[Item] = collections.deque()
        self.queued_bytes = self.accepted = self.taken = self.settled = self.exported = 0
        self.dropped = dict.fromkeys(REASONS, 0)
        self.flushing = 0
        self.abandoned = self.stopping
        self.drops_reported = False
        self.stop_deadline = float("inf")
        self.streaks: set[str] = set()
        self.pipelines: list[Pipeline] = []
        self.threads: list[threading.Thread] = []

    def start(self, first: Pipeline | None) -> None:
        """Start the workers; ``first``, if given, is the first one's pipeline."""
        if first is not None:
            self.pipelines.append(first)
        self.threads = [
            threading.Thread(
                target=_work,
                args=(self, first if n == 0 else None),
                name=f"jupyter_telemetry.otel-{n}",
                daemon=True,
            )
            for n in range(self.workers)
        ]
        for thread in self.threads:
            thread.start()

    # -- reporting: once per streak ----------------------------------------------

    def report(self, reason: str) -> None:
        if reason in self.streaks:
            return
        self.streaks.add(reason)
        if reason == "grpc_unsafe_after_fork":
            _diagnostics.warning(
                "jupyter_telemetry: %s, so this process does not export over OpenTelemetry "
                "(gRPC cannot be used safely here); its records are counted in otel_dropped "
                "(grpc_unsafe_after_fork); the JSON-lines file holds every event",
                "gRPC fork support is off (GRPC_ENABLE_FORK_SUPPORT)"
                if _grpc_fork_support_off()
                else "this process was forked while a gRPC export was in flight",
            )
            return
        messages = {
            "queue_full": "the OpenTelemetry queue is full: new events are not exported",
            "export_failed": f"exporting to {self.target} failed (after the exporter's retries)",
            "unencodable": "an event could not be made into an OTel log record",
        }
        _diagnostics.warning(
            "jupyter_telemetry: %s; counted in otel_dropped, reported again after the next "
            "success; the JSON-lines file holds every event",
            messages[reason],
            exc_info=reason == "unencodable",
        )

    # -- the callers' side ----------------------------------------------------------

    def put(self, item: Item) -> None:
        size = len(item.line)
        if self.off:
            with self.lock:
                self.dropped[self.off] += 1
            self.report(self.off)
            return
        with self.lock:
            if self.stopping:
                self.dropped["unsent_at_shutdown"] += 1
                return
            queue = self.queue
            if len(queue) >= self.max_queue_size or (
                queue and self.queued_bytes + size > self.max_queue_bytes
            ):
                self.dropped["queue_full"] += 1
                full = True
            else:
                queue.append(item)
                self.accepted += 1
                self.queued_bytes += size
                full = False
            waiting = len(queue)
        if full:
            self.report("queue_full")
        elif waiting >= self.batch_size:
            self.wake.set()

    # -- the workers' side ---------------------------------------------------------

    def next_batch(self) -> list[Item] | None:
        """The next batch to send; ``None`` when the worker should end."""
        while True:
            if self.abandoned:
                return None
            urgent = self.stopping or self.flushing
            if self.stopping and time.monotonic() > self.stop_deadline:
                self.abandon()  # a dropped sink's time is up
                self.report_drops()
                return None
            if len(self.queue) >= self.batch_size or (urgent and self.queue):
                batch = self._take()
                if batch:
                    return batch
                continue
            if self.stopping:
                return None
            self.wake.clear()
            if len(self.queue) >= self.batch_size or (self.flushing and self.queue):
                continue
            if not self.wake.wait(self.delay) and self.queue:
                batch = self._take()
                if batch:
                    return batch

    def _take(self) -> list[Item]:
        """At most ``batch_size`` records and MAX_BATCH_BYTES of JSON (collectors refuse big
        requests, losing every record in them: a big event travels alone)."""
        batch: list[Item] = []
        size = 0
        with self.take_lock:
            queue = self.queue
            while queue and len(batch) < self.batch_size:
                line = queue[0].line
                length = len(line) if line.isascii() else len(line.encode("utf-8", "replace"))
                if batch and size + length > MAX_BATCH_BYTES:
                    break
                try:
                    batch.append(queue.popleft())
                except IndexError:  # shutdown cleared the queue meanwhile
                    break
                size += length
        with self.lock:
            self.queued_bytes -= sum(len(item.line) for item in batch)
            self.taken += len(batch)
        if not self.queue:
            self.streaks.discard("queue_full")
        return batch

    def settle(self, count: int, counts: Counts) -> None:
        exported, failed, bad = counts
        with self.settled_cond:
            if not self.abandoned:  # else shutdown counted these as unsent
                self.settled += count
                self.exported += exported
                self.dropped["export_failed"] += failed
                self.dropped["unencodable"] += bad
            self.settled_cond.notify_all()
        if failed:
            self.report("export_failed")
        elif exported:
            self.streaks.discard("export_failed")
        if not bad:
            self.streaks.discard("unencodable")

    # -- stopping ------------------------------------------------------------------

    def begin_stop(self, deadline: float | None = None) -> None:
        """Stop taking events; the workers send what is queued until ``deadline``, then end."""
        with self.lock:
            if self.stopping:
                return
            self.stopping = True
            self.stop_deadline = deadline or time.monotonic() + self.exit_timeout
        self.wake.set()

    def wait_settled(self, deadline: float) -> bool:
        with self.settled_cond:
            target = self.accepted
            return self.settled_cond.wait_for(
                lambda: self.settled >= target or self.abandoned,
                max(0.0, deadline - time.monotonic()),
            )

    def abandon(self) -> int:
        """Give up: count what is queued or in flight as unsent; returns that count."""
        with self.settled_cond:
            if self.abandoned:
                return 0
            self.abandoned = True
            unsent = self.accepted - self.settled
            self.dropped["unsent_at_shutdown"] += unsent
            self.queue.clear()
            self.settled_cond.notify_all()
        self.wake.set()
        return unsent

    def finish_stop(self, deadline: float) -> None:
        """After :meth:`begin_stop`: wait until ``deadline`` at most, then give up and report."""
        self.wait_settled(deadline)
        self.abandon()
        for pipeline in list(self.pipelines):  # interrupts a retry back-off under way
            pipeline.shutdown()
        for thread in self.threads:
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join(max(0.0, min(0.5, deadline - time.monotonic())))
        self.report_drops()

    def report_drops(self) -> None:
        """One warning with every count, once: by whoever gave up on the queue."""
        dropped = sum(self.dropped.values())
        if dropped and not self.drops_reported:
            self.drops_reported = True
            _diagnostics.warning(
                "jupyter_telemetry: %d OpenTelemetry log record(s) were not delivered (%s); "
                "the JSON-lines file still holds every event",
                dropped,
                ", ".join(f"{reason.replace('_', ' ')}: {n}" for reason, n in self.dropped.items()),
            )

    def after_fork_in_child(self) -> None:
        # The parent's exporters and queue are the parent's: park them, never touch them.
        PARKED.extend(self.pipelines)
        # Each transport's ``in_call`` flag (written by its worker, no lock) came with the fork.
        in_call = any(getattr(p, "in_call", False) for p in self.pipelines)
        if self.grpc and (in_call or _grpc_fork_support_off()):
            # gRPC skipped its fork handlers (a thread was inside it) or has none: a new
            # channel here hangs or crashes the process. Only this process is affected.
            self.off = "grpc_unsafe_after_fork"
        self._fresh()
        if not self.stopping and not self.off:  # a sink the parent shut down stays shut down
            self.start(None)


def _grpc_fork_support_off() -> bool:
    value = os.environ.get("GRPC_ENABLE_FORK_SUPPORT", "")
    return value.strip().lower() in _OFF


def _work(core: _Core, pipeline: Pipeline | None) -> None:
    """A worker thread: never dies of an exception, counts every record it takes."""
    try:
        while True:
            try:
                batch = core.next_batch()
            except Exception:  # pragma: no cover - defensive: keep the worker alive
                _diagnostics.exception("jupyter_telemetry: OTel worker error")
                time.sleep(core.delay)
                continue
            if batch is None:
                return
            try:
                if pipeline is None:
                    pipeline = core.new_pipeline(core.report)
                    core.pipelines.append(pipeline)
                counts = pipeline.send(batch)
            except Exception:
                core.report("export_failed")
                counts = (0, len(batch), 0)
            core.settle(len(batch), counts)
            del batch
    finally:
        if pipeline is not None and not core.abandoned:
            pipeline.shutdown()


class OTelSink:
    """Emit each event as an OTel log record, off the caller's thread.

    Either ``provider`` (the application's: its processors export, the sink
    only flushes it) or ``settings`` (the sink builds its own exporters; the
    first is built here, so a configuration the SDK refuses raises now).
    Counters: :attr:`exported`, :attr:`dropped` and :attr:`dropped_by_reason`
    (``queue_full``, ``export_failed``, ``unencodable``, ``unsent_at_shutdown``,
    ``grpc_unsafe_after_fork``); each record counts once, whichever thread gives up on it.
    """

    def __init__(
        self,
        provider: APILoggerProvider | None = None,
        *,
        settings: OTLPSettings | None = None,
        span_events: bool = False,
        max_queue_size: int = 65536,
        max_queue_bytes: int = 64 * 2**20,
        max_batch_size: int = 512,
        schedule_delay: float = 0.5,
        exit_timeout: float = 5.0,
    ) -> None:
        if (provider is None) == (settings is None):
            raise TypeError("OTelSink needs either a provider or OTLP settings")
        self.provider = provider
        self.owned = settings is not None
        self._span_events = span_events
        new_pipeline: Callable[[Callable[[str], None]], Pipeline]
        if settings is not None:
            res = resource(settings)
            encoder = Encoder(dict(res.attributes), res.schema_url)

            def new_pipeline(report: Callable[[str], None]) -> Pipeline:
                return Owned(Transport(settings, res), encoder, report)

            workers, target, grpc = 2, settings.endpoint, settings.protocol == "grpc"
        else:
            assert provider is not None

            def new_pipeline(report: Callable[[str], None]) -> Pipeline:
                return Emitting(provider, report)

            workers, target, grpc = 1, "the application's logger provider", False
        core = _Core(
            new_pipeline,
            workers,
            max_queue_size,
            max_queue_bytes,
            max_batch_size,
            schedule_delay,
            exit_timeout,
            target,
            grpc,
        )
        # An exporter the SDK refuses to build (a malformed OTEL_* value) raises here.
        core.start(new_pipeline(core.report) if settings is not None else None)
        self._core = core
        CORES.add(core)
        finaliser = weakref.finalize(self, core.begin_stop)
        finaliser.atexit = False  # the exit hook stops every sink together
        install()

    # -- the caller's side: O(1), never blocks on I/O -----------------------------

    def emit(self, emission: Emission) -> None:
        if self._span_events:
            self._add_span_event(emission)
        self._core.put(
            item(
                (
                    emission.line,
                    emission.time_ns,
                    emission.schema_id,
                    emission.version,
                    otel_context.get_current(),
                    time.time_ns(),
                )
            )
        )

    def _add_span_event(self, emission: Emission) -> None:
        span = trace.get_current_span()
        if span.is_recording():
            payload = orjson.dumps(split(emission.line)[0]).decode()
            span.add_event(
                emission.schema_id,
                {**attributes(emission.schema_id, emission.version), PAYLOAD: payload},
                timestamp=emission.time_ns if 0 <= emission.time_ns < TIME_LIMIT else None,
            )

    # -- counters --------------------------------------------------------------------

    @property
    def queued(self) -> int:
        """Events waiting for a worker."""
        return len(self._core.queue)

    @property
    def exported(self) -> int:
        return self._core.exported

    @property
    def dropped(self) -> int:
        return sum(self._core.dropped.values())

    @property
    def dropped_by_reason(self) -> dict[str, int]:
        """Records not delivered, per reason (a copy)."""
        return dict(self._core.dropped)

    # -- Sink protocol ------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued; ``True`` when it all got through in time."""
        core = self._core
        deadline = time.monotonic() + (30.0 if timeout is None else timeout)
        if core.stopping or core.off:
            return False
        failed_before = core.dropped["export_failed"] + core.dropped["unencodable"]
        with core.lock:
            core.flushing += 1
        core.wake.set()
        try:
            done = core.wait_settled(deadline)
        finally:
            with core.lock:
                core.flushing -= 1
        if not done:
            return False
        if not self.owned:
            millis = int(max(0.0, deadline - time.monotonic()) * 1000)
            flush = getattr(self.provider, "force_flush", None)
            if flush is not None and not flush(millis):
                return False
        return core.dropped["export_failed"] + core.dropped["unencodable"] == failed_before

    def shutdown(self, timeout: float | None = None) -> None:
        """Send what is queued within ``timeout`` seconds, then stop; count what was left."""
        core = self._core
        if core.stopping:
            return
        deadline = time.monotonic() + (30.0 if timeout is None else timeout)
        if not self.owned:
            self.flush(timeout)
        core.begin_stop(deadline)
        core.finish_stop(deadline)
