"""Real Jupyter Server and JupyterHub processes on 127.0.0.1 for the bridge tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env(workdir: Path, **extra: str) -> dict[str, str]:
    """This environment without OTEL_*/JUPYTER* settings, importing this worktree's package."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "JUPYTER"))}
    for name in ("config", "data", "runtime"):
        (workdir / "jupyter" / name).mkdir(parents=True, exist_ok=True)
    env.update(
        PYTHONPATH=str(ROOT),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        JUPYTER_CONFIG_DIR=str(workdir / "jupyter" / "config"),
        JUPYTER_DATA_DIR=str(workdir / "jupyter" / "data"),
        JUPYTER_RUNTIME_DIR=str(workdir / "jupyter" / "runtime"),
        JUPYTER_PLATFORM_DIRS="1",
        HOME=str(workdir),
    )
    env.update(extra)
    return env


class ServerProcess:
    """A server started as its users start it; ``request`` speaks its REST API with a token."""

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        workdir: Path,
        base_url: str,
        token: str,
        ready_path: str,
    ) -> None:
        self.argv, self.env, self.workdir = argv, env, workdir
        self.base_url, self.token, self.ready_path = base_url, token, ready_path
        self.output_path = workdir / "server.out"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        """Start and wait until ``ready_path`` answers 200; raise with the output otherwise."""
        with open(self.output_path, "wb") as out:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                env=self.env,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if self.request("GET", self.ready_path, timeout=2)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.argv} did not come up:\n{self.output()}")

    def output(self, tail: int = 6000) -> str:
        """The last ``tail`` characters the process wrote."""
        return self.output_path.read_text(errors="replace")[-tail:]

    def request(
        self, method: str, path: str, body: Any = None, timeout: float = 60
    ) -> tuple[int, Any]:
        """``(status, parsed JSON or None)`` of one request; HTTP errors are returned too."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Authorization", f"token {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # 127.0.0.1 only
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        return status, json.loads(raw) if raw.strip() else None

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}:\n{self.output()}")
            time.sleep(0.2)

    def stop(self) -> None:
        """SIGTERM (the server stops its kernels or user servers), then SIGKILL its group."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: kernels, user servers
        except (ProcessLookupError, PermissionError):
            pass


def jupyter_server(
    workdir: Path, config: str, env: dict[str, str], args: tuple[str, ...] = ()
) -> ServerProcess:
    """A ``python -m jupyter_server`` with ``config`` as its ``--config`` file (not started)."""
    port, token = free_port(), "test-token-" + os.urandom(8).hex()
    root = workdir / "root"
    root.mkdir(exist_ok=True)
    config_file = workdir / "jupyter_server_config.py"
    config_file.write_text(config)
    argv = [
        sys.executable,
        "-m",
        "jupyter_server",
        f"--config={config_file}",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--port-retries=0",
        "--no-browser",
        f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}",
        "--allow-root",
        *args,
    ]
    return ServerProcess(argv, env, workdir, f"http://127.0.0.1:{port}", token, "/api/status")


#: A proxy that routes nothing: the tests talk to the Hub's API and never through the proxy.
NULL_PROXY = """
from jupyterhub.proxy import Proxy

class NullProxy(Proxy):
    should_start = False
    async def add_route(self, routespec, target, data):
        pass
    async def delete_route(self, routespec):
        pass
    async def get_all_routes(self):
        return {}

c.JupyterHub.proxy_class = NullProxy
"""


def jupyterhub(workdir: Path, config: str, env: dict[str, str]) -> ServerProcess:
    """A ``python -m jupyterhub`` with a local spawner, user ``ada``, an admin API token,
    sqlite in ``workdir`` and ``config`` appended to its config file (not started)."""
    hub_port, token = free_port(), "test-token-" + os.urandom(8).hex()
    config_file = workdir / "jupyterhub_config.py"
    config_file.write_text(
        NULL_PROXY
        + f"""
c.JupyterHub.bind_url = "http://127.0.0.1:{free_port()}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.JupyterHub.db_url = "sqlite:///{workdir / "jupyterhub.sqlite"}"
c.JupyterHub.cookie_secret_file = "{workdir / "cookie_secret"}"
c.JupyterHub.pid_file = "{workdir / "jupyterhub.pid"}"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allowed_users = {{"ada"}}
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = "{workdir / "home" / "{username}"}"
c.Spawner.args = ["--allow-root"]
c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 60
c.JupyterHub.services = [{{"name": "tests", "api_token": "{token}"}}]
c.JupyterHub.load_roles = [
    {{"name": "tests", "scopes": ["admin:users", "admin:servers"], "services": ["tests"]}}
]
"""
        + config
    )
    argv = [sys.executable, "-m", "jupyterhub", "-f", str(config_file)]
    return ServerProcess(argv, env, workdir, f"http://127.0.0.1:{hub_port}", token, "/hub/api/")
