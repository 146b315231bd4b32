"""A local rotel collector that only counts the log records it receives.

Started like ``tests/_collector.py`` starts it (``rotel-agent``, blackhole
exporter, a Python processor run on every batch), but the processor only
appends each batch's record count to a file: decoding every record, as the
test collector does, would cost more CPU than the pipelines being measured.
Standard library only at module level (the driver imports it).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

_PROCESSOR = r"""
_OUT = "@OUT@"

def process_logs(resource_logs):
    n = 0
    for sl in resource_logs.scope_logs:
        n += len(sl.log_records)
    with open(_OUT, "a") as f:
        f.write("%d\n" % n)
"""

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def descendants(pid: int) -> list[int]:
    """Live descendant process ids of ``pid`` (an export helper, for instance)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            for task in os.listdir(f"/proc/{parent}/task"):
                with open(f"/proc/{parent}/task/{task}/children") as f:
                    kids = [int(k) for k in f.read().split()]
                found += kids
                todo += kids
        except OSError:
            continue
    return found


def read_count(path: Path) -> int:
    """Records counted so far in a counter file written by the processor."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    return sum(int(x) for x in data[: data.rfind(b"\n") + 1].split())


class CountingCollector:
    """``rotel-agent`` on free 127.0.0.1 ports; :meth:`count` = log records received."""

    def __init__(self, workdir: Path) -> None:
        import rotel  # the driver's venv has it; the anchor venvs never start a collector

        self.agent = Path(rotel.__file__).parent / "rotel-agent"
        self.workdir = Path(workdir)
        self.counts = self.workdir / "counts.txt"
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoints(self) -> dict[str, str]:
        return {
            "grpc": f"http://127.0.0.1:{self.grpc_port}",
            "http/protobuf": f"http://127.0.0.1:{self.http_port}",
        }

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def count(self) -> int:
        return read_count(self.counts)

    def __enter__(self) -> CountingCollector:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.counts.write_bytes(b"")
        script = self.workdir / "count_processor.py"
        script.write_text(_PROCESSOR.replace('"@OUT@"', repr(str(self.counts))))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ROTEL_", "PYTHON"))}
        setpriv = shutil.which("setpriv")  # the agent dies with the thread that started it
        cmd = [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []
        cmd += [
            str(self.agent),
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
        ]
        with open(self.workdir / "rotel.out", "wb") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                for port in (self.grpc_port, self.http_port):
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.02)
        self.__exit__()
        text = (self.workdir / "rotel.out").read_text(errors="replace")
        raise RuntimeError(f"rotel-agent did not come up within 10 s:\n{text[-2000:]}")

    def __exit__(self, *exc: object) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
