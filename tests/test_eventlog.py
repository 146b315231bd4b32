"""record_event: validation, capsule, output lines, sinks and the caller's data."""

from __future__ import annotations

import copy
import io
import json
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import EVENT, SCHEMA, SCHEMA_ID, read_lines

from jupyter_telemetry import (
    EventLog,
    EventSerializationError,
    EventTooLargeError,
    UnregisteredSchemaError,
)

CAPSULE_KEYS = ["__timestamp__", "__schema__", "__schema_version__", "__metadata_version__"]


def test_one_line_per_event_holding_exactly_capsule_and_event(
    eventlog: EventLog, events_file: Path
) -> None:
    returned = eventlog.record_event(SCHEMA_ID, 1, EVENT)
    [line] = read_lines(events_file)
    assert list(line) == CAPSULE_KEYS + list(EVENT)
    assert {k: line[k] for k in EVENT} == EVENT
    assert line["__schema__"] == SCHEMA_ID
    assert line["__schema_version__"] == 1
    assert line["__metadata_version__"] == 1
    assert line["message"] == EVENT["message"]
    assert "taskName" not in line and "event" not in line
    assert returned == line


def test_schema_id_schema_name_and_positional_forms_are_equivalent(
    eventlog: EventLog, events_file: Path
) -> None:
    eventlog.record_event(SCHEMA_ID, 1, EVENT)
    eventlog.record_event(schema_id=SCHEMA_ID, version=1, event=EVENT)
    eventlog.record_event(schema_name=SCHEMA_ID, version=1, event=EVENT)
    assert [line["__schema__"] for line in read_lines(events_file)] == [SCHEMA_ID] * 3
    with pytest.raises(TypeError):
        eventlog.record_event(SCHEMA_ID, 1, EVENT, schema_name=SCHEMA_ID)
    with pytest.raises(TypeError):
        eventlog.record_event(version=1, event=EVENT)


def test_timestamp_is_utc_now_with_a_single_z(eventlog: EventLog, events_file: Path) -> None:
    before = datetime.now(timezone.utc)
    eventlog.record_event(SCHEMA_ID, 1, EVENT)
    after = datetime.now(timezone.utc)
    stamp = read_lines(events_file)[0]["__timestamp__"]
    assert stamp.endswith("Z") and stamp.count("Z") == 1 and "+" not in stamp
    recorded = datetime.fromisoformat(stamp[:-1]).replace(tzinfo=timezone.utc)
    assert before - timedelta(microseconds=1) <= recorded <= after


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        # naive: taken as UTC, written as 0.1.0 wrote it (isoformat() + "Z")
        (datetime(2020, 5, 17, 8, 30, 1, 250000), "2020-05-17T08:30:01.250000Z"),
        (datetime(2020, 5, 17, 8, 30, 1), "2020-05-17T08:30:01Z"),
        # aware: converted to UTC, never "+00:00Z"
        (datetime(2020, 5, 17, 8, 30, 1, tzinfo=timezone.utc), "2020-05-17T08:30:01Z"),
        (
            datetime(2020, 5, 17, 10, 30, 1, 5, tzinfo=timezone(timedelta(hours=2))),
            "2020-05-17T08:30:01.000005Z",
        ),
    ],
)
def test_timestamp_override(
    eventlog: EventLog, events_file: Path, override: datetime, expected: str
) -> None:
    eventlog.record_event(SCHEMA_ID, 1, EVENT, timestamp_override=override)
    assert read_lines(events_file)[0]["__timestamp__"] == expected


def test_timestamp_override_must_be_a_datetime(eventlog: EventLog, events_file: Path) -> None:
    with pytest.raises(TypeError, match="datetime"):
        eventlog.record_event(SCHEMA_ID, 1, EVENT, timestamp_override="2020-01-01")  # type: ignore[arg-type]
    assert read_lines(events_file) == []


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"action": "delete"}, "$.action"),
        ({"path": "relative/path"}, "$.path"),
        ({"count": -1}, "$.count"),
        ({"count": "3"}, "$.count"),
        ({"ok": "yes"}, "$.ok"),
        ({"context": {"cell": "seven"}}, "$.context.cell"),
        ({"tags": ["a", 2]}, "$.tags[1]"),
    ],
)
def test_invalid_event_raises_naming_schema_version_and_path_and_writes_nothing(
    eventlog: EventLog, events_file: Path, change: dict[str, Any], path: str
) -> None:
    with pytest.raises(jsonschema.ValidationError) as info:
        eventlog.record_event(SCHEMA_ID, 1, {**EVENT, **change})
    message = str(info.value)
    assert SCHEMA_ID in message and "version 1" in message and path in message
    assert info.value.json_path == path
    assert read_lines(events_file) == []


