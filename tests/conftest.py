"""Shared fixtures: real files, real handlers, a real collector; no global leaks."""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from traitlets.config import Config, PyFileConfigLoader

from jupyter_telemetry import EventLog

if TYPE_CHECKING:
    from _collector import Collector, ReceivedLog

SCHEMA_ID = "http://event.jupyter.org/test"
PROTOCOLS = ["grpc", "http/protobuf"]  #: the OTLP protocols every export test runs with

#: The benchmark event's shape: enum and pattern strings, a bounded integer,
#: a boolean, a nested object and an array.
SCHEMA: dict[str, Any] = {
    "$id": SCHEMA_ID,
    "version": 1,
    "title": "Test event",
    "type": "object",
    "properties": {
        "action": {"type": "string", "enum": ["open", "save", "close"]},
        "path": {"type": "string", "pattern": "^/"},
        "user": {"type": "string"},
        "count": {"type": "integer", "minimum": 0},
        "ok": {"type": "boolean"},
        "context": {
            "type": "object",
            "properties": {"kernel": {"type": "string"}, "cell": {"type": "integer"}},
        },
        "tags": {"type": "array", "items": {"type": "string"}},
        "message": {"type": "string"},
    },
    "required": ["action", "path"],
}

EVENT: dict[str, Any] = {
    "action": "open",
    "path": "/home/ada/notebook.ipynb",
    "user": "ada",
    "count": 3,
    "ok": True,
    "context": {"kernel": "python3", "cell": 7},
    "tags": ["a", "b"],
    "message": "a user property named message is kept",
}


@pytest.fixture(autouse=True)
def _isolate_logging_and_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Restore logging handlers and clear OTEL_* variables around every test."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    loggers = [logging.getLogger(), logging.getLogger("jupyter_telemetry")]
    saved = [(lg, list(lg.handlers), lg.level, lg.propagate) for lg in loggers]
    yield
    for lg, handlers, level, propagate in saved:
        lg.handlers[:] = handlers
        lg.setLevel(level)
        lg.propagate = propagate


def read_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a JSON-lines file, parsed; fails on a partial line."""
    text = path.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), "the file ends in a partial line"
    return [json.loads(line) for line in text.splitlines()]


def unique() -> str:
    """A service name no other test uses (the session's collector is shared)."""
    return f"svc-{uuid.uuid4().hex[:12]}"


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def endpoint(collector: Collector, protocol: str) -> str:
    """The collector's endpoint for an OTLP ``protocol``."""
    return collector.grpc_endpoint if protocol == "grpc" else collector.http_endpoint


def of_service(service: str) -> Callable[[ReceivedLog], bool]:
    """A predicate: the record came from ``service``."""
    return lambda r: r.resource.get("service.name") == service


def load_config(tmp_path: Path, body: str, name: str = "jupyter_app_config.py") -> Config:
    """A real traitlets config file holding ``body``, loaded as applications load them."""
    path = tmp_path / name
    path.write_text(body)
    return PyFileConfigLoader(path.name, path=str(tmp_path)).load_config()


@pytest.fixture
def events_file(tmp_path: Path) -> Path:
    return tmp_path / "events.log"


@pytest.fixture
def file_handler(events_file: Path) -> Iterator[logging.FileHandler]:
    handler = logging.FileHandler(events_file, encoding="utf-8")
    yield handler
    handler.close()


@pytest.fixture
def eventlog(file_handler: logging.FileHandler) -> Iterator[EventLog]:
    log = EventLog(handlers=[file_handler], allowed_schemas=[SCHEMA_ID])
    log.register_schema(SCHEMA)
    yield log
    log.shutdown(timeout=5)


@pytest.fixture
def make_log(file_handler: logging.Handler) -> Iterator[Callable[..., EventLog]]:
    """``make_log(**traits) -> EventLog`` recording SCHEMA to ``file_handler``; all shut down after."""
    made: list[EventLog] = []

    def make(**traits: Any) -> EventLog:
        traits.setdefault("handlers", [file_handler])
        log = EventLog(allowed_schemas=[SCHEMA_ID], **traits)
        log.register_schema(SCHEMA)
        made.append(log)
        return log

    yield make
    for log in made:
        log.shutdown(timeout=2)


@pytest.fixture(scope="session")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real OTLP collector process (rotel) on 127.0.0.1, shared by the session."""
    from _collector import Collector

    running = Collector(tmp_path_factory.mktemp("collector"))
    running.start()
    yield running
    running.stop()


# -- figures: what the fault, load and fuzz tests measured (RELIABILITY.md) ----


@pytest.fixture(scope="session")
def _figures_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    store: dict[str, Any] = {}
    yield store
    if store:
        path = tmp_path_factory.getbasetemp() / "reliability-figures.json"
        path.write_text(json.dumps(store, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        print(f"\nreliability figures written to {path}")


@pytest.fixture
def figures(
    request: pytest.FixtureRequest,
    _figures_store: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    record_property: Any,
) -> Any:
    """``figures(name=value, ...)``: print a test's measurements and keep them.

    They go to the terminal (even without ``-s``), the JUnit XML properties and
    ``reliability-figures.json`` in pytest's base temporary directory.
    """

    def report(**values: Any) -> None:
        _figures_store.setdefault(request.node.nodeid, {}).update(values)
        for name, value in values.items():
            record_property(name, value)
        with capsys.disabled():
            print(f"\nFIGURES {request.node.nodeid}: {json.dumps(values, sort_keys=True)}")

    return report


# -- Hypothesis: derandomised in CI (the same examples on every run), random locally --

from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile(
    "ci", derandomize=True, database=None, print_blob=True, deadline=None
)
if os.environ.get("CI"):
    _hypothesis_settings.load_profile("ci")
