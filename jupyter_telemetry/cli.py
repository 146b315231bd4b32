"""The ``jupyter-telemetry`` command: validate schemas and events, record one event,
replay a JSON-lines file to an OTLP collector.

Every command reuses the library's own pieces — ``_schema`` to load, check and
validate, a real :class:`~jupyter_telemetry.EventLog` to record, the
:class:`~jupyter_telemetry.sinks.otel.OTelSink` to replay — so what the
command accepts, writes and sends is exactly what an application would.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
import orjson

from . import _schema
from ._capsule import CAPSULE_KEYS, METADATA_VERSION
from ._version import __version__
from .errors import (
    EventSerializationError,
    EventValidationError,
    SchemaLoadError,
    UnregisteredSchemaError,
)
from .sinks import Emission

if TYPE_CHECKING:
    from .sinks.otel import OTLPSettings

OK, INVALID_EVENT, USAGE, INVALID_SCHEMA, CANNOT_READ, NOT_DELIVERED = range(6)

EXIT_CODES = """\
exit codes:
  0  success
  1  an event does not match its schema
  2  usage error: a bad or missing argument, or --version is not the schema's version
  3  the schema is not a valid event schema (JSON Schema, $id, version, ...)
  4  a file cannot be read or written, or is not JSON/YAML/JSON lines
     (messages name the file and, for JSON lines, the line number)
  5  the OTLP collector did not accept every record
"""

_EPOCH = datetime(1970, 1, 1)
_SECOND = timedelta(seconds=1)
# The offset before the Z is jupyter-telemetry 0.1.0's bug (isoformat() + "Z" of an aware time).
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:([+-]\d\d):(\d\d))?Z", re.ASCII
)
_SHOWN_SKIPS = 10  # skipped lines reported one by one; the rest only counted


class CommandError(Exception):
    """Ends a command: ``message`` goes to stderr and ``code`` becomes the exit status."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# -- reading input -------------------------------------------------------------


