"""The OpenTelemetry bridge, against a real OTLP collector process on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from _collector import Collector, ReceivedLog
from conftest import (
    EVENT,
    PROTOCOLS,
    SCHEMA,
    SCHEMA_ID,
    closed_port,
    endpoint,
    of_service,
    read_lines,
    unique,
)
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from jupyter_telemetry import EventLog, __version__


def from_service(collector: Collector, name: str, n: int = 1) -> list[ReceivedLog]:
    return collector.wait_for_logs(n, predicate=lambda r: r.resource.get("service.name") == name)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_event_arrives_as_log_record(
    collector: Collector, make_log: Any, events_file: Path, protocol: str
) -> None:
    service = unique()
    log = make_log(
        otlp_endpoint=endpoint(collector, protocol),
        otlp_protocol=protocol,
        service_name=service,
    )
    when = datetime(2024, 2, 29, 12, 0, 0, 123456, tzinfo=timezone.utc)
    log.record_event(SCHEMA_ID, 1, EVENT, timestamp_override=when)
    assert log.flush(10)
    [record] = from_service(collector, service)
    [line] = read_lines(events_file)
    assert record.event_name == SCHEMA_ID
    assert record.body == {k: v for k, v in line.items() if not k.startswith("__")} == EVENT
    assert record.attributes == {
        "jupyter.event.schema_id": SCHEMA_ID,
        "jupyter.event.schema_version": 1,
        "jupyter.event.metadata_version": 1,
    }
    assert record.timestamp_ns == int(when.timestamp()) * 10**9 + 123456000
    assert line["__timestamp__"] == "2024-02-29T12:00:00.123456Z"
    assert (record.severity_text, record.severity_number) == ("INFO", 9)
    assert (record.scope_name, record.scope_version) == ("jupyter_telemetry", __version__)
    assert record.trace_id == ""


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_event_in_a_span_carries_its_trace_and_becomes_a_span_event(
    collector: Collector, make_log: Any, protocol: str
) -> None:
    service = unique()
    log = make_log(
        otlp_endpoint=endpoint(collector, protocol),
        otlp_protocol=protocol,
        service_name=service,
        span_events=True,
    )
    tracing = TracerProvider(resource=Resource.create({"service.name": service}))
    tracing.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=collector.grpc_endpoint, insecure=True))
    )
    with tracing.get_tracer("app").start_as_current_span("open notebook") as span:
        log.record_event(SCHEMA_ID, 1, EVENT)
    tracing.shutdown()
    log.flush(10)
    context = span.get_span_context()
    [record] = from_service(collector, service)
    assert record.trace_id == format(context.trace_id, "032x")
    assert record.span_id == format(context.span_id, "016x")
    [received] = collector.wait_for_spans(
        1, predicate=lambda s: s.resource.get("service.name") == service
    )
    [(name, attributes)] = received.events
    assert name == SCHEMA_ID
    assert attributes["jupyter.event.schema_version"] == 1
    assert json.loads(attributes["jupyter.event.payload"]) == EVENT


def test_span_events_are_off_by_default(make_log: Any) -> None:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    log = make_log(logger_provider=provider)
    tracing = TracerProvider()
    with tracing.get_tracer("app").start_as_current_span("s") as span:
        log.record_event(SCHEMA_ID, 1, EVENT)
    assert log.flush(5)
    assert span.events == ()  # type: ignore[attr-defined]
    assert len(exporter.get_finished_logs()) == 1


def test_an_explicit_provider_wins_over_an_endpoint(collector: Collector, make_log: Any) -> None:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    service = unique()
    log = make_log(
        logger_provider=provider, otlp_endpoint=collector.grpc_endpoint, service_name=service
    )
    log.record_event(SCHEMA_ID, 1, EVENT)
    log.shutdown(5)
    [record] = exporter.get_finished_logs()
    assert record.log_record.body == EVENT
    assert record.log_record.event_name == SCHEMA_ID
    assert not [r for r in collector.logs() if r.resource.get("service.name") == service]
    collector.assert_no_logs(of_service(service), settle=1.0)
    # the application's provider is flushed by shutdown, never shut down
    log2 = make_log(logger_provider=provider)
    log2.record_event(SCHEMA_ID, 1, EVENT)
    assert log2.flush(5)
    assert len(exporter.get_finished_logs()) == 2


def test_handlers_empty_but_otel_live_still_records(collector: Collector, make_log: Any) -> None:
    service = unique()
    log = make_log(handlers=[], otlp_endpoint=collector.grpc_endpoint, service_name=service)
    assert log.record_event(SCHEMA_ID, 1, EVENT) is not None
    assert log.flush(10)
    assert from_service(collector, service)[0].body == EVENT


def test_no_endpoint_means_files_only(make_log: Any, events_file: Path) -> None:
    log = make_log()
    log.record_event(SCHEMA_ID, 1, EVENT)
    assert log._otel is None  # nothing configured: no exporter, no thread
    assert len(read_lines(events_file)) == 1
    assert EventLog(allowed_schemas=[SCHEMA_ID]).record_event(SCHEMA_ID, 1, EVENT) is None


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_standard_environment_variables(
    collector: Collector, make_log: Any, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    service = unique()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint(collector, protocol))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    monkeypatch.setenv("OTEL_SERVICE_NAME", service)
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test,team=hub")
    log = make_log()
    log.record_event(SCHEMA_ID, 1, EVENT)
    assert log.flush(10)
    [record] = from_service(collector, service)
    assert record.resource["deployment.environment"] == "test"
    assert record.resource["team"] == "hub"


def test_logs_specific_endpoint_variable(
    collector: Collector, make_log: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = unique()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", collector.http_endpoint + "/v1/logs")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "http/protobuf")
    log = make_log(service_name=service)
    log.record_event(SCHEMA_ID, 1, EVENT)
    assert log.flush(10)
    assert len(from_service(collector, service)) == 1


def test_service_name_defaults_to_the_parent_application(
    collector: Collector, file_handler: logging.Handler
) -> None:
    from traitlets.config import Application

    name = unique()

    class Hub(Application):
        pass

    app = Hub(name=name)
    log = EventLog(
        parent=app,
        handlers=[file_handler],
        allowed_schemas=[SCHEMA_ID],
        otlp_endpoint=collector.grpc_endpoint,
    )
    log.register_schema(SCHEMA)
    log.record_event(SCHEMA_ID, 1, EVENT)
    log.shutdown(5)
    assert len(from_service(collector, name)) == 1


def test_the_global_provider_is_used_and_never_replaced(
    collector: Collector, tmp_path: Path
) -> None:
    # The global provider can be set once per process: run in a fresh interpreter.
    service = unique()
    program = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from conftest import SCHEMA, SCHEMA_ID, EVENT
        from opentelemetry._logs import get_logger_provider, set_logger_provider
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
        from jupyter_telemetry import EventLog

        before = get_logger_provider()
        log = EventLog(allowed_schemas=[SCHEMA_ID], otlp_endpoint={collector.grpc_endpoint!r},
                       service_name={service!r})
        assert get_logger_provider() is before, "EventLog replaced the global provider"
        exporter = InMemoryLogRecordExporter()
        provider = LoggerProvider()
        provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        set_logger_provider(provider)
        app_log = EventLog(allowed_schemas=[SCHEMA_ID], otlp_endpoint={collector.grpc_endpoint!r})
        app_log.register_schema(SCHEMA)
        app_log.record_event(SCHEMA_ID, 1, EVENT)
        assert app_log.flush(5)
        assert len(exporter.get_finished_logs()) == 1, "the installed SDK provider was not used"
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_collector_down_never_blocks_nor_raises_and_counts_drops(
    make_log: Any, events_file: Path
) -> None:
    log = make_log(
        otlp_endpoint=f"http://127.0.0.1:{closed_port()}",
        otlp_max_queue_size=10,
        otlp_timeout=1,
    )
    started = time.monotonic()
    for count in range(200):
        assert log.record_event(SCHEMA_ID, 1, {**EVENT, "count": count}) is not None
    elapsed = time.monotonic() - started
    # one blocked export would take otlp_timeout (1 s); 200 events take milliseconds
    assert elapsed < 1.0, f"record_event blocked: {elapsed:.2f} s for 200 events"
    assert [x["count"] for x in read_lines(events_file)] == list(range(200))
    assert log.otel_dropped >= 190  # at most 10 queued; the rest counted as dropped
    log.shutdown(timeout=2)
    assert log.otel_dropped == 200


def test_collector_started_after_the_first_events(tmp_path: Path, make_log: Any) -> None:
    """After an outage, the next events are delivered, none dropped.

    gRPC waits longer and longer between reconnects (1 s, 1.6 s, 2.6 s, 4.1 s...)
    and otlp_timeout=1 leaves the exporter no time to retry: a channel that kept
    its back-off through a 4 s outage drops events 1-3.
    """
    late = Collector(tmp_path / "late")
    endpoint = late.grpc_endpoint
    log = make_log(otlp_endpoint=endpoint, service_name=unique(), otlp_timeout=1)
    outage, end = 0, time.monotonic() + 4
    while time.monotonic() < end:  # nobody listens yet: each export fails
        outage += 1
        log.record_event(SCHEMA_ID, 1, {**EVENT, "count": 100 + outage})
        assert not log.flush(15)
        assert log.otel_dropped == outage
    late.start()
    try:
        assert late.grpc_endpoint == endpoint, "the collector moved to another port"
        for count in range(1, 4):
            log.record_event(SCHEMA_ID, 1, {**EVENT, "count": count})
        assert log.flush(30)  # bounded (a hang guard); False if any export failed
        assert sorted(r.body["count"] for r in late.wait_for_logs(3)) == [1, 2, 3]
        assert log.otel_dropped == outage  # exactly the outage's; none after it
    finally:
        late.stop()


def test_exit_with_collector_down_is_bounded_and_reports_drops(tmp_path: Path) -> None:
    program = textwrap.dedent(
        f"""
        import logging, sys, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from conftest import SCHEMA, SCHEMA_ID, EVENT
        from jupyter_telemetry import EventLog
        logging.basicConfig()
        log = EventLog(handlers=[logging.FileHandler("events.log")], allowed_schemas=[SCHEMA_ID],
                       otlp_endpoint="http://127.0.0.1:{closed_port()}", shutdown_timeout=1.0)
        log.register_schema(SCHEMA)
        for _ in range(50):
            log.record_event(SCHEMA_ID, 1, EVENT)
        print(time.monotonic(), flush=True)  # recording finished
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    exited = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process on the machine
    assert result.returncode == 0, result.stderr
    # Measured from the last record_event: start-up (imports) is not what is bounded here.
    elapsed = exited - float(result.stdout.split()[-1])
    assert elapsed < 1.0 + 1.0, f"exit took {elapsed:.1f} s after recording"
    assert "50 OpenTelemetry log record(s) were not delivered" in result.stderr
    assert len((tmp_path / "events.log").read_text().splitlines()) == 50


