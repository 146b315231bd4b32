"""Forward jupyter_events' events (Jupyter Server 2, JupyterHub 5/6) through an EventLog.

``c.EventLogger.handlers = [JupyterEventsHandler()]`` in ``jupyter_server_config.py``
or ``jupyterhub_config.py`` sends every event of every schema to the OpenTelemetry
destination that ``OTEL_*`` (or the handler's arguments, or ``c.EventLog.*`` given
``config=c``) configures, as the records ``EventLog.record_event`` writes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ._categories import uses_categories
from .eventlog import EventLog

_diagnostics = logging.getLogger("jupyter_telemetry")


class JupyterEventsHandler(logging.Handler):
    """A ``logging.Handler`` for ``jupyter_events.EventLogger`` that forwards each capsule.

    ``eventlog``: the :class:`EventLog` to forward through; without it the handler
    builds one from ``eventlog_kwargs`` (``handlers=``, ``allowed_schemas=``,
    ``otlp_endpoint=``, ``config=``, ``parent=``, ...).

    ``emit`` reads the capsule dict jupyter_events puts in ``record.msg`` (the
    formatter jupyter_events forces on its handlers is ignored) and calls
    ``eventlog.forward``; with no ``allowed_schemas`` every event is forwarded
    unchanged. It never raises: failures are counted in :attr:`failures` and
    reported once per streak through the ``jupyter_telemetry`` logger.
    """

    def __init__(self, eventlog: EventLog | None = None, **eventlog_kwargs: Any) -> None:
        if eventlog is not None and eventlog_kwargs:
            raise TypeError("pass either an EventLog or EventLog arguments, not both")
        super().__init__()
        self.eventlog = EventLog(**eventlog_kwargs) if eventlog is None else eventlog
        self.failures = 0  #: events that could not be forwarded
        self._failing = False
        # A jupyter_events SchemaRegistry whose schemas are copied on first sight
        # (set by the server extension), and the (id, version) pairs already seen.
        self.schema_source: Any = None
        self._seen: set[tuple[str, str]] = set()

    def copy_schemas(self, registry: Any) -> int:
        """Register on the EventLog every schema of a jupyter_events ``SchemaRegistry``
        that declares ``categories``, so a dict policy honours them; return how many.

        A schema without categories is left unregistered: under a dict policy only its
        ``allowed_properties`` are forwarded. Schemas this EventLog refuses are skipped.
        """
        return sum(self._copy(registry, schema_id) for schema_id in registry.schema_ids)

    def _copy(self, registry: Any, schema_id: str) -> bool:
        try:
            document = registry.get(schema_id)._schema
            key = (document["$id"], str(document["version"]))
            if not uses_categories(document) or key in {
                (i, str(v)) for i, v in self.eventlog.schemas
            }:
                return False
            self.eventlog.register_schema(document)
        except Exception as exc:
            _diagnostics.warning(
                "jupyter_telemetry: schema %r not copied (%s); under a dict policy only its "
                "allowed_properties are forwarded",
                schema_id,
                exc,
            )
            return False
        return True

    def _learn(self, capsule: Mapping[str, Any]) -> None:
        schema_id = capsule.get("__schema__")
        key = (str(schema_id), str(capsule.get("__schema_version__")))
        if key not in self._seen:
            self._seen.add(key)
            if isinstance(schema_id, str) and schema_id in self.schema_source:
                self._copy(self.schema_source, schema_id)

    def emit(self, record: logging.LogRecord) -> None:
        """Forward ``record.msg``, a jupyter_events capsule; never raises."""
        try:
            capsule = record.msg
            if type(capsule) is not dict and not isinstance(capsule, Mapping):
                raise TypeError(f"expected a jupyter_events capsule, got {type(capsule).__name__}")
            if self.schema_source is not None:
                self._learn(capsule)
            eventlog = self.eventlog
            # The ids allowed_schemas lists (kept by the EventLog): no trait read per event.
            eventlog.forward(capsule, allow_unlisted=not eventlog._allowed_ids)
        except Exception:
            self.failures += 1
            if not self._failing:
                self._failing = True
                _diagnostics.exception(
                    "jupyter_telemetry: a jupyter_events event could not be forwarded "
                    "(reported once until one succeeds)"
                )
            return
        self._failing = False

    def flush(self) -> None:
        """Flush the EventLog's sinks (bounded by its ``shutdown_timeout``)."""
        try:
            self.eventlog.flush(self.eventlog.shutdown_timeout)
        except Exception:
            _diagnostics.exception("jupyter_telemetry: flushing the EventLog failed")

    def close(self) -> None:
        """Flush the EventLog and keep it: the handler still forwards after ``close``.

        ``logging.config.dictConfig``, which traitlets applications call after
        reading their config files, closes every handler that exists; the stdlib's
        own handlers keep working after that, and so does this one. An EventLog the
        handler built is shut down at interpreter exit (``shutdown_timeout``).
        """
        try:
            self.flush()
        finally:
            super().close()
