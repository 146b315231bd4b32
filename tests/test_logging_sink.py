"""The logging sink keeps stdlib logging's contract; lines are pure-ASCII JSON.

Most tests are differential: the same handler, filter and factory set-up on a
plain ``logging.getLogger`` logger, given the same line through ``info()``,
must write what the EventLog writes.
"""

from __future__ import annotations

import ast
import asyncio
import io
import json
import logging
import multiprocessing
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from conftest import EVENT, SCHEMA, SCHEMA_ID
from hypothesis import given
from hypothesis import strategies as st

from jupyter_telemetry import EventLog, _render

PACKAGE = Path(__file__).resolve().parent.parent / "jupyter_telemetry"
FORMAT = "%(levelname)s|%(threadName)s|%(processName)s|%(message)s"


class Pair:
    """An EventLog and a plain registered logger, each with its own formatted stream."""

    def __init__(self, fmt: str = FORMAT) -> None:
        self.ours, self.theirs = io.StringIO(), io.StringIO()
        self.our_handler = logging.StreamHandler(self.ours)
        self.their_handler = logging.StreamHandler(self.theirs)
        for handler in (self.our_handler, self.their_handler):
            handler.setFormatter(logging.Formatter(fmt))
        self.eventlog = EventLog(handlers=[self.our_handler], allowed_schemas=[SCHEMA_ID])
        self.eventlog.register_schema(SCHEMA)
        self.plain = logging.getLogger(f"test_logging_sink.{uuid.uuid4().hex}")
        self.plain.propagate = False
        self.plain.setLevel(logging.INFO)
        self.plain.addHandler(self.their_handler)

    def configure(self, change: Callable[[logging.Logger, logging.Handler], Any]) -> None:
        change(self.eventlog.log, self.our_handler)
        change(self.plain, self.their_handler)

    def record(self, **fields: Any) -> str:
        """Record one event both ways; return its line."""
        capsule = self.eventlog.record_event(SCHEMA_ID, 1, {**EVENT, **fields})
        assert capsule is not None
        line = _render.dumps(capsule)
        self.plain.info(line)
        return line

    def outputs(self) -> tuple[str, str]:
        return self.ours.getvalue(), self.theirs.getvalue()


@pytest.fixture
def pair() -> Iterator[Pair]:
    made = Pair()
    yield made
    made.plain.removeHandler(made.their_handler)


# -- what reaches the handlers ------------------------------------------------------


def _replace(record: logging.LogRecord) -> Any:  # a LogRecord; typeshed for 3.10 allows only bool
    return logging.makeLogRecord({**record.__dict__, "msg": "replaced", "args": ()})


def _edit(record: logging.LogRecord) -> bool:
    record.msg = f"edited {record.msg}"
    return True


CONFIGURATIONS: dict[str, Callable[[logging.Logger, logging.Handler], Any]] = {
    "logger level CRITICAL": lambda lg, h: lg.setLevel(logging.CRITICAL),
    "logger disabled": lambda lg, h: setattr(lg, "disabled", True),
    "handler level WARNING": lambda lg, h: h.setLevel(logging.WARNING),
    "logger filter refuses": lambda lg, h: lg.addFilter(lambda r: False),
    "handler filter refuses": lambda lg, h: h.addFilter(lambda r: False),
    "logger filter edits the record": lambda lg, h: lg.addFilter(_edit),
    "logger filter returns a replacement record": lambda lg, h: lg.addFilter(_replace),
    "handler filter returns a replacement record": lambda lg, h: h.addFilter(_replace),
}


@pytest.mark.parametrize("change", CONFIGURATIONS.values(), ids=CONFIGURATIONS.keys())
def test_levels_and_filters_act_as_on_any_logger(
    pair: Pair, change: Callable[[logging.Logger, logging.Handler], Any]
) -> None:
    first = pair.record(count=1)  # before the change: no cached decision may survive it
    pair.configure(change)
    pair.record(count=2)
    ours, theirs = pair.outputs()
    assert ours == theirs
    assert ours.startswith(f"INFO|MainThread|MainProcess|{first}\n")


def test_a_replacement_record_from_a_filter_is_delivered_on_python_3_12(pair: Pair) -> None:
    pair.configure(lambda lg, h: lg.addFilter(_replace))
    line = pair.record()
    expected = "replaced" if sys.version_info >= (3, 12) else line
    assert pair.outputs() == (f"INFO|MainThread|MainProcess|{expected}\n",) * 2


