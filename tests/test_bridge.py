"""JupyterEventsHandler under a real jupyter_events.EventLogger, against the real collector."""

from __future__ import annotations

import logging
import logging.config
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from _collector import Collector, ReceivedLog
from conftest import EVENT, closed_port, load_config, of_service, read_lines, unique
from jupyter_events import EventLogger
from opentelemetry.sdk.trace import TracerProvider

import jupyter_telemetry
from jupyter_telemetry import EventLog, JupyterEventsHandler

A = "https://events.example.org/bridge/a"
B = "https://events.example.org/bridge/b"
ROOT = Path(__file__).resolve().parent.parent


def schema(schema_id: str, **extra: Any) -> dict[str, Any]:
    """A jupyter_events schema (string version) with the test event's properties."""
    return {
        "$id": schema_id,
        "version": "1",
        "type": "object",
        "properties": {
            "action": {"type": "string"},
            "path": {"type": "string"},
            "user": {"type": "string"},
            "count": {"type": "integer"},
            "ok": {"type": "boolean"},
            "context": {"type": "object"},
            "tags": {"type": "array"},
            "message": {"type": "string"},
            "anything": {},
        },
        **extra,
    }


@pytest.fixture
def bridge(collector: Collector) -> Iterator[Any]:
    """``bridge(**eventlog_kwargs) -> (EventLogger, handler, service)``; all closed after."""
    made: list[JupyterEventsHandler] = []

    def make(**kwargs: Any) -> tuple[EventLogger, JupyterEventsHandler, str]:
        service = kwargs.setdefault("service_name", unique())
        kwargs.setdefault("otlp_endpoint", collector.grpc_endpoint)
        handler = JupyterEventsHandler(**kwargs)
        made.append(handler)
        logger = EventLogger(handlers=[handler])
        logger.register_event_schema(schema(A))
        return logger, handler, service

    yield make
    for handler in made:
        handler.close()
        handler.eventlog.shutdown(5)


def received(
    collector: Collector, handler: JupyterEventsHandler, service: str, n: int = 1
) -> list[ReceivedLog]:
    assert handler.eventlog.flush(10)
    return collector.wait_for_logs(n, predicate=of_service(service))


def test_a_handler_in_the_config_file_forwards_what_record_event_would_record(
    collector: Collector, tmp_path: Path
) -> None:
    service = unique()
    config = load_config(
        tmp_path,
        "from jupyter_telemetry import JupyterEventsHandler\n"
        f"c.EventLog.service_name = {service!r}\n"
        f"c.EventLog.otlp_endpoint = {collector.grpc_endpoint!r}\n"
        "c.EventLogger.handlers = [JupyterEventsHandler(config=c)]\n",
        "jupyter_server_config.py",
    )
    logger = EventLogger(config=config)
    [handler] = logger.handlers
    assert isinstance(handler, JupyterEventsHandler)
    try:
        logger.register_event_schema(schema(A))
        when = datetime(2026, 11, 29, 11, 42, 12, 48359, tzinfo=timezone.utc)
        capsule = logger.emit(schema_id=A, data=EVENT, timestamp_override=when)
        assert (
            capsule is not None and capsule["__timestamp__"] == "2026-11-29T11:42:12.048359+00:00Z"
        )
        [record] = received(collector, handler, service)
    finally:
        handler.close()
        handler.eventlog.shutdown(5)

    # The same event through record_event, for comparison.
    reference_service = unique()
    reference = EventLog(
        allowed_schemas=[A], otlp_endpoint=collector.grpc_endpoint, service_name=reference_service
    )
    reference.register_schema(schema(A))
    reference.record_event(A, "1", EVENT, timestamp_override=when)
    reference.shutdown(10)
    [expected] = collector.wait_for_logs(1, predicate=of_service(reference_service))

    assert record.event_name == expected.event_name == A
    assert record.body == expected.body == EVENT  # a map, not the forced formatter's string
    assert (
        record.attributes
        == expected.attributes
        == {
            "jupyter.event.schema_id": A,
            "jupyter.event.schema_version": "1",
            "jupyter.event.metadata_version": 1,
        }
    )
    assert record.timestamp_ns == expected.timestamp_ns == int(when.timestamp() * 1e6) * 1000
    assert (record.severity_text, record.scope_name) == (
        expected.severity_text,
        "jupyter_telemetry",
    )


