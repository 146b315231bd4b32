#!/usr/bin/env python
"""Benchmark jupyter_telemetry against jupyter_events, jupyter-telemetry 0.1.0 and the OTel SDK.

    python benchmarks/bench_record_event.py [--quick] [--sections caller,...] [--json PATH]

The one command: the caller rows (``EventLog.record_event`` beside the anchors)
here, then import time and the per-event breakdown (``bench_parts.py``), end to
end delivery, the burst and the jupyter_events bridge (``bench_e2e.py``).
Each caller row runs in its own subprocess (this file with ``--worker``), so the
packages never share an interpreter. Each anchor runs in a virtualenv of its own
(``benchmarks/.venv-0.1.0``: 0.1.0 has our import name; ``benchmarks/.venv-jupyter_events``),
created on first use. Only the standard library may be imported at module level:
the worker also runs in those venvs. See benchmarks/README.md for what is measured.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _counting_collector import CountingCollector, free_port

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ANCHOR_VENVS = {
    "jt010": (HERE / ".venv-0.1.0", "jupyter-telemetry==0.1.0"),
    "jupyter_events": (HERE / ".venv-jupyter_events", "jupyter_events==0.12.1"),
}
RESULT_MARK = "BENCH-RESULT "
TIMES = "\u00d7"  # the multiplication sign, for ratios
CLOSE_CAP_S = 10  # give up waiting for a worker's close()/shutdown() after this

SCHEMA_ID = "https://events.jupyter.org/bench/notebook-action"  # a URI: jupyter_events needs one
VERSION = 1

# The 8-property event: enum, pattern, integer minimum, boolean, nested object, array, 2 plain.
PROPERTIES = {
    "action": {"type": "string", "enum": ["open", "save", "close", "rename"]},
    "path": {"type": "string", "pattern": "^/.+\\.ipynb$"},
    "cell_count": {"type": "integer", "minimum": 0},
    "trusted": {"type": "boolean"},
    "kernel": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "language": {"type": "string"}},
        "required": ["name"],
    },
    "tags": {"type": "array", "items": {"type": "string"}},
    "client": {"type": "string"},
    "duration_ms": {"type": "number"},
}
EVENT = {
    "action": "save",
    "path": "/home/jovyan/work/analysis.ipynb",
    "cell_count": 42,
    "trusted": True,
    "kernel": {"name": "python3", "language": "python"},
    "tags": ["draft", "shared"],
    "client": "JupyterLab/4.2",
    "duration_ms": 12.5,
}
# Redaction row: "path" is personal data and not allowed, so it must not reach the file.
CATEGORIES = {"path": ["user-identifiable-information"], "client": ["user-identifier"]}
ALLOWED_CATEGORIES = ["unrestricted", "user-identifier"]
REDACTED = "path"


def make_schema(flavour="plain"):
    props = json.loads(json.dumps(PROPERTIES))  # deep copy
    if flavour == "categories":
        for name, prop in props.items():
            prop["categories"] = CATEGORIES.get(name, ["unrestricted"])
        for prop in props["kernel"]["properties"].values():
            prop["categories"] = ["unrestricted"]
    schema = {
        "$id": SCHEMA_ID,
        "version": VERSION,
        "title": "Notebook action",
        "description": "Benchmark event",
        "type": "object",
        "properties": props,
        "required": ["action", "path", "cell_count", "trusted"],
    }
    if flavour == "jupyter_events":
        schema["version"] = str(VERSION)  # 0.12 coerces an int with a warning
    return schema


# --------------------------------------------------------------------------- worker side


class Skip(Exception):
    """The installed package cannot run this row (feature missing)."""


@dataclass
class Candidate:
    """What a worker needs from a set-up candidate."""

    record: Callable[[], Any]  # records EVENT once
    close: Callable[[], Any]
    extras: Callable[[], dict] = dict  # counters to report after close


def _ours_eventlog(spec):
    import logging

    from jupyter_telemetry import EventLog

    handler = logging.NullHandler() if spec.get("handler") == "null" else None
    handler = handler or logging.FileHandler(spec["file"])
    kwargs = {"handlers": [handler], "allowed_schemas": [SCHEMA_ID]}
    if spec.get("otlp_endpoint"):
        if not EventLog.class_traits().get("otlp_endpoint"):
            raise Skip("installed EventLog has no otlp_endpoint trait")
        kwargs.update(otlp_endpoint=spec["otlp_endpoint"], otlp_protocol="grpc")
    if spec.get("categories"):
        kwargs["allowed_schemas"] = {SCHEMA_ID: {"allowed_categories": ALLOWED_CATEGORIES}}
        try:
            el = EventLog(**kwargs)
            el.register_schema(make_schema("categories"))
        except Exception as exc:
            raise Skip(f"no categories/allowed_categories support: {exc!r}"[:200]) from exc
    else:
        el = EventLog(**kwargs)
        el.register_schema(make_schema())
    if spec.get("handler") == "disabled":
        logging.disable(logging.CRITICAL)  # honoured or not: the file tells (check_output)

    def close():
        if hasattr(el, "shutdown"):
            el.shutdown(timeout=5)
        for h in kwargs["handlers"]:
            h.close()

    def extras():
        return {"otel_dropped": el.otel_dropped} if hasattr(el, "otel_dropped") else {}

    return Candidate(lambda: el.record_event(SCHEMA_ID, VERSION, EVENT), close, extras)


def setup_ours(spec):
    sys.path.insert(0, spec["ours_path"])
    return _ours_eventlog(spec)


def setup_jt010(spec):
    import jupyter_telemetry

    if not jupyter_telemetry.__file__.startswith(sys.prefix):
        raise RuntimeError(f"expected 0.1.0 from {sys.prefix}, got {jupyter_telemetry.__file__}")
    return _ours_eventlog(spec)


def setup_jupyter_events(spec):
    import logging

    from jupyter_events import EventLogger

    handler = logging.FileHandler(spec["file"])
    el = EventLogger(handlers=[handler])
    el.register_event_schema(make_schema("jupyter_events"))
    return Candidate(lambda: el.emit(schema_id=SCHEMA_ID, data=EVENT), handler.close)


CANDIDATES = {"ours": setup_ours, "jt010": setup_jt010, "jupyter_events": setup_jupyter_events}
DISTS = [
    "jupyter-telemetry",
    "jupyter-events",
    "jsonschema",
    "traitlets",
    "python-json-logger",
    "opentelemetry-sdk",
    "fastjsonschema",
    "jsonschema-rs",
    "structlog",
    "orjson",
]


def repo_relative(path, ours_path=None):
    """``path`` relative to the repository, else to ``--ours-path`` (as ``<ours-path>/...``),
    else its name: results name no machine's layout."""
    path = Path(path).resolve()
    for base, prefix in ((REPO, ""), (ours_path, "<ours-path>/")):
        if base is not None:
            try:
                return prefix + str(path.relative_to(Path(base).resolve()))
            except ValueError:
                pass
    return path.name


