"""The JSON-lines sink: one finished line per event through stdlib ``logging``.

Each line is delivered as any logger delivers a message:
``isEnabledFor(INFO)`` → ``makeRecord`` → ``Logger.handle``. So
``logging.disable``, the logger's level, logger and handler filters
(including a filter returning a replacement record, Python 3.12+), handler
levels, ``logging.setLogRecordFactory`` and the calling thread's, process's
and task's names all behave as for any logger, and a failing handler is
handled by that handler's own ``handleError`` (``logging.raiseExceptions``
decides whether it prints). Handlers are never reached into nor altered.
"""

from __future__ import annotations

import logging

from . import Emission

__all__ = ["EventsLogger", "LoggingSink", "ReportOncePerStreak"]

_INFO = logging.INFO


class EventsLogger(logging.Logger):
    """An EventLog's own logger: not registered with ``logging.getLogger``.

    It differs from a registered logger in two points only:

    * ``isEnabledFor`` is not cached, because ``logging.disable`` and
      ``setLevel`` clear only the caches of registered loggers;
    * each handler's failure is isolated: a handler that raises out of
      ``handle`` (instead of calling its ``handleError`` as stdlib handlers
      do) gets its ``handleError`` called and never stops the next handler
      nor raises into ``record_event``.
    """

    def isEnabledFor(self, level: int) -> bool:
        if self.disabled or self.manager.disable >= level:
            return False
        return level >= (self.level or self.getEffectiveLevel())  # its own level if it has one

    def callHandlers(self, record: logging.LogRecord) -> None:
        found = 0
        logger: logging.Logger | None = self
        while logger:
            for handler in logger.handlers:
                found += 1
                if record.levelno >= handler.level:
                    try:
                        handler.handle(record)
                    except Exception:
                        try:
                            handler.handleError(record)
                        except Exception:  # noqa: S110 - a broken handleError has no one to tell
                            pass
            logger = logger.parent if logger.propagate else None
        if not found and logging.lastResort and record.levelno >= logging.lastResort.level:
            logging.lastResort.handle(record)


class LoggingSink:
    """Deliver each event's JSON line to the handlers of ``logger``.

    The record's ``msg`` is the line (no ``args``), its level INFO, its
    location the fixed ``jupyter_telemetry:0`` in ``record_event`` (no stack
    walk); ``created`` is the event's ``__timestamp__``.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    @property
    def live(self) -> bool:
        return bool(self._logger.handlers)

    def emit(self, emission: Emission) -> None:
        logger = self._logger
        if not logger.isEnabledFor(_INFO):
            return
        record = logger.makeRecord(
            logger.name, _INFO, "jupyter_telemetry", 0, emission.line, (), None, "record_event"
        )
        # Stamp the record with the event's own time, so %(asctime)s matches __timestamp__.
        time_ns = emission.time_ns
        created = time_ns / 1e9
        record.relativeCreated += (created - record.created) * 1000
        record.created = created
        record.msecs = (time_ns // 1_000_000) % 1000 + 0.0
        logger.handle(record)

    def flush(self, timeout: float | None = None) -> bool:
        for handler in self._logger.handlers:
            try:
                handler.flush()
            except Exception:  # noqa: S112 - flushing is best effort
                continue
        return True

    def shutdown(self, timeout: float | None = None) -> None:
        self.flush(timeout)


class ReportOncePerStreak(logging.Handler):
    """Opt-in mixin: report a handler's failures once per streak, not per record.

    Put it first among the bases, e.g.
    ``class QuietFileHandler(ReportOncePerStreak, logging.FileHandler): ...``.
    The first failure after a success goes to the next ``handleError`` in the
    MRO (by default printed to stderr); later failures are dropped silently
    until a record is handled without error.
    """

    _failing = False  # inside a failure streak: already reported
    _failed = False  # the record being handled failed

    def handle(self, record: logging.LogRecord) -> bool | logging.LogRecord:  # type: ignore[override]
        self.acquire()  # reentrant: Handler.handle takes it again around emit
        try:
            self._failed = False
            handled = super().handle(record)
            if handled and not self._failed:
                self._failing = False
            return handled
        finally:
            self.release()

    def handleError(self, record: logging.LogRecord) -> None:
        self._failed = True
        if not self._failing:
            self._failing = True
            super().handleError(record)
