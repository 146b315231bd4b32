#!/usr/bin/env python
"""Where the time goes: import time, the per-event steps in isolation, a profile.

    python benchmarks/bench_parts.py [--quick] [--sections imports,breakdown] [--json PATH]

Usually run by ``bench_record_event.py`` (the one command); runnable alone.
Each measurement runs in a fresh interpreter (this file with ``--worker``).
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from bench_record_event import EVENT, SCHEMA_ID, VERSION, anchor_python, make_schema  # noqa: E402

RESULT_MARK = "BENCH-RESULT "
DEPENDENCIES = ["jsonschema", "traitlets", "structlog", "yaml", "orjson"]  # issue 10's list
HEAVY = ["opentelemetry", "grpc"]  # must not be imported without an OTel destination

# --------------------------------------------------------------------------- worker side


# Runs with ``python -c`` so that nothing but ``time`` and ``sys`` is imported before the clock starts.
IMPORT_SNIPPET = """
import time, sys
missing = []
t = time.perf_counter()
for name in {modules!r}:
    try:
        __import__(name)
    except ImportError:
        missing.append(name)
took = time.perf_counter() - t
import json
heavy = [m for m in {heavy!r} if m in sys.modules]
print({mark!r} + json.dumps({{"ms": took * 1e3, "heavy": heavy, "missing": missing}}))
"""
DEPS_VENV = HERE / ".venv-ours-deps"


def deps_python(ours_path: Path) -> Path:
    """Python of a venv holding only our package's dependencies (as pyproject.toml lists them),
    at the versions installed here; our package itself comes from PYTHONPATH.

    Not the driver's venv: there jupyter_events pulls in jsonschema's format extras,
    whose import (rfc3987_syntax builds a grammar) would dominate every import of jsonschema.
    """
    import re
    from importlib import metadata

    import tomllib

    deps = tomllib.loads((ours_path / "pyproject.toml").read_text())["project"]["dependencies"]
    pinned = []
    for spec in deps:
        name = re.match(r"[A-Za-z0-9_.-]+", spec).group(0)  # type: ignore[union-attr]
        try:
            pinned.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pinned.append(spec)
    wanted = "\n".join(sorted(pinned)) + "\n"
    python, marker = DEPS_VENV / "bin" / "python", DEPS_VENV / "requirements.txt"
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    print(f"\n  creating {DEPS_VENV.name} with {len(pinned)} dependencies ...", end="", flush=True)
    for cmd in (
        [sys.executable, "-m", "venv", "--clear", str(DEPS_VENV)],
        [str(python), "-m", "pip", "install", "-q", *pinned],
    ):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"{' '.join(cmd[:4])} failed:\n{proc.stderr[-2000:]}")
    marker.write_text(wanted)
    return python


def best_per_call(fn: Any, n: int, repeats: int = 5) -> float:
    """Best of ``repeats`` timings of ``n`` calls, in µs per call."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter_ns()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter_ns() - t) / n / 1e3)
    return best