def test_missing_required_property_is_a_validation_error(
    eventlog: EventLog, events_file: Path
) -> None:
    with pytest.raises(jsonschema.ValidationError, match='"path" is a required property'):
        eventlog.record_event(SCHEMA_ID, 1, {"action": "open"})
    assert read_lines(events_file) == []


@pytest.mark.parametrize("key", CAPSULE_KEYS)
def test_event_keys_can_never_overwrite_the_capsule(
    eventlog: EventLog, events_file: Path, key: str
) -> None:
    with pytest.raises(jsonschema.ValidationError, match=key):
        eventlog.record_event(SCHEMA_ID, 1, {**EVENT, key: "forged"})
    assert read_lines(events_file) == []


@pytest.mark.parametrize(
    "value", [object(), {1, 2}, b"bytes", 2**64, {"nested": object()}, {3: "int key"}]
)
def test_unserialisable_value_is_an_error_before_any_write(
    eventlog: EventLog, events_file: Path, value: Any
) -> None:
    with pytest.raises(TypeError) as info:
        eventlog.record_event(SCHEMA_ID, 1, {**EVENT, "extra": value})
    assert isinstance(info.value, EventSerializationError)
    assert SCHEMA_ID in str(info.value)
    assert read_lines(events_file) == []


def test_event_must_be_a_mapping(eventlog: EventLog, events_file: Path) -> None:
    with pytest.raises((TypeError, jsonschema.ValidationError)) as info:
        eventlog.record_event(SCHEMA_ID, 1, ["not", "a", "dict"])  # type: ignore[arg-type]
    assert isinstance(info.value, TypeError) and "must be a mapping, got list" in str(info.value)
    assert read_lines(events_file) == []


def test_callers_event_is_never_mutated(eventlog: EventLog) -> None:
    event = copy.deepcopy(EVENT)
    capsule = eventlog.record_event(SCHEMA_ID, 1, event)
    assert event == EVENT
    assert capsule is not event and "__schema__" not in event


def test_schema_defaults_are_not_filled_into_the_event(
    file_handler: logging.Handler, events_file: Path
) -> None:
    schema = {
        **SCHEMA,
        "properties": {**SCHEMA["properties"], "ok": {"type": "boolean", "default": False}},
    }
    log = EventLog(handlers=[file_handler], allowed_schemas=[SCHEMA_ID])
    log.register_schema(schema)
    event = {"action": "open", "path": "/x"}
    log.record_event(SCHEMA_ID, 1, event)
    assert event == {"action": "open", "path": "/x"}
    assert "ok" not in read_lines(events_file)[0]


def test_unregistered_schema_is_a_value_error(eventlog: EventLog) -> None:
    with pytest.raises(ValueError, match="version 2 is not registered") as info:
        eventlog.record_event(SCHEMA_ID, 2, EVENT)
    assert isinstance(info.value, UnregisteredSchemaError)


def test_schema_not_allowed_records_nothing_and_returns_none(
    file_handler: logging.Handler, events_file: Path
) -> None:
    log = EventLog(handlers=[file_handler], allowed_schemas=["http://other"])
    log.register_schema(SCHEMA)
    assert log.record_event(SCHEMA_ID, 1, EVENT) is None
    assert read_lines(events_file) == []


def test_no_sink_records_nothing_and_returns_none() -> None:
    log = EventLog(allowed_schemas=[SCHEMA_ID])
    log.register_schema(SCHEMA)
    assert log.record_event(SCHEMA_ID, 1, EVENT) is None


def test_version_int_and_str_find_the_same_schema(eventlog: EventLog, events_file: Path) -> None:
    eventlog.record_event(SCHEMA_ID, "1", EVENT)
    assert read_lines(events_file)[0]["__schema_version__"] == 1