def test_logging_disable_silences_events_until_it_is_lifted(pair: Pair) -> None:
    first = pair.record(count=1)
    logging.disable(logging.CRITICAL)
    try:
        pair.record(count=2)
    finally:
        logging.disable(logging.NOTSET)
    third = pair.record(count=3)
    ours, theirs = pair.outputs()
    prefix = "INFO|MainThread|MainProcess|"
    assert ours == theirs == f"{prefix}{first}\n{prefix}{third}\n"


def test_the_eventlog_logger_level_silences_events_as_in_0_1_0(pair: Pair) -> None:
    pair.eventlog.log.setLevel(logging.CRITICAL)
    pair.record()
    assert pair.outputs()[0] == ""
    pair.eventlog.log.setLevel(logging.INFO)
    line = pair.record()
    assert pair.outputs()[0] == f"INFO|MainThread|MainProcess|{line}\n"


def test_the_record_factory_applies() -> None:
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.tenant = "acme"
        return record

    logging.setLogRecordFactory(factory)
    try:
        pair = Pair("%(tenant)s|%(message)s")
        line = pair.record()
    finally:
        logging.setLogRecordFactory(previous)
    assert pair.outputs() == (f"acme|{line}\n",) * 2


def test_thread_and_process_names_are_the_callers_at_the_time_of_the_event(pair: Pair) -> None:
    lines: list[str] = []
    worker = threading.Thread(target=lambda: lines.append(pair.record()), name="recorder")
    process = multiprocessing.current_process()
    original, process.name = process.name, "renamed-after-the-eventlog-was-built"
    try:
        worker.start()
        worker.join(10)
    finally:
        process.name = original
    ours, theirs = pair.outputs()
    assert ours == theirs == f"INFO|recorder|renamed-after-the-eventlog-was-built|{lines[0]}\n"


def test_task_name_is_the_calling_tasks_where_python_has_it(pair: Pair) -> None:
    records: dict[str, logging.LogRecord] = {}

    class Keep(logging.Handler):
        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

        def emit(self, record: logging.LogRecord) -> None:
            records[self.key] = record

    pair.eventlog.log.addHandler(Keep("ours"))
    pair.plain.addHandler(Keep("theirs"))

    async def main() -> None:
        await asyncio.create_task(_record(pair), name="recording-task")

    asyncio.run(main())
    ours, theirs = (getattr(records[k], "taskName", "absent") for k in ("ours", "theirs"))
    assert ours == theirs == ("recording-task" if sys.version_info >= (3, 12) else "absent")


async def _record(pair: Pair) -> None:
    pair.record()


# -- failing handlers ---------------------------------------------------------------