def components_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """The host libraries' public functions behind each step, timed alone on the event."""
    import logging
    import tempfile
    from datetime import datetime, timezone

    import jsonschema
    import orjson
    import structlog

    scale = spec["scale"]
    schema = make_schema()
    capsule = {
        "__timestamp__": "2024-01-01T00:00:00.000001Z",
        "__schema__": SCHEMA_ID,
        "__schema_version__": VERSION,
        "__metadata_version__": 1,
        **EVENT,
    }
    line = orjson.dumps(capsule).decode()
    cases: list[tuple[str, str, Any, int]] = []  # (step, label, fn, calls)
    try:
        import jsonschema_rs

        rs = jsonschema_rs.validator_for(schema)
        cases.append(
            (
                "validate",
                "jsonschema_rs validator.validate(event)",
                lambda: rs.validate(EVENT),
                20000,
            )
        )
        cases.append(
            (
                "validate",
                "jsonschema_rs validator.is_valid(event)",
                lambda: rs.is_valid(EVENT),
                20000,
            )
        )
    except ImportError:
        pass
    try:
        import fastjsonschema

        fast = fastjsonschema.compile(schema)
        cases.append(
            ("validate", "fastjsonschema compiled validator(event)", lambda: fast(EVENT), 20000)
        )
    except ImportError:
        pass
    draft7 = jsonschema.Draft7Validator(schema)
    cases.append(
        (
            "validate",
            "jsonschema Draft7Validator.validate [jupyter_events]",
            lambda: draft7.validate(EVENT),
            1000,
        )
    )
    cases.append(
        (
            "validate",
            "jsonschema.validate(event, schema)  [0.1.0]",
            lambda: jsonschema.validate(EVENT, schema),
            30,
        )
    )
    cases.append(("capsule", "time.time_ns()", time.time_ns, 50000))
    cases.append(
        (
            "capsule",
            "datetime.now(timezone.utc).isoformat()",
            lambda: datetime.now(timezone.utc).isoformat(),
            20000,
        )
    )
    cases.append(("capsule", "capsule dict {4 keys, **event}", lambda: {**capsule, **EVENT}, 50000))
    cases.append(
        ("render", "orjson.dumps(capsule).decode()", lambda: orjson.dumps(capsule).decode(), 50000)
    )
    cases.append(("render", "line.isascii()", line.isascii, 50000))
    cases.append(
        ("render", "json.dumps(capsule) (ensure_ascii)", lambda: json.dumps(capsule), 20000)
    )
    renderer = structlog.processors.JSONRenderer(serializer=lambda o, **_: orjson.dumps(o).decode())
    cases.append(
        (
            "render",
            "structlog JSONRenderer(orjson) on the capsule",
            lambda: renderer(None, "info", dict(capsule)),
            20000,
        )
    )
    with tempfile.TemporaryDirectory() as tmp:
        handlers = {
            "FileHandler": logging.FileHandler(os.path.join(tmp, "a.log")),
            "NullHandler": logging.NullHandler(),
        }
        for name, handler in handlers.items():
            logger = logging.Logger(f"bench.{name}", logging.INFO)
            logger.propagate = False
            logger.addHandler(handler)
            record = logger.makeRecord(logger.name, logging.INFO, "f", 0, line, None, None)
            cases.append(
                ("deliver", f"Logger.info(line), {name}", lambda lg=logger: lg.info(line), 20000)
            )
            cases.append(
                (
                    "deliver",
                    f"Logger.handle(prebuilt record), {name}",
                    lambda lg=logger, r=record: lg.handle(r),
                    20000,
                )
            )
        logger = logging.Logger("bench.record", logging.INFO)
        cases.append(
            (
                "deliver",
                "Logger.makeRecord(...)",
                lambda: logger.makeRecord(logger.name, logging.INFO, "f", 0, line, None, None),
                20000,
            )
        )
        stream = open(os.path.join(tmp, "b.log"), "w")
        cases.append(
            (
                "deliver",
                "stream.write(line + '\\n'); stream.flush()",
                lambda: (stream.write(line + "\n"), stream.flush()),
                20000,
            )
        )
        out = []
        for step, label, fn, calls in cases:
            out.append(
                {"step": step, "label": label, "us": best_per_call(fn, max(10, int(calls * scale)))}
            )
        stream.close()
        for handler in handlers.values():
            handler.close()
    return {"components": out}


def _step_of(filename: str, name: str) -> str:
    """Which pipeline step a profiled function belongs to (by module and name)."""
    where = f"{filename}:{name}".lower()
    if "_io." in where or "textiowrapper" in where or ("flush" in name and "logging" not in where):
        return "write+flush"
    if any(k in where for k in ("jsonschema", "fastjsonschema", "validat", "_schema.py")):
        return "validate"
    if any(k in where for k in ("_categories", "redact")):
        return "redact"
    if any(k in where for k in ("_capsule", "time_ns", "datetime", "timedelta", "isoformat")):
        return "capsule+timestamp"
    if any(k in where for k in ("structlog", "orjson", "json", "render", "isascii", "encode")):
        return "render"
    if any(k in where for k in ("logging", "thread", "sinks")):
        return "logging delivery"
    if "eventlog.py" in where or "_pipeline" in where:
        return "record_event itself"
    return "other"