def test_several_versions_of_one_schema_coexist(
    file_handler: logging.Handler, events_file: Path
) -> None:
    log = EventLog(handlers=[file_handler], allowed_schemas=[SCHEMA_ID])
    log.register_schema(SCHEMA)
    v2 = {**SCHEMA, "version": 2, "required": ["action", "path", "user"]}
    log.register_schema(v2)
    log.record_event(SCHEMA_ID, 1, {"action": "open", "path": "/x"})
    with pytest.raises(jsonschema.ValidationError, match="version 2"):
        log.record_event(SCHEMA_ID, 2, {"action": "open", "path": "/x"})
    log.record_event(SCHEMA_ID, 2, {"action": "open", "path": "/x", "user": "ada"})
    assert [line["__schema_version__"] for line in read_lines(events_file)] == [1, 2]


def test_every_handler_gets_every_event(tmp_path: Path) -> None:
    paths = [tmp_path / "a.log", tmp_path / "b.log"]
    handlers = [logging.FileHandler(p) for p in paths]
    stream = io.StringIO()
    log = EventLog(handlers=[*handlers, logging.StreamHandler(stream)], allowed_schemas=[SCHEMA_ID])
    log.register_schema(SCHEMA)
    for count in range(3):
        log.record_event(SCHEMA_ID, 1, {**EVENT, "count": count})
    for handler in handlers:
        handler.close()
    for path in paths:
        assert [line["count"] for line in read_lines(path)] == [0, 1, 2]
    assert [json.loads(x)["count"] for x in stream.getvalue().splitlines()] == [0, 1, 2]


def test_two_eventlogs_are_isolated_and_may_share_a_handler(tmp_path: Path) -> None:
    shared = logging.FileHandler(tmp_path / "shared.log")
    only_a = logging.FileHandler(tmp_path / "a.log")
    a = EventLog(handlers=[shared, only_a], allowed_schemas=[SCHEMA_ID])
    b = EventLog(handlers=[shared], allowed_schemas=[SCHEMA_ID])
    for log in (a, b):
        log.register_schema(SCHEMA)
    a.record_event(SCHEMA_ID, 1, {**EVENT, "user": "a"})
    b.record_event(SCHEMA_ID, 1, {**EVENT, "user": "b"})
    shared.close()
    only_a.close()
    assert [x["user"] for x in read_lines(tmp_path / "shared.log")] == ["a", "b"]
    assert [x["user"] for x in read_lines(tmp_path / "a.log")] == ["a"]


def test_events_do_not_reach_the_root_logger(eventlog: EventLog) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    root.addHandler(logging.StreamHandler(stream))
    root.setLevel(logging.DEBUG)
    eventlog.record_event(SCHEMA_ID, 1, EVENT)
    assert stream.getvalue() == ""


def test_callers_formatter_is_kept(tmp_path: Path) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    log = EventLog(handlers=[handler], allowed_schemas=[SCHEMA_ID])
    log.register_schema(SCHEMA)
    log.record_event(SCHEMA_ID, 1, EVENT)
    level, name, line = stream.getvalue().split(" ", 2)
    assert (level, name) == ("INFO", "jupyter_telemetry.eventlog")
    assert json.loads(line)["action"] == "open"


def test_a_formatter_or_filter_set_after_attaching_takes_effect(tmp_path: Path) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    log = EventLog(handlers=[handler], allowed_schemas=[SCHEMA_ID])
    log.register_schema(SCHEMA)
    log.record_event(SCHEMA_ID, 1, {**EVENT, "count": 0})
    handler.setFormatter(logging.Formatter("formatted %(message)s"))
    log.record_event(SCHEMA_ID, 1, {**EVENT, "count": 1})
    handler.addFilter(lambda record: json.loads(record.getMessage())["count"] != 2)
    log.record_event(SCHEMA_ID, 1, {**EVENT, "count": 2})
    log.record_event(SCHEMA_ID, 1, {**EVENT, "count": 3})
    first, second, fourth = stream.getvalue().splitlines()
    assert json.loads(first)["count"] == 0
    assert second.startswith("formatted ") and json.loads(second[10:])["count"] == 1
    assert fourth.startswith("formatted ") and json.loads(fourth[10:])["count"] == 3