def test_every_schema_is_forwarded_also_schemas_registered_later(
    bridge: Any, collector: Collector
) -> None:
    logger, handler, service = bridge()
    logger.emit(schema_id=A, data={"action": "a"})
    logger.register_event_schema(schema(B))
    logger.emit(schema_id=B, data={"action": "b"})
    records = received(collector, handler, service, 2)
    assert [(r.event_name, r.body) for r in records] == [(A, {"action": "a"}), (B, {"action": "b"})]


def test_a_timestamp_with_a_single_z_is_read_too(bridge: Any, collector: Collector) -> None:
    logger, handler, service = bridge()
    naive = datetime(2026, 11, 29, 11, 42, 12, 48359)  # jupyter_events writes "...048359Z"
    assert logger.emit(schema_id=A, data={}, timestamp_override=naive)["__timestamp__"].endswith(
        "12.048359Z"
    )
    [record] = received(collector, handler, service)
    assert record.timestamp_ns == int(naive.replace(tzinfo=timezone.utc).timestamp() * 1e6) * 1000


def test_an_event_inside_a_span_carries_the_span_s_trace_context(
    bridge: Any, collector: Collector
) -> None:
    logger, handler, service = bridge()
    with TracerProvider().get_tracer("app").start_as_current_span("PUT /api/contents") as span:
        logger.emit(schema_id=A, data={"action": "save"})
    [record] = received(collector, handler, service)
    context = span.get_span_context()
    assert (record.trace_id, record.span_id) == (
        format(context.trace_id, "032x"),
        format(context.span_id, "016x"),
    )


def test_the_handler_s_own_json_lines_equal_the_capsules(
    bridge: Any, collector: Collector, file_handler: logging.Handler, events_file: Path
) -> None:
    logger, handler, service = bridge(handlers=[file_handler])
    capsule = logger.emit(schema_id=A, data=EVENT)
    received(collector, handler, service)
    assert read_lines(events_file) == [capsule]


def test_a_failure_never_reaches_the_application_and_is_reported_once_per_streak(
    bridge: Any, collector: Collector, caplog: pytest.LogCaptureFixture
) -> None:
    logger, handler, service = bridge()
    with caplog.at_level(logging.WARNING, "jupyter_telemetry"):
        for _ in range(3):  # valid for jupyter_events, not serialisable to JSON
            assert logger.emit(schema_id=A, data={"anything": object()}) is not None
        logger.emit(schema_id=A, data={"action": "recovered"})
        logger.emit(schema_id=A, data={"anything": {1, 2}})
    assert handler.failures == 4
    reports = [r for r in caplog.records if r.name == "jupyter_telemetry"]
    assert len(reports) == 2 and all(r.exc_info for r in reports)
    [record] = received(collector, handler, service)
    assert record.body == {"action": "recovered"}


def test_a_list_policy_forwards_only_listed_schemas(bridge: Any, collector: Collector) -> None:
    logger, handler, service = bridge(allowed_schemas=[B])
    logger.register_event_schema(schema(B))
    logger.emit(schema_id=A, data={"action": "a"})
    logger.emit(schema_id=B, data=EVENT)
    [record] = received(collector, handler, service)
    assert (record.event_name, record.body) == (B, EVENT)
    collector.assert_no_logs(lambda r: of_service(service)(r) and r.event_name == A)


def test_a_dict_policy_keeps_only_allowed_properties_of_an_unknown_schema(
    bridge: Any, collector: Collector
) -> None:
    logger, handler, service = bridge(allowed_schemas={A: {"allowed_properties": ["action"]}})
    logger.emit(schema_id=A, data={"action": "save", "path": "/home/ada/x", "user": "ada"})
    [record] = received(collector, handler, service)
    assert record.body == {"action": "save", "path": None, "user": None}