def test_a_forked_child_keeps_exporting(collector: Collector, make_log: Any) -> None:
    service = unique()
    log = make_log(
        otlp_endpoint=collector.http_endpoint,
        otlp_protocol="http/protobuf",
        service_name=service,
    )
    log.record_event(SCHEMA_ID, 1, {**EVENT, "user": "parent-before"})
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            log.record_event(SCHEMA_ID, 1, {**EVENT, "user": "child"})
            code = 0 if log.flush(10) else 2
        finally:
            os._exit(code)
    log.record_event(SCHEMA_ID, 1, {**EVENT, "user": "parent-after"})
    assert log.flush(10)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    received = from_service(collector, service, 3)
    users = sorted(r.body["user"] for r in received)
    assert users == ["child", "parent-after", "parent-before"]  # nothing duplicated


def test_constructing_and_shutting_down_leaves_no_thread_behind() -> None:
    import threading

    before = {t.ident for t in threading.enumerate()}
    for _ in range(3):
        log = EventLog(
            handlers=[logging.NullHandler()],
            otlp_endpoint=f"http://127.0.0.1:{closed_port()}",
            service_name="threads",
            span_events=True,
            otlp_max_queue_size=10,
        )
        log.shutdown(timeout=1)
    left = [t.name for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    assert not [name for name in left if name.startswith("jupyter_telemetry")], left
