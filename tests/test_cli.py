"""The ``jupyter-telemetry`` command, run as users run it: a subprocess, real files,
a real OTLP collector."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
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
from hypothesis import given
from hypothesis import strategies as st

from jupyter_telemetry import EventLog, __version__, _capsule
from jupyter_telemetry._capsule import parse_timestamp
from jupyter_telemetry._pipeline import parse_line as emission_from_line
from jupyter_telemetry.cli import main

EXIT_CODES = {"0": "success", "1": "event", "2": "usage", "3": "schema", "4": "read", "5": "OTLP"}


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jupyter_telemetry", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def in_process(capsys: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess[str]:
    """``cli`` through ``main()`` in this process: for the matrices, where start-up dominates."""
    try:
        code = main(list(args))
    except SystemExit as exit_:  # --help and usage errors
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out, err)


@pytest.fixture
def schema_json(tmp_path: Path) -> Path:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(SCHEMA), encoding="utf-8")
    return path


@pytest.fixture
def schema_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "schema.yaml"
    path.write_text(yaml.safe_dump(SCHEMA), encoding="utf-8")
    return path


def write_json(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value), encoding="utf-8")
    return path


# -- validate ------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_validate_a_valid_schema(
    fmt: str, schema_json: Path, schema_yaml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = schema_json if fmt == "json" else schema_yaml
    result = in_process(capsys, "validate", str(path))
    assert result.returncode == 0, result.stderr
    assert f"{path}: schema {SCHEMA_ID!r} version 1 is valid" in result.stdout


def test_validate_events_from_files_and_json_text(schema_yaml: Path, tmp_path: Path) -> None:
    event_file = write_json(tmp_path / "event.json", EVENT)
    result = cli("validate", str(schema_yaml), str(event_file), json.dumps(EVENT))
    assert result.returncode == 0, result.stderr
    assert f"{event_file}: valid" in result.stdout
    assert "event argument 2: valid" in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"action": "open", "path": "/a", "extra": 1e400}', "NaN and Infinity"),
        ('{"action": "open", "path": "/a", "count": 18446744073709551616}', "serialised"),
        ('{"action": "open", "path": "/a", "user": "' + "x" * 1_000_001 + '"}', "max_event_size"),
    ],
    ids=["1e400", "2**64", "too-large"],
)
def test_validate_refuses_what_record_refuses(
    schema_json: Path, text: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in (
        ["validate", str(schema_json), text],
        ["record", "--schema", str(schema_json), "--version", "1", "--event", text],
    ):
        result = in_process(capsys, *command)
        assert result.returncode == 1, (command[0], result.stdout, result.stderr)
        assert reason in result.stderr


def test_invalid_event_is_exit_1_naming_file_schema_id_and_json_path(
    schema_json: Path, tmp_path: Path
) -> None:
    good = write_json(tmp_path / "good.json", EVENT)
    bad = write_json(tmp_path / "bad.json", {**EVENT, "context": {"cell": -1, "kernel": 3}})
    result = cli("validate", str(schema_json), str(bad), str(good))
    assert result.returncode == 1
    assert f"{good}: valid" in result.stdout  # every event is checked
    [message] = result.stderr.splitlines()
    assert message.startswith(f"jupyter-telemetry: {bad}: event for schema {SCHEMA_ID!r} version 1")
    assert "$.context.kernel" in message and 'is not of type "string"' in message


@pytest.mark.parametrize(
    ("event", "fragment"),
    [
        ({**EVENT, "__schema__": "x"}, "'__schema__' is reserved for the event capsule"),
        ([EVENT], "an event must be a JSON object, got list"),
        ({**EVENT, "count": -1}, "invalid at $.count: -1 is less than the minimum of 0"),
        ({"path": "/x"}, 'invalid at $: "action" is a required property'),
    ],
)
def test_events_record_event_would_refuse_are_invalid(
    schema_json: Path, event: Any, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = in_process(capsys, "validate", str(schema_json), json.dumps(event))
    assert result.returncode == 1
    assert "event argument 1: " in result.stderr and fragment in result.stderr


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"action": "open", "path": "/x", "count": 18446744073709551616}', "64-bit integers"),
        ('{"action": "open", "path": "/x", "count": 1e400}', "NaN and Infinity are not JSON"),
    ],
)
def test_numbers_a_json_line_cannot_hold_are_invalid_not_a_crash(
    schema_json: Path, text: str, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = in_process(capsys, "validate", str(schema_json), text)
    assert result.returncode == 1
    assert "cannot be serialised to JSON at $.count" in result.stderr
    assert fragment in result.stderr


@pytest.mark.parametrize(
    ("schema", "fragments"),
    [
        (
            {**SCHEMA, "properties": {"count": {"type": "integr"}}},
            ["is not a valid JSON Schema at $.properties.count.type", repr(SCHEMA_ID)],
        ),
        ({k: v for k, v in SCHEMA.items() if k != "$id"}, ["missing required key(s): '$id'"]),
        (
            {**SCHEMA, "properties": {"__secret": {"type": "string"}}},
            ["property '__secret'", "reserved for the event capsule"],
        ),
        ({**SCHEMA, "$ref": "https://example.org/s.json"}, ["remote schemas are never fetched"]),
        ([SCHEMA], ["a schema must be a JSON object"]),
    ],
)
def test_invalid_schema_is_exit_3_naming_the_file(
    tmp_path: Path, schema: Any, fragments: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_json(tmp_path / "broken-schema.json", schema)
    result = in_process(capsys, "validate", str(path), json.dumps(EVENT))
    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith(f"jupyter-telemetry: {path}: ")
    for fragment in fragments:
        assert fragment in result.stderr
    assert result.stdout == ""  # events are not checked against a broken schema


def test_cannot_read_is_exit_4(schema_json: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = cli("validate", str(missing))
    assert (result.returncode, result.stderr.strip()) == (
        4,
        f"jupyter-telemetry: cannot read {missing}: No such file or directory",
    )
    garbage = tmp_path / "garbage.yaml"
    garbage.write_text("{: [", encoding="utf-8")
    result = cli("validate", str(garbage))
    assert result.returncode == 4
    assert f"{garbage} is neither JSON nor YAML" in result.stderr
    # an unreadable event outranks an invalid one; both are reported
    result = cli(
        "validate", str(schema_json), "{not json", str(missing), json.dumps({"path": "/x"})
    )
    assert result.returncode == 4
    assert "event argument 1: not JSON" in result.stderr
    assert f"cannot read {missing}" in result.stderr
    assert "event argument 3: event for schema" in result.stderr


def test_non_standard_json_constants_are_refused(
    schema_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = '{"action": "open", "path": "/x", "count": NaN}'
    result = in_process(capsys, "validate", str(schema_json), event)
    assert result.returncode == 4
    assert "NaN is not valid JSON" in result.stderr


@pytest.mark.parametrize("command", [[], ["validate"], ["record"], ["replay"]])
def test_every_command_has_help_listing_the_exit_codes(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    result = in_process(capsys, *command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: jupyter-telemetry {' '.join(command)}".rstrip())
    codes = result.stdout.split("exit codes:")[1]
    for code, word in EXIT_CODES.items():
        assert f"  {code}  " in codes and word in codes
        # the word on that code's own line: swapped meanings must fail
        assert re.search(rf"^  {code}  .*{word}", codes, re.MULTILINE), (code, word)


def test_version_and_usage_errors() -> None:
    assert cli("--version").stdout.strip() == f"jupyter-telemetry {__version__}"
    assert cli().returncode == 2
    assert cli("validate").returncode == 2
    assert cli("record", "--schema", "s.json").returncode == 2


# -- record --------------------------------------------------------------------


def test_record_appends_one_line_to_the_file(schema_yaml: Path, tmp_path: Path) -> None:
    out = tmp_path / "events.log"
    for count in (1, 2):
        result = cli(
            "record", "--schema", str(schema_yaml), "--version", "1",
            "--event", json.dumps({**EVENT, "count": count}), "--to", str(out),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert result.stdout == ""
    lines = read_lines(out)
    assert [line["count"] for line in lines] == [1, 2]
    assert list(lines[0]) == [*_capsule.CAPSULE_KEYS, *EVENT]
    assert (lines[0]["__schema__"], lines[0]["__schema_version__"]) == (SCHEMA_ID, 1)


def test_record_without_to_writes_the_line_to_stdout(schema_json: Path, tmp_path: Path) -> None:
    event_file = write_json(tmp_path / "event.json", EVENT)
    result = cli(
        "record", "--schema", str(schema_json), "--version", "1", "--event", str(event_file)
    )
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    capsule = json.loads(line)
    assert {k: v for k, v in capsule.items() if not k.startswith("__")} == EVENT


def test_record_invalid_input_writes_nothing(schema_json: Path, tmp_path: Path) -> None:
    out = tmp_path / "events.log"
    base = ["record", "--schema", str(schema_json), "--to", str(out)]
    result = cli(*base, "--version", "1", "--event", json.dumps({**EVENT, "action": "delete"}))
    assert result.returncode == 1
    assert f"--event: event for schema {SCHEMA_ID!r} version 1 is invalid at $.action" in (
        result.stderr
    )
    result = cli(*base, "--version", "2", "--event", json.dumps(EVENT))
    assert result.returncode == 2
    assert "--version 2 is not the version" in result.stderr
    result = cli(*base, "--version", "1", "--event", str(tmp_path / "missing.json"))
    assert result.returncode == 4
    assert not out.exists() or out.read_text() == ""


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_record_exports_to_a_collector(
    collector: Collector, schema_json: Path, tmp_path: Path, protocol: str
) -> None:
    service, out = unique(), tmp_path / "events.log"
    result = cli(
        "record", "--schema", str(schema_json), "--version", "1", "--event", json.dumps(EVENT),
        "--to", str(out), "--otlp-endpoint", endpoint(collector, protocol),
        "--otlp-protocol", protocol, "--service-name", service,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [line] = read_lines(out)
    [record] = collector.wait_for_logs(1, predicate=of_service(service))
    assert record.event_name == SCHEMA_ID
    assert record.body == EVENT
    assert record.attributes == {
        "jupyter.event.schema_id": SCHEMA_ID,
        "jupyter.event.schema_version": 1,
        "jupyter.event.metadata_version": 1,
    }
    assert record.timestamp_ns == parse_timestamp(line["__timestamp__"])
    assert record.resource["service.name"] == service


def test_record_with_the_collector_down_is_exit_5(schema_json: Path, tmp_path: Path) -> None:
    out = tmp_path / "events.log"
    started = time.monotonic()
    result = cli(
        "record", "--schema", str(schema_json), "--version", "1", "--event", json.dumps(EVENT),
        "--to", str(out), "--otlp-endpoint", f"http://127.0.0.1:{closed_port()}", "--timeout", "1",
    )  # fmt: skip
    assert time.monotonic() - started < 30
    assert result.returncode == 5
    assert "did not accept the event" in result.stderr
    assert len(read_lines(out)) == 1  # the file still holds it


# -- replay --------------------------------------------------------------------

MOMENTS = [
    datetime(2024, 2, 29, 12, 0, 0, 123456, tzinfo=timezone.utc),
    datetime(2024, 3, 1, 0, 0, 0, tzinfo=timezone.utc),  # no fraction in the file
    datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
    None,  # now
]
EVENTS = [
    EVENT,
    {"action": "save", "path": "/ünïcode/ノート.ipynb", "tags": []},
    {"action": "close", "path": "/x", "context": {"cell": 0}, "message": ""},
    {**EVENT, "count": 2**62},
]


def record_live(
    path: Path, service: str, collector: Collector, protocol: str, marker: str
) -> list[ReceivedLog]:
    """Record EVENTS to ``path`` and to the collector; return the live records."""
    handler = logging.FileHandler(path, encoding="utf-8")
    log = EventLog(
        handlers=[handler],
        allowed_schemas=[SCHEMA_ID],
        otlp_endpoint=endpoint(collector, protocol),
        otlp_protocol=protocol,
        service_name=service,
    )
    log.register_schema(SCHEMA)
    for event, moment in zip(EVENTS, MOMENTS, strict=True):
        log.record_event(SCHEMA_ID, 1, {**event, "user": marker}, timestamp_override=moment)
    log.shutdown(10)
    handler.close()
    assert log.otel_dropped == 0
    return collector.wait_for_logs(len(EVENTS), predicate=of_service(service))


def comparable(record: ReceivedLog) -> str:
    """Everything but the observed time, with key order (json.dumps keeps it)."""
    return json.dumps(dataclasses.asdict(dataclasses.replace(record, observed_timestamp_ns=0)))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_replay_sends_the_records_the_live_bridge_sent(
    collector: Collector, tmp_path: Path, protocol: str
) -> None:
    service, path = unique(), tmp_path / "events.log"
    live = record_live(path, service, collector, protocol, marker=service)
    stamps = [line["__timestamp__"] for line in read_lines(path)]
    assert stamps[:3] == [
        "2024-02-29T12:00:00.123456Z",
        "2024-03-01T00:00:00Z",
        "1999-12-31T23:59:59.999999Z",
    ]

    # service.instance.id is a random id per process; pin it to the live one
    instance = live[0].resource["service.instance.id"]
    result = cli(
        "replay", str(path), "--otlp-endpoint", endpoint(collector, protocol),
        "--otlp-protocol", protocol, "--service-name", service,
        env={"OTEL_RESOURCE_ATTRIBUTES": f"service.instance.id={instance}"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"{path}: 4 sent, 0 skipped, 0 failed in " in result.stdout
    received = collector.wait_for_logs(2 * len(EVENTS), predicate=of_service(service))
    assert len(received) == 2 * len(EVENTS)
    replayed = received[len(EVENTS) :]
    assert [comparable(r) for r in replayed] == [comparable(r) for r in live]
    assert [r.timestamp_ns for r in replayed] == [parse_timestamp(s) for s in stamps]
    assert replayed[0].timestamp_ns == 1709208000_123456000
    assert replayed[1].timestamp_ns == 1709251200_000000000
    assert replayed[3].body["count"] == 2**62
    assert all(r.observed_timestamp_ns > r.timestamp_ns for r in replayed)


def test_an_unparseable_line_is_an_error_naming_it_and_nothing_is_sent(
    collector: Collector, tmp_path: Path
) -> None:
    service, path = unique(), tmp_path / "events.log"
    record_live(path, service, collector, "grpc", marker=service)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines.insert(2, '{"__timestamp__": "2024-02-29 12:00:00", "half": \n')
    lines.insert(4, "not json at all\n")
    path.write_text("".join(lines), encoding="utf-8")
    args = ["replay", str(path), "--otlp-endpoint", collector.grpc_endpoint]

    result = cli(*args, "--service-name", service + "-refused")
    assert result.returncode == 4
    assert f"{path}:3: cannot replay this line" in result.stderr
    assert "nothing was sent" in result.stderr

    result = cli(*args, "--service-name", service + "-skipping", "--skip-invalid")
    assert result.returncode == 0, result.stderr
    assert f"{path}: 4 sent, 2 skipped, 0 failed" in result.stdout
    assert f"{path}:3: skipped: " in result.stderr and f"{path}:5: skipped: " in result.stderr
    collector.wait_for_logs(4, predicate=of_service(service + "-skipping"))
    assert not [r for r in collector.logs() if of_service(service + "-refused")(r)]


def test_replay_with_the_collector_down_is_exit_5_counting_failures(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    path.write_text(
        "".join(
            json.dumps({"__timestamp__": f"2024-01-01T00:00:0{i}Z", "__schema__": SCHEMA_ID,
                        "__schema_version__": 1, "__metadata_version__": 1, **EVENT}) + "\n"
            for i in range(3)
        ),
        encoding="utf-8",
    )  # fmt: skip
    result = cli(
        "replay", str(path), "--otlp-endpoint", f"http://127.0.0.1:{closed_port()}",
        "--timeout", "1",
    )  # fmt: skip
    assert result.returncode == 5
    assert "0 sent, 0 skipped, 3 failed" in result.stdout
    assert "did not accept 3 record(s)" in result.stderr


def test_backpressure_never_drops_a_record_for_a_full_queue(
    collector: Collector, tmp_path: Path
) -> None:
    service, path = unique(), tmp_path / "events.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    log = EventLog(handlers=[handler], allowed_schemas=[SCHEMA_ID])
    log.register_schema(SCHEMA)
    for count in range(3000):
        log.record_event(SCHEMA_ID, 1, {**EVENT, "count": count})
    handler.close()
    # a queue of 8: without backpressure nearly all of the 3000 would be dropped
    result = cli(
        "replay", str(path), "--otlp-endpoint", collector.grpc_endpoint,
        "--service-name", service, "--queue-size", "8", "--progress",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "3000 sent, 0 skipped, 0 failed" in result.stdout
    assert "100%  3,000 lines, 3,000 sent\n" in result.stderr  # the progress bar's last frame
    received = collector.wait_for_logs(3000, predicate=of_service(service))
    assert sorted(r.body["count"] for r in received) == list(range(3000))


@pytest.mark.slow
def test_replay_of_100_000_lines_delivers_every_line(
    collector: Collector,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    record_property: Any,
) -> None:
    lines, service, path = 100_000, unique(), tmp_path / "events.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    log = EventLog(handlers=[handler], allowed_schemas=[SCHEMA_ID])
    log.register_schema(SCHEMA)
    for count in range(lines):
        log.record_event(SCHEMA_ID, 1, {**EVENT, "count": count})
    handler.close()

    started = time.monotonic()
    result = cli(
        "replay", str(path), "--otlp-endpoint", collector.grpc_endpoint, "--service-name", service,
        timeout=600,
    )  # fmt: skip
    replay_seconds = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert f"{lines} sent, 0 skipped, 0 failed" in result.stdout
    received = collector.wait_for_logs(lines, timeout=300, predicate=of_service(service))
    delivered_seconds = time.monotonic() - started
    assert sorted(r.body["count"] for r in received) == list(range(lines))
    record_property("replay_lines_delivered", len(received))
    record_property("replay_seconds", round(replay_seconds, 2))
    with capsys.disabled():
        print(
            f"\nreplay: {len(received)} of {lines} lines delivered; the command took "
            f"{replay_seconds:.1f} s, all received by the collector after {delivered_seconds:.1f} s "
            f"({result.stdout.strip()})"
        )


# -- the line and timestamp parsers (in process) --------------------------------


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31)))
def test_parse_timestamp_inverts_the_capsule_timestamp(moment: datetime) -> None:
    time_ns, text = _capsule.timestamp(moment)
    assert parse_timestamp(text) == time_ns


@pytest.mark.parametrize(
    ("text", "time_ns"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("2024-02-29T12:00:00.5Z", 1709208000_500000000),
        ("2024-02-29T12:00:00.000000001Z", 1709208000_000000001),
        ("2024-02-29T12:00:00.123456789Z", 1709208000_123456789),
        # jupyter-telemetry 0.1.0 wrote an aware override as isoformat() + "Z"
        ("2024-02-29T12:00:00.123456+00:00Z", 1709208000_123456000),
        ("2024-02-29T14:30:00+02:30Z", 1709208000_000000000),
        ("2024-02-29T09:30:00-02:30Z", 1709208000_000000000),
        ("2024-02-29T12:00:00-00:00Z", 1709208000_000000000),
    ],
)
def test_parse_timestamp_is_exact_to_the_nanosecond(text: str, time_ns: int) -> None:
    assert parse_timestamp(text) == time_ns


@given(
    st.integers(-(10**9) * 86400 * 365, 253402300799 * 10**9)
    | st.integers(-(10**9), 2 * 10**9)  # around 1970: the first second, and before
)
def test_timestamp_now_is_isoformat_of_the_clock(clock_ns: int) -> None:
    # The per-second cache and the digit slicing must give what isoformat gives,
    # for any clock a machine can have (one set to 1970 at boot, one before it).
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(time, "time_ns", lambda: clock_ns)
        time_ns, text = _capsule.timestamp()
    micros = clock_ns // 1000
    expected = (datetime(1970, 1, 1) + timedelta(microseconds=micros)).isoformat() + "Z"
    assert (time_ns, text) == (micros * 1000, expected)
    assert parse_timestamp(text) == time_ns


def _parsed_or_error(text: str) -> int | str:
    try:
        return parse_timestamp(text)
    except ValueError as exc:
        return str(exc)


@given(
    st.sampled_from(["2024-02-29T12:00:00", "2024-02-29T12:00:01", "1970-01-01T00:00:00"]),
    st.text(alphabet="0123456789.+-:Z\u0663\uff10", max_size=16),
)
def test_parse_timestamp_reads_a_second_it_has_seen_as_it_reads_a_new_one(
    prefix: str, tail: str
) -> None:
    # The second parsed last is cached: a text with that prefix must read exactly
    # as the full parser reads it, valid or not.
    parse_timestamp(prefix + "Z")  # the prefix is now the cached second
    warm = _parsed_or_error(prefix + tail)
    parse_timestamp("2000-01-01T00:00:00Z")  # another second: the full parser runs
    assert warm == _parsed_or_error(prefix + tail)


@pytest.mark.parametrize(
    "text",
    [
        "2024-02-29T12:00:00+00:00",
        "2024-02-29T12:00:00+0000Z",
        "2024-02-29 12:00:00Z",
        "2024-02-29T12:00:00",
        "2024-02-30T12:00:00Z",
        "2024-02-29T12:00:00.1234567890Z",
        "2024-02-29T12:00:00.Z",
        "\uff12\uff10\uff12\uff14-02-29T12:00:00Z",  # fullwidth digits
    ],
)
def test_parse_timestamp_refuses_other_forms(text: str) -> None:
    with pytest.raises(ValueError, match="__timestamp__"):
        parse_timestamp(text)


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        (b"", "empty"),
        (b"[1, 2]", "not a JSON object but list"),
        (b'{"__timestamp__": "1970-01-01T00:00:00Z"}', "missing __schema__"),
        (
            b'{"__timestamp__": "1970-01-01T00:00:00Z", "__schema__": "", '
            b'"__schema_version__": 1, "__metadata_version__": 1}',
            "__schema__ must be a non-empty string",
        ),
        (
            b'{"__timestamp__": "1970-01-01T00:00:00Z", "__schema__": "s", '
            b'"__schema_version__": true, "__metadata_version__": 1}',
            "__schema_version__ must be an int or a string",
        ),
        (
            b'{"__timestamp__": "1970-01-01T00:00:00Z", "__schema__": "s", '
            b'"__schema_version__": 1, "__metadata_version__": 2}',
            "__metadata_version__ 2 is not 1",
        ),
        (b"\xff\xfe", "utf-8"),
    ],
)
def test_lines_that_cannot_be_replayed(line: bytes, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        emission_from_line(line)


def test_a_line_becomes_the_emission_record_event_built(
    eventlog: EventLog, events_file: Path
) -> None:
    capsule = eventlog.record_event(SCHEMA_ID, 1, EVENT, timestamp_override=MOMENTS[0])
    raw = events_file.read_bytes()
    emission = emission_from_line(raw)
    assert emission.capsule == capsule
    assert emission.line == raw.decode().rstrip("\n")
    assert (emission.schema_id, emission.version) == (SCHEMA_ID, 1)
    assert emission.time_ns == _capsule.timestamp(MOMENTS[0])[0]
