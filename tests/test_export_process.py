"""The export process: started on demand, replaced when it dies, never outliving its parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _collector import Collector
from conftest import EVENT, SCHEMA, SCHEMA_ID, closed_port, read_lines, unique

from jupyter_telemetry import EventLog


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not alive(pid)


def export_pid(log: EventLog) -> int:
    sink = log._otel
    assert sink is not None and sink._pipeline is not None
    pid = sink._pipeline.pid  # type: ignore[attr-defined]
    assert isinstance(pid, int)
    return pid


def new_log(collector: Collector) -> tuple[EventLog, str]:
    """An EventLog exporting to ``collector`` under a service name of its own."""
    service = unique()
    log = EventLog(
        handlers=[],
        allowed_schemas=[SCHEMA_ID],
        otlp_endpoint=collector.grpc_endpoint,
        service_name=service,
    )
    log.register_schema(SCHEMA)
    return log, service


def exporting_log(collector: Collector) -> tuple[EventLog, str]:
    """:func:`new_log`, once its export process has delivered event 0."""
    log, service = new_log(collector)
    log.record_event(SCHEMA_ID, 1, {**EVENT, "count": 0})
    assert log.flush(20)
    return log, service


def test_no_process_before_the_first_batch_and_none_after_shutdown(collector: Collector) -> None:
    log, service = new_log(collector)
    sink = log._otel
    assert sink is not None and sink._pipeline is not None
    assert sink._pipeline.pid is None  # type: ignore[attr-defined]
    log.record_event(SCHEMA_ID, 1, EVENT)
    assert log.flush(20)
    pid = export_pid(log)
    assert pid != os.getpid() and alive(pid)
    log.shutdown(5)
    assert wait_gone(pid, 2), "the export process outlived shutdown()"
    assert collector.wait_for_logs(1, predicate=lambda r: r.resource.get("service.name") == service)


def test_a_killed_export_process_is_replaced_and_its_batch_counted(
    collector: Collector, caplog: pytest.LogCaptureFixture
) -> None:
    log, service = exporting_log(collector)
    first = export_pid(log)
    os.kill(first, signal.SIGKILL)
    assert wait_gone(first, 5)
    log.record_event(SCHEMA_ID, 1, {**EVENT, "count": 1})  # finds the process dead: lost
    assert not log.flush(20)
    assert log.otel_dropped == 1
    time.sleep(1.1)  # a new process is started a second after a failure
    log.record_event(SCHEMA_ID, 1, {**EVENT, "count": 2})
    assert log.flush(20)
    second = export_pid(log)
    assert second != first
    received = collector.wait_for_logs(
        2, predicate=lambda r: r.resource.get("service.name") == service
    )
    assert sorted(r.body["count"] for r in received) == [0, 2]
    assert {r.resource["service.instance.id"] for r in received} == {
        received[0].resource["service.instance.id"]
    }, "a replacement process changed the resource"
    log.shutdown(5)
    assert caplog.text.count("the OTLP export process failed (it exited with status -9)") == 1
    assert "1 OpenTelemetry log record(s) were not delivered" in caplog.text


def test_a_python_that_cannot_start_loses_only_the_otel_copy(tmp_path: Path) -> None:
    program = textwrap.dedent(
        f"""
        import logging, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from conftest import SCHEMA, SCHEMA_ID, EVENT
        from jupyter_telemetry import EventLog
        logging.basicConfig()
        sys.executable = {str(tmp_path / "no-such-python")!r}
        log = EventLog(handlers=[logging.FileHandler("events.log")], allowed_schemas=[SCHEMA_ID],
                       otlp_endpoint="http://127.0.0.1:{closed_port()}")
        log.register_schema(SCHEMA)
        for count in range(20):
            log.record_event(SCHEMA_ID, 1, {{**EVENT, "count": count}})
        print(log.flush(5), log.otel_dropped)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "20"]
    assert result.stderr.count("could not start it with") == 1, result.stderr
    assert "20 OpenTelemetry log record(s) were not delivered" in result.stderr
    assert [x["count"] for x in read_lines(tmp_path / "events.log")] == list(range(20))


def test_the_export_process_does_not_outlive_a_killed_parent(
    collector: Collector, tmp_path: Path
) -> None:
    program = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from conftest import SCHEMA, SCHEMA_ID, EVENT
        from jupyter_telemetry import EventLog
        log = EventLog(handlers=[], allowed_schemas=[SCHEMA_ID],
                       otlp_endpoint={collector.grpc_endpoint!r})
        log.register_schema(SCHEMA)
        log.record_event(SCHEMA_ID, 1, EVENT)
        assert log.flush(20)
        print(log._otel._pipeline.pid, flush=True)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", program], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        assert parent.stdout is not None
        helper = int(parent.stdout.readline())
        assert alive(helper)
        parent.kill()  # no atexit, no shutdown(): only the closed pipe tells the helper
        parent.wait()
        assert wait_gone(helper, 10), "the export process was orphaned"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_ctrl_c_in_the_terminal_leaves_the_export_process_to_its_parent(
    collector: Collector,
) -> None:
    log, _ = exporting_log(collector)
    pid = export_pid(log)
    os.kill(pid, signal.SIGINT)  # what a terminal sends the whole process group
    assert not wait_gone(pid, 1.0), "the export process died of SIGINT"
    log.record_event(SCHEMA_ID, 1, {**EVENT, "count": 1})
    assert log.flush(20)
    assert export_pid(log) == pid and log.otel_dropped == 0
    log.shutdown(5)
