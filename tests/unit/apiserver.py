"""The real API (uvicorn + FastAPI) over a unit test's control plane, in a thread: the CLI
under test talks HTTP to it through ``CORRAL_URL``, as it talks to a real server. No
reconciler runs, so nothing changes state unless the test changes it."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import uvicorn

from corral.api.app import create_app
from corral.control.context import ControlPlane


@contextmanager
def serve(cp: ControlPlane) -> Iterator[str]:
    """The API's base URL (``http://127.0.0.1:PORT``) while the block runs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(cp, run_reconciler=False), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
