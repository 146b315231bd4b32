"""A real JupyterHub 6 forwards its server-action events to the real collector."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jupyterhub
import pytest
import yaml
from _collector import Collector
from _jupyter import ROOT, ServerProcess, base_env
from _jupyter import jupyterhub as hub_process
from conftest import closed_port, load_config, of_service, read_lines, unique
from jupyter_events import EventLogger

from jupyter_telemetry import JupyterEventsHandler

pytestmark = pytest.mark.slow

SERVER_ACTION = "https://schema.jupyter.org/jupyterhub/events/server-action"
EXAMPLE = (ROOT / "examples" / "jupyterhub_config.py").read_text()


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Any]:
    """``hub(config, **env) -> ServerProcess``, started; stopped (with its user servers) after."""
    started: list[ServerProcess] = []

    def start(config: str, **env: str) -> ServerProcess:
        process = hub_process(tmp_path, config, base_env(tmp_path, **env))
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()


def start_and_stop_a_server(hub: ServerProcess) -> None:
    """Start and stop ada's default server over the REST API, waiting for each."""

    def servers() -> dict[str, Any]:
        status, user = hub.request("GET", "/hub/api/users/ada")
        assert status == 200, user
        return user["servers"]  # type: ignore[no-any-return]

    assert hub.request("POST", "/hub/api/users/ada/server")[0] in (201, 202), hub.output()
    hub.wait_until(lambda: servers().get("", {}).get("ready", False), "ada's server to start")
    assert hub.request("DELETE", "/hub/api/users/ada/server")[0] in (202, 204), hub.output()
    hub.wait_until(lambda: not servers(), "ada's server to stop")


def test_the_example_config_forwards_server_start_and_stop(hub: Any, collector: Collector) -> None:
    service = unique()
    since = time.time_ns()
    running = hub(
        EXAMPLE, OTEL_EXPORTER_OTLP_ENDPOINT=collector.grpc_endpoint, OTEL_SERVICE_NAME=service
    )
    start_and_stop_a_server(running)
    records = collector.wait_for_logs(2, predicate=of_service(service), timeout=30)
    assert [(r.event_name, r.body) for r in records] == [
        (SERVER_ACTION, {"action": "start", "username": "ada", "servername": ""}),
        (SERVER_ACTION, {"action": "stop", "username": "ada", "servername": ""}),
    ]
    for record in records:
        assert record.attributes == {
            "jupyter.event.schema_id": SERVER_ACTION,
            "jupyter.event.schema_version": "1",
            "jupyter.event.metadata_version": 1,
        }
        assert since <= record.timestamp_ns <= time.time_ns()
    assert records[0].timestamp_ns < records[1].timestamp_ns


def test_with_the_collector_down_the_hub_keeps_answering(hub: Any, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    files = f"import logging\nc.EventLog.handlers = [logging.FileHandler({str(events)!r})]\n"
    running = hub(files + EXAMPLE, OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{closed_port()}")
    start_and_stop_a_server(running)
    assert running.request("GET", "/hub/api/")[0] == 200
    assert [(x["__schema__"], x["action"]) for x in read_lines(events)] == [
        (SERVER_ACTION, "start"),
        (SERVER_ACTION, "stop"),
    ]
    assert "could not be forwarded" not in running.output()


def test_the_z2jh_snippet_forwards_the_hub_s_events(
    collector: Collector, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = yaml.safe_load((ROOT / "examples" / "z2jh-values.yaml").read_text())
    env = values["hub"]["extraEnv"]
    assert set(env) == {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME"}
    service = unique()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.grpc_endpoint)  # not the cluster's
    monkeypatch.setenv("OTEL_SERVICE_NAME", service)
    [snippet] = values["hub"]["extraConfig"].values()
    # z2jh runs each extraConfig snippet inside its jupyterhub_config.py, where c exists.
    config = load_config(tmp_path, "c = get_config()\n" + snippet, "jupyterhub_config.py")
    logger = EventLogger(config=config)
    [handler] = logger.handlers
    assert isinstance(handler, JupyterEventsHandler)
    try:
        logger.register_event_schema(
            Path(jupyterhub.__file__).parent / "event-schemas" / "server-actions" / "v1.yaml"
        )
        logger.emit(
            schema_id=SERVER_ACTION,
            data={"action": "start", "username": "ada", "servername": "gpu"},
        )
        assert handler.eventlog.flush(10)
    finally:
        handler.close()
        handler.eventlog.shutdown(5)
    [record] = collector.wait_for_logs(1, predicate=of_service(service))
    assert (record.event_name, record.body) == (
        SERVER_ACTION,
        {"action": "start", "username": "ada", "servername": "gpu"},
    )
