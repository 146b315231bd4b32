"""Lifetime of the OTel sink: nothing leaks, one exit bound, multiprocessing workers export."""

from __future__ import annotations

import gc
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from _collector import Collector
from conftest import PROTOCOLS, closed_port, endpoint, of_service, unique

from jupyter_telemetry import EventLog

TESTS = str(Path(__file__).parent)


def otel_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("jupyter_telemetry.otel")]


@pytest.mark.parametrize("reachable", [True, False], ids=["collector", "closed-port"])
def test_dropped_eventlogs_leave_no_thread(collector: Collector, reachable: bool) -> None:
    from conftest import EVENT, SCHEMA, SCHEMA_ID

    target = collector.grpc_endpoint if reachable else f"http://127.0.0.1:{closed_port()}"
    baseline = len(otel_threads())
    for _ in range(10):
        log = EventLog(allowed_schemas=[SCHEMA_ID], otlp_endpoint=target, otlp_timeout=1.0)
        log.register_schema(SCHEMA)
        log.record_event(SCHEMA_ID, 1, EVENT)
        del log
    gc.collect()
    deadline = time.monotonic() + 15  # hang guard: a dropped sink sends its queue, then ends
    while len(otel_threads()) > baseline and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(otel_threads()) == baseline, [t.name for t in otel_threads()]


def hung_collector() -> socket.socket:
    """Accepts connections and never answers."""
    server = socket.create_server(("127.0.0.1", 0), backlog=64)
    return server


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_exit_flushes_every_eventlog_together_within_one_shutdown_timeout(
    tmp_path: Path, protocol: str, figures: Any
) -> None:
    timeout = 3.0
    with hung_collector() as hung:
        program = textwrap.dedent(
            f"""
            import logging, sys, time
            sys.path.insert(0, {TESTS!r})
            from conftest import SCHEMA, SCHEMA_ID, EVENT
            from jupyter_telemetry import EventLog
            logs = []
            for n in range(3):
                log = EventLog(allowed_schemas=[SCHEMA_ID], shutdown_timeout={timeout},
                               otlp_endpoint="http://127.0.0.1:{hung.getsockname()[1]}",
                               otlp_protocol={protocol!r}, otlp_timeout=30)
                log.register_schema(SCHEMA)
                for count in range(100):
                    log.record_event(SCHEMA_ID, 1, {{**EVENT, "count": count}})
                logs.append(log)
            time.sleep(0.7)  # every worker has its batch in flight, hanging
            print(time.monotonic(), flush=True)
            """
        )
        process = subprocess.Popen(
            [sys.executable, "-c", program],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        out, err = process.communicate(timeout=60)
        exited = time.monotonic()
    assert process.returncode == 0, err
    seconds = exited - float(out.split()[-1])
    # one bound for all (plus the interpreter's own teardown), not one after another (3x)
    assert timeout <= seconds < 2 * timeout, f"exit took {seconds:.2f} s for 3 EventLogs"
    assert err.count("100 OpenTelemetry log record(s) were not delivered") == 3, err[-3000:]
    figures(
        protocol=protocol, eventlogs=3, shutdown_timeout=timeout, exit_seconds=round(seconds, 2)
    )


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_multiprocessing_fork_workers_export_what_they_recorded(
    collector: Collector, tmp_path: Path, protocol: str
) -> None:
    service = unique()
    program = textwrap.dedent(
        f"""
        import multiprocessing, sys
        sys.path.insert(0, {TESTS!r})
        from conftest import SCHEMA, SCHEMA_ID, EVENT
        from jupyter_telemetry import EventLog

        log = EventLog(allowed_schemas=[SCHEMA_ID], otlp_endpoint={endpoint(collector, protocol)!r},
                       otlp_protocol={protocol!r}, service_name={service!r})
        log.register_schema(SCHEMA)

        def task(n):
            log.record_event(SCHEMA_ID, 1, {{**EVENT, "count": n}})
            return n

        if __name__ == "__main__":
            pool = multiprocessing.get_context("fork").Pool(3)
            assert pool.map(task, range(60), chunksize=5) == list(range(60))
            pool.close()
            pool.join()
            print("ok")
        """
    )
    script = tmp_path / "pool.py"
    script.write_text(program)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    received = collector.wait_for_logs(60, predicate=of_service(service))
    assert sorted(r.body["count"] for r in received) == list(range(60))


def test_a_json_py_in_the_working_directory_does_not_break_export(
    collector: Collector, tmp_path: Path
) -> None:
    notebooks = tmp_path / "notebooks"  # where the application runs: a user's folder
    notebooks.mkdir()
    (notebooks / "json.py").write_text("raise SystemExit('the json.py of a notebooks folder')\n")
    service = unique()
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {TESTS!r})
            from conftest import SCHEMA, SCHEMA_ID, EVENT
            from jupyter_telemetry import EventLog
            log = EventLog(allowed_schemas=[SCHEMA_ID], otlp_endpoint={collector.grpc_endpoint!r},
                           service_name={service!r})
            log.register_schema(SCHEMA)
            log.record_event(SCHEMA_ID, 1, EVENT)
            assert log.flush(10), log.otel_dropped_by_reason
            """
        )
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=notebooks
    )
    assert result.returncode == 0, result.stderr
    assert len(collector.wait_for_logs(1, predicate=of_service(service))) == 1
