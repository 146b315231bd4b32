"""OTel configuration never breaks start-up; the SDK loads only when OTel is configured."""

from __future__ import annotations

import ast
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import traitlets
from _collector import Collector
from conftest import EVENT, PROTOCOLS, SCHEMA_ID, endpoint, of_service, read_lines, unique

from jupyter_telemetry import EventLog

TESTS = str(Path(__file__).parent)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "jupyter_telemetry" and r.levelno >= logging.WARNING
    ]


@pytest.mark.parametrize(
    "variables",
    [
        {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
        {"OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "carrier-pigeon"},
        {"OTEL_EXPORTER_OTLP_TIMEOUT": "soon", "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT": "-1"},
    ],
)
def test_variables_without_an_endpoint_are_ignored_entirely(
    make_log: Any,
    events_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    variables: dict[str, str],
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    log = make_log()
    assert log._otel is None
    log.record_event(SCHEMA_ID, 1, EVENT)
    assert len(read_lines(events_file)) == 1
    assert warnings(caplog) == []


@pytest.mark.parametrize(
    ("variables", "fragment"),
    [
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"}, "'carrier-pigeon' is not one of"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://[::1"}, "is not a URL"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:port"}, "is not a URL"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://127.0.0.1:4317"}, "not an http:// or https://"),
        ({"OTEL_LOGS_EXPORTER": "console"}, "names no OTLP exporter"),
        ({"OTEL_EXPORTER_OTLP_LOGS_TIMEOUT": "soon"}, "no OTel output over gRPC"),
    ],
)
def test_unusable_variables_turn_otel_off_with_one_warning_and_spare_the_file(
    make_log: Any,
    events_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    variables: dict[str, str],
    fragment: str,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    log = make_log()
    assert log._otel is None
    log.record_event(SCHEMA_ID, 1, EVENT)
    assert len(read_lines(events_file)) == 1
    [warning] = warnings(caplog)
    assert fragment in warning


@pytest.mark.parametrize(
    "variables",
    [
        {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},  # sent as http/protobuf, same path
        {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_TIMEOUT": "soon"},
    ],
)
def test_values_with_a_usable_default_warn_once_and_deliver(
    collector: Collector,
    make_log: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    variables: dict[str, str],
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.http_endpoint)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    service = unique()
    log = make_log(service_name=service)
    log.record_event(SCHEMA_ID, 1, EVENT)
    assert log.flush(10)
    assert collector.wait_for_logs(1, predicate=of_service(service))[0].body == EVENT
    assert len(warnings(caplog)) == 1


@pytest.mark.parametrize(
    "variables",
    [
        {"OTEL_SDK_DISABLED": "true"},
        {"OTEL_LOGS_EXPORTER": "none"},
        {"OTEL_LOGS_EXPORTER": "none,otlp"},
    ],
)
def test_otel_sdk_disabled_and_logs_exporter_none_are_honoured(
    make_log: Any, events_file: Path, monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    log = make_log()
    assert log._otel is None
    log.record_event(SCHEMA_ID, 1, EVENT)
    assert len(read_lines(events_file)) == 1


def test_an_explicit_bad_trait_is_still_a_trait_error() -> None:
    with pytest.raises(traitlets.TraitError):
        EventLog(otlp_protocol="http/json")


def imported_after(program: str, **env: str) -> list[str]:
    code = textwrap.dedent(program) + textwrap.dedent(
        """
        import sys
        print([m for m in sys.modules if m.startswith(("opentelemetry", "grpc", "google.protobuf"))])
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
            **env,
        },
    )
    assert result.returncode == 0, result.stderr
    return list(ast.literal_eval(result.stdout.strip().splitlines()[-1]))


def test_no_otel_configured_imports_no_otel_grpc_or_protobuf() -> None:
    assert imported_after("import jupyter_telemetry") == []
    assert (
        imported_after(
            f"""
            import sys
            sys.path.insert(0, {TESTS!r})
            from conftest import SCHEMA, SCHEMA_ID, EVENT
            from jupyter_telemetry import EventLog
            log = EventLog(allowed_schemas=[SCHEMA_ID], handlers=[])
            log.register_schema(SCHEMA)
            log.record_event(SCHEMA_ID, 1, EVENT)
            """,
            OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        )
        == []
    )


def test_an_endpoint_loads_otel_only_when_the_eventlog_is_built() -> None:
    loaded = imported_after(
        """
        from jupyter_telemetry import EventLog
        EventLog(otlp_endpoint="http://127.0.0.1:4318", otlp_protocol="http/protobuf").shutdown(1)
        """
    )
    assert "opentelemetry.sdk._logs" in loaded
    assert not [m for m in loaded if m.startswith("grpc")], "grpc loaded for an HTTP endpoint"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_without_the_sdks_private_seams_the_public_export_delivers(
    collector: Collector, make_log: Any, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    from jupyter_telemetry.sinks.otel import _transport

    monkeypatch.setattr(_transport, "PRIVATE_SEAMS", False)  # as on an SDK that lacks them
    service = unique()
    log = make_log(
        otlp_endpoint=endpoint(collector, protocol), otlp_protocol=protocol, service_name=service
    )
    for count in range(5):
        log.record_event(SCHEMA_ID, 1, {**EVENT, "count": 2**64 - 1 if count == 2 else count})
    assert log.flush(10)
    received = collector.wait_for_logs(5, predicate=of_service(service))
    assert sorted(map(str, (r.body["count"] for r in received))) == sorted(
        map(str, [0, 1, 2**64 - 1, 3, 4])
    )
    assert received[0].event_name == SCHEMA_ID
    assert log.otel_dropped == 0


def test_an_sdk_whose_grpc_exporter_keeps_its_own_stub_still_gets_our_requests(
    collector: Collector, make_log: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Our requests reach grpc as bytes through a stub of our own; an SDK release
    # that builds its stub differently keeps its stub, and each request is parsed.
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

    from jupyter_telemetry.sinks.otel import _grpc

    original = OTLPLogExporter.__init__

    def without_stub(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        del self._stub  # as if this release had no such attribute

    monkeypatch.setattr(OTLPLogExporter, "__init__", without_stub)
    service = unique()
    log = make_log(
        otlp_endpoint=endpoint(collector, "grpc"), otlp_protocol="grpc", service_name=service
    )
    exporter = log._otel._core.pipelines[0].transport.exporter
    assert not isinstance(exporter._client, _grpc._BytesStub)
    for count in range(3):
        log.record_event(SCHEMA_ID, 1, {**EVENT, "count": count})
    assert log.flush(10)
    received = collector.wait_for_logs(3, predicate=of_service(service))
    assert sorted(r.body["count"] for r in received) == [0, 1, 2]
    assert log.otel_dropped == 0


def test_our_grpc_exporter_sends_its_requests_as_bytes(collector: Collector, make_log: Any) -> None:
    # The default path: our stub on the SDK's channel, and every record arrives whole.
    from jupyter_telemetry.sinks.otel import _grpc

    service = unique()
    log = make_log(
        otlp_endpoint=endpoint(collector, "grpc"), otlp_protocol="grpc", service_name=service
    )
    exporter = log._otel._core.pipelines[0].transport.exporter
    assert isinstance(exporter._client, _grpc._BytesStub)
    payload = _grpc.Encoded(b"\x0a\x00", 0)  # one empty ResourceLogs
    assert exporter._translate_data(payload) is payload.payload
    for count in range(3):
        log.record_event(SCHEMA_ID, 1, {**EVENT, "count": count, "text": "é" * 200})
    assert log.flush(10)
    received = collector.wait_for_logs(3, predicate=of_service(service))
    assert sorted(r.body["count"] for r in received) == [0, 1, 2]
    assert {r.body["text"] for r in received} == {"é" * 200}
    assert received[0].event_name == SCHEMA_ID
    assert log.otel_dropped == 0
