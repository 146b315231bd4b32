"""A real Jupyter Server 2 forwards its events to the real collector, by config file or extension."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _collector import Collector, ReceivedLog
from _jupyter import ROOT, ServerProcess, base_env, jupyter_server
from conftest import closed_port, read_lines, unique

pytestmark = pytest.mark.slow

CONTENTS = "https://events.jupyter.org/jupyter_server/contents_service/v1"
KERNELS = "https://events.jupyter.org/jupyter_server/kernel_actions/v1"
ATTRIBUTES = {"jupyter.event.schema_version": "1", "jupyter.event.metadata_version": 1}
EXTENSION = "--ServerApp.jpserver_extensions={'jupyter_telemetry': True}"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Any]:
    """``server(config, args=(), **env) -> ServerProcess``, started; stopped after the test."""
    started: list[ServerProcess] = []

    def start(config: str, args: tuple[str, ...] = (), **env: str) -> ServerProcess:
        workdir = tmp_path / f"server-{len(started)}"
        workdir.mkdir()
        process = jupyter_server(workdir, config, base_env(workdir, **env), args)
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()


def exercise(server: ServerProcess) -> str:
    """PUT a file, then start, interrupt, restart and shut down a kernel; its id."""
    status, _ = server.request(
        "PUT", "/api/contents/notes.txt", {"type": "file", "format": "text", "content": "hello"}
    )
    assert status == 201
    status, kernel = server.request("POST", "/api/kernels", {"name": "python3"})
    assert status == 201, kernel
    kernel_id: str = kernel["id"]
    for method, path, expected in [
        ("POST", f"/api/kernels/{kernel_id}/interrupt", 204),
        ("POST", f"/api/kernels/{kernel_id}/restart", 200),
        ("DELETE", f"/api/kernels/{kernel_id}", 204),
    ]:
        assert server.request(method, path)[0] == expected, server.output()
    return kernel_id


def body(action: str, kernel_id: str, verb: str) -> dict[str, Any]:
    return {
        "action": action,
        "kernel_name": "python3",
        "kernel_id": kernel_id,
        "status": "success",
        "msg": f"Kernel {kernel_id} was {verb}.",
    }


def assert_records(
    records: list[ReceivedLog], bodies: list[tuple[str, dict[str, Any]]], since_ns: int
) -> None:
    """The records are exactly ``bodies`` (schema, body), in order, stamped in this run."""
    assert [(r.event_name, r.body) for r in records] == bodies
    for record in records:
        assert record.attributes == {"jupyter.event.schema_id": record.event_name, **ATTRIBUTES}
        assert since_ns <= record.timestamp_ns <= time.time_ns()
        assert record.trace_id == ""  # the server is not traced


def of(service: str) -> Any:
    return lambda r: r.resource.get("service.name") == service


def test_the_example_config_file_forwards_contents_and_kernel_events_under_its_policy(
    server: Any, collector: Collector
) -> None:
    service = unique()
    config = (ROOT / "examples" / "jupyter_server_config.py").read_text()
    since = time.time_ns()
    jupyter = server(
        config, OTEL_EXPORTER_OTLP_ENDPOINT=collector.grpc_endpoint, OTEL_SERVICE_NAME=service
    )
    kernel_id = exercise(jupyter)
    records = collector.wait_for_logs(6, predicate=of(service), timeout=30)
    assert_records(
        records,
        [
            (CONTENTS, {"action": "get", "path": None}),  # the policy withholds paths
            (CONTENTS, {"action": "save", "path": None}),
            (KERNELS, body("start", kernel_id, "started")),
            (KERNELS, body("interrupt", kernel_id, "interrupted")),
            (KERNELS, body("restart", kernel_id, "restarted")),
            (KERNELS, body("shutdown", kernel_id, "shutdown")),
        ],
        since,
    )
    assert records[0].resource["service.name"] == service


def test_the_extension_forwards_every_event_unchanged_under_c_eventlog(
    server: Any, collector: Collector
) -> None:
    service = unique()
    since = time.time_ns()
    jupyter = server(
        f"c.EventLog.service_name = {service!r}\n",
        (EXTENSION,),
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.http_endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
    )
    kernel_id = exercise(jupyter)
    records = collector.wait_for_logs(6, predicate=of(service), timeout=30)
    assert_records(
        records,
        [
            (CONTENTS, {"action": "get", "path": "notes.txt"}),
            (CONTENTS, {"action": "save", "path": "notes.txt"}),
            (KERNELS, body("start", kernel_id, "started")),
            (KERNELS, body("interrupt", kernel_id, "interrupted")),
            (KERNELS, body("restart", kernel_id, "restarted")),
            (KERNELS, body("shutdown", kernel_id, "shutdown")),
        ],
        since,
    )
    assert "jupyter_telemetry: forwarding jupyter_events events" in jupyter.output()


#: What a tornado instrumentation does, in the config file: a span per request,
#: current while the request runs, exported to the collector.
TRACING = """
import os
from opentelemetry import context, trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from jupyter_server.base.handlers import JupyterHandler