def test_filters_on_the_eventlog_logger_are_honoured(tmp_path: Path) -> None:
    stream = io.StringIO()
    log = EventLog(handlers=[logging.StreamHandler(stream)], allowed_schemas=[SCHEMA_ID])
    log.register_schema(SCHEMA)
    log.log.addFilter(lambda record: json.loads(record.getMessage())["count"] % 2 == 0)
    for count in range(4):
        log.record_event(SCHEMA_ID, 1, {**EVENT, "count": count})
    assert [json.loads(x)["count"] for x in stream.getvalue().splitlines()] == [0, 2]


def test_a_delayed_or_closed_file_handler_opens_its_file(tmp_path: Path) -> None:
    handler = logging.FileHandler(tmp_path / "events.log", delay=True)
    log = EventLog(handlers=[handler], allowed_schemas=[SCHEMA_ID])
    log.register_schema(SCHEMA)
    assert not (tmp_path / "events.log").exists()
    log.record_event(SCHEMA_ID, 1, {**EVENT, "count": 0})
    handler.close()  # logging.shutdown() or a log rotation tool does this
    log.record_event(SCHEMA_ID, 1, {**EVENT, "count": 1})
    handler.close()
    assert [x["count"] for x in read_lines(tmp_path / "events.log")] == [0, 1]


def test_handler_terminator_is_respected(tmp_path: Path) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.terminator = "\r\n"
    log = EventLog(handlers=[handler], allowed_schemas=[SCHEMA_ID])
    log.register_schema(SCHEMA)
    log.record_event(SCHEMA_ID, 1, EVENT)
    assert stream.getvalue().endswith("}\r\n") and stream.getvalue().count("\n") == 1


def test_handlers_assigned_after_construction_take_effect(tmp_path: Path) -> None:
    log = EventLog(allowed_schemas=[SCHEMA_ID])
    log.register_schema(SCHEMA)
    assert log.record_event(SCHEMA_ID, 1, EVENT) is None
    first, second = logging.FileHandler(tmp_path / "1.log"), logging.FileHandler(tmp_path / "2.log")
    log.handlers = [first]
    log.record_event(SCHEMA_ID, 1, {**EVENT, "count": 1})
    log.handlers = [second]
    log.record_event(SCHEMA_ID, 1, {**EVENT, "count": 2})
    first.close()
    second.close()
    assert [x["count"] for x in read_lines(tmp_path / "1.log")] == [1]
    assert [x["count"] for x in read_lines(tmp_path / "2.log")] == [2]


def test_allowed_schemas_assigned_after_construction_take_effect(
    file_handler: logging.Handler, events_file: Path
) -> None:
    log = EventLog(handlers=[file_handler])
    log.register_schema(SCHEMA)
    assert log.record_event(SCHEMA_ID, 1, EVENT) is None
    log.allowed_schemas = [SCHEMA_ID]
    assert log.record_event(SCHEMA_ID, 1, EVENT) is not None
    assert len(read_lines(events_file)) == 1


def test_callers_allowed_list_is_not_mutated_nor_aliased(
    file_handler: logging.Handler, events_file: Path
) -> None:
    allowed = [SCHEMA_ID]
    log = EventLog(handlers=[file_handler], allowed_schemas=allowed)
    log.register_schema(SCHEMA)
    log.record_event(SCHEMA_ID, 1, EVENT)
    allowed.clear()
    assert allowed == [] and log.allowed_schemas == [SCHEMA_ID]
    assert log.record_event(SCHEMA_ID, 1, EVENT) is not None


