"""Configuration the way Jupyter applications do it: config files, parents, subclasses."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from conftest import EVENT, SCHEMA, SCHEMA_ID, load_config, read_lines
from traitlets import TraitError
from traitlets.config import Application, Config, SingletonConfigurable

from jupyter_telemetry import EventLog


def test_config_file_sets_handlers_and_allowed_schemas(tmp_path: Path) -> None:
    events = tmp_path / "events.log"
    config = load_config(
        tmp_path,
        f"import logging\n"
        f"c.EventLog.handlers = [logging.FileHandler({str(events)!r})]\n"
        f"c.EventLog.allowed_schemas = [{SCHEMA_ID!r}]\n",
    )
    log = EventLog(config=config)
    log.register_schema(SCHEMA)
    log.record_event(SCHEMA_ID, 1, EVENT)
    log.handlers[0].close()
    assert read_lines(events)[0]["action"] == "open"


def test_config_file_handlers_may_be_a_callable(tmp_path: Path) -> None:
    events = tmp_path / "events.log"
    config = load_config(
        tmp_path,
        "import logging\n"
        f"def make_handlers():\n    return [logging.FileHandler({str(events)!r})]\n"
        "c.EventLog.handlers = make_handlers\n"
        f"c.EventLog.allowed_schemas = [{SCHEMA_ID!r}]\n",
    )
    log = EventLog(config=config)
    log.register_schema(SCHEMA)
    log.record_event(SCHEMA_ID, 1, EVENT)
    log.handlers[0].close()
    assert len(read_lines(events)) == 1


class HubLike(Application):
    """What JupyterHub 1.x-4.x does: EventLog(parent=app), schemas from YAML files."""

    def init_eventlog(self, schema_dir: Path) -> None:
        self.eventlog = EventLog(parent=self)
        for path in sorted(schema_dir.glob("*.yaml")):
            self.eventlog.register_schema_file(str(path))


def test_eventlog_with_a_parent_application_reads_its_config(tmp_path: Path) -> None:
    import yaml

    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "server-action.yaml").write_text(yaml.safe_dump(SCHEMA))
    events = tmp_path / "events.log"
    app = HubLike(
        config=load_config(
            tmp_path,
            f"import logging\nc.EventLog.handlers = [logging.FileHandler({str(events)!r})]\n"
            f"c.EventLog.allowed_schemas = [{SCHEMA_ID!r}]\n",
        )
    )
    app.init_eventlog(tmp_path / "schemas")
    app.eventlog.record_event(SCHEMA_ID, 1, EVENT)
    app.eventlog.handlers[0].close()
    assert read_lines(events)[0]["__schema__"] == SCHEMA_ID


def test_subclassable_with_singleton_configurable(tmp_path: Path) -> None:
    class EventBus(EventLog, SingletonConfigurable):  # Jupyter Server 1.x
        pass

    handler = logging.FileHandler(tmp_path / "bus.log")
    bus = EventBus.instance(handlers=[handler], allowed_schemas=[SCHEMA_ID])
    try:
        assert EventBus.instance() is bus
        bus.register_schema(SCHEMA)
        bus.record_event(SCHEMA_ID, 1, EVENT)
        handler.close()
        assert len(read_lines(tmp_path / "bus.log")) == 1
    finally:
        EventBus.clear_instance()


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (["not a handler"], "element 0 is str"),
        ([logging.NullHandler(), 3], "element 1 is int"),
        ("events.log", "handlers"),
    ],
)
def test_bad_handlers_are_a_trait_error_naming_the_trait_and_element(
    value: object, fragment: str
) -> None:
    with pytest.raises(TraitError, match=fragment) as info:
        EventLog(handlers=value)
    assert "handlers" in str(info.value)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({SCHEMA_ID: {"allowed_catgories": ["x"]}}, "unknown option"),
        ({SCHEMA_ID: {"allowed_categories": "user-identifier"}}, "must be a list of strings"),
        ([1, 2], "must be strings"),
        ("just-a-string", "allowed_schemas"),
    ],
)
def test_bad_allowed_schemas_are_a_trait_error(value: object, fragment: str) -> None:
    with pytest.raises(TraitError, match=fragment):
        EventLog(allowed_schemas=value)


def test_config_objects_are_not_mutated(tmp_path: Path) -> None:
    config = Config()
    config.EventLog.allowed_schemas = {SCHEMA_ID: {"allowed_categories": ["unrestricted"]}}
    before = repr(config)
    log = EventLog(config=config, handlers=[logging.NullHandler()])
    log.register_schema(SCHEMA)
    log.record_event(SCHEMA_ID, 1, EVENT)
    assert repr(config) == before
