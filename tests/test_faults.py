"""Faults: failing handlers, a collector that dies, comes back or never comes, fork()."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import random
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from _collector import Collector
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

from jupyter_telemetry import EventLog
from jupyter_telemetry.sinks.logging import ReportOncePerStreak


def test_full_disk_handler_is_reported_per_failure_and_harms_nothing_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    full = logging.FileHandler("/dev/full")  # a real device: every write fails with ENOSPC
    good = logging.FileHandler(tmp_path / "events.log")
    log = EventLog(handlers=[full, good], allowed_schemas=[SCHEMA_ID])
    log.register_schema(SCHEMA)
    for count in range(10):
        assert log.record_event(SCHEMA_ID, 1, {**EVENT, "count": count}) is not None
    good.close()
    assert [x["count"] for x in read_lines(tmp_path / "events.log")] == list(range(10))
    err = capsys.readouterr().err
    assert err.count("--- Logging error ---") == 10, "as for any logger: per failed record"
    assert "No space left on device" in err


class QuietFileHandler(ReportOncePerStreak, logging.FileHandler):
    pass


def test_report_once_per_streak_is_an_opt_in_mixin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    full = QuietFileHandler("/dev/full")
    good = logging.FileHandler(tmp_path / "events.log")
    log = EventLog(handlers=[full, good], allowed_schemas=[SCHEMA_ID])
    log.register_schema(SCHEMA)
    for count in range(100):
        assert log.record_event(SCHEMA_ID, 1, {**EVENT, "count": count}) is not None
    good.close()
    assert [x["count"] for x in read_lines(tmp_path / "events.log")] == list(range(100))
    err = capsys.readouterr().err
    assert err.count("--- Logging error ---") == 1, err[:2000]
    assert "No space left on device" in err


def test_a_failure_streak_that_ends_and_starts_again_is_reported_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    class Flaky(ReportOncePerStreak, logging.Handler):
        broken = True

        def emit(self, record: logging.LogRecord) -> None:
            try:
                if self.broken:
                    raise OSError("disk full")
            except OSError:
                self.handleError(record)

    flaky = Flaky()
    log = EventLog(handlers=[flaky], allowed_schemas=[SCHEMA_ID])
    log.register_schema(SCHEMA)
    for broken in (True, True, False, True, True):
        flaky.broken = broken
        log.record_event(SCHEMA_ID, 1, EVENT)
    assert capsys.readouterr().err.count("--- Logging error ---") == 2


def test_a_plain_stream_whose_failures_stop_and_start_is_reported_per_streak(
    capsys: pytest.CaptureFixture[str],
) -> None:
    class Disk(io.StringIO):
        broken = False

        def write(self, text: str) -> int:
            if self.broken:
                raise OSError(28, "No space left on device")
            return super().write(text)

    class QuietStreamHandler(ReportOncePerStreak, logging.StreamHandler):  # type: ignore[type-arg]
        pass

    disk = Disk()
    good = io.StringIO()
    log = EventLog(
        handlers=[QuietStreamHandler(disk), logging.StreamHandler(good)],
        allowed_schemas=[SCHEMA_ID],
    )
    log.register_schema(SCHEMA)
    for count, broken in enumerate((True, True, False, True, True, False)):
        disk.broken = broken
        log.record_event(SCHEMA_ID, 1, {**EVENT, "count": count})
    assert capsys.readouterr().err.count("--- Logging error ---") == 2
    assert [json.loads(x)["count"] for x in disk.getvalue().splitlines()] == [2, 5]
    assert [json.loads(x)["count"] for x in good.getvalue().splitlines()] == list(range(6))


# -- helpers --------------------------------------------------------------------


def otlp_log(otlp_endpoint: str, **traits: Any) -> EventLog:
    """An EventLog recording the test schema over OTLP (and to ``handlers``, if given)."""
    log = EventLog(
        handlers=traits.pop("handlers", []),
        allowed_schemas=[SCHEMA_ID],
        otlp_endpoint=otlp_endpoint,
        **traits,
    )
    log.register_schema(SCHEMA)
    return log


# -- a handler that fails --------------------------------------------------------


def test_a_failing_handler_does_not_keep_events_from_the_collector(
    collector: Collector, tmp_path: Path, capsys: pytest.CaptureFixture[str], figures: Any
) -> None:
    full = QuietFileHandler("/dev/full")  # every write fails with ENOSPC
    good = logging.FileHandler(tmp_path / "events.log")
    service = unique()
    log = otlp_log(collector.grpc_endpoint, handlers=[full, good], service_name=service)
    for count in range(100):
        assert log.record_event(SCHEMA_ID, 1, {**EVENT, "count": count}) is not None
    assert log.flush(10)
    log.shutdown(5)
    good.close()
    with contextlib.suppress(OSError):  # closing flushes, and /dev/full refuses that too
        full.close()
    received = collector.wait_for_logs(100, predicate=of_service(service))
    assert sorted(r.body["count"] for r in received) == list(range(100))
    assert [x["count"] for x in read_lines(tmp_path / "events.log")] == list(range(100))
    assert log.otel_dropped == 0
    err = capsys.readouterr().err
    assert err.count("--- Logging error ---") == 1, err[:2000]
    figures(offered=100, written_good_file=100, written_dev_full=0, delivered=len(received))


# -- the collector dies mid-stream and comes back ----------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_collector_killed_mid_stream_loses_only_counted_records_and_replay_recovers_all(
    tmp_path: Path, protocol: str, figures: Any
) -> None:
    collector = Collector(tmp_path / "collector")
    collector.start()
    try:
        service, path = unique(), tmp_path / "events.log"
        handler = logging.FileHandler(path, encoding="utf-8")
        log = otlp_log(
            endpoint(collector, protocol),
            handlers=[handler],
            otlp_protocol=protocol,
            service_name=service,
            otlp_timeout=1.0,
        )
        offered = 0

        def stream(seconds: float) -> None:  # a steady stream, ~1,000 events a second
            nonlocal offered
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                log.record_event(SCHEMA_ID, 1, {**EVENT, "count": offered})
                offered += 1
                time.sleep(0.001)

        started = time.monotonic()
        stream(2.0)
        before_kill = offered
        # rotel acknowledges a request on receipt and writes it up to 200 ms later:
        # killed in between, it loses records the exporter rightly counts as delivered.
        # So the kill comes once everything acknowledged is written; what is
        # recorded from then on meets a dead collector.
        assert log.flush(10)
        sink = log._otel
        assert sink is not None
        collector.wait_for_logs(sink.exported, predicate=of_service(service))
        collector.stop(kill=True)  # SIGKILL: no goodbye, connections reset
        stream(3.0)
        during_outage = offered - before_kill
        collector.start()  # same ports
        stream(3.0)
        log.flush(30)
        log.shutdown(10)
        handler.close()
        live_seconds = time.monotonic() - started

        assert [line["count"] for line in read_lines(path)] == list(range(offered))
        live = Counter(r.body["count"] for r in collector.logs() if of_service(service)(r))
        dropped = log.otel_dropped
        sink = log._otel
        assert sink is not None
        missing = offered - len(live)
        # every record the collector lacks was counted as not delivered
        assert missing <= dropped, (missing, dropped)
        assert len(live) + dropped >= offered

        replay_started = time.monotonic()
        result = subprocess.run(
            [
                sys.executable, "-m", "jupyter_telemetry", "replay", str(path),
                "--otlp-endpoint", endpoint(collector, protocol), "--otlp-protocol", protocol,
                "--service-name", service,
            ],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        replay_seconds = time.monotonic() - replay_started
        assert result.returncode == 0, result.stderr
        assert f"{offered} sent, 0 skipped, 0 failed" in result.stdout
        collector.wait_for_log_count(sum(live.values()) + offered, timeout=60)
        after = Counter(r.body["count"] for r in collector.logs() if of_service(service)(r))
        assert set(after) == set(range(offered)), "replay did not bring the collector to 100%"
    finally:
        collector.stop()
    figures(
        protocol=protocol,
        offered=offered,
        offered_during_outage=during_outage,
        written_file=offered,
        delivered_live_distinct=len(live),
        delivered_live_duplicates=sum(live.values()) - len(live),
        dropped=dropped,
        dropped_by_reason=log.otel_dropped_by_reason,
        accounting_exact=len(live) + dropped == offered,
        replayed=offered,
        recovered_distinct=len(after),
        live_seconds=round(live_seconds, 2),
        replay_seconds=round(replay_seconds, 2),
    )


# -- the collector never comes ----------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("events", [50, 5000])
def test_collector_never_up_exit_is_bounded_by_shutdown_timeout_and_reports_drops(
    tmp_path: Path, protocol: str, events: int, figures: Any
) -> None:
    shutdown_timeout = 1.0
    program = textwrap.dedent(
        f"""
        import logging, sys, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from conftest import SCHEMA, SCHEMA_ID, EVENT
        from jupyter_telemetry import EventLog
        log = EventLog(handlers=[logging.FileHandler("events.log")], allowed_schemas=[SCHEMA_ID],
                       otlp_endpoint="http://127.0.0.1:{closed_port()}", otlp_protocol={protocol!r},
                       shutdown_timeout={shutdown_timeout})
        log.register_schema(SCHEMA)
        for count in range({events}):
            log.record_event(SCHEMA_ID, 1, {{**EVENT, "count": count}})
        print(time.monotonic(), flush=True)  # recording finished
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
    exited = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process on the machine
    assert process.returncode == 0, err
    elapsed = exited - float(out.split()[-1])
    assert elapsed < shutdown_timeout + 1.0, f"exit took {elapsed:.2f} s after recording"
    assert f"{events} OpenTelemetry log record(s) were not delivered" in err, err[-2000:]
    assert len((tmp_path / "events.log").read_text().splitlines()) == events
    figures(
        protocol=protocol,
        offered=events,
        written_file=events,
        delivered=0,
        dropped_reported=events,
        shutdown_timeout=shutdown_timeout,
        exit_seconds_after_recording=round(elapsed, 2),
    )