tracing = TracerProvider(resource=Resource.create({"service.name": os.environ["OTEL_SERVICE_NAME"]}))
tracing.add_span_processor(SimpleSpanProcessor(
    OTLPSpanExporter(endpoint=os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"], insecure=True)))
untraced_prepare = JupyterHandler.prepare

async def prepare(self, *args, **kwargs):
    span = tracing.get_tracer("tests").start_span(f"{self.request.method} {self.request.path}")
    self._test_span = (span, context.attach(trace.set_span_in_context(span)))
    return await untraced_prepare(self, *args, **kwargs)

def on_finish(self):
    span, token = self.__dict__.pop("_test_span", (None, None))
    if span is not None:
        context.detach(token)
        span.end()

JupyterHandler.prepare = prepare
JupyterHandler.on_finish = on_finish
"""


def test_events_of_a_traced_request_carry_its_trace_and_span_ids(
    server: Any, collector: Collector
) -> None:
    service = unique()
    jupyter = server(
        TRACING,
        (EXTENSION,),
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.grpc_endpoint,
        OTEL_SERVICE_NAME=service,
    )
    request = {"type": "file", "format": "text", "content": "traced"}
    assert jupyter.request("PUT", "/api/contents/traced.txt", request)[0] == 201
    [span] = collector.wait_for_spans(
        1, predicate=lambda s: of(service)(s) and s.name == "PUT /api/contents/traced.txt"
    )
    records = collector.wait_for_logs(2, predicate=of(service))
    assert [r.body["action"] for r in records] == ["get", "save"]
    assert {(r.trace_id, r.span_id) for r in records} == {(span.trace_id, span.span_id)}
    assert span.trace_id != ""


def test_the_extension_with_the_handler_also_in_the_config_forwards_each_event_once(
    server: Any, collector: Collector
) -> None:
    service, extension_service = unique(), unique()
    config = (
        "from jupyter_telemetry import JupyterEventsHandler\n"
        "c.EventLogger.handlers = [JupyterEventsHandler()]\n"  # OTEL_SERVICE_NAME
        f"c.EventLog.service_name = {extension_service!r}\n"  # the extension's EventLog
    )
    jupyter = server(
        config,
        (EXTENSION,),
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.grpc_endpoint,
        OTEL_SERVICE_NAME=service,
    )
    assert (
        jupyter.request(
            "PUT", "/api/contents/once.txt", {"type": "file", "format": "text", "content": ""}
        )[0]
        == 201
    )
    records = collector.wait_for_logs(2, predicate=of(service))
    assert [r.body["action"] for r in records] == ["get", "save"]
    collector.assert_no_logs(of(extension_service), settle=2)
    assert "c.EventLogger.handlers already forwards events" in jupyter.output()


def test_installing_enables_nothing_and_a_config_file_enables_the_extension(
    server: Any, tmp_path: Path
) -> None:
    # No config file ships with the package: jupyter_server gives the environment's
    # jupyter_server_config.d precedence over the user's, so a shipped "disabled"
    # entry would defeat `jupyter server extension enable --user`.
    assert not (ROOT / "jupyter-config").exists()
    assert "shared-data" not in (ROOT / "pyproject.toml").read_text()
    off = server("")
    assert (
        off.request(
            "PUT", "/api/contents/x.txt", {"type": "file", "content": "", "format": "text"}
        )[0]
        == 201
    )
    assert "jupyter_telemetry" not in off.output()

    on = server('c.ServerApp.jpserver_extensions = {"jupyter_telemetry": True}\n')
    assert (
        on.request("PUT", "/api/contents/y.txt", {"type": "file", "content": "", "format": "text"})[
            0
        ]
        == 201
    )
    assert "jupyter_telemetry | extension was successfully loaded" in on.output()
    assert "no OpenTelemetry destination" in on.output()  # no OTLP endpoint: a no-op
    assert "forwarding jupyter_events events" not in on.output()


def test_with_the_collector_down_the_server_keeps_answering(server: Any, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    config = (
        "import logging\n"
        "from jupyter_telemetry import JupyterEventsHandler\n"
        f"c.EventLog.handlers = [logging.FileHandler({str(events)!r})]\n"
        "c.EventLogger.handlers = [JupyterEventsHandler(config=c)]\n"
    )
    jupyter = server(config, OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{closed_port()}")
    kernel_id = exercise(jupyter)
    for _ in range(20):  # more events than one export batch waits for
        assert jupyter.request("GET", "/api/contents/notes.txt")[0] == 200
    assert jupyter.request("GET", "/api/status")[0] == 200
    lines = read_lines(events)
    assert [(x["__schema__"], x["action"]) for x in lines[:6]] == [
        (CONTENTS, "get"),
        (CONTENTS, "save"),
        (KERNELS, "start"),
        (KERNELS, "interrupt"),
        (KERNELS, "restart"),
        (KERNELS, "shutdown"),
    ]
    assert lines[2]["kernel_id"] == kernel_id and len(lines) == 26
    assert "could not be forwarded" not in jupyter.output()
