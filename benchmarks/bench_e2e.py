#!/usr/bin/env python
"""End-to-end OTLP delivery, a burst from 8 threads, and the jupyter_events bridge.

    python benchmarks/bench_e2e.py [--quick] [--sections e2e,burst,bridge] [--json PATH]

Usually run by ``bench_record_event.py`` (the one command); runnable alone.
Every row runs in its own subprocess (this file with ``--worker``) against a
fresh counting collector (``_counting_collector.py``); the clock stops when the
collector has counted every offered event. CPU counts every process: the
worker (and any process it started) plus the collector. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from _counting_collector import (  # noqa: E402
    CountingCollector,
    descendants,
    proc_cpu_seconds,
    read_count,
)
from bench_record_event import EVENT, SCHEMA_ID, VERSION, make_schema, repo_relative  # noqa: E402

RESULT_MARK = "BENCH-RESULT "
TIMES = "\u00d7"
STALL_S = 3.0  # after flush, give up when the collector's count has not moved for this long
DELIVERY_CAP_S = 120.0
PROTOCOL_LABEL = {"grpc": "gRPC", "http/protobuf": "HTTP"}

# --------------------------------------------------------------------------- worker side


class Skip(Exception):
    """The installed package lacks the feature a row needs."""


def self_cpu() -> float:
    """CPU seconds of this process, its reaped children and its live descendants."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
    for pid in descendants(os.getpid()):
        try:
            total += proc_cpu_seconds(pid)
        except OSError:
            pass
    return total


def wait_delivered(counts: Path, target: int) -> tuple[int, float]:
    """Poll the collector's count until ``target`` (or a stall); ``(count, when)``."""
    last, moved = read_count(counts), time.perf_counter()
    deadline = moved + DELIVERY_CAP_S
    while last < target:
        time.sleep(0.005)
        now = time.perf_counter()
        count = read_count(counts)
        if count != last:
            last, moved = count, now
        elif now - moved > STALL_S or now > deadline:
            break
    return last, moved


def ours_pipeline(spec: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    """EventLog with a FileHandler and OTLP to the collector, default settings otherwise."""
    import logging

    from jupyter_telemetry import EventLog

    handler = logging.FileHandler(spec["file"])
    el = EventLog(
        handlers=[handler],
        allowed_schemas=[SCHEMA_ID],
        otlp_endpoint=spec["endpoint"],
        otlp_protocol=spec["protocol"],
    )
    el.register_schema(make_schema())

    def close() -> None:
        el.shutdown(timeout=10)
        handler.close()

    return (
        lambda: el.record_event(SCHEMA_ID, VERSION, EVENT),
        lambda: el.flush(timeout=60),
        close,
        lambda: {"otel_dropped": getattr(el, "otel_dropped", None)},
    )


def sdk_pipeline(spec: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    """The same job wired by hand: a json.dumps line to a FileHandler, and the SDK's
    BatchLogRecordProcessor + OTLPLogExporter (default settings), no validation."""
    import logging
    from datetime import datetime, timezone

    from opentelemetry._logs import SeverityNumber
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    if spec["protocol"] == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        exporter = OTLPLogExporter(endpoint=spec["endpoint"], insecure=True)
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import (  # type: ignore[assignment]
            OTLPLogExporter,
        )

        exporter = OTLPLogExporter(endpoint=spec["endpoint"] + "/v1/logs")
    processor_args = {"max_queue_size": spec["queue"]} if spec.get("queue") else {}
    provider = LoggerProvider(resource=Resource.create({"service.name": "bench"}))
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter, **processor_args))
    otel = provider.get_logger("bench")
    handler = logging.FileHandler(spec["file"])
    lines = logging.getLogger("bench.sdk-by-hand")
    lines.propagate = False
    lines.setLevel(logging.INFO)
    lines.addHandler(handler)
    attributes = {
        "jupyter.event.schema_id": SCHEMA_ID,
        "jupyter.event.schema_version": VERSION,
        "jupyter.event.metadata_version": 1,
    }

    def record() -> None:
        now = datetime.now(timezone.utc)
        capsule = {
            "__timestamp__": now.isoformat().replace("+00:00", "Z"),
            "__schema__": SCHEMA_ID,
            "__schema_version__": VERSION,
            "__metadata_version__": 1,
            **EVENT,
        }
        lines.info(json.dumps(capsule))
        otel.emit(
            timestamp=int(now.timestamp() * 1e9),
            severity_number=SeverityNumber.INFO,
            severity_text="INFO",
            body=EVENT,
            attributes=attributes,
            event_name=SCHEMA_ID,
        )

    def close() -> None:
        provider.shutdown()
        handler.close()

    return record, lambda: provider.force_flush(60_000), close, dict


