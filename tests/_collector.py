"""A real local OTLP collector (rotel) for the test suite.

The ``rotel-agent`` binary shipped in the ``rotel`` PyPI wheel embeds Python
(it links the system ``libpython3.11``) and runs a generated *processor* script
on every batch it receives, over OTLP/gRPC or OTLP/HTTP.  The processor writes
each log record / span as one JSON line with type-tagged values, so decoding is
exact: no parsing of rotel's ambiguous debug text.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import rotel  # type: ignore[import-untyped]

AGENT = Path(rotel.__file__).parent / "rotel-agent"
# util-linux setpriv: the agent gets SIGKILL if the thread that started it dies,
# so even a SIGKILLed pytest leaves no collector behind (atexit covers the rest).
# Hence call start() from a thread that outlives the collector (the main one).
_SETPRIV = shutil.which("setpriv")
START_TIMEOUT = 10.0

# Runs *inside* rotel's embedded interpreter (system Python 3.11, stdlib only).
# Values are tagged as [type, value] so ints, doubles, bytes, arrays and maps
# survive JSON unambiguously (json.dumps escapes all non-ASCII, so the file is
# ASCII).  ``"@OUT@"`` is replaced with the output path as a Python literal.
_PROCESSOR = r"""
import json, traceback
from rotel_sdk.open_telemetry.common.v1 import ArrayValue, KeyValueList

_OUT = "@OUT@"

def _val(any_value):
    v = None if any_value is None else any_value.value
    if v is None:
        return None
    if isinstance(v, bool):
        return ["bool", v]
    if isinstance(v, int):
        return ["int", v]
    if isinstance(v, float):
        return ["double", v]
    if isinstance(v, str):
        return ["str", v]
    if isinstance(v, ArrayValue):
        return ["array", [_val(x) for x in v]]
    if isinstance(v, KeyValueList):
        return ["kvlist", _kvs(v)]
    if isinstance(v, (bytes, bytearray, list)):  # bytes arrive as list[int]
        return ["bytes", bytes(v).hex()]
    raise TypeError("unexpected AnyValue payload %r" % (v,))

def _kvs(kvs):
    return [[kv.key, _val(kv.value)] for kv in kvs]

def _hex(b):
    return bytes(b or b"").hex()

def _common(resource, scope):
    return {
        "resource": [] if resource is None else _kvs(resource.attributes),
        "scope": ["", ""] if scope is None else [scope.name, scope.version],
    }

def _write(lines):
    with open(_OUT, "a", encoding="utf-8") as f:
        f.write("".join(json.dumps(line) + "\n" for line in lines))

def process_logs(resource_logs):
    try:
        lines = []
        for sl in resource_logs.scope_logs:
            common = _common(resource_logs.resource, sl.scope)
            for r in sl.log_records:
                lines.append(dict(
                    common, kind="log", event_name=r.event_name, body=_val(r.body),
                    attributes=_kvs(r.attributes), time=r.time_unix_nano,
                    observed_time=r.observed_time_unix_nano,
                    severity_text=r.severity_text, severity_number=r.severity_number,
                    trace_id=_hex(r.trace_id), span_id=_hex(r.span_id)))
        _write(lines)
    except BaseException:
        _write([{"kind": "error", "error": traceback.format_exc()}])

def process_spans(resource_spans):
    try:
        lines = []
        for ss in resource_spans.scope_spans:
            common = _common(resource_spans.resource, ss.scope)
            for s in ss.spans:
                lines.append(dict(
                    common, kind="span", name=s.name, trace_id=_hex(s.trace_id),
                    span_id=_hex(s.span_id), parent_span_id=_hex(s.parent_span_id),
                    attributes=_kvs(s.attributes),
                    events=[[e.name, _kvs(e.attributes)] for e in s.events]))
        _write(lines)
    except BaseException:
        _write([{"kind": "error", "error": traceback.format_exc()}])
"""


def _decode(tagged: list[Any] | None) -> Any:
    """Turn a ``[type, value]`` pair written by the processor into a Python value."""
    if tagged is None:
        return None
    kind, value = tagged
    if kind == "array":
        return [_decode(v) for v in value]
    if kind == "kvlist":
        return _decode_kvs(value)
    if kind == "bytes":
        return bytes.fromhex(value)
    return value  # str / int / double / bool are already exact in JSON


def _decode_kvs(pairs: list[list[Any]]) -> dict[str, Any]:
    """Decode a key/value list into a dict (a repeated key keeps its last value)."""
    return {key: _decode(value) for key, value in pairs}


@dataclass(frozen=True)
class ReceivedLog:
    """One OTLP log record as the collector received it."""

    event_name: str
    body: Any
    attributes: dict[str, Any]
    timestamp_ns: int
    observed_timestamp_ns: int
    severity_text: str
    severity_number: int
    trace_id: str  # lowercase hex, "" when absent
    span_id: str
    resource: dict[str, Any]
    scope_name: str
    scope_version: str


@dataclass(frozen=True)
class ReceivedSpan:
    """One OTLP span as the collector received it."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    resource: dict[str, Any]
    scope_name: str
    scope_version: str


