"""Running the control plane: in the foreground (``python -m corral.server``) or as a
background process the CLI starts, finds (pid file in the Corral home) and stops.

Stopping the server does not stop clusters: agents keep their nodes running and
re-attach when a server is back.

A server that must not run with its settings (auth off on a non-loopback address, auth on
without an admin token, an unusable secret key: ``corral.api.access.startup_refusal``)
prints one line ``corral server: refusing to start: ...`` and exits with status 2 before
it binds its port or starts the reconciler.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import httpx
import psutil

from corral import pidfile
from corral.settings import Settings

if TYPE_CHECKING:
    from corral.control.context import ControlPlane

REFUSED = 2  # the exit status of a server that refuses its settings


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
    log_path = settings.home / "server.log"
    log_start = log_path.stat().st_size if log_path.exists() else 0
    if existing is None:
        env = {k: v for k, v in os.environ.items() if k != "CORRAL_TOKEN"}  # a client's token is not the server's
        with open(log_path, "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "corral.server"], stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True, env=env)
        pidfile.write(_pidfile(settings), proc.pid, url=settings.api_url)
        existing = ServerInfo(proc.pid, settings.api_url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if healthy(existing.url, timeout=0.5):
            return existing
        if running_server(settings) is None:
            _pidfile(settings).unlink(missing_ok=True)
            break
        time.sleep(0.1)
    said = _last_line(log_path, log_start)
    raise RuntimeError(said.removeprefix("corral server: ") if said.startswith("corral server: refusing")
                       else f"the Corral server did not come up; see {log_path}")


def _last_line(path: Path, start: int) -> str:
    """The last non-empty line written to ``path`` after byte ``start`` ('' if none)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(start)
            lines = handle.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    return next((line.strip() for line in reversed(lines) if line.strip()), "")


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


class Refused(Exception):
    """The server must not start with these settings; the message says why and what to do."""


def prepare(settings: Settings) -> "ControlPlane":
    """The control plane to serve: migrated store, secrets key configured. Raises
    ``Refused`` for settings it must not run with (nothing is left running)."""
    from corral.api.access import startup_refusal  # noqa: PLC0415 - the CLI imports this module, not the API
    from corral.control.context import ControlPlane  # noqa: PLC0415
    from corral.secretbox import SecretKeyError  # noqa: PLC0415

    refusal = startup_refusal(settings, None)  # the address first: nothing is opened for a refused one
    if refusal:
        raise Refused(refusal)
    try:
        cp = ControlPlane.from_settings(settings)
    except SecretKeyError as exc:
        raise Refused(str(exc)) from None
    refusal = startup_refusal(settings, cp.store)
    if refusal:
        cp.store.dispose()
        raise Refused(refusal)
    return cp


def serve(settings: Settings) -> None:
    import uvicorn  # noqa: PLC0415

    from corral.api.app import create_app  # noqa: PLC0415
    from corral.gc_tuning import settle_heap  # noqa: PLC0415

    cp = prepare(settings)
    app = create_app(cp)
    settle_heap()  # start-up's objects out of the collector's way: its full passes stalled requests (corral.gc_tuning)
    # No access log; were one turned on it would hold no token: they travel in a header, never a query.
    # uvloop and httptools (C) rather than asyncio's loop and h11 (pure Python): every
    # request's parsing and scheduling runs on the one event-loop thread, which hundreds of
    # agents keep busy (bench/monitoring.py --only load).
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", access_log=False,
                timeout_graceful_shutdown=5, loop="uvloop", http="httptools")


def _refuse(reason: str) -> NoReturn:
    print(f"corral server: refusing to start: {reason}", file=sys.stderr, flush=True)
    sys.exit(REFUSED)


def main() -> None:
    try:
        settings = Settings.from_env()
    except ValueError as exc:  # a malformed setting; the message names it
        _refuse(str(exc))
    try:
        serve(settings)
    except Refused as exc:
        _refuse(str(exc))


if __name__ == "__main__":
    main()
