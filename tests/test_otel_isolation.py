"""Per-record isolation: whatever one event holds costs at most that one record."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from _collector import Collector, ReceivedLog
from conftest import EVENT, PROTOCOLS, SCHEMA_ID, endpoint, of_service, read_lines, unique
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

from jupyter_telemetry.sinks import Emission

STAMP = "jupyter.event.timestamp"


def by_count(records: list[ReceivedLog]) -> dict[Any, ReceivedLog]:
    return {r.body["count"]: r for r in records}


MOMENTS = [
    datetime(1, 1, 1),
    datetime(1500, 6, 1, 12, 0, 0, 5),
    datetime(1969, 12, 31, 23, 59, 59, 999999),
    datetime(2600, 1, 1, tzinfo=timezone.utc),
    datetime(9999, 12, 31, 23, 59, 59, 999999),
    datetime(2024, 2, 29, 12, 0, 0, 123456),
]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_any_timestamp_the_capsule_accepts_costs_no_record_and_kills_no_worker(
    collector: Collector, make_log: Any, events_file: Path, protocol: str
) -> None:
    service = unique()
    log = make_log(
        otlp_endpoint=endpoint(collector, protocol), otlp_protocol=protocol, service_name=service
    )
    for count, moment in enumerate(MOMENTS):
        log.record_event(SCHEMA_ID, 1, {**EVENT, "count": count}, timestamp_override=moment)
    assert log.flush(10)
    for count in range(len(MOMENTS), len(MOMENTS) + 3):  # the worker is still alive
        log.record_event(SCHEMA_ID, 1, {**EVENT, "count": count})
    assert log.flush(10)
    assert log.otel_dropped == 0, log.otel_dropped_by_reason
    received = by_count(collector.wait_for_logs(len(MOMENTS) + 3, predicate=of_service(service)))
    assert sorted(received) == list(range(len(MOMENTS) + 3))
    stamps = [line["__timestamp__"] for line in read_lines(events_file)]
    for count in (0, 1, 2, 3, 4):  # before 1970 or from 2554 on: no timestamp, text kept
        record = received[count]
        assert record.timestamp_ns == 0
        assert record.observed_timestamp_ns > 0
        assert record.attributes[STAMP] == stamps[count]
    assert received[5].timestamp_ns == 1709208000_123456000
    assert STAMP not in received[5].attributes


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_integers_beyond_int64_arrive_as_strings_and_spoil_no_batch(
    collector: Collector, make_log: Any, events_file: Path, protocol: str
) -> None:
    service = unique()
    log = make_log(
        otlp_endpoint=endpoint(collector, protocol), otlp_protocol=protocol, service_name=service
    )
    counts = [1, 2**63 + 1, 2, 2**64 - 1, 2**63 - 1, 3]
    for count in counts:
        log.record_event(SCHEMA_ID, 1, {**EVENT, "count": count})
    assert log.flush(10)
    assert [line["count"] for line in read_lines(events_file)] == counts  # the file keeps ints
    assert log.otel_dropped == 0
    received = by_count(collector.wait_for_logs(len(counts), predicate=of_service(service)))
    assert set(received) == {1, str(2**63 + 1), 2, str(2**64 - 1), 2**63 - 1, 3}


def nest(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": [1, "two"]}
    for level in range(depth):
        value = {f"level{level}": value}
    return value


def unnest(value: Any) -> Any:
    """Undo the documented form: a string standing for a deep map is its JSON text."""
    if isinstance(value, dict):
        return {k: unnest(v) for k, v in value.items()}
    if isinstance(value, str) and value.startswith("{"):
        return json.loads(value)
    return value


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_deep_nesting_arrives_as_json_text_below_the_depth_limit(
    collector: Collector, make_log: Any, protocol: str
) -> None:
    service = unique()
    log = make_log(
        otlp_endpoint=endpoint(collector, protocol), otlp_protocol=protocol, service_name=service
    )
    events = [{**EVENT, "count": n, "context": nest(depth)} for n, depth in enumerate((3, 60, 200))]
    for event in events:
        log.record_event(SCHEMA_ID, 1, event)
    assert log.flush(10)
    assert log.otel_dropped == 0
    received = by_count(collector.wait_for_logs(3, predicate=of_service(service)))
    assert received[0].body == events[0]  # shallow: as it is
    for n in (1, 2):
        assert received[n].body != events[n]
        assert unnest(received[n].body) == events[n]


def test_a_record_that_cannot_be_encoded_costs_itself_counted_and_reported_once(
    collector: Collector, caplog: pytest.LogCaptureFixture
) -> None:
    from jupyter_telemetry.sinks.otel import OTLPSettings
    from jupyter_telemetry.sinks.otel._sink import OTelSink

    service = unique()
    settings = OTLPSettings.resolve(collector.grpc_endpoint, "grpc", None, service, "x", 5.0)
    assert settings is not None
    sink = OTelSink(settings=settings)

    def emission(count: int, user: str) -> Emission:
        capsule = {
            "__timestamp__": "2024-01-01T00:00:00Z",
            "__schema__": SCHEMA_ID,
            "__schema_version__": "1",  # a forwarded jupyter_events capsule: str version
            "__metadata_version__": 1,
            **EVENT,
            "count": count,
            "user": user,
        }
        return Emission(capsule, json.dumps(capsule), 1704067200 * 10**9, SCHEMA_ID, "1")

    try:
        for count in range(6):  # a lone surrogate: valid JSON text, no valid UTF-8 string
            sink.emit(emission(count, "\ud800" if count in (1, 4) else "ada"))
        assert not sink.flush(10)  # not everything got through
        assert sink.dropped_by_reason["unencodable"] == 2
        assert sink.dropped == 2
        received = collector.wait_for_logs(4, predicate=of_service(service))
        assert sorted(r.body["count"] for r in received) == [0, 2, 3, 5]
        assert received[0].attributes["jupyter.event.schema_version"] == "1"
        reports = [r for r in caplog.records if "could not be made into" in r.getMessage()]
        assert len(reports) == 1, "reported once per streak"
    finally:
        sink.shutdown(2)


def test_replay_of_a_line_stamped_year_one_delivers_it_and_every_other_line(
    collector: Collector, tmp_path: Path
) -> None:
    service, path = unique(), tmp_path / "events.log"
    lines = []
    for count, stamp in enumerate(["0001-01-01T00:00:00Z", "2024-02-29T12:00:00Z", "9999-12-31T23:59:59.999999Z", "2024-03-01T00:00:00Z"]):  # fmt: skip
        lines.append(
            orjson.dumps(
                {
                    "__timestamp__": stamp,
                    "__schema__": SCHEMA_ID,
                    "__schema_version__": 1,
                    "__metadata_version__": 1,
                    **EVENT,
                    "count": count,
                }
            )
        )
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = subprocess.run(
        [
            sys.executable, "-m", "jupyter_telemetry", "replay", str(path),
            "--otlp-endpoint", collector.grpc_endpoint, "--service-name", service,
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "4 sent, 0 skipped, 0 failed" in result.stdout
    received = by_count(collector.wait_for_logs(4, predicate=of_service(service)))
    assert received[0].attributes[STAMP] == "0001-01-01T00:00:00Z"
    assert received[0].timestamp_ns == received[2].timestamp_ns == 0
    assert received[1].timestamp_ns == 1709208000 * 10**9


def test_an_applications_provider_gets_the_same_documented_forms(make_log: Any) -> None:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    log = make_log(logger_provider=provider)
    log.record_event(SCHEMA_ID, 1, {**EVENT, "count": 2**64 - 1, "context": nest(40)})
    log.record_event(SCHEMA_ID, 1, EVENT, timestamp_override=datetime(1000, 1, 1))
    assert log.flush(5)
    assert log.otel_dropped == 0
    big, old = exporter.get_finished_logs()
    assert big.log_record.body["count"] == str(2**64 - 1)
    assert old.log_record.timestamp is None
    assert old.log_record.attributes[STAMP] == "1000-01-01T00:00:00Z"
    encode_logs([big, old]).SerializeToString()  # what the application's exporter will do