def measure(cand, n, rounds, warmup):
    """Per round: n individually timed calls (latency), then n calls timed together
    (throughput)."""
    clock, record = time.perf_counter_ns, cand.record
    for _ in range(warmup):
        record()
    latencies, walls = [], []
    for _ in range(rounds):
        for _ in range(n):
            t = clock()
            record()
            latencies.append(clock() - t)
        t0 = clock()
        for _ in range(n):
            record()
        walls.append(clock() - t0)
    latencies.sort()
    return {
        "calls": warmup + 2 * n * rounds,
        "timed_events": n * rounds,
        "median_us": latencies[len(latencies) // 2] / 1e3,
        "p99_us": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] / 1e3,
        "mean_us": sum(latencies) / len(latencies) / 1e3,
        "throughput_us": sum(walls) / (n * rounds) / 1e3,
        "round_throughput_us": [w / n / 1e3 for w in walls],
    }


def worker(spec):
    from importlib import metadata

    try:
        cand = CANDIDATES[spec["candidate"]](spec)
        probe = cand.record()  # fail fast, before timing, on a setup problem
        if spec.get("categories") and (probe or {}).get(REDACTED) == EVENT[REDACTED]:
            raise Skip(f"allowed_categories accepted but {REDACTED!r} not redacted")
    except Skip as exc:
        return {"status": "skipped", "reason": str(exc), "calls": 0}
    result = measure(cand, spec["n"], spec["rounds"], spec["warmup"])
    result["calls"] += 1
    # close() flushes/shuts down the exporter; cap the wait (collector down can retry for long).
    closer = threading.Thread(target=cand.close, daemon=True)
    t = time.perf_counter()
    closer.start()
    closer.join(CLOSE_CAP_S)
    result["close_ms"] = None if closer.is_alive() else (time.perf_counter() - t) * 1e3
    result.update(cand.extras())
    mod = sys.modules.get("jupyter_telemetry") or sys.modules.get("jupyter_events")
    result["module"] = repo_relative(mod.__file__, spec.get("ours_path"))
    versions = {}
    for dist in DISTS:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    result["versions"] = versions
    result["python"] = sys.version.split()[0]
    result["status"] = "ok"
    return result


