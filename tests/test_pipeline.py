"""Modifiers, listeners and forward(): the pipeline around validation, as users see it."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import EVENT, SCHEMA, SCHEMA_ID, read_lines
from traitlets.config import Application

import jupyter_telemetry
from jupyter_telemetry import EventLog

OTHER: dict[str, Any] = {
    "$id": "http://event.jupyter.org/other",
    "version": 1,
    "type": "object",
    "properties": {"n": {"type": "integer"}},
}


def _log(events_file: Path, **kwargs: Any) -> EventLog:
    kwargs.setdefault("allowed_schemas", [SCHEMA_ID, OTHER["$id"]])
    log = EventLog(handlers=[logging.FileHandler(events_file, encoding="utf-8")], **kwargs)
    log.register_schema(SCHEMA)
    return log


# -- modifiers -------------------------------------------------------------------


def test_a_modifier_changes_what_is_recorded_never_the_callers_event(events_file: Path) -> None:
    log = _log(events_file)

    def stamp_user(schema_id: str, data: dict[str, Any]) -> dict[str, Any]:
        data["user"] = "anonymous"
        data["context"]["kernel"] = "hidden"  # in place, nested
        return data

    log.add_modifier(modifier=stamp_user)
    event = copy.deepcopy(EVENT)
    capsule = log.record_event(SCHEMA_ID, 1, event)
    assert event == EVENT
    (line,) = read_lines(events_file)
    assert line["user"] == "anonymous" and line["context"]["kernel"] == "hidden"
    assert capsule == line


def test_a_modifiers_output_is_validated_before_anything_is_written(events_file: Path) -> None:
    log = _log(events_file)
    log.add_modifier(schema_id=SCHEMA_ID, modifier=lambda schema_id, data: {**data, "count": -1})
    with pytest.raises(jsonschema.ValidationError, match=r"\$\.count"):
        log.record_event(SCHEMA_ID, 1, EVENT)
    assert events_file.read_text() == ""


def test_a_modifier_returning_no_dict_is_an_error_before_any_write(events_file: Path) -> None:
    log = _log(events_file)
    log.add_modifier(modifier=lambda schema_id, data: None)
    with pytest.raises(TypeError, match="not a dict"):
        log.record_event(SCHEMA_ID, 1, EVENT)
    assert events_file.read_text() == ""


def test_modifiers_run_in_order_per_schema_and_for_schemas_registered_later(
    events_file: Path,
) -> None:
    log = _log(events_file)
    seen: list[tuple[str, str]] = []

    def tag(name: str) -> Any:
        def modifier(schema_id: str, data: dict[str, Any]) -> dict[str, Any]:
            seen.append((name, schema_id))
            return data

        return modifier

    every, only_test, only_other = tag("every"), tag("test"), tag("other")
    log.add_modifier(modifier=every)
    log.add_modifier(schema_id=SCHEMA_ID, modifier=only_test)
    log.add_modifier(schema_id=OTHER["$id"], modifier=only_other)
    log.register_schema(OTHER)  # after the modifiers were added
    log.record_event(SCHEMA_ID, 1, EVENT)
    log.record_event(OTHER["$id"], 1, {"n": 1})
    assert seen == [("every", SCHEMA_ID), ("test", SCHEMA_ID), ("every", OTHER["$id"]),
                    ("other", OTHER["$id"])]  # fmt: skip
    log.remove_modifier(modifier=every)
    seen.clear()
    log.record_event(OTHER["$id"], 1, {"n": 2})
    assert seen == [("other", OTHER["$id"])]


def test_a_modifier_must_be_callable() -> None:
    with pytest.raises(TypeError, match="callable"):
        EventLog().add_modifier(modifier="not a function")  # type: ignore[arg-type]


# -- listeners -------------------------------------------------------------------


def test_listeners_get_the_capsule_as_written_each_its_own_copy(events_file: Path) -> None:
    log = _log(events_file)
    received: list[dict[str, Any]] = []

    def vandal(logger: EventLog, schema_id: str, data: dict[str, Any]) -> None:
        data["context"]["kernel"] = "changed by a listener"

    def keep(logger: EventLog, schema_id: str, data: dict[str, Any]) -> None:
        assert logger is log and schema_id == SCHEMA_ID
        received.append(data)

    log.add_listener(listener=vandal)
    log.add_listener(schema_id=SCHEMA_ID, listener=keep)
    capsule = log.record_event(SCHEMA_ID, 1, EVENT)
    (line,) = read_lines(events_file)
    assert received == [line] == [capsule]


def test_a_failing_listener_is_reported_never_raised(
    events_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = _log(events_file)
    after: list[str] = []

    def broken(**_: Any) -> None:
        raise RuntimeError("listener bug")

    log.add_listener(listener=broken)
    log.add_listener(listener=lambda schema_id, **_: after.append(schema_id))
    with caplog.at_level(logging.ERROR, logger="jupyter_telemetry"):
        assert log.record_event(SCHEMA_ID, 1, EVENT) is not None
    assert after == [SCHEMA_ID]
    assert "listener bug" in caplog.text
    assert len(read_lines(events_file)) == 1


def test_a_listener_for_all_schemas_covers_schemas_registered_later() -> None:
    log = EventLog(allowed_schemas=[OTHER["$id"]])  # no handlers: listeners alone record
    got: list[Any] = []
    log.add_listener(listener=lambda data, **_: got.append(data["n"]))
    log.register_schema(OTHER)
    log.record_event(OTHER["$id"], 1, {"n": 7})
    assert got == [7]


def test_async_listeners_run_on_the_running_loop(events_file: Path) -> None:
    log = _log(events_file)
    got: list[str] = []

    async def listener(logger: EventLog, schema_id: str, data: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        got.append(data["__schema__"])

    async def main() -> None:
        log.add_listener(listener=listener)
        log.record_event(SCHEMA_ID, 1, EVENT)
        assert got == []  # scheduled, not run inside record_event
        for _ in range(10):
            await asyncio.sleep(0)

    asyncio.run(main())
    assert got == [SCHEMA_ID]


def test_an_async_listener_without_a_loop_is_reported_and_not_left_unawaited(
    events_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = _log(events_file)

    async def listener(**_: Any) -> None:
        raise AssertionError("must not run")

    log.add_listener(listener=listener)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine ... was never awaited" would be a warning
        with caplog.at_level(logging.ERROR, logger="jupyter_telemetry"):
            assert log.record_event(SCHEMA_ID, 1, EVENT) is not None
    assert "outside a running asyncio event loop" in caplog.text
    assert len(read_lines(events_file)) == 1


# -- forward: events wrapped elsewhere (jupyter_events) ----------------------------


def _capsule(**payload: Any) -> dict[str, Any]:
    return {
        "__timestamp__": "2026-11-29T11:42:12.048359+00:00Z",  # jupyter_events' form
        "__schema__": "https://events.jupyter.org/jupyter_server/contents_service/v1",
        "__schema_version__": "1",
        "__metadata_version__": 1,
        **payload,
    }


def test_forward_writes_the_capsule_as_given(events_file: Path) -> None:
    schema_id = _capsule()["__schema__"]
    log = _log(events_file, allowed_schemas=[schema_id])
    given = _capsule(action="save", path="a.ipynb")
    assert log.forward(given) == given
    assert read_lines(events_file) == [given]


def test_forward_honours_allowed_schemas(events_file: Path) -> None:
    log = _log(events_file, allowed_schemas=[SCHEMA_ID])
    assert log.forward(_capsule(action="save")) is None
    assert events_file.read_text() == ""
    assert log.forward(_capsule(action="save"), allow_unlisted=True) is not None
    assert len(read_lines(events_file)) == 1


def test_forward_of_an_unknown_schema_under_a_policy_keeps_only_allowed_properties(
    events_file: Path,
) -> None:
    schema_id = _capsule()["__schema__"]
    policy = {schema_id: {"allowed_properties": ["action", "ctx.kind"]}}
    log = _log(events_file, allowed_schemas=policy)
    log.forward(_capsule(action="save", path="secret", ctx={"kind": "file", "who": "ada"}))
    (line,) = read_lines(events_file)
    assert line["action"] == "save" and line["path"] is None
    assert line["ctx"] == {"kind": "file", "who": None}


def test_forward_of_a_registered_schema_applies_its_categories(events_file: Path) -> None:
    schema = {
        "$id": "http://event.jupyter.org/cat",
        "version": 1,
        "type": "object",
        "properties": {
            "user": {"type": "string", "categories": ["user-identifier"]},
            "action": {"type": "string", "categories": ["unrestricted"]},
        },
    }
    log = _log(events_file, allowed_schemas={schema["$id"]: {}})
    log.register_schema(schema)
    capsule = {**_capsule(user="ada", action="open"), "__schema__": schema["$id"]}
    log.forward(capsule)
    (line,) = read_lines(events_file)
    assert line["user"] is None and line["action"] == "open"


@pytest.mark.parametrize(
    "broken",
    [
        {"__schema__": "x", "__schema_version__": 1, "__metadata_version__": 1},
        {**_capsule(), "__timestamp__": "yesterday"},
        {**_capsule(), "__schema_version__": 1.5},
        {**_capsule(), "__metadata_version__": 2},
        "__timestamp__ __schema__ __schema_version__ __metadata_version__",
    ],
)
def test_forward_refuses_a_malformed_capsule(events_file: Path, broken: Any) -> None:
    log = _log(events_file, allowed_schemas=[_capsule()["__schema__"], "x"])
    with pytest.raises(ValueError):
        log.forward(broken)
    assert events_file.read_text() == ""


# -- jupyter-telemetry 0.1.0 details ----------------------------------------------


def test_0_1_0_module_constants() -> None:
    assert jupyter_telemetry.TELEMETRY_METADATA_VERSION == 1
    assert jupyter_telemetry.version_info == tuple(
        int(p) for p in jupyter_telemetry.__version__.split(".")
    )


def test_allowed_schemas_on_a_traitlets_command_line() -> None:
    class App(Application):
        classes = [EventLog]

    app = App()
    app.parse_command_line(["--EventLog.allowed_schemas=a", "--EventLog.allowed_schemas=b"])
    assert EventLog(parent=app).allowed_schemas == ["a", "b"]
    app = App()
    policy = {"a": {"allowed_categories": ["user-identifier"]}}
    app.parse_command_line(["--EventLog.allowed_schemas=" + json.dumps(policy)])
    assert EventLog(parent=app).allowed_schemas == policy


# -- format: unchecked by default, as in 0.1.0; enforced on request --------------


def test_format_is_checked_only_with_validate_formats(tmp_path: Path) -> None:
    schema = {
        "$id": "http://event.jupyter.org/when",
        "version": 1,
        "type": "object",
        "properties": {"when": {"type": "string", "format": "date-time"}},
    }
    loose = EventLog(handlers=[logging.NullHandler()], allowed_schemas=[schema["$id"]])
    loose.register_schema(schema)
    assert loose.record_event(schema["$id"], 1, {"when": "not a date"}) is not None
    strict = EventLog(
        handlers=[logging.NullHandler()], allowed_schemas=[schema["$id"]], validate_formats=True
    )
    strict.register_schema(schema)
    assert strict.record_event(schema["$id"], 1, {"when": "2026-11-29T12:00:00Z"}) is not None
    with pytest.raises(jsonschema.ValidationError, match=r"\$\.when"):
        strict.record_event(schema["$id"], 1, {"when": "not a date"})