def _received_log(r: dict[str, Any]) -> ReceivedLog:
    return ReceivedLog(
        event_name=r["event_name"],
        body=_decode(r["body"]),
        attributes=_decode_kvs(r["attributes"]),
        timestamp_ns=r["time"],
        observed_timestamp_ns=r["observed_time"],
        severity_text=r["severity_text"],
        severity_number=r["severity_number"],
        trace_id=r["trace_id"],
        span_id=r["span_id"],
        resource=_decode_kvs(r["resource"]),
        scope_name=r["scope"][0],
        scope_version=r["scope"][1],
    )


def _received_span(r: dict[str, Any]) -> ReceivedSpan:
    return ReceivedSpan(
        name=r["name"],
        trace_id=r["trace_id"],
        span_id=r["span_id"],
        parent_span_id=r["parent_span_id"],
        attributes=_decode_kvs(r["attributes"]),
        events=[(name, _decode_kvs(attrs)) for name, attrs in r["events"]],
        resource=_decode_kvs(r["resource"]),
        scope_name=r["scope"][0],
        scope_version=r["scope"][1],
    )


_T = TypeVar("_T")
_running: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_running):
        proc.kill()
        proc.wait()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening_ports(pid: int) -> set[int] | None:
    """TCP ports ``pid`` itself is listening on, or None where /proc can't tell."""
    try:
        inodes = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        ports = set()
        for table in ("tcp", "tcp6"):
            with open(f"/proc/{pid}/net/{table}") as f:
                for line in f.readlines()[1:]:
                    cols = line.split()
                    if cols[3] == "0A" and cols[9] in inodes:  # 0A = LISTEN
                        ports.add(int(cols[1].rsplit(":", 1)[1], 16))
        return ports
    except OSError:
        return None


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Collector:
    """A real rotel collector process on 127.0.0.1 with free ports.

    Everything it writes (pid file, log file, process output, received data)
    stays in ``workdir``.  ``start()`` after ``stop()`` reuses the same ports,
    and ``logs()`` / ``spans()`` cover every run.  Usable as a context manager.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.grpc_port = _free_port()
        self.http_port = _free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._runs = 0  # completed start() calls; each run has its own files
        self._ever_up = False  # ports are fixed once a run came up on them
        self._read: dict[int, int] = {}  # run -> bytes of its file already decoded
        self._logs: list[ReceivedLog] = []  # decoded, in arrival order
        self._spans: list[ReceivedSpan] = []
        self._error: str | None = None

    @property
    def grpc_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        """Base URL; the OTLP paths are /v1/logs and /v1/traces."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Start (or restart on the same ports) and wait until both ports listen.

        Raises RuntimeError with the process output if it is not up in ~10 s.
        """
        if self._proc is not None and self._proc.poll() is None:
            raise RuntimeError("collector already running")
        attempts = 1 if self._ever_up else 3  # new ports may race; retry those
        error: str | None = None
        for attempt in range(attempts):
            if attempt:
                self.grpc_port, self.http_port = _free_port(), _free_port()
            error = self._launch()
            if error is None:
                self._ever_up = True
                return
        raise RuntimeError(error)

    def _launch(self) -> str | None:
        """Start one process; return None once it is up, else an error text."""
        self._runs += 1
        run = self._runs
        data = self.workdir / f"received-{run:03d}.jsonl"
        data.write_bytes(b"")  # a reused workdir must not leak an older instance's data
        script = self.workdir / f"processor-{run:03d}.py"
        script.write_text(_PROCESSOR.replace('"@OUT@"', repr(str(data))), encoding="utf-8")
        output = self.workdir / f"rotel-{run:03d}.out"
        # Hermetic: no ROTEL_* settings or Python paths leak into the agent.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ROTEL_", "PYTHON"))}
        cmd = [_SETPRIV, "--pdeathsig", "KILL", "--"] if _SETPRIV else []
        cmd += [
            str(AGENT),
            "start",
            "--otlp-grpc-endpoint",
            f"127.0.0.1:{self.grpc_port}",
            "--otlp-http-endpoint",
            f"127.0.0.1:{self.http_port}",
            "--exporter",
            "blackhole",
            "--pid-file",
            str(self.workdir / "rotel.pid"),
            "--log-file",
            str(self.workdir / "rotel.log"),
            "--otlp-with-logs-processor",
            str(script),
            "--otlp-with-trace-processor",
            str(script),
        ]
        with open(output, "wb") as out:
            proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                env=env,
            )
        _running.add(proc)
        self._proc = proc
        deadline = time.monotonic() + START_TIMEOUT
        wanted = {self.grpc_port, self.http_port}
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            ports = _listening_ports(proc.pid)
            if (ports is None or wanted <= ports) and all(map(_accepts, wanted)):
                if proc.poll() is None:
                    return None
            time.sleep(0.01)
        self.stop(kill=True)
        text = output.read_text(errors="replace")
        return (
            f"rotel collector did not come up on ports {sorted(wanted)} "
            f"(exit code {proc.returncode}); output:\n{text}"
        )

    def stop(self, kill: bool = False) -> None:
        """Stop the process (SIGTERM, or SIGKILL with ``kill=True``) and wait."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill() if kill else proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        _running.discard(proc)

    def _status(self) -> str:
        """'running', 'stopped', or the exit code and output of a dead process."""
        if self._proc is None:
            return "stopped"
        if self._proc.poll() is None:
            return f"running, pid {self._proc.pid}"
        output = (self.workdir / f"rotel-{self._runs:03d}.out").read_text(errors="replace")
        return f"DIED with exit code {self._proc.returncode}; output:\n{output}"

    def __enter__(self) -> Collector:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _refresh(self) -> None:
        """Decode what arrived since the last call (files only grow; a run never resumes)."""
        if self._error is not None:
            raise RuntimeError("collector processor failed:\n" + self._error)
        for run in range(1, self._runs + 1):
            with open(self.workdir / f"received-{run:03d}.jsonl", "rb") as received:
                received.seek(self._read.get(run, 0))
                data = received.read()
            complete = data.rfind(b"\n") + 1  # a torn tail after SIGKILL stays unread
            self._read[run] = self._read.get(run, 0) + complete
            for line in data[:complete].splitlines():
                record = json.loads(line)
                if record["kind"] == "error":
                    self._error = record["error"]
                    raise RuntimeError("collector processor failed:\n" + self._error)
                if record["kind"] == "log":
                    self._logs.append(_received_log(record))
                elif record["kind"] == "span":
                    self._spans.append(_received_span(record))

    def logs(self) -> list[ReceivedLog]:
        """Every log record received so far, across restarts."""
        self._refresh()
        return list(self._logs)

    def spans(self) -> list[ReceivedSpan]:
        """Every span received so far, across restarts."""
        self._refresh()
        return list(self._spans)

    def log_count(self) -> int:
        """How many log records arrived so far, across restarts."""
        self._refresh()
        return len(self._logs)

    def wait_for_log_count(self, n: int, timeout: float = 15.0) -> int:
        """Poll until at least ``n`` log records arrived (cheap for large runs); return the count."""
        deadline = time.monotonic() + timeout
        while True:
            count = self.log_count()
            if count >= n or time.monotonic() >= deadline:
                return count
            time.sleep(0.1)

    def assert_no_logs(self, predicate: Callable[[ReceivedLog], bool], settle: float = 1.0) -> None:
        """Fail if a matching log record arrives within ``settle`` seconds.

        The collector acknowledges a request before it writes the records, so
        absence is only shown by waiting: there is no event to wait for.
        """
        deadline = time.monotonic() + settle
        while True:
            found = [r for r in self.logs() if predicate(r)]
            assert not found, f"expected no matching log records, got {found}"
            if time.monotonic() >= deadline:
                return
            time.sleep(0.05)

    def wait_for_logs(
        self,
        n: int,
        timeout: float = 15.0,
        predicate: Callable[[ReceivedLog], bool] | None = None,
    ) -> list[ReceivedLog]:
        """Poll until at least ``n`` (matching) log records arrived; return them."""
        return self._wait(self.logs, "log records", n, timeout, predicate)

    def wait_for_spans(
        self,
        n: int,
        timeout: float = 15.0,
        predicate: Callable[[ReceivedSpan], bool] | None = None,
    ) -> list[ReceivedSpan]:
        """Poll until at least ``n`` (matching) spans arrived; return them."""
        return self._wait(self.spans, "spans", n, timeout, predicate)

    def _wait(
        self,
        fetch: Callable[[], list[_T]],
        what: str,
        n: int,
        timeout: float,
        predicate: Callable[[_T], bool] | None,
    ) -> list[_T]:
        deadline = time.monotonic() + timeout
        while True:
            everything = fetch()
            matching = [r for r in everything if predicate is None or predicate(r)]
            if len(matching) >= n:
                return matching
            if time.monotonic() >= deadline:
                listing = "\n".join(f"  {r!r}" for r in everything) or "  (none)"
                raise AssertionError(
                    f"expected >= {n} matching {what} within {timeout}s, got "
                    f"{len(matching)} matching of {len(everything)} received "
                    f"(collector {self._status()}):\n{listing}"
                )
            time.sleep(0.02)