class _Broken(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError(28, "No space left on device")


def test_the_callers_handlers_are_never_altered(capsys: pytest.CaptureFixture[str]) -> None:
    def fallback(record: logging.LogRecord) -> None:
        pass

    failing = logging.StreamHandler(_Broken())
    failing.handleError = fallback  # type: ignore[method-assign]
    good = logging.StreamHandler(io.StringIO())
    before = [dict(vars(h)) for h in (failing, good)]
    log = EventLog(handlers=[failing, good], allowed_schemas=[SCHEMA_ID])
    log.register_schema(SCHEMA)
    for count in range(3):
        log.record_event(SCHEMA_ID, 1, {**EVENT, "count": count})
    assert failing.handleError is fallback and "handleError" not in vars(good)
    log.handlers = []
    after = [dict(vars(h)) for h in (failing, good)]
    assert after == before


def test_a_handler_whose_handle_error_falls_back_gets_every_failed_event(pair: Pair) -> None:
    class FallingBack(logging.StreamHandler):  # type: ignore[type-arg]
        def __init__(self) -> None:
            super().__init__(_Broken())
            self.fallback: list[str] = []

        def handleError(self, record: logging.LogRecord) -> None:
            self.fallback.append(record.getMessage())

    ours, theirs = FallingBack(), FallingBack()
    pair.configure(lambda lg, h: lg.addHandler(ours if lg is pair.eventlog.log else theirs))
    lines = [pair.record(count=count) for count in range(5)]
    assert ours.fallback == theirs.fallback == lines


def test_a_raising_handler_never_stops_the_next_nor_raises_into_record_event(
    capsys: pytest.CaptureFixture[str],
) -> None:
    class Raising(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            raise RuntimeError("emit does not handle its own error")

    stream = io.StringIO()
    log = EventLog(handlers=[Raising(), logging.StreamHandler(stream)], allowed_schemas=[SCHEMA_ID])
    log.register_schema(SCHEMA)
    for count in range(5):
        assert log.record_event(SCHEMA_ID, 1, {**EVENT, "count": count}) is not None
    assert [json.loads(x)["count"] for x in stream.getvalue().splitlines()] == list(range(5))
    err = capsys.readouterr().err  # its handleError, as logging.raiseExceptions says
    assert err.count("--- Logging error ---") == 5
    assert "emit does not handle its own error" in err


# -- the line: pure ASCII -------------------------------------------------------------

UNICODE = ["é", "€", "\N{GRINNING FACE}", "a\u2028b", "日本語 and ASCII"]


@pytest.mark.parametrize("encoding", ["cp1252", "ascii", "latin-1"])
def test_a_handler_with_any_encoding_writes_every_event(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "events.log"
    handler = logging.FileHandler(path, encoding=encoding)
    log = EventLog(handlers=[handler], allowed_schemas=[SCHEMA_ID])
    log.register_schema(SCHEMA)
    capsules = [log.record_event(SCHEMA_ID, 1, {**EVENT, "user": text}) for text in UNICODE]
    handler.close()
    lines = path.read_bytes().decode("ascii").splitlines()
    assert [json.loads(line)["user"] for line in lines] == UNICODE
    assert lines == [json.dumps(c, separators=(",", ":")) for c in capsules]
    assert '"user":"\\ud83d\\ude00"' in lines[2]


def test_an_ascii_line_is_byte_identical_to_json_dumps(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    log = EventLog(handlers=[handler], allowed_schemas=[SCHEMA_ID])
    log.register_schema(SCHEMA)
    capsule = log.record_event(SCHEMA_ID, 1, {**EVENT, "user": 'a "quoted"\\ tab\t'})
    handler.close()
    assert path.read_bytes() == (json.dumps(capsule, separators=(",", ":")) + "\n").encode()


@given(st.text(st.characters(exclude_categories=["Cs"])))
def test_strings_are_escaped_exactly_as_json_dumps_escapes_them(text: str) -> None:
    line = _render.dumps({"s": text})
    assert line.isascii() and json.loads(line) == {"s": text}
    # DEL is ASCII, so orjson keeps it as is; json.dumps escapes it
    assert line == json.dumps({"s": text}, separators=(",", ":")).replace("\\u007f", "\x7f")


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        float("inf"),
        {"deep": [1.0, float("-inf")]},
        2**64,
        -(2**63) - 1,
        object(),
        "\ud800",
    ],
    ids=["nan", "inf", "nested -inf", "2**64", "-2**63-1", "object", "lone surrogate"],
)
def test_values_json_cannot_hold_raise_type_error_even_through_structlog(value: Any) -> None:
    with pytest.raises(TypeError):
        _render.dumps({"v": value})
    renderer = structlog.processors.JSONRenderer(serializer=_render.dumps)
    with pytest.raises(TypeError):
        renderer(None, "info", {"v": value})


def test_it_plugs_into_structlogs_json_renderer() -> None:
    renderer = structlog.processors.JSONRenderer(serializer=_render.dumps)
    assert renderer(None, "info", {"a": "é", "b": [1, None]}) == '{"a":"\\u00e9","b":[1,null]}'


def test_ensure_finite_refuses_what_redaction_would_hide() -> None:
    _render.ensure_finite({"a": None, "b": [1.5]})
    with pytest.raises(TypeError, match="NaN and Infinity"):
        _render.ensure_finite({"a": None, "b": [float("nan")]})


# -- portability ----------------------------------------------------------------------


def test_importable_and_usable_where_os_has_no_register_at_fork() -> None:
    script = (
        "import io, logging, os, sys\n"
        "import jupyter_telemetry\n"  # dependencies stay imported; ours are imported again:
        "for name in [m for m in sys.modules if m.startswith('jupyter_telemetry')]:\n"
        "    del sys.modules[name]\n"
        "del os.register_at_fork\n"  # as on Windows
        "from jupyter_telemetry import EventLog\n"
        "from conftest import EVENT, SCHEMA, SCHEMA_ID\n"
        "stream = io.StringIO()\n"
        "log = EventLog(handlers=[logging.StreamHandler(stream)], allowed_schemas=[SCHEMA_ID])\n"
        "log.register_schema(SCHEMA)\n"
        "log.record_event(SCHEMA_ID, 1, EVENT)\n"
        "assert stream.getvalue().count('\\n') == 1\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_no_private_structlog_or_logging_module_is_imported() -> None:
    private = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            private += [
                f"{path.name}: {name}"
                for name in names
                if name.split(".")[0] in ("structlog", "logging")
                and any(part.startswith("_") for part in name.split("."))
            ]
    assert private == []
