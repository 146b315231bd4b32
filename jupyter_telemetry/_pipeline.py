"""The recording pipeline, one small step per function:

    route → modify → validate → redact → capsule → render → deliver → listeners

:meth:`EventLog.record_event <jupyter_telemetry.eventlog.EventLog.record_event>`
calls them in this order; :meth:`~jupyter_telemetry.eventlog.EventLog.forward`
(an event wrapped elsewhere) starts at redact. Every step before
:func:`deliver` either returns a new value or raises, so a bad event never
reaches a sink. The CLI checks and renders with the same functions.
"""

from __future__ import annotations

import copy
import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson
import structlog

from . import _capsule, _render
from ._schema import Schema
from .errors import EventSerializationError, EventTooLargeError
from .sinks import Emission, Sink

if TYPE_CHECKING:
    import asyncio

_diagnostics = logging.getLogger("jupyter_telemetry")

#: ``modifier(schema_id=..., data=...) -> dict``, as jupyter_events calls modifiers.
Modifier = Callable[..., Any]
#: ``listener(logger=..., schema_id=..., data=capsule)``, sync or async.
Listener = Callable[..., Any]
Redactor = Callable[[dict[str, Any]], dict[str, Any]]


class Route(NamedTuple):
    """What recording one allowed, registered schema needs, decided ahead of time."""

    schema: Schema
    #: returns a new, redacted event; ``None`` when every property is recorded
    redact: Redactor | None
    modifiers: tuple[Modifier, ...]
    listeners: tuple[Listener, ...]


def where(schema_id: str, version: int | str) -> str:
    return f"event for schema {schema_id!r} version {version!r}"


def modify(modifiers: Sequence[Modifier], schema_id: str, event: dict[str, Any]) -> dict[str, Any]:
    """Run ``modifiers`` in order on a deep copy of ``event``; return the last result.

    A modifier may change its ``data`` in place or return a new dict; what it
    returns must be a mapping (``TypeError`` otherwise). Its exceptions
    propagate to the caller of ``record_event``: a modifier is the
    application's own code, run before anything is written.
    """
    data = copy.deepcopy(event)
    for modifier in modifiers:
        data = modifier(schema_id=schema_id, data=data)
        if not isinstance(data, Mapping):
            raise TypeError(
                f"modifier {modifier!r} returned {type(data).__name__}, not a dict, "
                f"for schema {schema_id!r}"
            )
    return dict(data)


def as_event(event: Any) -> dict[str, Any]:
    """``event`` as a plain dict (itself when it is one); ``TypeError`` if not a mapping."""
    if type(event) is dict:
        return event
    if not isinstance(event, Mapping):
        raise TypeError(f"event must be a mapping, got {type(event).__name__}")
    return dict(event)


def check_event(schema: Schema, event: Any) -> dict[str, Any]:
    """Validate ``event`` as ``record_event`` does and return it as a dict.

    Raises ``EventValidationError`` (a ``jsonschema.ValidationError``) naming
    the schema, version and JSON path, for a non-object event too, for an
    event using a capsule key, and for a value JSON cannot hold the schema
    cannot judge.
    """
    if not isinstance(event, Mapping):
        raise schema.reject(f"an event must be a JSON object, got {type(event).__name__}", event)
    data = as_event(event)
    schema.validate(data)
    for key in _capsule.CAPSULE_KEYS:
        if key in data:
            raise schema.reject(f"key {key!r} is reserved for the event capsule", data)
    return data


def redact(
    redactor: Redactor | None, schema_id: str, version: int | str, event: dict[str, Any]
) -> dict[str, Any]:
    """The event with withheld values nulled (a new dict), or ``event`` itself."""
    if redactor is None:
        return event
    try:
        # The nulls redaction writes would hide a NaN from render's cheap check.
        _render.ensure_finite(event)
    except (TypeError, ValueError, RecursionError) as exc:
        raise unserialisable(schema_id, version, exc) from None
    return redactor(event)


