"""EventLog: register schemas, then record validated events to every sink."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import IO, TYPE_CHECKING, Any

from traitlets import Any as AnyTrait
from traitlets import Bool, Dict, Enum, Float, Int, Unicode, observe
from traitlets.config import Application, Config, Configurable

from . import _capsule, _categories, _pipeline, _render, _schema
from ._pipeline import Listener, Modifier, Redactor, Route
from .sinks import Sink, emission
from .sinks.logging import EventsLogger, LoggingSink
from .sinks.otel import PROTOCOLS, OTLPSettings, global_provider
from .traits import Handlers, SchemaOptions

if TYPE_CHECKING:
    from .sinks.otel._sink import OTelSink

_diagnostics = logging.getLogger("jupyter_telemetry")


class EventLog(Configurable):
    """Record schema-validated events to logging handlers (and OpenTelemetry).

    Configurable from traitlets config files (``c.EventLog.handlers``,
    ``c.EventLog.allowed_schemas``, ...) and subclassable together with
    ``SingletonConfigurable``.
    """

    handlers = Handlers(
        help="logging.Handler instances that receive one JSON line per recorded event."
    ).tag(config=True)

    allowed_schemas = SchemaOptions(
        help=(
            "Schema $ids whose events are recorded: a list, or a dict mapping each $id to "
            "{'allowed_categories': [...], 'allowed_properties': [...]}."
        )
    ).tag(config=True)

    max_event_size = Int(
        1_000_000,
        help=(
            "Longest JSON line an event may render to, in characters (0: no limit). A longer "
            "event raises ValueError before anything is written; OTLP collectors refuse "
            "requests over 4 MiB by default, and a line is never split."
        ),
    ).tag(config=True)

    validate_formats = Bool(
        False,
        help=(
            "Enforce JSON Schema 'format' (date-time, email, uri, ...) for schemas registered "
            "from now on. Off by default, as in jupyter-telemetry 0.1.0; jupyter_events checks it."
        ),
    ).tag(config=True)

    schema_url_timeout = Float(
        10.0, help="Seconds register_schema_url may take to fetch a schema."
    ).tag(config=True)

    schema_url_max_bytes = Int(
        _schema.MAX_SCHEMA_BYTES, help="Largest schema register_schema_url accepts, in bytes."
    ).tag(config=True)

    # -- OpenTelemetry ---------------------------------------------------------

    logger_provider = AnyTrait(
        None,
        allow_none=True,
        help=(
            "An OpenTelemetry LoggerProvider to emit records through. Default: the global "
            "provider when the application installed an SDK one, else one built from "
            "otlp_endpoint / OTEL_EXPORTER_OTLP_*, else no OpenTelemetry output."
        ),
    )

    otlp_endpoint = Unicode(
        None,
        allow_none=True,
        help=(
            "Base OTLP endpoint, e.g. http://127.0.0.1:4317 (grpc) or http://127.0.0.1:4318 "
            "(http/protobuf; /v1/logs is appended). Default: OTEL_EXPORTER_OTLP_LOGS_ENDPOINT "
            "or OTEL_EXPORTER_OTLP_ENDPOINT."
        ),
    ).tag(config=True)

    otlp_protocol = Enum(
        list(PROTOCOLS),
        None,
        allow_none=True,
        help="grpc or http/protobuf. Default: OTEL_EXPORTER_OTLP_(LOGS_)PROTOCOL, else grpc.",
    ).tag(config=True)

    otlp_headers = Dict(
        default_value=None,
        allow_none=True,
        key_trait=Unicode(),
        value_trait=Unicode(),
        help="Headers sent with every export. Default: OTEL_EXPORTER_OTLP_(LOGS_)HEADERS.",
    ).tag(config=True)

    service_name = Unicode(
        None,
        allow_none=True,
        help=(
            "Resource service.name. Default: OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES, "
            "else the parent application's name, else 'jupyter_telemetry'."
        ),
    ).tag(config=True)

    otlp_timeout = Float(
        None,
        allow_none=True,
        help=(
            "Seconds one export (with its retries) may take before its records are dropped. "
            "Default: OTEL_EXPORTER_OTLP_(LOGS_)TIMEOUT (milliseconds), else 10."
        ),
    ).tag(config=True)

    otlp_max_queue_size = Int(
        65536,
        help="Events held for OpenTelemetry at most; beyond it new ones are dropped and counted.",
    ).tag(config=True)

    otlp_max_queue_bytes = Int(
        64 * 2**20,
        help=(
            "Characters of JSON held for OpenTelemetry at most (the queue's memory bound); "
            "beyond it new events are dropped and counted."
        ),
    ).tag(config=True)

    shutdown_timeout = Float(
        5.0, help="Seconds an EventLog-built exporter may take to send its queue at exit."
    ).tag(config=True)

    span_events = Bool(
        False,
        help="Also add each event to the active span as a span event (visible in trace views).",
    ).tag(config=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The logger exists before traits are set, so handlers given to the
        # constructor or by config are attached by the observer below.
        self._registry = _schema.Registry()
        self._routes: dict[tuple[str, int | str], Route] = {}
        # forward(): redactor and listeners of schemas not registered here, by $id
        self._unknown: dict[str, tuple[Redactor | None, tuple[Listener, ...]]] = {}
        self._allowed_ids: frozenset[str] = frozenset()
        self._sinks: tuple[Sink, ...] = ()
        self._modifiers: list[tuple[str | None, Modifier]] = []
        self._listeners: list[tuple[str | None, Listener]] = []
        self._structlog_renderers = (_pipeline.renderer(), _pipeline.renderer(finite=True))
        self._render_line, self._render_redacted = self._structlog_renderers
        self._events_logger = EventsLogger("jupyter_telemetry.eventlog", logging.INFO)
        self._events_logger.propagate = False
        self._lines = LoggingSink(self._events_logger)
        self._otel: OTelSink | None = None
        self._constructed = False
        super().__init__(*args, **kwargs)
        self._attach_handlers([], self.handlers)
        self._otel = self._make_otel_sink()
        self._constructed = True
        self._rebuild()

    # -- configuration ---------------------------------------------------------

    @property
    def log(self) -> logging.Logger:
        """The per-instance ``logging.Logger`` the event lines go through (not propagated)."""
        return self._events_logger

    @log.setter
    def log(self, value: Any) -> None:
        # LoggingConfigurable subclasses assign a diagnostics logger here;
        # events keep their own logger, as in jupyter-telemetry 0.1.0.
        pass

    def _load_config(
        self, cfg: Config, section_names: list[str] | None = None, traits: Any = None
    ) -> None:
        # traitlets deep-copies every config value, and logging handlers hold
        # locks that cannot be copied: take `handlers` out, set it as given.
        sections = section_names or self.section_names()
        handlers = [cfg[name]["handlers"] for name in sections if "handlers" in cfg.get(name, ())]
        if not handlers:
            super()._load_config(cfg, section_names, traits)
            return
        stripped = Config(
            {
                key: (
                    Config({k: v for k, v in value.items() if k != "handlers"})
                    if key in sections and isinstance(value, Config)
                    else value
                )
                for key, value in cfg.items()
            }
        )
        super()._load_config(stripped, section_names, traits)
        self.handlers = handlers[-1]  # the most specific section wins

    @observe("handlers")
    def _handlers_changed(self, change: Mapping[str, Any]) -> None:
        if hasattr(self, "_events_logger"):
            self._attach_handlers(change["old"] or [], change["new"] or [])
            self._rebuild()

    def _attach_handlers(self, old: list[logging.Handler], new: list[logging.Handler]) -> None:
        for handler in old:
            self._events_logger.removeHandler(handler)
        for handler in new:
            self._events_logger.addHandler(handler)

    @observe("allowed_schemas", "max_event_size")
    def _allowed_changed(self, change: Mapping[str, Any]) -> None:
        if hasattr(self, "_routes"):
            self._rebuild()

    def _rebuild(self) -> None:
        """Decide, once, which schemas are recorded, how, and which sinks are live."""
        allowed = self.allowed_schemas
        self._max_event_size = self.max_event_size
        routes: dict[tuple[str, int | str], Route] = {}
        for schema in self._registry:
            if schema.id in allowed:
                route = Route(
                    schema,
                    _categories.redactor(schema.document, allowed, schema.id),
                    self._for(self._modifiers, schema.id),
                    self._for(self._listeners, schema.id),
                )
                # Keyed by the version as registered too: record_event's usual call
                # then finds its route without converting the version.
                routes[schema.key] = routes[(schema.id, schema.version)] = route
        self._routes = routes
        self._unknown = {}
        self._allowed_ids = frozenset(allowed)
        lines: tuple[Sink, ...] = (self._lines,) if self._lines.live else ()
        self._sinks = lines + ((self._otel,) if self._otel else ())
        # A line only the OTel sink reads (no handler) skips structlog's chain: its one
        # processor, JSONRenderer over the same serialiser, writes the same text.
        self._render_line, self._render_redacted = (
            self._structlog_renderers if lines else (_render.dumps, _render.dumps_finite)
        )

    @staticmethod
    def _for(hooks: list[tuple[str | None, Any]], schema_id: str) -> tuple[Any, ...]:
        return tuple(hook for target, hook in hooks if target is None or target == schema_id)

    def _make_otel_sink(self) -> OTelSink | None:
        provider = self.logger_provider or global_provider()
        settings = None
        if provider is None:
            settings = OTLPSettings.resolve(
                self.otlp_endpoint,
                self.otlp_protocol,
                self.otlp_headers,
                self.service_name,
                self._default_service_name(),
                self.otlp_timeout,
            )
            if settings is None:
                return None
        from .sinks.otel._sink import OTelSink  # the SDK, protobuf and grpc load only now

        try:
            return OTelSink(
                provider,
                settings=settings,
                exit_timeout=self.shutdown_timeout,
                max_queue_size=self.otlp_max_queue_size,
                max_queue_bytes=self.otlp_max_queue_bytes,
                span_events=self.span_events,
            )
        except Exception:
            _diagnostics.warning(
                "jupyter_telemetry: the OpenTelemetry exporter cannot be built: no OTel output "
                "(the JSON-lines file is unaffected)",
                exc_info=True,
            )
            return None

    def _default_service_name(self) -> str:
        parent = self.parent
        while parent is not None:
            if isinstance(parent, Application) and parent.name:
                return str(parent.name)
            parent = getattr(parent, "parent", None)
        return "jupyter_telemetry"

    @observe(
        "logger_provider",
        "otlp_endpoint",
        "otlp_protocol",
        "otlp_headers",
        "service_name",
        "otlp_timeout",
        "otlp_max_queue_size",
        "otlp_max_queue_bytes",
        "span_events",
    )
    def _otel_changed(self, change: Mapping[str, Any]) -> None:
        if not self._constructed:
            return  # traits set by the constructor or config: __init__ builds the sink once
        old, self._otel = self._otel, self._make_otel_sink()
        self._rebuild()
        if old is not None:
            old.shutdown(self.shutdown_timeout)

    @property
    def otel_dropped(self) -> int:
        """OTel log records not delivered (for an application's provider: not emitted into it)."""
        return self._otel.dropped if self._otel else 0

    @property
    def otel_dropped_by_reason(self) -> dict[str, int]:
        """:attr:`otel_dropped` per reason: ``queue_full``, ``export_failed``, ``unencodable``,
        ``unsent_at_shutdown``, ``grpc_unsafe_after_fork``."""
        return self._otel.dropped_by_reason if self._otel else {}

    # -- schemas ---------------------------------------------------------------

    @property
    def schemas(self) -> Mapping[tuple[str, int | str], Mapping[str, Any]]:
        """Registered schema documents keyed by ``($id, version)`` (read-only)."""
        return MappingProxyType({(s.id, s.version): s.document for s in self._registry})

    def register_schema(self, schema: Mapping[str, Any]) -> None:
        """Register a schema document (a dict with ``$id`` and ``version``).

        The document is copied, never mutated. Raises
        ``jsonschema.SchemaError`` when it does not match its metaschema and
        ``ValueError`` when ``$id``/``version`` is missing, a property name
        starts with ``__``, a ``categories`` is not a list of strings, a
        ``$ref`` leaves the document, or this ``($id, version)`` is already
        registered.
        """
        self._registry.add(_schema.compile_schema(schema, formats=self.validate_formats))
        self._rebuild()

    def register_schema_file(self, filename: str | os.PathLike[str] | IO[Any]) -> None:
        """Register a JSON or YAML schema from a path, a PathLike or an open file."""
        self.register_schema(_schema.load_file(filename))

    def register_schema_url(self, url: str) -> None:
        """Fetch a JSON or YAML schema over http(s) and register it.

        Bounded by ``schema_url_timeout`` and ``schema_url_max_bytes``; raises
        ``ValueError`` (``SchemaLoadError``) when it cannot be fetched or parsed.
        """
        self.register_schema(
            _schema.load_url(url, self.schema_url_timeout, self.schema_url_max_bytes)
        )

    # -- modifiers and listeners (as in jupyter_events) --------------------------

    def add_modifier(self, *, schema_id: str | None = None, modifier: Modifier) -> None:
        """Run ``modifier(schema_id=..., data=...) -> dict`` on every event before validation.

        ``schema_id=None``: events of every schema, registered now or later.
        Modifiers run in the order added, on a deep copy of the caller's event
        (never on the event itself); what the last one returns is validated,
        so a modifier cannot make an invalid event recordable. An exception
        from a modifier propagates out of ``record_event``, before any sink.
        """
        self._add_hook(self._modifiers, schema_id, modifier, "modifier")

    def remove_modifier(self, *, schema_id: str | None = None, modifier: Modifier) -> None:
        """Stop running ``modifier`` (for ``schema_id``, or everywhere when ``None``)."""
        self._remove_hook(self._modifiers, schema_id, modifier)

    def add_listener(self, *, schema_id: str | None = None, listener: Listener) -> None:
        """Call ``listener(logger=self, schema_id=..., data=capsule)`` after each event is recorded.

        ``schema_id=None``: events of every schema, registered now or later.
        ``data`` is the listener's own copy of the capsule as written. A
        coroutine function is scheduled on the running asyncio loop; called
        outside one, it is not run and an error is logged to the
        ``jupyter_telemetry`` logger. A failing listener is reported there,
        never raised into ``record_event``.
        """
        self._add_hook(self._listeners, schema_id, listener, "listener")

    def remove_listener(self, *, schema_id: str | None = None, listener: Listener) -> None:
        """Stop calling ``listener`` (for ``schema_id``, or everywhere when ``None``)."""
        self._remove_hook(self._listeners, schema_id, listener)

    def _add_hook(
        self, hooks: list[tuple[str | None, Any]], schema_id: str | None, hook: Any, kind: str
    ) -> None:
        if not callable(hook):
            raise TypeError(f"{kind} must be callable, got {type(hook).__name__}")
        if schema_id is not None and not isinstance(schema_id, str):
            raise TypeError(f"schema_id must be a str or None, got {type(schema_id).__name__}")
        hooks.append((schema_id, hook))
        self._rebuild()

    def _remove_hook(
        self, hooks: list[tuple[str | None, Any]], schema_id: str | None, hook: Any
    ) -> None:
        hooks[:] = [
            (target, h)
            for target, h in hooks
            if not (h == hook and (schema_id is None or target == schema_id))
        ]
        self._rebuild()

    # -- recording -------------------------------------------------------------

    def record_event(
        self,
        schema_id: str | None = None,
        version: int | str | None = None,
        event: Mapping[str, Any] | None = None,
        timestamp_override: datetime | None = None,
        *,
        schema_name: str | None = None,
    ) -> dict[str, Any] | None:
        """Validate ``event`` against ``(schema_id, version)`` and record it.

        ``schema_name`` is jupyter-telemetry 0.1.0's name for ``schema_id``.
        Returns the capsule written to every sink, or ``None`` when nothing is
        recorded (the schema is not in ``allowed_schemas``, or there is no
        sink and no listener). Raises, before any sink sees the event:
        ``ValueError`` for an unregistered schema; ``jsonschema.ValidationError``
        naming schema, version and JSON path for an invalid event; ``TypeError``
        for an event that is not a mapping or holds a value JSON cannot encode;
        ``ValueError`` for a line over ``max_event_size``. Sink and listener
        failures are reported through ``logging``, never raised.
        """
        if schema_name is not None:
            if schema_id is not None:
                raise TypeError("record_event() got both schema_id and schema_name")
            schema_id = schema_name
        if schema_id is None or version is None or event is None:
            raise TypeError("record_event() needs schema_id, version and event")

        try:
            route = self._routes.get((schema_id, version))
        except TypeError:  # an unhashable version: _route names the problem
            route = None
        if route is None or type(version) is bool or not (self._sinks or route.listeners):
            route = self._route(schema_id, version)
            if route is None:
                return None
        schema = route.schema
        data = event if type(event) is dict else _pipeline.as_event(event)
        if route.modifiers:
            data = _pipeline.modify(route.modifiers, schema.id, data)
        schema.validate(data)
        if route.redact is not None:
            data = _pipeline.redact(route.redact, schema.id, schema.version, data)
        time_ns, stamp = _capsule.timestamp(timestamp_override)
        capsule = _pipeline.capsule(schema, data, stamp)
        render_line = self._render_line if route.redact is None else self._render_redacted
        line = _pipeline.render(render_line, capsule, self._max_event_size)
        _pipeline.deliver(
            self._sinks, emission((capsule, line, time_ns, schema.id, schema.version))
        )
        if route.listeners:
            _pipeline.notify(route.listeners, self, schema.id, capsule)
        return capsule

    def _route(self, schema_id: str, version: int | str) -> Route | None:
        """The route of an allowed, registered schema, when anything would receive its events."""
        route = self._routes.get((schema_id, version if type(version) is str else str(version)))
        if route is None:
            if schema_id in self.allowed_schemas and (self._sinks or self._listeners):
                self._registry.get(schema_id, version)  # raises UnregisteredSchemaError
            return None
        return route if self._sinks or route.listeners else None

    def forward(
        self, capsule: Mapping[str, Any], *, allow_unlisted: bool = False
    ) -> dict[str, Any] | None:
        """Record an event validated and wrapped elsewhere (a jupyter_events event, a line).

        Reads the capsule fields (``__timestamp__`` in either ``...Z`` or
        ``...+00:00Z`` form; ``__schema_version__`` kept as given), then applies
        ``allowed_schemas``: an ``$id`` not listed is not recorded unless
        ``allow_unlisted``. A registered ``($id, version)`` is redacted by its
        categories as ``record_event`` would; an unregistered one under a dict
        policy keeps only its ``allowed_properties`` (every other value
        ``null``); otherwise the event is recorded unchanged. Returns the
        capsule written, or ``None``. Raises ``ValueError`` for a malformed
        capsule and ``TypeError`` for values JSON cannot hold; sink and
        listener failures are reported, never raised. Modifiers do not run.
        """
        time_ns, schema_id, version = _capsule.read_header(capsule)
        if schema_id not in self._allowed_ids and not allow_unlisted:
            return None
        route = self._routes.get((schema_id, str(version)))
        redactor, listeners = (
            (route.redact, route.listeners) if route else self._elsewhere(schema_id)
        )
        if not (self._sinks or listeners):
            return None
        if redactor is None:
            record = _pipeline.rewrap(capsule)
            render_line = self._render_line
        else:
            data = {
                key: value for key, value in capsule.items() if key not in _capsule.CAPSULE_KEYS
            }
            data = _pipeline.redact(redactor, schema_id, version, data)
            record = {key: capsule[key] for key in _capsule.CAPSULE_KEYS} | data
            render_line = self._render_redacted
        line = _pipeline.render(render_line, record, self._max_event_size)
        _pipeline.deliver(self._sinks, emission((record, line, time_ns, schema_id, version)))
        if listeners:
            _pipeline.notify(listeners, self, schema_id, record)
        return record

    def _elsewhere(self, schema_id: str) -> tuple[Redactor | None, tuple[Listener, ...]]:
        """Redactor and listeners for forwarded events of a schema this EventLog lacks."""
        found = self._unknown.get(schema_id)
        if found is None:
            allowed = self.allowed_schemas
            policy = allowed.get(schema_id) if isinstance(allowed, Mapping) else None
            redactor = (
                None
                if policy is None
                else _pipeline.unknown_schema_redactor(policy.get("allowed_properties", ()))
            )
            found = (redactor, self._for(self._listeners, schema_id))
            if len(self._unknown) >= 1024:  # ids from replayed lines must not grow it for ever
                self._unknown.clear()
            self._unknown[schema_id] = found
        return found

    def flush(self, timeout: float | None = None) -> bool:
        """Flush every sink; ``True`` when all of them delivered within ``timeout`` seconds."""
        return all([sink.flush(timeout) for sink in self._sinks])

    def shutdown(self, timeout: float | None = None) -> None:
        """Flush every sink within ``timeout`` seconds and stop the exporter this EventLog built.

        The caller's handlers and an application's provider are flushed, never closed.
        Records that could not be delivered are counted in :attr:`otel_dropped`
        and reported in one warning.
        """
        for sink in self._sinks:
            sink.shutdown(timeout)