PIPELINES = {"ours": ours_pipeline, "sdk": sdk_pipeline}


def percentile(sorted_ns: list[int], q: float) -> float:
    return sorted_ns[min(len(sorted_ns) - 1, int(len(sorted_ns) * q))] / 1e3


def e2e_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Rounds of n timed calls; each round's clock stops when the collector has them all."""
    record, flush, close, extras = PIPELINES[spec["pipeline"]](spec)
    counts, collector = Path(spec["counts"]), spec["collector_pid"]
    for _ in range(spec["warmup"]):
        record()
    flush()
    wait_delivered(counts, spec["warmup"])
    clock = time.perf_counter_ns
    latencies: list[int] = []
    rounds = []
    for _ in range(spec["rounds"]):
        base = read_count(counts)
        cpu0, col0, t0 = self_cpu(), proc_cpu_seconds(collector), time.perf_counter()
        for _ in range(spec["n"]):
            t = clock()
            record()
            latencies.append(clock() - t)
        offered_s = time.perf_counter() - t0
        flush()
        count, arrived = wait_delivered(counts, base + spec["n"])
        wall = arrived - t0
        cpu = self_cpu() - cpu0 + proc_cpu_seconds(collector) - col0
        delivered = count - base
        rounds.append(
            {
                "offered": spec["n"],
                "delivered": delivered,
                "wall_s": wall,
                "offer_s": offered_s,
                "events_per_s": delivered / wall,
                "cpu_us_per_delivered": cpu / max(delivered, 1) * 1e6,
            }
        )
    close()
    latencies.sort()
    offered = sum(r["offered"] for r in rounds)
    delivered = sum(r["delivered"] for r in rounds)
    return {
        "status": "ok",
        "calls": spec["warmup"] + offered,
        "offered": offered,
        "delivered": delivered,
        "lossy": delivered < offered,
        "events_per_s": statistics.median(r["events_per_s"] for r in rounds),
        "cpu_us_per_delivered": statistics.median(r["cpu_us_per_delivered"] for r in rounds),
        "median_us": percentile(latencies, 0.5),
        "p99_us": percentile(latencies, 0.99),
        "rounds": rounds,
        **extras(),
    }