# -- os.fork() ----------------------------------------------------------------------


def _users(collector: Collector, service: str) -> Counter[tuple[str, int]]:
    return Counter(
        (r.body["user"], r.body["count"]) for r in collector.logs() if of_service(service)(r)
    )


class HoldingProxy:
    """A TCP proxy to a collector port that holds every connection until released."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.holding = threading.Event()  # a request's first bytes arrived and are held
        self.release = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client, contextlib.suppress(OSError):
            first = client.recv(65536)
            self.holding.set()
            self.release.wait()
            with socket.create_connection(("127.0.0.1", self.upstream)) as upstream:
                upstream.sendall(first)
                back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
                back.start()
                _pump(client, upstream)
                back.join(10)

    def close(self) -> None:
        self.release.set()
        self.server.close()


def _pump(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
        target.shutdown(socket.SHUT_WR)


# The application, in a process of its own: gRPC reads its settings once per process.
# It records 600 events (a batch of 512 is held in flight), forks when told to, and the
# child records 100 events, flushes, writes what it saw and exits normally.
_FORKING_APP = """
import json, logging, os, sys, time
sys.path.insert(0, {tests!r})
from conftest import EVENT, SCHEMA, SCHEMA_ID
from jupyter_telemetry import EventLog

class Warnings(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []
    def emit(self, record):
        self.messages.append(record.getMessage())

warnings = Warnings()
logging.getLogger("jupyter_telemetry").addHandler(warnings)
log = EventLog(handlers=[logging.FileHandler("events.log")], allowed_schemas=[SCHEMA_ID],
               otlp_endpoint={endpoint!r}, otlp_protocol={protocol!r}, service_name={service!r},
               otlp_timeout=15.0)
log.register_schema(SCHEMA)
for count in range(600):
    log.record_event(SCHEMA_ID, 1, {{**EVENT, "user": "parent-before", "count": count}})
sys.stdin.readline()  # the first batch is held in flight
if {forget_env}:  # gRPC read it at start-up; from here only the call in flight tells
    del os.environ["GRPC_ENABLE_FORK_SUPPORT"]
started = time.monotonic()
pid = os.fork()
if pid == 0:
    warnings.messages.clear()
    for count in range(100):
        log.record_event(SCHEMA_ID, 1, {{**EVENT, "user": "child", "count": count}})
    flushed = log.flush(10)
    state = dict(flushed=flushed, dropped=log.otel_dropped_by_reason, warnings=warnings.messages)
    with open("child.json", "w") as out:
        json.dump(state, out)
    sys.exit(0)  # a normal exit: atexit hooks and finalisers run in the child
print(time.monotonic() - started, flush=True)
sys.stdin.readline()  # the held batch was released
for count in range(100):
    log.record_event(SCHEMA_ID, 1, {{**EVENT, "user": "parent-after", "count": count}})
flushed = log.flush(20)
_, status = os.waitpid(pid, 0)
print(json.dumps(dict(flushed=flushed, child_exit=os.waitstatus_to_exitcode(status))), flush=True)
log.shutdown(5)
"""


# gRPC's own fork handling (its event engine's) crashes some children forked during a call
# even if they never call gRPC (about 1 in 4 here, grpcio 1.85). GRPC_ENABLE_FORK_SUPPORT=false,
# gRPC's documented setting for children that do not use it, leaves them alone: with it, what
# is left to test is ours.
@pytest.mark.parametrize(
    ("protocol", "grpc_env", "forget_env"),
    [
        ("http/protobuf", {}, False),
        ("grpc", {"GRPC_ENABLE_FORK_SUPPORT": "false"}, False),
        ("grpc", {"GRPC_ENABLE_FORK_SUPPORT": "false"}, True),
    ],
    ids=["http", "grpc-fork-support-off", "grpc-call-in-flight"],
)
def test_a_fork_never_waits_for_an_export_in_flight_and_each_event_arrives_once(
    collector: Collector,
    protocol: str,
    grpc_env: dict[str, str],
    forget_env: bool,
    tmp_path: Path,
    figures: Any,
) -> None:
    upstream = int(endpoint(collector, protocol).rsplit(":", 1)[1])
    proxy = HoldingProxy(upstream)
    service = unique()
    program = _FORKING_APP.format(
        tests=str(Path(__file__).parent),
        endpoint=f"http://127.0.0.1:{proxy.port}",
        protocol=protocol,
        service=service,
        forget_env=forget_env,
    )
    env = {**os.environ, **grpc_env}
    app = subprocess.Popen(
        [sys.executable, "-c", program],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    try:
        assert app.stdin is not None and app.stdout is not None
        assert proxy.holding.wait(10), "the first batch never went out"
        app.stdin.write("fork\n")
        app.stdin.flush()
        fork_seconds = float(app.stdout.readline() or "nan")
        proxy.release.set()
        app.stdin.write("released\n")
        app.stdin.flush()
        out, err = app.communicate(timeout=90)
    finally:
        app.kill()
        proxy.close()
    assert app.returncode == 0, err[-3000:]
    assert fork_seconds < 1.0, f"fork() took {fork_seconds:.2f} s with an export held"
    parent = json.loads(out.splitlines()[-1])
    assert parent["child_exit"] == 0, f"the child died: {parent}\n{err[-3000:]}"
    assert parent["flushed"], err[-3000:]
    child = json.loads((tmp_path / "child.json").read_text())
    lines = read_lines(tmp_path / "events.log")
    assert sorted(x["count"] for x in lines if x["user"] == "child") == list(range(100))
    expected = {"parent-before": 600, "parent-after": 100}
    if protocol == "grpc":  # gRPC is unusable in this child: said once, counted, not sent
        assert not child["flushed"]
        assert child["dropped"].get("grpc_unsafe_after_fork") == 100, child
        assert sum(child["dropped"].values()) == 100, child
        why = [w for w in child["warnings"] if "grpc_unsafe_after_fork" in w]
        assert len(why) == 1, child["warnings"]
        reason = (
            "forked while a gRPC export was in flight" if forget_env else "gRPC fork support is off"
        )
        assert reason in why[0], why
    else:
        assert child["flushed"] and sum(child["dropped"].values()) == 0, child
        assert child["warnings"] == [], child
        expected["child"] = 100
    collector.wait_for_logs(sum(expected.values()), predicate=of_service(service))
    time.sleep(0.5)  # anything sent twice or by the child arrives by now
    received = _users(collector, service)
    assert max(received.values()) == 1, "an event arrived twice"
    assert Counter(user for user, _ in received) == expected
    figures(
        protocol=protocol,
        grpc_env=grpc_env,
        env_forgotten_before_fork=forget_env,
        fork_seconds=round(fork_seconds, 3),
        offered=800,
        delivered_distinct=len(received),
        child_dropped=child["dropped"],
        duplicates=sum(received.values()) - len(received),
    )


def test_a_fork_does_not_wait_for_an_exporter_retrying_a_dead_collector(figures: Any) -> None:
    log = otlp_log(f"http://127.0.0.1:{closed_port()}", otlp_timeout=5.0)
    sink = log._otel
    assert sink is not None
    core = sink._core
    for count in range(600):  # a batch of 512 goes out at once and is retried
        log.record_event(SCHEMA_ID, 1, {**EVENT, "count": count})
    deadline = time.monotonic() + 10
    while core.taken == core.settled and time.monotonic() < deadline:
        time.sleep(0.001)
    assert core.taken > core.settled, "the batch never went out"
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    fork_seconds = time.monotonic() - started
    os.waitpid(pid, 0)
    in_flight = core.taken > core.settled
    log.shutdown(0.5)
    assert in_flight, "the export ended before the fork could be measured"
    assert fork_seconds < 1.0, f"fork waited {fork_seconds:.2f} s for an export under way"
    figures(fork_seconds=round(fork_seconds, 3), otlp_timeout=5.0, export_in_flight=512)


def test_a_fork_does_not_wait_for_an_applications_provider_exporting(figures: Any) -> None:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

    with socket.create_server(("127.0.0.1", 0)) as hung:  # accepts, never answers
        provider = LoggerProvider(shutdown_on_exit=False)
        exporter = OTLPLogExporter(
            endpoint=f"http://127.0.0.1:{hung.getsockname()[1]}/v1/logs", timeout=4
        )
        provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        log = EventLog(handlers=[], allowed_schemas=[SCHEMA_ID], logger_provider=provider)
        log.register_schema(SCHEMA)
        log.record_event(SCHEMA_ID, 1, EVENT)  # our worker emits; the app's export hangs
        hung.settimeout(10)
        request, _ = hung.accept()
        assert request.recv(1)
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        fork_seconds = time.monotonic() - started
        os.waitpid(pid, 0)
        request.close()
        log.shutdown(0.5)
    assert fork_seconds < 1.0, f"fork waited {fork_seconds:.2f} s for the application's export"
    figures(fork_seconds=round(fork_seconds, 3))


def test_an_eventlog_shut_down_before_a_fork_stays_down_in_the_child() -> None:
    log = otlp_log(f"http://127.0.0.1:{closed_port()}")
    log.shutdown(1)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            workers = [
                t for t in threading.enumerate() if t.name.startswith("jupyter_telemetry.otel")
            ]
            log.record_event(SCHEMA_ID, 1, EVENT)
            code = 0 if not workers and log.otel_dropped == 1 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child revived a shut-down exporter"


@pytest.mark.slow
# HTTP only: with gRPC's default fork support, gRPC itself crashes some children
# forked during a call (about 1 in 4, before any of our code runs: README,
# RELIABILITY.md); what our sink does in such a child is tested, in a process
# of its own, by test_a_fork_never_waits_for_an_export_in_flight_... above.
@pytest.mark.parametrize("protocol", ["http/protobuf"])
def test_forks_under_a_steady_stream_duplicate_and_lose_nothing(
    collector: Collector, protocol: str, figures: Any
) -> None:
    service, forks = unique(), 20
    log = otlp_log(
        endpoint(collector, protocol),
        otlp_protocol=protocol,
        service_name=service,
        otlp_max_queue_size=100_000,
    )
    rng = random.Random(1234)
    offered, children = 0, []
    started = time.monotonic()
    for round_ in range(forks):
        for _ in range(rng.randrange(800)):  # the worker is often mid-batch at the fork
            log.record_event(SCHEMA_ID, 1, {**EVENT, "user": "parent", "count": offered})
            offered += 1
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                for count in range(50):
                    log.record_event(
                        SCHEMA_ID, 1, {**EVENT, "user": f"child{round_}", "count": count}
                    )
                code = 0 if log.flush(15) and log.otel_dropped == 0 else 2
            finally:
                os._exit(code)
        children.append(pid)
    assert log.flush(30)
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
    seconds = time.monotonic() - started
    log.shutdown(5)
    assert set(codes) == {0}, codes
    expected = offered + 50 * codes.count(0)
    collector.wait_for_logs(expected, timeout=60, predicate=of_service(service))
    received = _users(collector, service)
    assert max(received.values()) == 1, [k for k, v in received.items() if v > 1][:10]
    assert len(received) == expected
    figures(
        protocol=protocol,
        forks=forks,
        offered=expected,
        delivered_distinct=len(received),
        duplicates=sum(received.values()) - len(received),
        children_failed=sum(1 for code in codes if code != 0),
        seconds=round(seconds, 2),
    )


# -- a collector that hangs ------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_hung_collector_bounds_shutdown_and_every_record_is_counted_once(
    protocol: str, caplog: pytest.LogCaptureFixture, figures: Any
) -> None:
    # It accepts connections and never answers: an export in flight blocks until
    # otlp_timeout, and an in-thread HTTP request cannot be interrupted.
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(64)
        otlp_timeout = 4.0
        log = otlp_log(
            f"http://127.0.0.1:{hung.getsockname()[1]}",
            otlp_protocol=protocol,
            otlp_timeout=otlp_timeout,
        )
        sink = log._otel
        assert sink is not None
        for count in range(600):  # one batch of 512 goes out at once and hangs
            log.record_event(SCHEMA_ID, 1, {**EVENT, "count": count})
        deadline = time.monotonic() + 5
        while sink.queued > 88 and time.monotonic() < deadline:
            time.sleep(0.01)
        hung.settimeout(10)
        request, _ = hung.accept()  # the export is under way once its first bytes arrive
        assert request.recv(1), "the exporter connected but sent nothing"
        started = time.monotonic()
        log.shutdown(1.0)
        seconds = time.monotonic() - started
        at_shutdown = log.otel_dropped
        for worker in sink._core.threads:  # an abandoned export ends in its own time
            worker.join(otlp_timeout + 5)
        later = log.otel_dropped
        request.close()
    assert seconds < 1.0 + 1.0, f"shutdown(1.0) took {seconds:.2f} s"
    assert at_shutdown == 600, "records in flight at shutdown were not counted"
    assert later == 600, "a record was counted twice"
    assert "600 OpenTelemetry log record(s) were not delivered" in caplog.text
    figures(
        protocol=protocol,
        offered=600,
        delivered=0,
        dropped=later,
        dropped_by_reason=log.otel_dropped_by_reason,
        shutdown_timeout=1.0,
        shutdown_seconds=round(seconds, 2),
    )
