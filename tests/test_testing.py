"""jupyter_telemetry.testing: capture helpers and the pytest plugin users get."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import EVENT, SCHEMA, SCHEMA_ID, read_lines

from jupyter_telemetry import EventLog
from jupyter_telemetry.testing import capture_events, read_events


def test_capture_yields_the_capsules_parsed_from_the_emitted_lines(
    eventlog: EventLog, events_file: Path
) -> None:
    with capture_events(eventlog) as events:
        first = eventlog.record_event(SCHEMA_ID, 1, EVENT)
        second = eventlog.record_event(SCHEMA_ID, 1, {**EVENT, "count": 4})
    assert events == [first, second] == read_lines(events_file)
    assert list(events[0]) == list(read_lines(events_file)[0])  # same key order
    assert events[0] is not first  # parsed from the line, not the returned dict


def test_capture_detaches_on_exit_and_leaves_other_handlers_alone(
    eventlog: EventLog, file_handler: logging.Handler, events_file: Path
) -> None:
    with capture_events(eventlog) as events:
        eventlog.record_event(SCHEMA_ID, 1, EVENT)
    eventlog.record_event(SCHEMA_ID, 1, EVENT)
    assert len(events) == 1
    assert eventlog.handlers == [file_handler]
    assert len(read_lines(events_file)) == 2


def test_capture_detaches_when_the_block_raises(eventlog: EventLog) -> None:
    with pytest.raises(RuntimeError), capture_events(eventlog) as events:
        eventlog.record_event(SCHEMA_ID, 1, EVENT)
        raise RuntimeError
    eventlog.record_event(SCHEMA_ID, 1, EVENT)
    assert len(events) == 1 and len(eventlog.handlers) == 1


def test_capture_records_from_an_eventlog_with_no_other_destination() -> None:
    log = EventLog(allowed_schemas=[SCHEMA_ID])
    log.register_schema(SCHEMA)
    assert log.record_event(SCHEMA_ID, 1, EVENT) is None
    with capture_events(log) as events:
        log.record_event(SCHEMA_ID, 1, EVENT)
    assert [e["action"] for e in events] == ["open"]
    assert log.record_event(SCHEMA_ID, 1, EVENT) is None


def test_nested_captures_each_see_their_own_span(eventlog: EventLog) -> None:
    with capture_events(eventlog) as outer:
        eventlog.record_event(SCHEMA_ID, 1, {**EVENT, "count": 1})
        with capture_events(eventlog) as inner:
            eventlog.record_event(SCHEMA_ID, 1, {**EVENT, "count": 2})
    assert [e["count"] for e in outer] == [1, 2]
    assert [e["count"] for e in inner] == [2]


def test_read_events_reads_what_the_file_sink_wrote(eventlog: EventLog, events_file: Path) -> None:
    capsules = [eventlog.record_event(SCHEMA_ID, 1, {**EVENT, "count": n}) for n in range(3)]
    assert read_events(events_file) == capsules
    assert read_events(str(events_file)) == capsules


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"a": 1}\n{"a": \n', ":2: not JSON"),
        ('{"a": 1}\n\n{"a": 2}\n', ":2: not JSON"),
        ('{"a": 1}\n[1]\n', ":2: expected a JSON object, got list"),
    ],
)
def test_read_events_names_the_line_it_cannot_read(
    tmp_path: Path, text: str, fragment: str
) -> None:
    path = tmp_path / "events.log"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=f"{path}{fragment}"):
        read_events(path)


def test_the_eventlog_capture_fixture(
    eventlog: EventLog, eventlog_capture: Callable[[EventLog], list[dict[str, Any]]]
) -> None:
    events = eventlog_capture(eventlog)
    eventlog.record_event(SCHEMA_ID, 1, EVENT)
    assert [(e["__schema__"], e["path"]) for e in events] == [(SCHEMA_ID, EVENT["path"])]
    assert len(eventlog.handlers) == 2  # detached at teardown (checked in a subprocess below)


USER_TEST = textwrap.dedent(
    f"""
    from jupyter_telemetry import EventLog

    SCHEMA = {SCHEMA!r}

    def make():
        log = EventLog(allowed_schemas=[SCHEMA["$id"]])
        log.register_schema(SCHEMA)
        return log

    LOG = make()

    def test_captures(eventlog_capture):
        events = eventlog_capture(LOG)
        LOG.record_event(SCHEMA["$id"], 1, {{"action": "save", "path": "/a"}})
        assert [e["action"] for e in events] == ["save"]

    def test_detached_after_the_previous_test():
        assert LOG.handlers == []
    """
)


@pytest.mark.parametrize(
    ("options", "outcome"),
    [([], "2 passed"), (["-p", "no:jupyter_telemetry"], "fixture 'eventlog_capture' not found")],
)
def test_users_get_the_fixture_from_the_installed_plugin(
    tmp_path: Path, options: list[str], outcome: str
) -> None:
    (tmp_path / "test_user.py").write_text(USER_TEST, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options, "test_user.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert outcome in result.stdout, result.stdout + result.stderr