def short_path(filename: str, ours_path: str) -> str:
    """``filename`` without this machine's layout: relative to our package's directory,
    site-packages or the standard library."""
    import sysconfig

    if not os.path.isabs(filename):
        return filename  # "~" (built-ins) or "<string>" (generated code)
    path = Path(filename).resolve()
    for base, prefix in (
        (ours_path, ""),
        (sysconfig.get_paths()["purelib"], ""),
        (sysconfig.get_paths()["stdlib"], "stdlib/"),
    ):
        try:
            return prefix + str(path.relative_to(Path(base).resolve()))
        except ValueError:
            continue
    return path.name


def profile_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """``record_event`` (FileHandler) under cProfile: own time per step and top functions."""
    import cProfile
    import logging
    import pstats
    import tempfile

    sys.path.insert(0, spec["ours_path"])
    from jupyter_telemetry import EventLog

    n = spec["n"]
    with tempfile.TemporaryDirectory() as tmp:
        handler = logging.FileHandler(os.path.join(tmp, "events.log"))
        el = EventLog(handlers=[handler], allowed_schemas=[SCHEMA_ID])
        el.register_schema(make_schema())
        for _ in range(n // 5):
            el.record_event(SCHEMA_ID, VERSION, EVENT)
        t = time.perf_counter_ns()
        for _ in range(n):
            el.record_event(SCHEMA_ID, VERSION, EVENT)
        plain_us = (time.perf_counter_ns() - t) / n / 1e3
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(n):
            el.record_event(SCHEMA_ID, VERSION, EVENT)
        profiler.disable()
        handler.close()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    steps: dict[str, float] = {}
    functions = []
    for (filename, _line, name), (_cc, calls, tottime, _ct, _callers) in stats.items():
        if name == "disable" and "Profiler" in name + filename:
            continue
        step = _step_of(filename, name)
        steps[step] = steps.get(step, 0.0) + tottime
        short = short_path(filename, spec["ours_path"])
        functions.append(
            {
                "function": f"{short}:{name}",
                "step": step,
                "calls_per_event": calls / n,
                "us": tottime / n * 1e6,
            }
        )
    total = sum(steps.values())
    functions.sort(key=lambda f: -f["us"])
    return {
        "plain_us": plain_us,
        "profiled_us": total / n * 1e6,
        "steps": {k: v / total for k, v in sorted(steps.items(), key=lambda kv: -kv[1])},
        "top": functions[:15],
    }


WORKERS = {"components": components_worker, "profile": profile_worker}

# --------------------------------------------------------------------------- driver side


def run_worker(
    spec: dict[str, Any], python: Path | str = sys.executable, ours: bool = True
) -> dict[str, Any]:
    """Run one worker in a fresh interpreter (ours: PYTHONPATH is our package's directory)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    if ours:
        env["PYTHONPATH"] = spec["ours_path"]
    else:
        env.pop("PYTHONPATH", None)
    if spec["kind"] == "import":
        code = IMPORT_SNIPPET.format(modules=spec["modules"], mark=RESULT_MARK, heavy=HEAVY)
        cmd = [str(python), "-c", code]
    else:
        cmd = [str(python), __file__, "--worker", json.dumps(spec)]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=HERE,
    )
    marked = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_MARK)]
    if proc.returncode or not marked:
        raise RuntimeError(f"worker exit {proc.returncode}: {proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(marked[-1][len(RESULT_MARK) :])
    return result


def run_imports(args: argparse.Namespace) -> dict[str, Any]:
    """Median import time over fresh interpreters, runs of the candidates interleaved."""
    runs = 3 if args.quick else 9
    try:
        ours_python: Path | str = deps_python(args.ours_path)
    except Exception as exc:  # no network: measure in this venv, and say so
        ours_python = sys.executable
        print(
            f"\n  !! no dependencies-only venv ({exc!r:.150}); jsonschema's imports may be inflated"
        )
    candidates: list[tuple[str, str, list[str], Any, bool]] = [
        ("ours", "import jupyter_telemetry", ["jupyter_telemetry"], ours_python, True),
        ("deps", "import " + ", ".join(DEPENDENCIES), DEPENDENCIES, ours_python, True),
        (
            "deps+rs",
            "the same + jsonschema_rs",
            [*DEPENDENCIES, "jsonschema_rs"],
            ours_python,
            True,
        ),
    ]
    for key, label, modules, venv in (
        (
            "jupyter_events",
            "import jupyter_events (its venv)",
            ["jupyter_events"],
            "jupyter_events",
        ),
        ("jt-0.1.0", "import jupyter_telemetry 0.1.0 (its venv)", ["jupyter_telemetry"], "jt010"),
    ):
        try:
            candidates.append((key, label, modules, anchor_python(venv), False))
        except Exception as exc:  # no network for the anchor's venv: skip the row
            print(f"  imports: {label} skipped: {exc!r}"[:200])
    times: dict[str, list[float]] = {c[0]: [] for c in candidates}
    heavy: dict[str, list[str]] = {}
    missing: dict[str, list[str]] = {}
    print(f"  imports: {runs} fresh interpreters per row ...", end="", flush=True)
    for _ in range(runs):
        for key, _label, modules, python, ours in candidates:
            result = run_worker(
                {"kind": "import", "modules": modules, "ours_path": str(args.ours_path)},
                python,
                ours,
            )
            times[key].append(result["ms"])
            heavy[key] = result["heavy"]
            missing[key] = result["missing"]
    print(" done")
    print("\nimport time (ms, fresh interpreter, median; target: jupyter_telemetry < 200 ms)")
    rows = {}
    for key, label, *_ in candidates:
        med = statistics.median(times[key])
        rows[key] = {
            "label": label,
            "median_ms": med,
            "runs_ms": times[key],
            "imports": heavy[key],
            "missing": missing[key],
        }
        seen = f"  (imports {', '.join(heavy[key])})" if heavy[key] else ""
        seen += f"  ({', '.join(missing[key])} not installed)" if missing[key] else ""
        print(f"  {label:<62} {med:7.1f}  min {min(times[key]):6.1f}{seen}")
    if "ours" in rows and "deps" in rows:
        extra = rows["ours"]["median_ms"] - rows["deps"]["median_ms"]
        print(f"  jupyter_telemetry beyond its dependencies' own imports: {extra:+.1f} ms")
    return {"runs": runs, "rows": rows}


def run_breakdown(args: argparse.Namespace) -> dict[str, Any]:
    scale = 0.1 if args.quick else 1.0
    print("  breakdown: components, profile ...", end="", flush=True)
    parts = run_worker({"kind": "components", "scale": scale, "ours_path": str(args.ours_path)})
    prof = run_worker(
        {"kind": "profile", "n": 2000 if args.quick else 20000, "ours_path": str(args.ours_path)}
    )
    print(" done")
    print("\nwhere the per-event time goes: host libraries' functions alone (best of 5, µs/call)")
    for c in parts["components"]:
        print(f"  {c['step']:<10} {c['label']:<58} {c['us']:9.2f}")
    print(
        f"\nrecord_event (FileHandler) under cProfile: {prof['plain_us']:.1f} µs/event unprofiled, "
        f"{prof['profiled_us']:.1f} profiled; own time by step (profiling inflates Python calls):"
    )
    for step, share in prof["steps"].items():
        print(f"  {step:<22} {share * 100:5.1f} %")
    print("  top functions (own µs/event under the profiler, calls/event):")
    for f in prof["top"][:10]:
        print(
            f"    {f['us']:6.2f}  {f['calls_per_event']:4.1f}  [{f['step']}] {f['function'][:90]}"
        )
    return {"components": parts["components"], "profile": prof}


SECTIONS = {"imports": run_imports, "breakdown": run_breakdown}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs: a smoke run")
    parser.add_argument("--sections", default=",".join(SECTIONS), help="imports,breakdown")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--ours-path", type=Path, default=REPO)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        spec = json.loads(args.worker)
        print(RESULT_MARK + json.dumps(WORKERS[spec["kind"]](spec)), flush=True)
        return 0
    out = {name: SECTIONS[name](args) for name in args.sections.split(",")}
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