def rss_mb(field: str = "VmRSS", pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def burst_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """``threads`` threads record ``per_thread`` events each, started together."""
    record, flush, close, extras = ours_pipeline(spec)
    counts = Path(spec["counts"])
    record()  # connects, starts the exporter
    flush()
    wait_delivered(counts, 1)
    rss_before = rss_mb()
    base = read_count(counts)
    threads, per_thread = spec["threads"], spec["per_thread"]
    barrier = threading.Barrier(threads + 1)
    latencies: list[list[int]] = [[] for _ in range(threads)]

    def run(mine: list[int]) -> None:
        clock = time.perf_counter_ns
        barrier.wait()
        for _ in range(per_thread):
            t = clock()
            record()
            mine.append(clock() - t)

    workers = [threading.Thread(target=run, args=(lat,)) for lat in latencies]
    for w in workers:
        w.start()
    barrier.wait()
    t0 = time.perf_counter()
    for w in workers:
        w.join()
    offered_s = time.perf_counter() - t0
    flush()
    count, arrived = wait_delivered(counts, base + threads * per_thread)
    helpers = descendants(os.getpid())  # an export process, where the package has one
    helper_peak = sum(rss_mb("VmHWM", pid) for pid in helpers)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    close()
    every = sorted(ns for lat in latencies for ns in lat)
    return {
        "status": "ok",
        "calls": 1 + threads * per_thread,
        "offered": threads * per_thread,
        "delivered": count - base,
        "lossy": count - base < threads * per_thread,
        "wall_s": arrived - t0,
        "offer_s": offered_s,
        "rss_before_mb": rss_before,
        "peak_rss_mb": peak,
        "helper_processes": len(helpers),
        "helper_peak_rss_mb": helper_peak,
        "median_us": percentile(every, 0.5),
        "p99_us": percentile(every, 0.99),
        **extras(),
    }


def bridge_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """jupyter_events ``EventLogger.emit`` under each of ``spec['configs']``, interleaved.

    One process, one collector: each round runs every configuration once (the
    order rotates from round to round), attaching and removing handlers with
    jupyter_events' own ``register_handler``/``remove_handler``, so the rows are
    compared under the same conditions (a shared machine drifts by tens of per
    cent within a minute). A round with the bridge ends when the collector has
    every event of the round.
    """
    import logging

    from jupyter_events import EventLogger

    import jupyter_telemetry

    cls = getattr(jupyter_telemetry, "JupyterEventsHandler", None)
    if cls is None:
        raise Skip("jupyter_telemetry has no JupyterEventsHandler")
    file_handler = logging.FileHandler(spec["file"])
    bridge = cls()  # configured by the OTEL_* variables, as in a server's config file
    attached = {"file": file_handler, "bridge": bridge}
    el = EventLogger(handlers=[file_handler, bridge])
    el.register_event_schema(make_schema("jupyter_events"))
    counts, collector = Path(spec["counts"]), spec["collector_pid"]

    def emit() -> None:
        el.emit(schema_id=SCHEMA_ID, data=EVENT)

    for _ in range(spec["warmup"]):
        emit()
    bridge.flush()
    got, _ = wait_delivered(counts, spec["warmup"])
    if got < spec["warmup"]:
        raise RuntimeError(f"bridge delivered {got} of {spec['warmup']} warm-up events")
    file_events = spec["warmup"]
    configs: dict[str, list[str]] = spec["configs"]  # row key -> the handlers it attaches
    rounds: dict[str, list[dict[str, Any]]] = {key: [] for key in configs}
    latencies: dict[str, list[int]] = {key: [] for key in configs}
    clock, n = time.perf_counter_ns, spec["n"]
    for number in range(spec["rounds"]):
        keys = list(configs)
        shift = number % len(keys)
        for key in keys[shift:] + keys[:shift]:
            wanted = configs[key]
            for name, handler in attached.items():
                if name in wanted and handler not in el.handlers:
                    el.register_handler(handler)
                elif name not in wanted and handler in el.handlers:
                    el.remove_handler(handler)
            base = read_count(counts)
            cpu0, col0 = self_cpu(), proc_cpu_seconds(collector)
            main0, t0 = time.thread_time(), time.perf_counter()
            mine: list[int] = []
            for _ in range(n):
                t = clock()
                emit()
                mine.append(clock() - t)
            main = time.thread_time() - main0
            arrived, delivered = time.perf_counter(), n
            if "bridge" in wanted:
                bridge.flush()
                count, arrived = wait_delivered(counts, base + n)
                delivered = count - base
            if "file" in wanted:
                file_events += n
            cpu = self_cpu() - cpu0
            mine.sort()
            latencies[key] += mine
            rounds[key].append(
                {
                    "delivered": delivered,
                    "median_us": percentile(mine, 0.5),
                    "wall_us": (arrived - t0) / n * 1e6,
                    "cpu_us": cpu / n * 1e6,
                    "main_thread_cpu_us": main / n * 1e6,
                    "collector_cpu_us": (proc_cpu_seconds(collector) - col0) / n * 1e6,
                }
            )
    file_handler.close()
    bridge.close()
    rows = {}
    for key in configs:
        mine = sorted(latencies[key])
        done = rounds[key]
        offered = n * len(done)
        delivered = sum(r["delivered"] for r in done)
        rows[key] = {
            "status": "ok",
            "offered": offered,
            "delivered": delivered,
            "lossy": delivered < offered,
            "median_us": percentile(mine, 0.5),
            "p99_us": percentile(mine, 0.99),
            **{
                metric: statistics.median(r[metric] for r in done)
                for metric in ("wall_us", "cpu_us", "main_thread_cpu_us", "collector_cpu_us")
            },
            "rounds": done,
        }
    return {"status": "ok", "calls": file_events, "rows": rows}


def count_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec['n']`` jupyter_events ``emit`` calls with ``spec['handlers']``, run under callgrind.

    The driver subtracts two runs' instruction counts (every thread of this
    process), so start-up and warm-up cancel out. The sink's timer is put off,
    so every export carries a full batch of 512, as in the timed rows, instead of
    as many as valgrind's slowness lets pile up in half a second.
    """
    import logging

    from jupyter_events import EventLogger

    import jupyter_telemetry

    file_handler = logging.FileHandler(spec["file"])
    handlers: list[logging.Handler] = [file_handler]
    bridge = None
    if "bridge" in spec["handlers"]:
        bridge = jupyter_telemetry.JupyterEventsHandler()
        core = getattr(getattr(bridge.eventlog, "_otel", None), "_core", None)
        if core is not None:  # else (another package, --ours-path) the timer cuts batches
            core.delay = 3600.0
        handlers.append(bridge)
    el = EventLogger(handlers=handlers)
    el.register_event_schema(make_schema("jupyter_events"))
    counts = Path(spec["counts"])
    for _ in range(spec["warmup"]):
        el.emit(schema_id=SCHEMA_ID, data=EVENT)
    if bridge is not None:
        bridge.flush()
        wait_delivered(counts, spec["warmup"])
    for _ in range(spec["n"]):
        el.emit(schema_id=SCHEMA_ID, data=EVENT)
    delivered = None
    if bridge is not None:
        bridge.flush()
        delivered, _ = wait_delivered(counts, spec["warmup"] + spec["n"])
        delivered -= spec["warmup"]
    file_handler.close()
    return {
        "status": "ok",
        "calls": spec["warmup"] + spec["n"],
        "delivered": delivered,
        "full_batches": bridge is None or core is not None,
    }


WORKERS = {"e2e": e2e_worker, "burst": burst_worker, "bridge": bridge_worker, "count": count_worker}


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    sys.path.insert(0, spec["ours_path"])
    try:
        result = WORKERS[spec["kind"]](spec)
    except Skip as exc:
        return {"status": "skipped", "reason": str(exc)}
    mod = sys.modules.get("jupyter_telemetry")
    if mod is not None and mod.__file__:
        result["module"] = repo_relative(mod.__file__, spec["ours_path"])
    return result


# --------------------------------------------------------------------------- driver side

# (key, label, worker spec): e2e rows
E2E_ROWS = [
    (f"{who}-{proto.split('/')[0]}", f"{label}, OTLP/{PROTOCOL_LABEL[proto]}", who, proto, queue)
    for proto in ("http/protobuf", "grpc")
    for who, label, queue in (
        ("ours", "ours: record_event, FileHandler + OTLP", None),
        ("sdk", "SDK by hand: json.dumps + FileHandler + BLRP", None),
        ("sdk-bigq", "SDK by hand, max_queue_size >= offered", "big"),
    )
]
BRIDGE_ROWS = [
    ("none", "emit, no handlers (returns early)", []),
    ("file", "emit, FileHandler", ["file"]),
    ("file+bridge", "emit, FileHandler + JupyterEventsHandler", ["file", "bridge"]),
    ("bridge", "emit, JupyterEventsHandler only", ["bridge"]),
]


def run_worker(
    spec: dict[str, Any], workdir: Path, env_extra: dict[str, str], prefix: tuple[str, ...] = ()
) -> dict[str, Any]:
    """One row: a fresh collector, the worker subprocess (under ``prefix``, e.g. valgrind),
    its result (or why it failed)."""
    try:
        with CountingCollector(workdir / "collector") as collector:
            spec = {
                **spec,
                "counts": str(collector.counts),
                "collector_pid": collector.pid,
                "file": str(workdir / "events.jsonl"),
                "endpoint": collector.endpoints.get(spec.get("protocol", "grpc")),
            }
            env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (spec["ours_path"], env.get("PYTHONPATH")) if p
            )
            for key, value in env_extra.items():
                env[key] = value.format(grpc=collector.endpoints["grpc"])
            proc = subprocess.run(
                [*prefix, sys.executable, __file__, "--worker", json.dumps(spec)],
                capture_output=True,
                text=True,
                env=env,
                timeout=1800 if prefix else 600,
                cwd=workdir,
            )
    except Exception as exc:  # no collector, or a hung worker: the row fails, not the run
        return {"status": "failed", "reason": repr(exc)[:300]}
    finally:
        events = workdir / "events.jsonl"
        lines = sum(1 for _ in open(events, "rb")) if events.exists() else 0
        events.unlink(missing_ok=True)
    marked = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_MARK)]
    if proc.returncode or not marked:
        return {
            "status": "failed",
            "reason": f"worker exit {proc.returncode}",
            "stderr": proc.stderr[-3000:],
        }
    result: dict[str, Any] = json.loads(marked[-1][len(RESULT_MARK) :])
    result["file_lines"] = lines
    result["stderr_head"] = proc.stderr.splitlines()[:3]
    collected = [ln for ln in proc.stderr.splitlines() if "Collected :" in ln]
    if collected:  # callgrind's total instruction count
        result["instructions"] = int(collected[-1].rsplit(":", 1)[1].replace(",", ""))
    if result["status"] == "ok" and "file" in spec.get("handlers", ["file"]):
        expected = result["calls"]  # the JSON-lines file holds every event, whatever OTel did
        if lines != expected:
            result["status"] = "failed"
            result["reason"] = f"the file has {lines} lines for {expected} events recorded"
    return result


def delivered_note(r: dict[str, Any]) -> str:
    text = f"{r['delivered']}/{r['offered']}"
    return text + " LOSSY" if r.get("lossy") else text


def run_e2e(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    n, rounds, warmup = (2000, 1, 200) if args.quick else (20000, 3, 1000)
    results: dict[str, Any] = {}
    for key, label, who, proto, queue in E2E_ROWS:
        print(f"  e2e: {label} ...", end="", flush=True)
        t = time.monotonic()
        spec = {
            "kind": "e2e",
            "pipeline": "sdk" if who.startswith("sdk") else who,
            "protocol": proto,
            "n": n,
            "rounds": rounds,
            "warmup": warmup,
            "queue": (n + warmup) * 2 if queue else None,
            "ours_path": str(args.ours_path),
        }
        results[key] = {"label": label, **run_worker(spec, workdir, {})}
        print(f" {results[key]['status']} ({time.monotonic() - t:.1f} s)", flush=True)
    print(
        "\nend to end: FileHandler + OTLP to a local rotel collector, clock stopped when all arrived"
    )
    head = (
        f"{'row':<58} {'delivered':>15} {'events/s':>9} {'CPU µs/ev':>9} {'median':>7} {'p99':>7}"
    )
    print(head + "  (caller µs)\n" + "-" * (len(head) + 13))
    for key, label, *_ in E2E_ROWS:
        r = results[key]
        if r["status"] != "ok":
            print(f"{label:<58} {r['status'].upper()}: {r.get('reason', '')}")
            continue
        print(
            f"{label:<58} {delivered_note(r):>15} {r['events_per_s']:>9.0f} "
            f"{r['cpu_us_per_delivered']:>9.1f} {r['median_us']:>7.1f} {r['p99_us']:>7.1f}"
        )
    print("\nratios, ours / SDK by hand (targets: events/s >= 1.5x, CPU per event <= 0.67x):")
    ratios = []
    for proto in ("http", "grpc"):
        ours = results[f"ours-{proto}"]
        for sdk_key in (f"sdk-{proto}", f"sdk-bigq-{proto}"):
            sdk = results[sdk_key]
            if ours["status"] != "ok" or sdk["status"] != "ok":
                print(f"  {'ours-' + proto:<10} / {sdk_key:<14} n/a")
                continue
            rate = ours["events_per_s"] / sdk["events_per_s"]
            cpu = ours["cpu_us_per_delivered"] / sdk["cpu_us_per_delivered"]
            flag = (
                " (lossy row involved: compare with care)" if ours["lossy"] or sdk["lossy"] else ""
            )
            ratios.append({"ratio": f"ours-{proto} / {sdk_key}", "events_per_s": rate, "cpu": cpu})
            print(
                f"  {'ours-' + proto:<10} / {sdk_key:<14} events/s {rate:5.2f}{TIMES}   "
                f"CPU/event {cpu:5.2f}{TIMES}{flag}"
            )
    notes(results)
    return {"rows": results, "ratios": ratios, "n": n, "rounds": rounds, "warmup": warmup}


def notes(results: dict[str, Any]) -> None:
    for key, r in results.items():
        if r.get("stderr_head"):
            print(f"  {key}: stderr: {r['stderr_head'][0][:160]}")
        if r["status"] == "failed":
            print(f"  !! {key} failed: {r.get('reason')}\n{r.get('stderr', '')}")
        if r.get("otel_dropped"):
            print(f"  {key}: EventLog.otel_dropped = {r['otel_dropped']}")


def run_burst(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    threads, per_thread = (8, 500) if args.quick else (8, 5000)
    print(f"  burst: {threads} threads x {per_thread} events ...", end="", flush=True)
    t = time.monotonic()
    spec = {
        "kind": "burst",
        "protocol": "grpc",
        "threads": threads,
        "per_thread": per_thread,
        "ours_path": str(args.ours_path),
    }
    r = run_worker(spec, workdir, {})
    print(f" {r['status']} ({time.monotonic() - t:.1f} s)")
    print(
        f"\nburst: {threads} threads x {per_thread} events, EventLog defaults, OTLP/gRPC, collector up"
    )
    if r["status"] != "ok":
        print(f"  {r['status'].upper()}: {r.get('reason', '')}\n{r.get('stderr', '')}")
        return r
    print(
        f"  delivered {delivered_note(r)} in {r['wall_s']:.2f} s (recording took "
        f"{r['offer_s']:.2f} s); caller median {r['median_us']:.1f} µs, p99 {r['p99_us']:.1f} µs"
    )
    print(
        f"  benchmark process RSS: {r['rss_before_mb']:.0f} MB before, peak {r['peak_rss_mb']:.0f} MB"
        + (
            f"; {r['helper_processes']} helper process(es), peak {r['helper_peak_rss_mb']:.0f} MB"
            if r["helper_processes"]
            else ""
        )
    )
    notes({"burst": r})
    return r


def paired(rounds: list[dict[str, Any]], base: list[dict[str, Any]], metric: str) -> list[float]:
    """Per round: ``metric`` of ``rounds`` over the same round of ``base``, in per cent."""
    return sorted(
        (r[metric] - b[metric]) / b[metric] * 100 for r, b in zip(rounds, base, strict=True)
    )


def run_bridge(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    n, rounds, warmup = (300, 2, 100) if args.quick else (4000, 10, 1000)
    print(
        f"  bridge: {len(BRIDGE_ROWS)} rows interleaved, {rounds} rounds of {n} events ...", end=""
    )
    t = time.monotonic()
    spec = {
        "kind": "bridge",
        "configs": {key: handlers for key, _, handlers in BRIDGE_ROWS},
        "handlers": ["file"],  # run_worker: the file holds one line per event emitted with it
        "n": n,
        "rounds": rounds,
        "warmup": warmup,
        "protocol": "grpc",
        "ours_path": str(args.ours_path),
    }
    # JupyterEventsHandler() reads the OTEL_* variables, as a server's config file would use it.
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "{grpc}", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    outcome = run_worker(spec, workdir, env)
    print(f" {outcome['status']} ({time.monotonic() - t:.1f} s)", flush=True)
    labels = {key: label for key, label, _ in BRIDGE_ROWS}
    if outcome["status"] != "ok":
        reason = outcome.get("reason", "") + outcome.get("stderr", "")[-500:]
        print(f"  bridge: {outcome['status'].upper()}: {reason}")
        return {"rows": {k: {"label": v, **outcome} for k, v in labels.items()}}
    results = {key: {"label": labels[key], **row} for key, row in outcome["rows"].items()}
    print(
        "\nbridge: jupyter_events EventLogger.emit (µs/event; wall and CPU until all delivered; "
        "CPU of this process, its main thread, the collector; medians of the rounds)"
    )
    head = (
        f"{'row':<45} {'delivered':>12} {'median':>7} {'p99':>7} {'wall':>7} {'CPU':>7} "
        f"{'main':>7} {'coll.':>6}"
    )
    print(head + "\n" + "-" * len(head))
    for key, label, _ in BRIDGE_ROWS:
        r = results[key]
        delivered = delivered_note(r) if "bridge" in key else "-"
        print(
            f"{label:<45} {delivered:>12} {r['median_us']:>7.1f} {r['p99_us']:>7.1f} "
            f"{r['wall_us']:>7.1f} {r['cpu_us']:>7.1f} {r['main_thread_cpu_us']:>7.1f} "
            f"{r['collector_cpu_us']:>6.1f}"
        )
    base, both = results["file"]["rounds"], results["file+bridge"]["rounds"]
    for r, b in zip(both, base, strict=True):
        r["cpu_with_collector_us"] = r["cpu_us"] + r["collector_cpu_us"]
        b["cpu_with_collector_us"] = b["cpu_us"] + b["collector_cpu_us"]
    cost, spread = {}, {}
    for metric in ("median_us", "wall_us", "cpu_us", "cpu_with_collector_us"):
        per_round = paired(both, base, metric)
        cost[metric] = statistics.median(per_round)
        spread[metric] = (per_round[0], per_round[-1])
    print(
        "  JupyterEventsHandler's cost, % of emit with a FileHandler, paired by round, median "
        "(min..max) (target <= 25 %):"
    )
    for metric, value in cost.items():
        low, high = spread[metric]
        name = metric.removesuffix("_us").replace("_", " ")
        print(f"    {name:<22} {value:+6.1f} %   ({low:+.0f}..{high:+.0f})")
    if results["file+bridge"]["lossy"]:
        print("    (LOSSY: not every event arrived)")
    notes(results)
    return {"rows": results, "cost_percent": cost, "cost_spread": spread, "n": n, "rounds": rounds}


COUNTED_ROWS = [(key, label, handlers) for key, label, handlers in BRIDGE_ROWS if "file" in key]


def run_bridge_instructions(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Instructions per ``emit`` (every thread of the process), FileHandler with and without
    the handler, counted by callgrind: the same on a busy machine as on a quiet one."""
    small, large, warmup = (512, 1024, 100) if args.quick else (512, 2048, 200)
    if shutil.which("valgrind") is None:
        print("  bridge-instructions: skipped (valgrind is not installed)")
        return {"status": "skipped", "reason": "valgrind is not installed"}
    prefix = ("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null")
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "{grpc}", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    jobs = [(key, n) for key, _, _ in COUNTED_ROWS for n in (small, large)]
    print(f"  bridge-instructions: {len(jobs)} runs under callgrind, 2 at a time ...", end="")
    t = time.monotonic()

    handlers = {key: wanted for key, _, wanted in COUNTED_ROWS}

    def one(job: tuple[str, int]) -> dict[str, Any]:
        key, n = job
        spec = {
            "kind": "count",
            "handlers": handlers[key],
            "n": n,
            "warmup": warmup,
            "ours_path": str(args.ours_path),
        }
        place = workdir / f"{key}-{n}"
        place.mkdir()
        return run_worker(spec, place, env, prefix)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        done = dict(zip(jobs, pool.map(one, jobs), strict=True))
    print(f" ({time.monotonic() - t:.0f} s)", flush=True)
    rows: dict[str, Any] = {}
    for key, label, _ in COUNTED_ROWS:
        runs = [done[(key, small)], done[(key, large)]]
        bad = [r for r in runs if r.get("status") != "ok" or "instructions" not in r]
        if bad:
            reason = bad[0].get("reason", "no instruction count") + bad[0].get("stderr", "")[-300:]
            rows[key] = {"label": label, "status": "failed", "reason": reason}
            continue
        lost = [
            r
            for r in runs
            if r.get("delivered") is not None and r["delivered"] < r["calls"] - warmup
        ]
        per_event = (runs[1]["instructions"] - runs[0]["instructions"]) / (large - small)
        rows[key] = {
            "label": label,
            "status": "ok",
            "instructions_per_event": per_event,
            "lossy": bool(lost),
            "full_batches": all(r.get("full_batches", False) for r in runs),
            "runs": runs,
        }
    print("\nbridge-instructions: instructions per jupyter_events emit, every thread, callgrind")
    for key, label, _ in COUNTED_ROWS:
        r = rows[key]
        value = f"{r['instructions_per_event']:>12,.0f}" if r["status"] == "ok" else r["status"]
        flags = ("  (LOSSY)" if r.get("lossy") else "") + (
            "" if r.get("full_batches", True) else "  (timer-cut batches)"
        )
        print(f"  {label:<45} {value}{flags}")
    out: dict[str, Any] = {"rows": rows, "n": [small, large]}
    if all(rows[k]["status"] == "ok" for k in ("file", "file+bridge")):
        base = rows["file"]["instructions_per_event"]
        out["cost_percent"] = (rows["file+bridge"]["instructions_per_event"] - base) / base * 100
        print(f"  JupyterEventsHandler's cost: {out['cost_percent']:+.1f} % (target <= 25 %)")
    return out


SECTIONS = {
    "e2e": run_e2e,
    "burst": run_burst,
    "bridge": run_bridge,
    "bridge-instructions": run_bridge_instructions,
}


def run_sections(args: argparse.Namespace, names: list[str]) -> dict[str, Any]:
    out = {}
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        for name in names:
            out[name] = SECTIONS[name](args, Path(tmp))
            print()
    return out


def failed(out: dict[str, Any]) -> bool:
    """Whether any row of the sections in ``out`` failed (skips are fine)."""
    rows = []
    for section in out.values():
        rows += list(section.get("rows", {}).values()) if "rows" in section else [section]
    return any(r.get("status") == "failed" for r in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    parser.add_argument("--sections", default="e2e,burst,bridge", help=",".join(SECTIONS))
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--ours-path", type=Path, default=REPO)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(RESULT_MARK + json.dumps(worker(json.loads(args.worker))), flush=True)
        os._exit(0)  # don't wait on exporter threads still retrying
    out = run_sections(args, args.sections.split(","))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 1 if failed(out) else 0


if __name__ == "__main__":
    sys.exit(main())