def load_schema(path: str) -> _schema.Schema:
    """Load and compile a JSON or YAML schema file; :class:`CommandError` (3 or 4) if not."""
    try:
        document = _schema.load_file(path)
    except OSError as exc:
        raise CommandError(CANNOT_READ, f"cannot read {path}: {exc.strerror or exc}") from None
    except SchemaLoadError as exc:
        raise CommandError(CANNOT_READ, f"cannot read {exc}") from None
    try:
        return _schema.compile_schema(document)
    except (jsonschema.SchemaError, ValueError) as exc:
        raise CommandError(INVALID_SCHEMA, f"{path}: {exc}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def read_event(source: str, label: str) -> tuple[str, Any]:
    """``(name, event)`` from JSON text (starting with ``{`` or ``[``), ``-`` (stdin) or a file.

    ``name`` is the file, ``<stdin>`` or ``label`` for JSON text; it starts every message.
    """
    name = source
    try:
        if source == "-":
            name, text = "<stdin>", sys.stdin.read()
        elif source.lstrip()[:1] in ("{", "["):
            name, text = label, source
        else:
            text = Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(CANNOT_READ, f"cannot read {source}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise CommandError(CANNOT_READ, f"cannot read {source}: not UTF-8: {exc}") from None
    try:
        return name, json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:
        raise CommandError(CANNOT_READ, f"{name}: not JSON: {exc}") from None


def check_event(schema: _schema.Schema, event: Any) -> None:
    """Raise :class:`EventValidationError` unless ``record_event`` would accept ``event``."""
    if not isinstance(event, dict):
        raise schema.reject(f"an event must be a JSON object, got {type(event).__name__}", event)
    for key in CAPSULE_KEYS:
        if key in event:
            raise schema.reject(f"key {key!r} is reserved for the event capsule", event)
    schema.validate(event)


def parse_timestamp(text: str) -> int:
    """``__timestamp__`` (RFC 3339, UTC, trailing ``Z``) as exact Unix nanoseconds.

    Also reads 0.1.0's ``...+02:00Z`` (an aware override): the offset applies.
    """
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        raise ValueError(
            f"__timestamp__ {text!r} is not RFC 3339 UTC with a trailing 'Z' "
            "(e.g. 2024-02-29T12:00:00.123456Z)"
        )
    year, month, day, hour, minute, sec, fraction, hours, minutes = match.groups()
    try:
        local = datetime(int(year), int(month), int(day), int(hour), int(minute), int(sec))
        second = (local - _EPOCH) // _SECOND
    except ValueError as exc:
        raise ValueError(f"__timestamp__ {text!r}: {exc}") from None
    if hours is not None:
        sign = -1 if hours[0] == "-" else 1
        second -= sign * (int(hours[1:]) * 3600 + int(minutes) * 60)
    return second * 1_000_000_000 + (int(fraction.ljust(9, "0")) if fraction else 0)


def emission_from_line(raw: bytes) -> Emission:
    """The :class:`Emission` the live bridge sent for one line the file sink wrote.

    Raises ``ValueError`` saying what is wrong with the line.
    """
    line = raw.decode("utf-8").strip()
    capsule = orjson.loads(line)
    if not isinstance(capsule, dict):
        raise ValueError(f"not a JSON object but {type(capsule).__name__}")
    missing = [key for key in CAPSULE_KEYS if key not in capsule]
    if missing:
        raise ValueError("not an event capsule: missing " + ", ".join(missing))
    stamp, schema_id, version, metadata = (capsule[key] for key in CAPSULE_KEYS)
    if not isinstance(stamp, str):
        raise ValueError(f"__timestamp__ must be a string, got {stamp!r}")
    if not isinstance(schema_id, str) or not schema_id:
        raise ValueError(f"__schema__ must be a non-empty string, got {schema_id!r}")
    if isinstance(version, bool) or not isinstance(version, (int, str)):
        raise ValueError(f"__schema_version__ must be an int or a string, got {version!r}")
    if type(metadata) is not int or metadata != METADATA_VERSION:
        raise ValueError(f"__metadata_version__ {metadata!r} is not {METADATA_VERSION}")
    return Emission(capsule, line, parse_timestamp(stamp), schema_id, version)


# -- validate ------------------------------------------------------------------


def _validate(args: argparse.Namespace) -> int:
    schema = load_schema(args.schema)
    print(f"{args.schema}: schema {schema.id!r} version {schema.version!r} is valid")
    status = OK
    for index, source in enumerate(args.events, 1):
        try:
            name, event = read_event(source, f"event argument {index}")
            check_event(schema, event)
        except CommandError as exc:
            _error(exc.message)
            status = max(status, exc.code)
        except (EventValidationError, EventSerializationError) as exc:
            _error(f"{name}: {exc}")
            status = max(status, INVALID_EVENT)
        else:
            print(f"{name}: valid")
    return status


# -- record --------------------------------------------------------------------


def _record(args: argparse.Namespace) -> int:
    from .eventlog import EventLog

    schema = load_schema(args.schema)
    name, event = read_event(args.event, "--event")
    try:
        handler: logging.Handler = (
            logging.FileHandler(args.to, encoding="utf-8")
            if args.to
            else logging.StreamHandler(sys.stdout)
        )
    except OSError as exc:
        raise CommandError(CANNOT_READ, f"cannot write {args.to}: {exc.strerror or exc}") from None
    eventlog = EventLog(
        handlers=[handler],
        allowed_schemas=[schema.id],
        otlp_endpoint=args.otlp_endpoint,
        otlp_protocol=args.otlp_protocol,
        service_name=args.service_name,
        otlp_timeout=args.timeout,
        shutdown_timeout=args.timeout,
    )
    try:
        eventlog.register_schema(schema.document)
        eventlog.record_event(schema.id, args.schema_version, event)
    except UnregisteredSchemaError:
        raise CommandError(
            USAGE,
            f"--version {args.schema_version} is not the version {args.schema} declares "
            f"(schema {schema.id!r} version {schema.version!r})",
        ) from None
    except (EventValidationError, TypeError) as exc:
        raise CommandError(INVALID_EVENT, f"{name}: {exc}") from None
    finally:
        eventlog.shutdown(args.timeout)
        handler.close()
    if eventlog.otel_dropped:
        endpoint = args.otlp_endpoint or "from OTEL_EXPORTER_OTLP_*"
        raise CommandError(
            NOT_DELIVERED, f"the OTLP collector (endpoint {endpoint}) did not accept the event"
        )
    return OK


# -- replay --------------------------------------------------------------------


class _Progress:
    """A one-line progress bar on stderr, redrawn at most ten times a second."""

    WIDTH = 30

    def __init__(self, total_bytes: int, enabled: bool) -> None:
        self.total = total_bytes
        self.enabled = enabled
        self._drawn = 0.0
        self._line = ""

    def update(self, done_bytes: int, lines: int, sent: int, final: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not final and now - self._drawn < 0.1):
            return
        self._drawn = now
        fraction = min(1.0, done_bytes / self.total) if self.total else 1.0
        filled = int(fraction * self.WIDTH)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        end = "\n" if final else ""
        self._line = f"\r[{bar}] {fraction:4.0%}  {lines:,} lines, {sent:,} sent"
        sys.stderr.write(self._line + end)
        sys.stderr.flush()

    def clear(self) -> None:
        """Blank the bar, so that warnings printed next start on a clean line."""
        if self.enabled and self._line:
            sys.stderr.write("\r" + " " * len(self._line) + "\r")
            sys.stderr.flush()


class _Replayer:
    """Push emissions through an owned :class:`OTelSink` without ever overflowing its queue."""

    def __init__(self, settings: OTLPSettings, queue_size: int, timeout: float) -> None:
        from .sinks.otel import OTelSink

        self.sink = OTelSink(
            settings=settings,
            max_queue_size=queue_size,
            exit_timeout=timeout,
            export_timeout=timeout,
        )
        self.limit = queue_size
        self.timeout = timeout
        self.emitted = 0

    def emit(self, emission: Emission) -> bool:
        """Emit once the queue has room; ``False`` when the collector refuses records."""
        sink = self.sink
        while sink.queued >= self.limit:  # backpressure: only this thread adds to the queue
            before = sink.queued
            sink.flush(self.timeout)
            if sink.dropped or sink.queued >= before:
                return False
        sink.emit(emission)
        self.emitted += 1
        return True

    def finish(self) -> tuple[int, int]:
        """Send what is queued, stop; return ``(accepted, not accepted)``."""
        self.sink.shutdown(self.timeout)
        return self.sink.exported, self.emitted - self.sink.exported


def _prescan(path: str) -> None:
    """Refuse, before anything is sent, a file with a line that cannot be replayed."""
    with open(path, "rb") as lines:
        for number, raw in enumerate(lines, 1):
            try:
                emission_from_line(raw)
            except ValueError as exc:
                raise CommandError(
                    CANNOT_READ,
                    f"{path}:{number}: cannot replay this line: {exc}\n"
                    "nothing was sent; --skip-invalid skips such lines (and counts them)",
                ) from None


def _replay(args: argparse.Namespace) -> int:
    from .sinks.otel import OTLPSettings

    started = time.monotonic()
    try:
        settings = OTLPSettings.resolve(
            args.otlp_endpoint,
            args.otlp_protocol,
            None,
            args.service_name,
            "jupyter_telemetry",
            args.timeout,
        )
    except ValueError as exc:
        raise CommandError(USAGE, str(exc)) from None
    if settings is None:
        raise CommandError(
            USAGE, "replay needs --otlp-endpoint (or OTEL_EXPORTER_OTLP_ENDPOINT to be set)"
        )
    path = args.events
    try:
        size = os.stat(path).st_size
        if not args.skip_invalid:
            _prescan(path)
        handle = open(path, "rb")  # closed by the `with` below
    except OSError as exc:
        raise CommandError(CANNOT_READ, f"cannot read {path}: {exc.strerror or exc}") from None

    progress = _Progress(size, sys.stderr.isatty() if args.progress is None else args.progress)
    replayer = _Replayer(settings, args.queue_size, args.timeout)
    skipped = unsent = done = number = 0
    with handle:
        for number, raw in enumerate(handle, 1):
            done += len(raw)
            try:
                emission = emission_from_line(raw)
            except ValueError as exc:
                skipped += 1
                if skipped <= _SHOWN_SKIPS:
                    progress.clear()
                    _error(f"{path}:{number}: skipped: {exc}")
                continue
            if not replayer.emit(emission):
                unsent = 1 + sum(1 for _ in handle)
                progress.clear()
                _error(f"{path}:{number}: the collector refuses records; stopping here")
                break
            progress.update(done, number, replayer.sink.exported)
    if skipped > _SHOWN_SKIPS:
        _error(f"{path}: {skipped - _SHOWN_SKIPS} more line(s) skipped")
    progress.clear()
    sent, failed = replayer.finish()
    progress.update(done, number, sent, final=True)
    summary = f"{path}: {sent} sent, {skipped} skipped, {failed} failed"
    if unsent:
        summary += f", {unsent} not attempted"
    print(f"{summary} in {time.monotonic() - started:.2f} s")
    if failed or unsent:
        raise CommandError(
            NOT_DELIVERED,
            f"the OTLP collector at {settings.endpoint} did not accept {failed + unsent} record(s)",
        )
    return OK


# -- the parser ----------------------------------------------------------------


def _positive(kind: type[float] | type[int]) -> Any:
    def convert(text: str) -> float | int:
        value = kind(text)
        if value <= 0:
            raise ValueError(text)
        return value

    convert.__name__ = f"positive {kind.__name__}"  # argparse's "invalid positive int value"
    return convert


def _otlp_options(parser: argparse.ArgumentParser, timeout_help: str) -> None:
    parser.add_argument(
        "--otlp-endpoint",
        metavar="URL",
        help="OTLP base endpoint, e.g. http://127.0.0.1:4317 (grpc) or http://127.0.0.1:4318 "
        "(http/protobuf; /v1/logs is appended). Default: OTEL_EXPORTER_OTLP_(LOGS_)ENDPOINT",
    )
    parser.add_argument(
        "--otlp-protocol",
        choices=["grpc", "http/protobuf"],
        help="default: OTEL_EXPORTER_OTLP_(LOGS_)PROTOCOL, else grpc",
    )
    parser.add_argument(
        "--service-name",
        metavar="NAME",
        help="resource service.name; default: OTEL_SERVICE_NAME, else jupyter_telemetry",
    )
    parser.add_argument(
        "--timeout", type=_positive(float), default=10.0, metavar="SECONDS", help=timeout_help
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``jupyter-telemetry``."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="jupyter-telemetry",
        description="Validate event schemas and events, record events, replay event logs.",
        epilog=EXIT_CODES,
        formatter_class=formatter,
    )
    parser.add_argument("-V", "--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser(
        "validate",
        help="check a schema file, and events against it",
        description="Check a schema file (JSON or YAML) and, optionally, events against it. "
        "An EVENT starting with '{' or '[' is JSON text; '-' reads standard input; "
        "anything else is a JSON file. Every event is checked; the exit status is the "
        "worst problem found (4, then 1).",
        epilog=EXIT_CODES,
        formatter_class=formatter,
    )
    validate.add_argument("schema", metavar="SCHEMA", help="schema file, JSON or YAML")
    validate.add_argument("events", metavar="EVENT", nargs="*", help="JSON text or JSON file")
    validate.set_defaults(run=_validate)

    record = commands.add_parser(
        "record",
        help="record one event to a file, stdout and/or an OTLP collector",
        description="Record one event through a real EventLog: validated, written as one "
        "JSON line (to --to FILE, else standard output) and, with an OTLP endpoint, "
        "exported as an OpenTelemetry log record.",
        epilog=EXIT_CODES,
        formatter_class=formatter,
    )
    record.add_argument("--schema", required=True, metavar="FILE", help="schema file, JSON or YAML")
    record.add_argument(
        "--version",
        dest="schema_version",
        required=True,
        metavar="N",
        help="the schema version the event is for",
    )
    record.add_argument(
        "--event", required=True, metavar="JSON", help="JSON text, '-' (stdin) or a JSON file"
    )
    record.add_argument("--to", metavar="FILE", help="append the JSON line to FILE")
    _otlp_options(record, "seconds the export (and the shutdown) may take; default 10")
    record.set_defaults(run=_record)

    replay = commands.add_parser(
        "replay",
        help="send a JSON-lines event log to an OTLP collector",
        description="Send every line of a JSON-lines file written by the file sink to an OTLP "
        "collector, as the same log records the live bridge sends: original timestamps, "
        "event_name, body, attributes and scope. Never drops a record for a full queue. "
        "Without --skip-invalid, a line that cannot be replayed is an error naming its "
        "number, and nothing is sent.",
        epilog=EXIT_CODES,
        formatter_class=formatter,
    )
    replay.add_argument("events", metavar="EVENTS.log", help="JSON-lines file")
    _otlp_options(replay, "seconds one export (with retries) may take; default 10")
    replay.add_argument(
        "--skip-invalid",
        action="store_true",
        help="skip (and count) lines that cannot be replayed instead of refusing the file",
    )
    replay.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr; default: when stderr is a terminal",
    )
    replay.add_argument(
        "--queue-size",
        type=_positive(int),
        default=2048,
        metavar="N",
        help="records queued for export at most",
    )
    replay.set_defaults(run=_replay)
    return parser


def _error(message: str) -> None:
    print(f"jupyter-telemetry: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``jupyter-telemetry``; return the exit status (see ``--help``)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except CommandError as exc:
        _error(exc.message)
        return exc.code
    except KeyboardInterrupt:
        return 130


__all__ = ["EXIT_CODES", "build_parser", "emission_from_line", "main", "parse_timestamp"]