# --------------------------------------------------------------------------- driver side


@dataclass
class Row:
    key: str
    label: str
    candidate: str  # key of CANDIDATES
    n: int  # events per round (per pass) before --scale
    # "otlp": "up"/"down"; "categories": True; "handler": "null" or "disabled" (default a file)
    options: dict = field(default_factory=dict)
    optional: bool = False  # a Skip is expected until the core has the feature


ROUNDS = 5
METRICS = ("median_us", "p99_us", "throughput_us")
ROWS = [
    Row("ours", "ours: FileHandler", "ours", 8000),
    Row(
        "ours-otel",
        "ours: FileHandler + OTLP gRPC, collector up",
        "ours",
        8000,
        {"otlp": "up"},
        True,
    ),
    Row(
        "ours-otel-down",
        "ours: FileHandler + OTLP gRPC, nothing listening",
        "ours",
        8000,
        {"otlp": "down"},
        True,
    ),
    Row(
        "ours-redact",
        "ours: FileHandler + categories redaction",
        "ours",
        8000,
        {"categories": True},
        True,
    ),
    Row("ours-null", "ours: NullHandler (no write)", "ours", 8000, {"handler": "null"}),
    Row(
        "ours-disabled",
        "ours: FileHandler, logging.disable(CRITICAL)",
        "ours",
        8000,
        {"handler": "disabled"},
    ),
    Row("jupyter_events", "jupyter_events EventLogger.emit", "jupyter_events", 1000),
    Row("jt-0.1.0", "jupyter-telemetry 0.1.0 (PyPI)", "jt010", 100),
]
# (numerator, denominator, caption)
RATIOS = [
    ("jupyter_events", "ours", "jupyter_events / ours"),
    ("jt-0.1.0", "ours", "jupyter-telemetry 0.1.0 / ours"),
    ("jupyter_events", "ours-otel", "jupyter_events / ours + OTel, up"),
    ("jupyter_events", "ours-otel-down", "jupyter_events / ours + OTel, down"),
    ("ours-otel", "ours", "OTel collector up / FileHandler only"),
    ("ours-otel-down", "ours-otel", "collector down / collector up"),
    ("ours-redact", "ours", "redaction / FileHandler only"),
    ("ours-null", "ours", "NullHandler / FileHandler"),
    ("ours-disabled", "ours", "logging disabled / FileHandler"),
]
TARGETS = {  # issue 10: the caller's speed against the anchors (throughput ratio)
    "jupyter_events / ours": "target >= 10x, aim 15x",
    "jupyter-telemetry 0.1.0 / ours": "target >= 60x",
}


def anchor_python(candidate):
    """Python of the anchor's own virtualenv, creating it (with the pinned release) if needed.

    Anchors never share our venv: 0.1.0 has our import name, and jupyter_events
    pulls in packages (jsonschema's format extras) that would slow our imports.
    """
    venv, requirement = ANCHOR_VENVS[candidate]
    name, version = requirement.split("==")
    python = venv / "bin" / "python"
    probe = [str(python), "-c", f"import importlib.metadata as m; print(m.version({name!r}))"]
    if python.exists():
        installed = subprocess.run(probe, capture_output=True, text=True).stdout.strip()
        if installed == version:
            return python
    print(f"creating {venv} with {requirement} ...", flush=True)
    for cmd in (
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(python), "-m", "pip", "install", "-q", requirement],
    ):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return python


