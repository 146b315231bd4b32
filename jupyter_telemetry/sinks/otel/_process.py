"""The export process: where an EventLog-built provider emits, encodes and sends.

Building an SDK record and encoding it costs far more CPU than recording the
event, and CPython runs one thread at a time: an exporter thread kept busy by
a stream of events makes every ``record_event`` wait for the interpreter lock
(twice as slow under a flood). So by default the records an EventLog's own
provider exports are built and sent by a helper process — the same Python,
started on the first batch — and the application keeps its interpreter.

The two ends speak over the helper's stdin and stdout (same package, same
version, so the format is private):

* parent → helper: frames, each a 4-byte little-endian length and an orjson
  document. The first frame is the configuration; every later one is a batch,
  a list of ``[time_ns, trace_id, span_id, trace_flags, schema_id, version,
  line]`` (ids as hex, or null outside a span);
* helper → parent: one line per batch, ``b"<exported> <failed>\\n"``, written
  once the export has returned (retries included). One batch is in flight.

At end of input the helper stops its exporter and exits, so it never outlives
the application: a parent that dies closes the pipe.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import IO, Any

import orjson
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource

from .. import Emission
from ._export import OTLPSettings, OwnedPipeline

_LENGTH = struct.Struct("<I")
_BOOT = (
    "import json, sys; sys.path[:0] = json.loads(sys.argv[1]); "
    "from jupyter_telemetry.sinks.otel._process import serve; serve()"
)
_diagnostics = logging.getLogger("jupyter_telemetry")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _frame(document: Any) -> bytes:
    payload = orjson.dumps(document)
    return _LENGTH.pack(len(payload)) + payload


def _ids(context: Any) -> tuple[str | None, str | None, int]:
    span = trace.get_current_span(context).get_span_context()
    if not span.is_valid:
        return None, None, 0
    return f"{span.trace_id:032x}", f"{span.span_id:016x}", int(span.trace_flags)


class ExportProcess:
    """The parent's handle on one helper process, started on the first batch.

    ``send`` never raises: a helper that cannot start or is found dead loses
    the batch in hand, which is reported once per failure streak and returned
    as failed; batches fail at once until ``restart_delay`` seconds after the
    failure, then the next one starts a new helper (a helper that crashes on
    start-up is not restarted in a loop).
    """

    #: a fork need not wait for the batch in hand: the parent's helper sends it,
    #: and the child only closes its copies of the pipes
    fork_safe = True

    def __init__(
        self, settings: OTLPSettings, resource: Resource, restart_delay: float = 1.0
    ) -> None:
        self._config = _frame(
            {
                "endpoint": settings.endpoint,
                "protocol": settings.protocol,
                "headers": dict(settings.headers) if settings.headers is not None else None,
                "service_name": settings.service_name,
                "timeout": settings.timeout,
                "resource": dict(resource.attributes),
                "schema_url": resource.schema_url,
            }
        )
        self._restart_delay = restart_delay
        self._proc: subprocess.Popen[bytes] | None = None
        self._retry_at = 0.0  # monotonic time from which a new helper may be started
        self._failing = False
        self._closed = False
        self._pending = b""  # bytes of the helper's output after the last line read

    @property
    def pid(self) -> int | None:
        """The helper's process id, while one is running."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def send(self, batch: Sequence[tuple[Emission, Any]]) -> tuple[int, int]:
        """Have the helper emit and export ``batch``; ``(exported, failed)``."""
        proc = None if self._closed else self._running()
        if proc is not None:
            assert proc.stdin is not None and proc.stdout is not None
            items = [
                (e.time_ns, *_ids(context), e.schema_id, e.version, e.line) for e, context in batch
            ]
            try:
                _write_all(proc.stdin.fileno(), _frame(items))
                exported, failed = map(int, self._read_line(proc.stdout.fileno()).split())
            except (OSError, ValueError, EOFError):  # no answer, or pipes closed by shutdown
                self._lost(proc)
            else:
                self._failing = False
                return exported, failed
        return 0, len(batch)

    def _running(self) -> subprocess.Popen[bytes] | None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            return proc
        if proc is not None:
            self._lost(proc)
        if time.monotonic() < self._retry_at:
            return None
        self._pending = b""
        try:
            self._proc = subprocess.Popen(  # noqa: S603 - this interpreter, our own code
                [sys.executable, "-c", _BOOT, json.dumps(sys.path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                bufsize=0,
            )
            assert self._proc.stdin is not None
            _write_all(self._proc.stdin.fileno(), self._config)
        except (OSError, ValueError, subprocess.SubprocessError):
            self._report(f"could not start it with {sys.executable!r}")
            self.forget()
            self._retry_at = time.monotonic() + self._restart_delay
            return None
        return self._proc

    def _read_line(self, fd: int) -> bytes:
        while b"\n" not in self._pending:
            chunk = os.read(fd, 4096)
            if not chunk:
                raise EOFError
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        return line

    def _lost(self, proc: subprocess.Popen[bytes]) -> None:
        try:
            code: int | None = proc.wait(0.2)  # its end of the pipes closed: it is exiting
        except subprocess.TimeoutExpired:
            code = None
        if not self._closed:
            self._report(
                "it stopped answering" if code is None else f"it exited with status {code}"
            )
        self._stop(proc, 0.0)
        if self._proc is proc:
            self._proc = None
        self._retry_at = time.monotonic() + self._restart_delay

    def _report(self, what: str) -> None:
        if not self._failing:  # once per failure streak
            self._failing = True
            _diagnostics.warning(
                "jupyter_telemetry: the OTLP export process failed (%s); "
                "its batch is counted as not delivered",
                what,
            )

    def shutdown(self, idle: bool) -> None:
        """Stop the helper; ``idle``: no thread is in :meth:`send`.

        An idle helper gets the end of its input and half a second to exit.
        A busy one is killed: the thread in ``send`` sees its output end and
        lets go of it (descriptors are only closed by the thread using them).
        """
        self._closed = True
        proc = self._proc
        if proc is None:
            return
        if not idle:
            proc.kill()
            return
        self._proc = None
        self._stop(proc, 0.5)

    @staticmethod
    def _stop(proc: subprocess.Popen[bytes], timeout: float) -> None:
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def forget(self) -> None:
        """In a forked child: let go of the parent's helper without touching it."""
        proc, self._proc = self._proc, None
        if proc is not None:
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()  # the child's copies of the descriptors only (unbuffered)
            proc.returncode = 0  # not our child: never wait for it


# -- the helper's side -------------------------------------------------------------


def _read_frame(stream: IO[bytes]) -> Any:
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack(head)
    payload = stream.read(size)
    if len(payload) < size:
        return None
    return orjson.loads(payload)


def _context(trace_id: str | None, span_id: str | None, flags: int) -> Context | None:
    if trace_id is None or span_id is None:
        return Context()
    span = trace.SpanContext(
        int(trace_id, 16), int(span_id, 16), is_remote=False, trace_flags=trace.TraceFlags(flags)
    )
    return trace.set_span_in_context(trace.NonRecordingSpan(span), Context())


def serve() -> None:
    """The helper's main loop (``python -c`` runs it): read batches, export, answer."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the application's to handle
    answers = os.dup(1)
    os.dup2(2, 1)  # a stray print must not corrupt the answers
    logging.basicConfig(format=f"jupyter_telemetry export process {os.getpid()}: %(message)s")
    stream = sys.stdin.buffer
    config = _read_frame(stream)
    if config is None:
        return
    settings = OTLPSettings(
        config["endpoint"],
        config["protocol"],
        config["headers"],
        config["service_name"],
        config["timeout"],
    )
    pipeline = OwnedPipeline(
        settings,
        Resource(config["resource"], config["schema_url"]),
        lambda: _diagnostics.exception("jupyter_telemetry: emitting an OTel log record failed"),
    )
    try:
        while (items := _read_frame(stream)) is not None:
            batch = [
                (Emission({}, line, time_ns, schema_id, version), _context(tid, sid, flags))
                for time_ns, tid, sid, flags, schema_id, version, line in items
            ]
            exported, failed = pipeline.send(batch)
            _write_all(answers, b"%d %d\n" % (exported, failed))
    finally:
        pipeline.shutdown(idle=True)