class _Exploding(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.errors = 0

    def handle(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
        raise OSError("disk on fire")

    def handleError(self, record: logging.LogRecord) -> None:
        self.errors += 1


def test_a_raising_handler_never_reaches_the_caller_nor_stops_the_others(
    file_handler: logging.Handler, events_file: Path
) -> None:
    exploding = _Exploding()
    log = EventLog(handlers=[exploding, file_handler], allowed_schemas=[SCHEMA_ID])
    log.register_schema(SCHEMA)
    for count in range(5):
        assert log.record_event(SCHEMA_ID, 1, {**EVENT, "count": count}) is not None
    assert [x["count"] for x in read_lines(events_file)] == [0, 1, 2, 3, 4]
    assert exploding.errors == 5, "each failure goes to the handler's own handleError"


def test_handler_level_is_respected(tmp_path: Path) -> None:
    stream = io.StringIO()
    quiet = logging.StreamHandler(stream)
    quiet.setLevel(logging.WARNING)
    log = EventLog(handlers=[quiet], allowed_schemas=[SCHEMA_ID])
    log.register_schema(SCHEMA)
    log.record_event(SCHEMA_ID, 1, EVENT)
    assert stream.getvalue() == ""


def test_record_created_time_matches_the_event_timestamp(tmp_path: Path) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(created)f|%(message)s"))
    log = EventLog(handlers=[handler], allowed_schemas=[SCHEMA_ID])
    log.register_schema(SCHEMA)
    when = datetime(2021, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
    log.record_event(SCHEMA_ID, 1, EVENT, timestamp_override=when)
    created, _ = stream.getvalue().split("|", 1)
    assert float(created) == when.timestamp()


def test_an_event_over_max_event_size_is_a_value_error_before_any_write(
    eventlog: EventLog, events_file: Path
) -> None:
    eventlog.max_event_size = 2000
    eventlog.record_event(SCHEMA_ID, 1, {**EVENT, "user": "x" * 1500})
    with pytest.raises(ValueError, match=r"more than max_event_size \(2000\)") as info:
        eventlog.record_event(SCHEMA_ID, 1, {**EVENT, "user": "x" * 2000})
    assert isinstance(info.value, EventTooLargeError)
    assert len(read_lines(events_file)) == 1
    eventlog.max_event_size = 0  # no limit
    eventlog.record_event(SCHEMA_ID, 1, {**EVENT, "user": "x" * 2_000_000})
    assert len(read_lines(events_file)[-1]["user"]) == 2_000_000


def test_deeply_nested_events_are_errors_not_crashes(
    file_handler: logging.Handler, events_file: Path
) -> None:
    recursive = {
        "$id": "http://event.jupyter.org/tree",
        "version": 1,
        "type": "object",
        "properties": {"child": {"$ref": "#"}},
    }
    log = EventLog(handlers=[file_handler], allowed_schemas=[recursive["$id"]])
    log.register_schema(recursive)

    def nested(depth: int) -> dict[str, Any]:
        event: dict[str, Any] = {}
        for _ in range(depth):
            event = {"child": event}
        return event

    log.record_event(recursive["$id"], 1, nested(100))
    with pytest.raises(TypeError, match="serialised"):  # no native stack overflow either
        log.record_event(recursive["$id"], 1, nested(50_000))
    with pytest.raises(TypeError, match="serialised"):  # JSON's own depth limit
        log.record_event(recursive["$id"], 1, nested(300))
    assert len(read_lines(events_file)) == 1


@pytest.mark.parametrize("policy", ["list", "dict"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), [1.0, float("-inf")], object()])
@pytest.mark.parametrize("where", ["kept", "withheld"])
def test_nan_infinity_and_objects_are_refused_even_where_redaction_nulls_them(
    file_handler: logging.Handler, events_file: Path, policy: str, value: Any, where: str
) -> None:
    schema = {
        "$id": SCHEMA_ID,
        "version": 1,
        "type": "object",
        "properties": {
            "kept": {"categories": ["unrestricted"]},
            "withheld": {"categories": ["user-identifier"]},
        },
    }
    allowed: Any = [SCHEMA_ID] if policy == "list" else {SCHEMA_ID: {"allowed_categories": []}}
    log = EventLog(handlers=[file_handler], allowed_schemas=allowed)
    log.register_schema(schema)
    log.record_event(SCHEMA_ID, 1, {"kept": 1.5, "withheld": "ada"})
    with pytest.raises(EventSerializationError):
        log.record_event(SCHEMA_ID, 1, {"kept": 1.5, where: value})
    assert read_lines(events_file) == [
        {**read_lines(events_file)[0], "kept": 1.5, "withheld": None}
    ]
    [line] = read_lines(events_file)  # only the first event was written, redacted
    assert {k: v for k, v in line.items() if not k.startswith("__")} == {
        "kept": 1.5,
        "withheld": None,
    }
