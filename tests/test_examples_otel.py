"""The OpenTelemetry examples run as users run them, against a real collector."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from _collector import Collector
from conftest import read_lines
from traitlets.config import PyFileConfigLoader

from jupyter_telemetry import EventLog

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SCHEMA_ID = "https://events.example.org/jupyter/file-opened"


def run_example(name: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, **env},
    )


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_otel_collector_example_exports_the_span_and_its_events(
    collector: Collector, tmp_path: Path, protocol: str
) -> None:
    service = f"example-{uuid.uuid4().hex[:8]}"
    base = collector.grpc_endpoint if protocol == "grpc" else collector.http_endpoint
    result = run_example(
        "otel_collector.py",
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": base,
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            "OTEL_SERVICE_NAME": service,
        },
        tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"sent to {base} ({protocol}) as service {service!r}:" in result.stdout
    assert "with 2 span events" in result.stdout

    logs = collector.wait_for_logs(2, predicate=lambda r: r.resource["service.name"] == service)
    [span] = collector.wait_for_spans(1, predicate=lambda s: s.resource["service.name"] == service)
    assert span.name == "open files"
    assert f"trace {span.trace_id}" in result.stdout
    assert [r.event_name for r in logs] == [SCHEMA_ID, SCHEMA_ID]
    assert [r.body["path"] for r in logs] == ["/home/ada/analysis.ipynb", "/home/ada/data.csv"]
    assert {(r.trace_id, r.span_id) for r in logs} == {(span.trace_id, span.span_id)}
    assert [name for name, _ in span.events] == [SCHEMA_ID, SCHEMA_ID]
    payloads = [json.loads(attrs["jupyter.event.payload"]) for _, attrs in span.events]
    assert payloads == [r.body for r in logs]


def test_otel_collector_example_fails_when_nothing_is_delivered(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_example(
        "otel_collector.py", {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"}, tmp_path
    )
    assert result.returncode == 1
    assert "NOT delivered: 2 log record(s)" in result.stderr


def test_jupyter_config_example_configures_a_real_eventlog(
    collector: Collector, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events_log = tmp_path / "events.log"
    monkeypatch.setenv("JUPYTER_EVENTS_LOG", str(events_log))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.grpc_endpoint)
    config = PyFileConfigLoader("jupyter_config.py", path=str(EXAMPLES)).load_config()

    eventlog = EventLog(config=config)
    try:
        assert eventlog.allowed_schemas == {
            SCHEMA_ID: {"allowed_categories": ["category.jupyter.org/user-identifier"]}
        }
        assert (eventlog.otlp_endpoint, eventlog.service_name) == (
            collector.grpc_endpoint,
            "jupyter-server",
        )
        eventlog.register_schema_file(EXAMPLES / "schemas" / "file-opened.yaml")
        path = f"/home/ada/{uuid.uuid4().hex}.ipynb"
        capsule = eventlog.record_event(SCHEMA_ID, 1, {"path": path, "kind": "notebook"})
    finally:
        eventlog.shutdown(10)
        for handler in eventlog.handlers:
            handler.close()
    assert eventlog.otel_dropped == 0
    assert read_lines(events_log) == [capsule]
    [record] = collector.wait_for_logs(1, predicate=lambda r: r.body.get("path") == path)
    assert record.resource["service.name"] == "jupyter-server"
    assert record.event_name == SCHEMA_ID
