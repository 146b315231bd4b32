"""Load: many threads on one EventLog, a million events with the collector away."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from _collector import Collector
from conftest import EVENT, SCHEMA, SCHEMA_ID, closed_port

from jupyter_telemetry import EventLog

THREADS, PER_THREAD = 8, 25_000
TOTAL = THREADS * PER_THREAD


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.slow
@pytest.mark.parametrize("queue_size", [2048, TOTAL], ids=["default-queue", "queue-holds-all"])
def test_eight_threads_into_one_eventlog_lose_nothing_silently(
    tmp_path: Path, queue_size: int, figures: Any
) -> None:
    collector = Collector(tmp_path / "collector")
    collector.start()
    try:
        path = tmp_path / "events.log"
        handler = logging.FileHandler(path, encoding="utf-8")
        log = EventLog(
            handlers=[handler],
            allowed_schemas=[SCHEMA_ID],
            otlp_endpoint=collector.grpc_endpoint,
            service_name=f"load-{uuid.uuid4().hex[:8]}",
            otlp_max_queue_size=queue_size,
        )
        log.register_schema(SCHEMA)
        start = threading.Barrier(THREADS + 1)
        errors: list[BaseException] = []

        def work(thread: int) -> None:
            try:
                start.wait()
                for i in range(PER_THREAD):
                    event = {**EVENT, "user": f"t{thread}", "count": thread * PER_THREAD + i}
                    log.record_event(SCHEMA_ID, 1, event)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
        for thread in threads:
            thread.start()
        start.wait()
        started = time.monotonic()
        for thread in threads:
            thread.join()
        recorded_seconds = time.monotonic() - started
        assert not errors, errors
        flushed = log.flush(300)
        flush_seconds = time.monotonic() - started - recorded_seconds
        log.shutdown(30)
        handler.close()
        sink = log._otel
        assert sink is not None

        # the file: exactly TOTAL lines, each one intact JSON object, none twice
        data = path.read_bytes()
        assert data.endswith(b"\n")
        lines = data.split(b"\n")[:-1]
        assert len(lines) == TOTAL
        parsed = [orjson.loads(line) for line in lines]  # raises on a torn or merged line
        counts = [line["count"] for line in parsed]
        assert len(set(counts)) == TOTAL
        for thread in range(THREADS):  # each thread's events in the order it recorded them
            own = [
                c for line, c in zip(parsed, counts, strict=True) if line["user"] == f"t{thread}"
            ]
            assert own == list(range(thread * PER_THREAD, (thread + 1) * PER_THREAD))

        # the collector: what arrived plus what was counted as dropped is everything
        assert sink.exported + log.otel_dropped == TOTAL
        received = collector.wait_for_log_count(sink.exported, timeout=120)
        assert received == sink.exported
        bodies = Counter(r.body["count"] for r in collector.logs())
        assert len(bodies) == received, "an event arrived twice"
        assert received + log.otel_dropped == TOTAL
        assert received > 0, "nothing was delivered"
        reasons = log.otel_dropped_by_reason
        assert reasons["export_failed"] == reasons["unsent_at_shutdown"] == 0, (
            "a drop was not a full queue"
        )
        if queue_size >= TOTAL:
            assert flushed and log.otel_dropped == 0 and received == TOTAL
    finally:
        collector.stop()
    figures(
        threads=THREADS,
        offered=TOTAL,
        otlp_max_queue_size=queue_size,
        written_file=len(lines),
        delivered=received,
        dropped=log.otel_dropped,
        dropped_by_reason=log.otel_dropped_by_reason,
        record_seconds=round(recorded_seconds, 2),
        events_per_second=round(TOTAL / recorded_seconds),
        flush_seconds=round(flush_seconds, 2),
    )


@pytest.mark.slow
def test_a_million_events_with_the_collector_down_keep_memory_bounded(figures: Any) -> None:
    events, warm_up = 1_000_000, 50_000
    handler = logging.FileHandler("/dev/null")  # a real handler doing real writes
    log = EventLog(
        handlers=[handler],
        allowed_schemas=[SCHEMA_ID],
        otlp_endpoint=f"http://127.0.0.1:{closed_port()}",
        otlp_timeout=1.0,
    )
    log.register_schema(SCHEMA)
    started = time.monotonic()
    baseline = peak = 0.0
    samples = []
    for count in range(events):
        log.record_event(SCHEMA_ID, 1, {**EVENT, "count": count})
        if count == warm_up:
            baseline = rss_mib()
        elif count > warm_up and count % 50_000 == 0:
            peak = max(peak, rss_mib())
            samples.append(round(rss_mib(), 1))
    seconds = time.monotonic() - started
    final = rss_mib()
    peak = max(peak, final)
    log.shutdown(5)
    handler.close()
    assert log.otel_dropped == events
    growth = peak - baseline
    assert growth < 50, f"resident memory grew {growth:.1f} MiB after warm-up: {samples}"
    figures(
        offered=events,
        delivered=0,
        dropped=log.otel_dropped,
        rss_after_warm_up_mib=round(baseline, 1),
        rss_peak_mib=round(peak, 1),
        rss_growth_mib=round(growth, 1),
        seconds=round(seconds, 1),
        events_per_second=round(events / seconds),
    )


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_a_burst_from_eight_threads_arrives_whole_with_default_settings(
    tmp_path: Path, protocol: str, figures: Any
) -> None:
    threads, per_thread = 8, 5_000
    total = threads * per_thread
    collector = Collector(tmp_path / "collector")
    collector.start()
    try:
        service = f"burst-{uuid.uuid4().hex[:8]}"
        log = EventLog(
            handlers=[logging.FileHandler("/dev/null")],
            allowed_schemas=[SCHEMA_ID],
            otlp_endpoint=collector.grpc_endpoint
            if protocol == "grpc"
            else collector.http_endpoint,
            otlp_protocol=protocol,
            service_name=service,
        )
        log.register_schema(SCHEMA)
        before = rss_mib()
        start = threading.Barrier(threads + 1)

        def work(thread: int) -> None:
            start.wait()
            for i in range(per_thread):
                log.record_event(SCHEMA_ID, 1, {**EVENT, "count": thread * per_thread + i})

        workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for worker in workers:
            worker.start()
        start.wait()
        started = time.monotonic()
        peak = before
        while any(worker.is_alive() for worker in workers):
            peak = max(peak, rss_mib())
            time.sleep(0.05)
        recorded = time.monotonic() - started
        assert log.flush(120)
        delivered_seconds = time.monotonic() - started
        peak = max(peak, rss_mib())
        assert log.otel_dropped == 0, log.otel_dropped_by_reason
        received = collector.wait_for_log_count(total, timeout=120)
        log.shutdown(5)
        counts = Counter(r.body["count"] for r in collector.logs())
        assert received == total and set(counts) == set(range(total)) and max(counts.values()) == 1
    finally:
        collector.stop()
    figures(
        protocol=protocol,
        offered=total,
        delivered=received,
        dropped=0,
        record_seconds=round(recorded, 2),
        flushed_seconds=round(delivered_seconds, 2),
        rss_before_mib=round(before, 1),
        rss_peak_mib=round(peak, 1),
    )