def count_lines(path):
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def check_output(row, path, result):
    """Every call must have written exactly one JSON line; returns a list of problems."""
    problems = []
    lines = count_lines(path) if path.exists() else 0
    result["file_lines"] = lines
    kind = row.options.get("handler")
    if kind == "null":
        return [f"{path.name}: {lines} lines, none expected"] if lines else []
    if kind == "disabled":  # 0 lines: honoured; one per call: ignored (f25408f); else broken
        result["disable_honoured"] = lines == 0
        if lines not in (0, result["calls"]):
            problems.append(f"{path.name}: {lines} lines for {result['calls']} calls")
        return problems
    if lines != result["calls"]:
        problems.append(f"{path.name}: {lines} lines for {result['calls']} calls")
    if lines:
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - 65536))
            last = json.loads(f.read().splitlines()[-1])
        if last.get("__schema__") != SCHEMA_ID or last.get("action") != EVENT["action"]:
            problems.append(f"{path.name}: unexpected last line {last}")
        if row.options.get("categories") and last.get(REDACTED) == EVENT[REDACTED]:
            problems.append(f"{path.name}: {REDACTED!r} was not redacted")
    return problems


def run_row(row, workdir, args, endpoints):
    path = workdir / f"{row.key}.jsonl"
    n = max(10, int(row.n * args.scale))
    spec = {
        "candidate": row.candidate,
        "file": str(path),
        "n": n,
        "rounds": args.rounds,
        "warmup": max(20, n // 5),
        "ours_path": str(args.ours_path),
        **row.options,
    }
    # OTEL_* variables would turn on (or redirect) exporting in the rows that must not export.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    python = Path(sys.executable)
    if row.candidate in ANCHOR_VENVS:
        env.pop("PYTHONPATH", None)
        python = anchor_python(row.candidate)
    if "otlp" in row.options:
        if endpoints.get(row.options["otlp"]) is None:
            return {"status": "skipped", "reason": endpoints.get("error", "no endpoint")}
        spec["otlp_endpoint"] = endpoints[row.options["otlp"]]
    collector = endpoints.get("collector") if row.options.get("otlp") == "up" else None
    base = collector.count() if collector else 0
    proc = subprocess.run(
        [str(python), __file__, "--worker", json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    marked = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_MARK)]
    if proc.returncode or not marked:
        return {
            "status": "failed",
            "reason": f"worker exit {proc.returncode}",
            "stderr": proc.stderr[-3000:],
        }
    result = json.loads(marked[-1][len(RESULT_MARK) :])
    stderr = proc.stderr.splitlines()
    result["stderr_lines"] = len(stderr)
    result["stderr_head"] = stderr[:5]
    if result["status"] == "ok":
        result["problems"] = check_output(row, path, result)
        if collector:  # what arrived, not what the EventLog believes it sent
            result["collector_received"] = settled_count(collector) - base
    path.unlink(missing_ok=True)
    return result


def settled_count(collector, quiet_s=0.5, cap_s=10.0):
    """The collector's count once it has not moved for ``quiet_s`` (requests in flight land)."""
    deadline = time.monotonic() + cap_s
    last, since = collector.count(), time.monotonic()
    while time.monotonic() - since < quiet_s and time.monotonic() < deadline:
        time.sleep(0.05)
        count = collector.count()
        if count != last:
            last, since = count, time.monotonic()
    return last


def best_of(runs):
    """One row's result over --repeat runs: each metric's best (lowest) value."""
    if len(runs) == 1 or any(r["status"] != "ok" for r in runs):
        return runs[0] if len(runs) == 1 else next(r for r in runs if r["status"] != "ok")
    best = dict(runs[-1])
    for metric in METRICS:
        best[metric] = min(r[metric] for r in runs)
    best["repeats"] = [{m: r[m] for m in METRICS} for r in runs]
    best["problems"] = [p for r in runs for p in r["problems"]]
    return best


def print_report(rows, results):
    print()
    head = f"{'row':<50} {'events':>7} {'median':>8} {'p99':>8} {'thrput':>8}  (µs/event)"
    print(head)
    print("-" * len(head))
    for row in rows:
        r = results[row.key]
        if r["status"] != "ok":
            print(f"{row.label:<50} {r['status'].upper()}: {r.get('reason', '')}")
            continue
        otel = ""
        if row.options.get("otlp") == "down":
            otel = "  (OTLP: nothing listening, none delivered)"
        elif "collector_received" in r:
            lossy = "  LOSSY" if r["collector_received"] < r["calls"] else ""
            otel = f"  OTLP: {r['collector_received']}/{r['calls']} delivered{lossy}"
        print(
            f"{row.label:<50} {r['timed_events']:>7} {r['median_us']:>8.1f} "
            f"{r['p99_us']:>8.1f} {r['throughput_us']:>8.1f}{otel}"
        )
    print("\nratios (median latency, throughput):")
    ratios = []
    for num, den, caption in RATIOS:
        a, b = results.get(num, {}), results.get(den, {})
        if a.get("status") == "ok" and b.get("status") == "ok":
            med = a["median_us"] / b["median_us"]
            thr = a["throughput_us"] / b["throughput_us"]
            ratios.append({"ratio": caption, "median": med, "throughput": thr})
            target = f"   ({TARGETS[caption]})" if caption in TARGETS else ""
            print(f"  {caption:<40} {med:6.2f}{TIMES}  {thr:6.2f}{TIMES}{target}")
        elif num in results and den in results:
            print(f"  {caption:<40} n/a")
    subtraction(results)
    print("\nnotes:")
    for row in rows:
        r = results[row.key]
        for problem in r.get("problems", []):
            print(f"  !! {row.key}: {problem}")
        if r.get("stderr_lines"):
            print(
                f"  {row.key}: worker wrote {r['stderr_lines']} stderr lines, first: "
                f"{r['stderr_head'][0][:150]}"
            )
        if r["status"] == "failed":
            print(f"  !! {row.key} failed:\n{r['stderr']}")
        if r["status"] == "ok":
            close = (
                f"close {r['close_ms']:.0f} ms"
                if r["close_ms"] is not None
                else f"close() still running after {CLOSE_CAP_S} s, abandoned"
            )
            deps = ", ".join(
                f"{d} {v}"
                for d, v in r["versions"].items()
                if d in ("jupyter-telemetry", "jupyter-events", "jsonschema")
            )
            dropped = ""
            if "otel_dropped" in r and "otlp" in row.options:
                received = r.get("collector_received")
                if received is not None:
                    dropped = f"; OTel: {received} of {r['calls']} received by the collector"
                dropped += f"; otel_dropped {r['otel_dropped']}"
            if "disable_honoured" in r:
                dropped += "; logging.disable " + (
                    "honoured" if r["disable_honoured"] else "IGNORED: the row records everything"
                )
            print(f"  {row.key}: {r['module']} [{deps}]")
            print(f"      {close}; {r['file_lines']} lines in the file{dropped}")
    return ratios


def subtraction(results):
    """The file-sink row split by the breakdown rows (throughput µs/event)."""
    ok = {k: r["throughput_us"] for k, r in results.items() if r.get("status") == "ok"}
    if "ours" not in ok or "ours-null" not in ok:
        return
    print("\nours: FileHandler row by subtraction (throughput µs/event):")
    print(
        f"  write + flush of the line (FileHandler - NullHandler)  {ok['ours'] - ok['ours-null']:6.1f}"
    )
    if results.get("ours-disabled", {}).get("disable_honoured"):
        before = ok["ours-disabled"]
        delivery = ok["ours-null"] - before
        print(f"  stdlib delivery to a handler (NullHandler - disabled)  {delivery:6.1f}")
        print(f"  everything before delivery (logging disabled)          {before:6.1f}")
    else:
        print(f"  everything but the write (NullHandler)                 {ok['ours-null']:6.1f}")


SECTIONS = ["caller", "imports", "breakdown", "e2e", "burst", "bridge"]
#: not in the default run: ~10 minutes under valgrind
OPT_IN = ["bridge-instructions"]
OTHER_SCRIPTS = {"imports": "bench_parts", "breakdown": "bench_parts"}  # else bench_e2e


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--json",
        type=Path,
        help="write the results here (default: benchmarks/last-run.json, except with --quick)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small counts and few rounds: a smoke run"
    )
    parser.add_argument("--sections", default=",".join(SECTIONS), help=",".join(SECTIONS + OPT_IN))
    parser.add_argument(
        "--rows", help="caller rows, comma-separated: " + ",".join(r.key for r in ROWS)
    )
    parser.add_argument("--scale", type=float, default=None, help="multiply events per caller row")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run the caller rows this many times; report each metric's best (noisy machine)",
    )
    parser.add_argument(
        "--ours-path",
        type=Path,
        default=REPO,
        help="directory holding our jupyter_telemetry package (default: the repo)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(RESULT_MARK + json.dumps(worker(json.loads(args.worker))), flush=True)
        os._exit(0)  # don't wait on exporter threads or exit hooks still retrying
    sections = args.sections.split(",")
    unknown = set(sections) - set(SECTIONS) - set(OPT_IN)
    if unknown:
        parser.error(f"unknown sections: {sorted(unknown)}")
    if args.scale is None:
        args.scale = 0.05 if args.quick else 1.0
    args.rounds = 2 if args.quick else ROUNDS
    if args.json is None and not args.quick:
        args.json = HERE / "last-run.json"
    rows = ROWS
    if args.rows:
        keys = args.rows.split(",")
        unknown = set(keys) - {r.key for r in ROWS}
        if unknown:
            parser.error(f"unknown rows: {sorted(unknown)}")
        rows = [r for r in ROWS if r.key in keys]
    print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
        f"sections {','.join(sections)}; {'quick' if args.quick else 'full'} run",
        flush=True,
    )
    started = time.monotonic()
    out = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "quick": args.quick,
        "schema": make_schema(),
        "event": EVENT,
    }
    bad = []
    if "caller" in sections:
        out["caller"], bad = run_caller(args, rows)
    for name in sections:
        if name == "caller":
            continue
        print(f"\n== {name}", flush=True)
        module = __import__(OTHER_SCRIPTS.get(name, "bench_e2e"))
        try:
            if name in OTHER_SCRIPTS:
                out[name] = module.SECTIONS[name](args)
            else:
                with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
                    out[name] = module.SECTIONS[name](args, Path(tmp))
                if module.failed({name: out[name]}):
                    bad.append(name)
        except Exception as exc:  # one broken section must not cost the others
            print(f"  !! section {name} failed: {exc!r}")
            out[name] = {"status": "failed", "reason": repr(exc)}
            bad.append(name)
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
        print(f"results written to {args.json}")
    if bad:
        print(f"!! failed: {', '.join(bad)}")
    return 1 if bad else 0


