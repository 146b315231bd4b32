"""A Jupyter Server extension that forwards the server's jupyter_events to OpenTelemetry.

Installing the package enables nothing; ``c.ServerApp.jpserver_extensions =
{"jupyter_telemetry": True}`` (or ``--ServerApp.jpserver_extensions`` on the
command line) enables it. Its :class:`EventLog` has the server
as parent, so ``c.EventLog.*`` in the server's config applies.
"""

from __future__ import annotations

import logging
from typing import Any

from .bridge import JupyterEventsHandler


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Attach a :class:`JupyterEventsHandler` to ``serverapp.event_logger``.

    Does nothing (and says so in the server's log) when the event logger already
    has a ``JupyterEventsHandler`` (from ``c.EventLogger.handlers``), or when the
    EventLog has no destination: no OTel endpoint or provider and no ``c.EventLog.handlers``.
    """
    log: logging.Logger = serverapp.log
    event_logger = serverapp.event_logger
    if any(isinstance(h, JupyterEventsHandler) for h in event_logger.handlers):
        log.info("jupyter_telemetry: c.EventLogger.handlers already forwards events")
        return
    handler = JupyterEventsHandler(parent=serverapp)
    eventlog = handler.eventlog
    if not eventlog._sinks:
        handler.close()
        log.warning(
            "jupyter_telemetry: no OpenTelemetry destination (OTEL_EXPORTER_OTLP_ENDPOINT or "
            "c.EventLog.otlp_endpoint) and no c.EventLog.handlers: events are not forwarded"
        )
        return
    handler.schema_source = event_logger.schemas
    handler.copy_schemas(event_logger.schemas)
    event_logger.register_handler(handler)
    log.info("jupyter_telemetry: forwarding jupyter_events events through %r", eventlog)
