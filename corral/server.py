"""Running the control plane: in the foreground (``python -m corral.server``) or as a
background process the CLI starts, finds (pid file in the Corral home) and stops.

Stopping the server does not stop clusters: agents keep their nodes running and
re-attach when a server is back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from corral import pidfile
from corral.settings import Settings


@dataclass(frozen=True)
class ServerInfo:
    pid: int
    url: str


def _pidfile(settings: Settings) -> Path:
    return settings.home / "server.pid"


def healthy(url: str, timeout: float = 1.0) -> bool:
    try:
        return httpx.get(f"{url}/api/v1/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def running_server(settings: Settings) -> ServerInfo | None:
    """The server process recorded in the home, if it is still that process."""
    info = pidfile.read_live(_pidfile(settings))
    return ServerInfo(pid=info["pid"], url=info["url"]) if info and "url" in info else None


def start_background(settings: Settings, timeout: float = 60.0) -> ServerInfo:
    existing = running_server(settings)
    if existing is not None and healthy(existing.url):
        return existing
    if existing is None and healthy(settings.api_url):
        raise RuntimeError(f"another Corral server answers on {settings.api_url} (a different CORRAL_HOME?); "
                           "set CORRAL_PORT to use another port")
    settings.ensure_dirs()
    if existing is None:
        with open(settings.home / "server.log", "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "corral.server"], stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True, env=dict(os.environ))
        pidfile.write(_pidfile(settings), proc.pid, url=settings.api_url)
        existing = ServerInfo(proc.pid, settings.api_url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if healthy(existing.url, timeout=0.5):
            return existing
        if running_server(settings) is None:
            break
        time.sleep(0.1)
    raise RuntimeError(f"the Corral server did not come up; see {settings.home / 'server.log'}")


def stop_background(settings: Settings, timeout: float = 20.0) -> bool:
    info = running_server(settings)
    if info is None:
        _pidfile(settings).unlink(missing_ok=True)
        return False
    proc = psutil.Process(info.pid)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except psutil.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    _pidfile(settings).unlink(missing_ok=True)
    return True


def serve(settings: Settings) -> None:
    import uvicorn  # noqa: PLC0415

    from corral.api.app import create_app  # noqa: PLC0415

    uvicorn.run(create_app(), host=settings.host, port=settings.port, log_level="warning", access_log=False,
                timeout_graceful_shutdown=5)


if __name__ == "__main__":
    serve(Settings.from_env())