def run_caller(args, rows):
    """The caller rows side by side with the anchors; ``(results, failed row keys)``."""
    print(f"\n== caller: {args.rounds} rounds per row, scale {args.scale}, repeat {args.repeat}")
    with tempfile.TemporaryDirectory(prefix="bench-record-event-") as tmp:
        workdir = Path(tmp)
        endpoints, collector = {}, None
        if any(r.options.get("otlp") == "up" for r in rows):
            try:
                collector = CountingCollector(workdir / "collector").__enter__()
                endpoints["up"] = collector.endpoints["grpc"]
                endpoints["collector"] = collector
            except Exception as exc:  # rotel missing or failed: the row is skipped, not the run
                endpoints["error"] = f"no collector: {exc!r}"
        endpoints["down"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        runs = {row.key: [] for row in rows}
        try:
            for rep in range(args.repeat):
                for row in rows:
                    if rep and runs[row.key][0]["status"] != "ok":
                        continue
                    print(f"  [{rep + 1}] {row.label} ...", end="", flush=True)
                    t = time.monotonic()
                    try:
                        result = run_row(row, workdir, args, endpoints)
                    except Exception as exc:
                        result = {"status": "failed", "reason": repr(exc), "stderr": ""}
                    runs[row.key].append(result)
                    print(f" {result['status']} ({time.monotonic() - t:.1f} s)", flush=True)
        finally:
            if collector:
                collector.__exit__()
        results = {key: best_of(rs) for key, rs in runs.items()}
    ratios = print_report(rows, results)
    bad = [
        r.key
        for r in rows
        if results[r.key]["status"] == "failed"
        or results[r.key].get("problems")
        or (results[r.key]["status"] == "skipped" and not r.optional)
    ]
    summary = {
        "rounds": args.rounds,
        "scale": args.scale,
        "repeat": args.repeat,
        "rows": [{"key": r.key, "label": r.label, **results[r.key]} for r in rows],
        "ratios": ratios,
    }
    return summary, bad


if __name__ == "__main__":
    sys.exit(main())