def test_a_dict_policy_honours_the_categories_of_a_schema_copied_from_the_event_logger(
    bridge: Any, collector: Collector
) -> None:
    logger, handler, service = bridge(
        allowed_schemas={B: {"allowed_categories": ["user-identifier"]}}
    )
    labelled = schema(B)
    labelled["properties"]["user"] = {"type": "string", "categories": ["user-identifier"]}
    labelled["properties"]["path"] = {"type": "string", "categories": ["file-path"]}
    labelled["properties"]["action"] = {"type": "string", "categories": ["unrestricted"]}
    logger.register_event_schema(labelled)
    assert handler.copy_schemas(logger.schemas) == 1  # B; A declares no categories
    logger.emit(schema_id=B, data={"action": "save", "path": "/home/ada/x", "user": "ada"})
    [record] = received(collector, handler, service)
    assert record.body == {"action": "save", "path": None, "user": "ada"}
    assert labelled["properties"]["user"]["categories"] == ["user-identifier"]  # not mutated


def test_schemas_registered_on_the_event_logger_later_are_copied_on_first_sight(
    bridge: Any, collector: Collector
) -> None:
    logger, handler, service = bridge(
        allowed_schemas={B: {"allowed_categories": ["user-identifier"]}}
    )
    handler.schema_source = logger.schemas
    labelled = schema(B)
    labelled["properties"]["user"] = {"type": "string", "categories": ["user-identifier"]}
    logger.register_event_schema(labelled)
    logger.emit(schema_id=B, data={"user": "ada", "path": "/home/ada/x"})
    [record] = received(collector, handler, service)
    assert record.body == {"user": "ada", "path": None}


def test_the_handler_keeps_forwarding_after_dictconfig_closes_it(
    bridge: Any, collector: Collector
) -> None:
    # traitlets applications call dictConfig after reading their config files,
    # and dictConfig closes every handler that exists (as Jupyter Server does).
    logger, handler, service = bridge()
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
    logger.emit(schema_id=A, data={"action": "after dictConfig"})
    [record] = received(collector, handler, service)
    assert record.body == {"action": "after dictConfig"}


def test_close_keeps_an_eventlog_it_was_given_usable(collector: Collector) -> None:
    service = unique()
    eventlog = EventLog(
        allowed_schemas=[A], otlp_endpoint=collector.grpc_endpoint, service_name=service
    )
    eventlog.register_schema(schema(A))
    handler = JupyterEventsHandler(eventlog)
    logger = EventLogger(handlers=[handler])
    logger.register_event_schema(schema(A))
    logger.emit(schema_id=A, data={"action": "forwarded"})
    handler.close()
    eventlog.record_event(A, "1", {"action": "recorded after close"})
    eventlog.shutdown(10)
    records = collector.wait_for_logs(2, predicate=of_service(service))
    assert [r.body["action"] for r in records] == ["forwarded", "recorded after close"]


def test_an_eventlog_and_eventlog_arguments_together_are_refused() -> None:
    with pytest.raises(TypeError, match="either an EventLog or EventLog arguments"):
        JupyterEventsHandler(EventLog(), service_name="x")


def test_with_the_collector_down_events_still_reach_the_handler_s_files(
    file_handler: logging.Handler, events_file: Path
) -> None:
    handler = JupyterEventsHandler(
        handlers=[file_handler],
        otlp_endpoint=f"http://127.0.0.1:{closed_port()}",
        shutdown_timeout=1,
    )
    logger = EventLogger(handlers=[handler])
    logger.register_event_schema(schema(A))
    capsules = [logger.emit(schema_id=A, data={"count": i}) for i in range(3)]
    handler.close()
    handler.eventlog.shutdown(1)
    assert read_lines(events_file) == capsules
    assert handler.failures == 0


def test_importing_the_package_imports_neither_jupyter_events_nor_a_server() -> None:
    code = (
        "import sys, jupyter_telemetry; "
        "print(sorted(m for m in ('jupyter_events', 'jupyter_server', 'jupyterhub') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert out.strip() == "[]"


def test_the_server_extension_point_names_a_module_with_a_loader() -> None:
    [point] = jupyter_telemetry._jupyter_server_extension_points()
    module = __import__(point["module"], fromlist=["_load_jupyter_server_extension"])
    assert callable(module._load_jupyter_server_extension)