def rewrap(capsule: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict of a checked capsule: the four capsule fields first, then the rest in order."""
    # The placeholders fix the capsule fields' positions; ** fills in their values.
    return {
        "__timestamp__": None,
        "__schema__": None,
        "__schema_version__": None,
        "__metadata_version__": None,
        **capsule,
    }


def capsule(schema: Schema, event: dict[str, Any], stamp: str) -> dict[str, Any]:
    """The envelope around ``event``; a capsule key in ``event`` is a validation error."""
    try:
        return _capsule.capsule(schema.id, schema.version, event, stamp)
    except KeyError as exc:
        raise schema.reject(
            f"key {exc.args[0]!r} is reserved for the event capsule", event
        ) from None


class _LineRenderer(structlog.BoundLoggerBase):
    """A structlog wrapper class whose one method runs the chain and returns the line.

    Built with structlog's public API for custom wrappers (``wrap_logger`` with
    every argument given, ``BoundLoggerBase._process_event``); the host
    application's ``structlog.configure()`` neither affects it nor is touched.
    Its context is empty: nothing from ``structlog.contextvars`` or any other
    context reaches an event, which would bypass its schema and privacy policy.
    """

    def render(self, capsule: dict[str, Any]) -> str:
        args, _ = self._process_event("render", None, capsule)
        return args[0]  # type: ignore[no-any-return]


def renderer(finite: bool = False) -> Callable[[dict[str, Any]], str]:
    """A fresh ``render(capsule) -> str``: structlog's ``JSONRenderer`` over :func:`_render.dumps`.

    ``finite``: every capsule it renders was checked by ``_render.ensure_finite``
    before redaction (whose nulls would otherwise send each line through the
    NaN walk).
    """
    serializer = _render.dumps_finite if finite else _render.dumps
    bound: _LineRenderer = structlog.wrap_logger(
        None,
        processors=[structlog.processors.JSONRenderer(serializer=serializer)],
        wrapper_class=_LineRenderer,
        context_class=dict,
        cache_logger_on_first_use=False,
    ).bind()
    return bound.render


def render(
    render_line: Callable[[dict[str, Any]], str],
    capsule: dict[str, Any],
    max_size: int,
) -> str:
    """``capsule`` as one pure-ASCII JSON line, checked against ``max_size`` (0: no limit).

    Raises ``EventSerializationError`` (a ``TypeError``) for a value JSON cannot
    hold and ``EventTooLargeError`` (a ``ValueError``) for a line over the limit.
    """
    try:
        line = render_line(capsule)
    except (TypeError, ValueError, RecursionError) as exc:
        raise unserialisable(capsule["__schema__"], capsule["__schema_version__"], exc) from None
    if len(line) > max_size > 0:
        raise EventTooLargeError(
            f"{where(capsule['__schema__'], capsule['__schema_version__'])} renders to "
            f"{len(line)} characters, more than max_event_size ({max_size})"
        )
    return line


def unserialisable(schema_id: str, version: int | str, cause: BaseException) -> Exception:
    reason = "nested too deeply" if isinstance(cause, RecursionError) else str(cause)
    return EventSerializationError(
        f"{where(schema_id, version)} cannot be serialised to JSON: {reason}"
    )


def deliver(sinks: Sequence[Sink], emission: Emission) -> None:
    """Hand ``emission`` to every sink; one failing sink never stops the others."""
    for sink in sinks:
        try:
            sink.emit(emission)
        except Exception:
            _diagnostics.exception("jupyter_telemetry: sink %r failed", sink)


# -- listeners: after recording, never raising into the caller -----------------

_tasks: set[asyncio.Task[Any]] = set()  # running listener tasks, kept until done


def notify(
    listeners: Sequence[Listener], owner: Any, schema_id: str, capsule: dict[str, Any]
) -> None:
    """Call each listener with its own copy of ``capsule``; report failures, never raise.

    A coroutine function's coroutine is scheduled on the running event loop;
    with no running loop it is closed unrun and reported as an error.
    """
    for listener in listeners:
        try:
            result = listener(logger=owner, schema_id=schema_id, data=copy.deepcopy(capsule))
            if inspect.isawaitable(result):
                _schedule(listener, result, schema_id)
        except Exception:
            _diagnostics.exception(
                "jupyter_telemetry: listener %r failed for schema %r", listener, schema_id
            )


def _schedule(listener: Listener, awaitable: Any, schema_id: str) -> None:
    import asyncio  # only once a listener is a coroutine function: it costs ~15 ms to import

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        if inspect.iscoroutine(awaitable):
            awaitable.close()
        _diagnostics.error(
            "jupyter_telemetry: async listener %r for schema %r was not run: "
            "record_event was called outside a running asyncio event loop",
            listener,
            schema_id,
        )
        return
    task = loop.create_task(_guarded(listener, awaitable, schema_id))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def _guarded(listener: Listener, awaitable: Any, schema_id: str) -> None:
    try:
        await awaitable
    except Exception:
        _diagnostics.exception(
            "jupyter_telemetry: listener %r failed for schema %r", listener, schema_id
        )


def unknown_schema_redactor(allowed_properties: Sequence[str]) -> Redactor:
    """For an event of a schema this EventLog does not know, under a dict policy.

    Its categories are unknown, so any doubt withholds: only the properties
    named in ``allowed_properties`` (dotted paths from the root) keep their
    values; every other value becomes ``null``, keys kept.
    """
    paths = [tuple(path.split(".")) for path in allowed_properties]

    def keep(value: Any, prefixes: list[tuple[str, ...]]) -> Any:
        if not prefixes:
            return None
        if any(not p for p in prefixes):
            return value  # this very property is allowed: its subtree too
        if isinstance(value, Mapping):
            return {key: keep(item, _below(prefixes, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [keep(item, prefixes) for item in value]  # array items are transparent
        return None

    def redact_unknown(event: dict[str, Any]) -> dict[str, Any]:
        return {key: keep(value, _below(paths, key)) for key, value in event.items()}

    return redact_unknown


def _below(prefixes: list[tuple[str, ...]], key: str) -> list[tuple[str, ...]]:
    return [prefix[1:] for prefix in prefixes if prefix[0] == key]


# -- what the CLI reuses -------------------------------------------------------


def check(
    schema: Schema, event: Any, render_line: Callable[[dict[str, Any]], str], max_size: int
) -> str:
    """The line ``record_event`` would write for ``event`` (unredacted), or its error.

    Raises what ``record_event`` raises for the same event: see
    :func:`check_event` and :func:`render`.
    """
    data = check_event(schema, event)
    _, stamp = _capsule.timestamp()
    return render(render_line, capsule(schema, data, stamp), max_size)


def parse_line(raw: bytes | str) -> Emission:
    """The :class:`Emission` the live pipeline built for one line a file sink wrote.

    Raises ``ValueError`` saying what is wrong with the line (not JSON, not an
    object, a capsule field missing or malformed: see :func:`_capsule.read_header`).
    """
    line = (raw.decode("utf-8") if isinstance(raw, bytes) else raw).strip()
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(record, dict):
        raise ValueError(f"not a JSON object but {type(record).__name__}")
    time_ns, schema_id, version = _capsule.read_header(record)
    return Emission(record, line, time_ns, schema_id, version)
