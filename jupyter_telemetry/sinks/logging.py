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
from typing import Any

import orjson
import structlog
from structlog._base import BoundLoggerBase

from . import Emission

_LogRecord = logging.LogRecord
_new_record = object.__new__
_get_ident = threading.get_ident
_current_thread = threading.current_thread
_getpid = os.getpid


def _dumps(obj: Any, **_: Any) -> str:
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


class _HandlerFanout:
    """Hand one line to every handler of ``logger``, each failure isolated.

    Builds the ``LogRecord`` from a template rather than through
    ``Logger.makeRecord``: no stack walk, a quarter of the cost, and every
    standard attribute a formatter or filter may read is still present.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        template = logging.LogRecord(
            logger.name, logging.INFO, "jupyter_telemetry", 0, "", None, None, "record_event"
        )
        self._template = template.__dict__
        self._failing: set[int] = set()

    def info(self, line: str, created: float) -> None:
        template = self._template
        record = _new_record(_LogRecord)
        record.__dict__ = fields = template.copy()
        fields["msg"] = line
        fields["created"] = created
        fields["msecs"] = (created * 1000) % 1000
        fields["relativeCreated"] = (
            template["relativeCreated"] + (created - template["created"]) * 1000
        )
        fields["thread"] = _get_ident()
        fields["threadName"] = _current_thread().name
        fields["process"] = _getpid()
        logger = self.logger
        if logger.disabled:
            return
        for handler in logger.handlers:
            if record.levelno < handler.level:
                continue
            try:
                handler.handle(record)
            except Exception:
                self._report(handler, record)
            else:
                self._failing.discard(id(handler))

    def _report(self, handler: logging.Handler, record: logging.LogRecord) -> None:
        # Once per failure streak: a handler that fails on every event must
        # not print a traceback per event.
        if id(handler) not in self._failing:
            self._failing.add(id(handler))
            handler.handleError(record)


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

    def render(self, capsule: dict[str, Any]) -> str:
        """Serialise ``capsule`` to one JSON line; raises ``TypeError`` if it cannot."""
        return self._structlog.render(capsule)

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
