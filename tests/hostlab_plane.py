"""The control plane under test for host-lab tests and benchmarks (``tests/hostlab.py``):
``python -m corral.server`` in PID and mount namespaces of its own (``HostLab.spawn_isolated``),
so it sees no host's processes or files, listening on the lab's bridge address with API
tokens required (off loopback they always are). ``LabPlane(lab, home)`` starts it and waits
for /health; ``.http`` is an admin client; ``.token(role)`` makes another token on the store
(as ``corral token create`` does); ``.cli_env(secret)`` is the environment for the CLI;
``.add_hosts(hosts)`` registers lab hosts and waits for their checks."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import httpx

from corral.control.tokens import create_token
from corral.store.db import Store


def _free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def wait_until(check: Any, timeout: float, what: str, poll: float = 0.2, detail: Any = lambda: "") -> Any:
    """``check()``'s first truthy value within ``timeout`` seconds, polled every ``poll``;
    AssertionError naming ``what`` (and ``detail()``) when there is none."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}{detail()}")
        time.sleep(poll)


class LabPlane:
    """The control plane under test, in PID and mount namespaces of its own (``spawn_isolated``),
    listening on the lab's bridge address."""

    def __init__(self, lab: Any, home: Path):
        self.lab, self.home = lab, home
        port = _free_port(str(lab.control_address))
        self.url = f"http://{lab.control_address}:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
        env.update({"CORRAL_HOME": str(home), "CORRAL_HOST": str(lab.control_address), "CORRAL_PORT": str(port),
                    "CORRAL_ADVERTISE_URL": self.url, "PYTHONPATH": str(Path(__file__).parents[1])})
        for name in ("CORRAL_WHEEL_CACHE", "CORRAL_RUNTIME_CACHE"):
            if name in os.environ:
                env[name] = os.environ[name]
        # Off loopback, the server requires API tokens: the first admin's is made on the store.
        secret = self.token("admin", "admin")
        self.admin_token = secret
        self.log = open(home / "server.log", "ab")
        self.proc = lab.spawn_isolated([sys.executable, "-m", "corral.server"], env=env, stdout=self.log,
                                       stderr=self.log)
        self.http = httpx.Client(base_url=self.url + "/api/v1", timeout=30,
                                 headers={"Authorization": f"Bearer {secret}"})
        self.wait(lambda: self._healthy(), 60, "the control plane")

    def token(self, name: str, role: str) -> str:
        """A new token's secret, made on the store as ``corral token create`` on this host does."""
        store = Store(f"sqlite:///{self.home / 'corral.db'}")
        try:
            store.migrate()
            return create_token(store, name, role, None)[1]
        finally:
            store.dispose()

    def cli_env(self, secret: str | None) -> dict[str, str]:
        """The environment of ``corral`` run by a user of this plane with ``secret`` (None: none)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
        env.update({"CORRAL_URL": self.url, "XDG_CONFIG_HOME": str(self.home / "xdg")})
        if secret is not None:
            env["CORRAL_TOKEN"] = secret
        return env

    def add_hosts(self, hosts: Sequence[Any], extra: Mapping[str, Mapping[str, Any]] | None = None,
                  timeout: float = 180) -> dict[str, dict[str, Any]]:
        """Register each lab host (``LabHost``: its name, address and user, the lab's client
        key, its ed25519 key pinned), with ``extra[name]``'s fields too (e.g. ``cores``,
        ``memory``), and wait until every check is over: {name: ``GET /hosts/{name}``'s
        answer}, READY or not (the caller says what it needs). AssertionError if a
        registration is refused or a check outlasts ``timeout`` seconds."""
        key = Path(self.lab.client_key_path).read_text()
        for host in hosts:
            body = {"name": host.name, "address": host.address, "user": host.user, "private_key": key,
                    "host_key_fingerprint": host.fingerprint(), **(extra or {}).get(host.name, {})}
            resp = self.http.post("/hosts", json=body)
            assert resp.status_code == 202, resp.text
        return {host.name: self.wait(lambda: (h := self.http.get(f"/hosts/{host.name}").json())["status"] != "CHECKING"
                                     and h, timeout, f"the check of {host.name}") for host in hosts}

    def _healthy(self) -> bool:
        try:
            return self.http.get("/health").status_code == 200
        except httpx.HTTPError:
            return False

    def wait(self, check: Any, timeout: float, what: str) -> Any:
        return wait_until(check, timeout, what, 0.5,
                          lambda: f"; server log: {(self.home / 'server.log').read_text()[-3000:]}")

    def cluster(self, cid: str) -> dict[str, Any]:
        return self.http.get(f"/clusters/{cid}").json()  # type: ignore[no-any-return]

    def events(self, cid: str) -> list[dict[str, Any]]:
        return self.http.get(f"/clusters/{cid}/events").json()  # type: ignore[no-any-return]

    def stop(self) -> None:
        self.proc.stop(grace=20)
        self.log.close()
        self.http.close()
