"""The JSON-lines sink: one structlog-rendered line per event to stdlib handlers.

The line is rendered by structlog's ``JSONRenderer`` (with ``orjson`` as the
serialiser) through a private ``wrap_logger`` whose wrapped logger is the
EventLog's own ``logging.Logger``; ``structlog.configure()`` is never called,
so the host application's structlog set-up neither affects nor is affected
by it. Handlers keep the formatter their owner gave them (none by default,
which writes the line as is).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

import orjson
import structlog
from structlog._base import BoundLoggerBase

from . import Emission

_LogRecord = logging.LogRecord
_new_record = object.__new__
_HANDLE = logging.Handler.handle
_INFO = logging.INFO
_get_ident = threading.get_ident
_current_thread = threading.current_thread
_pid = [os.getpid()]  # getpid() is a system call; a fork is the only way it changes
os.register_at_fork(after_in_child=lambda: _pid.__setitem__(0, os.getpid()))


_SCALARS = (str, int, bool, type(None))


def _non_finite(value: Any) -> bool:
    """Whether ``value`` holds a float NaN or infinity, at any depth (no recursion)."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind in _SCALARS:
            continue
        if kind is dict:
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            stack.extend(item)
        elif isinstance(item, float):
            if item - item != 0.0:  # NaN and ±inf, without a call
                return True
        elif isinstance(item, dict):
            stack.extend(dict(item).values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return False


_NON_FINITE = "NaN and Infinity have no JSON encoding"


def ensure_finite(event: dict[str, Any]) -> None:
    """Raise ``TypeError`` if ``event`` holds NaN or Infinity, or cannot be serialised.

    For events about to be redacted: the nulls redaction writes would send
    every rendered line through the walk, so the event is checked as given.
    """
    if b"null" in orjson.dumps(event) and _non_finite(event):
        raise TypeError(_NON_FINITE)


def _dumps(obj: Any, **_: Any) -> str:
    # structlog passes default= (a repr() fallback); a value JSON cannot hold must raise instead.
    return orjson.dumps(obj).decode()


class _LineLogger(BoundLoggerBase):
    """A structlog wrapper class: render a capsule, write a line.

    Events carry no bound context, so the processor chain runs on the capsule
    itself instead of on a merged copy (``BoundLoggerBase._process_event``).
    """

    def render(self, capsule: dict[str, Any]) -> str:
        event: Any = capsule
        for processor in self._processors:
            event = processor(self._logger, "info", event)
        return event  # type: ignore[no-any-return]

    def write(self, line: str, created: float) -> None:
        self._logger.info(line, created)


_emitting = threading.local()  # the record EventLog is handing to a handler right now


class _ErrorGate:
    """Stands in for a handler's ``handleError`` so EventLog failures report once.

    A handler that fails on every event (a full disk) would otherwise print a
    traceback per event. For EventLog's own records the gate passes the first
    failure of a streak to the handler's real ``handleError`` and swallows the
    rest until the handler succeeds again; any other record goes straight
    through, so the handler behaves as before for everyone else.
    """

    __slots__ = ("failed", "failing", "original")

    def __init__(self, original: Callable[[logging.LogRecord], None]) -> None:
        self.original = original
        self.failing = False  # inside a failure streak: already reported
        self.failed = False  # the event being handled failed

    def __call__(self, record: logging.LogRecord) -> None:
        if getattr(_emitting, "record", None) is not record:
            self.original(record)
            return
        self.failed = True
        if not self.failing:
            self.failing = True
            self.original(record)


def _gate(handler: logging.Handler) -> _ErrorGate:
    gate = handler.__dict__.get("handleError")
    if type(gate) is not _ErrorGate:
        gate = _ErrorGate(handler.handleError)
        handler.handleError = gate  # type: ignore[method-assign]
    return gate


_PLAIN_STREAM_HANDLERS = (logging.StreamHandler, logging.FileHandler)


class _HandlerFanout:
    """Hand one line to every handler of ``logger``, each failure isolated.

    Builds the ``LogRecord`` from a template rather than through
    ``Logger.makeRecord``: no stack walk, a quarter of the cost, and every
    standard attribute a formatter or filter may read is still present.
    A plain ``StreamHandler``/``FileHandler`` with no formatter and no filter
    gets the line written to its stream directly, as its ``emit`` would
    (line, terminator, flush, under the handler's lock), and no record is
    built unless it fails.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        template = logging.LogRecord(
            logger.name, logging.INFO, "jupyter_telemetry", 0, "", None, None, "record_event"
        )
        self._template = template.__dict__
        # relativeCreated = (created - logging's start time) * 1000
        self._relative_ms = template.relativeCreated - template.created * 1000

    def _record(self, line: str, created: float) -> logging.LogRecord:
        record = _new_record(_LogRecord)
        record.__dict__ = fields = self._template.copy()
        millis = created * 1000
        fields["msg"] = line
        fields["created"] = created
        fields["msecs"] = int(millis) % 1000 + 0.0  # whole milliseconds, as LogRecord has them
        fields["relativeCreated"] = millis + self._relative_ms
        fields["thread"] = _get_ident()
        fields["threadName"] = _current_thread().name
        fields["process"] = _pid[0]
        return record

    def info(self, line: str, created: float) -> None:
        logger = self.logger
        if logger.disabled:
            return
        record = None
        if logger.filters:
            record = self._record(line, created)
            if not logger.filter(record):
                return
        for handler in logger.handlers:
            if handler.level > _INFO:
                continue
            stream = getattr(handler, "stream", None)
            if (
                stream is not None
                and type(handler) in _PLAIN_STREAM_HANDLERS
                and handler.formatter is None
                and not handler.filters
            ):
                try:
                    with handler.lock:  # type: ignore[union-attr]
                        stream.write(line + handler.terminator)  # type: ignore[attr-defined]
                        stream.flush()
                except RecursionError:
                    raise
                except Exception:
                    record = record or self._record(line, created)
                    self._failed(handler, record)
                    continue
                self._succeeded(handler)
            else:
                record = record or self._record(line, created)
                self._handle(handler, record)

    @staticmethod
    def _succeeded(handler: logging.Handler) -> None:
        gate = handler.__dict__.get("handleError")
        if type(gate) is _ErrorGate and gate.failing:
            gate.failing = False

    @staticmethod
    def _failed(handler: logging.Handler, record: logging.LogRecord) -> None:
        gate = _gate(handler)
        _emitting.record = record
        try:
            gate(record)
        finally:
            _emitting.record = None

    @staticmethod
    def _handle(handler: logging.Handler, record: logging.LogRecord) -> None:
        gate = _gate(handler)
        gate.failed = False
        _emitting.record = record
        try:
            if type(handler).handle is _HANDLE:
                # Handler.handle without the extra frame: filters, lock, emit.
                if not handler.filters or handler.filter(record):
                    with handler.lock:  # type: ignore[union-attr]
                        handler.emit(record)
            else:
                handler.handle(record)
        except Exception:  # a handler that raises instead of handling its error
            gate(record)
        finally:
            _emitting.record = None
        if not gate.failed:
            gate.failing = False  # a streak, if any, is over


class LoggingSink:
    """Write each event's JSON line to the handlers of ``logger``."""

    def __init__(self, logger: logging.Logger) -> None:
        self._fanout = _HandlerFanout(logger)
        self._structlog: _LineLogger = structlog.wrap_logger(
            self._fanout,
            processors=[structlog.processors.JSONRenderer(serializer=_dumps)],
            wrapper_class=_LineLogger,
            context_class=dict,
            cache_logger_on_first_use=True,
        ).bind()

    @property
    def live(self) -> bool:
        return bool(self._fanout.logger.handlers)

    def render(self, capsule: dict[str, Any], finite: bool = False) -> str:
        """Serialise ``capsule`` to one JSON line; raises ``TypeError`` if it cannot.

        ``finite``: the caller already ran :func:`ensure_finite` on the values.
        """
        line = self._structlog.render(capsule)
        # orjson writes NaN and Infinity as null; only a line holding null needs the walk.
        if not finite and "null" in line and _non_finite(capsule):
            raise TypeError(_NON_FINITE)
        return line

    def emit(self, emission: Emission) -> None:
        self._structlog.write(emission.line, emission.time_ns / 1e9)

    def flush(self, timeout: float | None = None) -> bool:
        for handler in self._fanout.logger.handlers:
            try:
                handler.flush()
            except Exception:  # noqa: S112 - flushing is best effort
                continue
        return True

    def shutdown(self, timeout: float | None = None) -> None:
        self.flush(timeout)
