"""A scripted SSH transport for unit tests of Corral's own host logic: hosts with keys,
recorded probe output, and failures on demand. It keeps the real pool's rules that the
logic relies on: a pinned key that differs raises ``HostKeyChanged`` before anything runs."""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from corral.control.context import ControlPlane
from corral.providers.ssh_transport import (AuthenticationFailed, CommandTimedOut, HostKeyChanged, HostUnreachable,
                                            RemoteResult, SshPool, SshTarget)

RECORDED = (Path(__file__).parent / "probe_debian12.txt").read_text()
URL = "http://198.18.0.1:7420"


def key_of(n: int) -> tuple[str, str]:
    """A (known_hosts line, fingerprint) pair; the fingerprint has OpenSSH's shape."""
    return f"ssh-ed25519 AAAAKEY{n}", "SHA256:" + (f"k{n}" * 43)[:43]


@dataclass
class FakeHost:
    key: tuple[str, str] = field(default_factory=lambda: key_of(1))
    probe: str = RECORDED
    clock_offset: float = 0.0  # seconds the host's clock is ahead
    down: bool = False  # every connection fails (HostUnreachable)
    refuse_key: bool = False  # AuthenticationFailed
    delay: float = 0.0  # seconds the probe takes
    gate: threading.Event | None = None  # the probe waits for it
    hangs: bool = False  # the probe never ends (CommandTimedOut)


class FakeSsh(SshPool):
    def __init__(self) -> None:
        super().__init__()
        self.hosts: dict[tuple[str, int], FakeHost] = {}
        self.calls: list[tuple[str, str]] = []
        self.forgotten: list[str] = []
        self.clock = time.time  # what the hosts' clocks follow (plus each one's offset)

    def host(self, address: str, port: int = 22, **kwargs: object) -> FakeHost:
        self.hosts[(address, port)] = FakeHost(**kwargs)  # type: ignore[arg-type]
        return self.hosts[(address, port)]

    def _get(self, target: SshTarget) -> FakeHost:
        host = self.hosts.get((target.address, target.port))
        if host is None or host.down:
            raise HostUnreachable(f"{target.label}: no SSH answer within 30 s (ConnectionRefusedError)")
        return host

    def scan_host_key(self, target: SshTarget, deadline_seconds: float | None = None) -> tuple[str, str]:
        self.calls.append((target.address, "scan"))
        return self._get(target).key

    def forget(self, target: SshTarget) -> None:
        self.forgotten.append(target.address)

    def run(self, target: SshTarget, command: str, *, timeout: float = 60.0, stdin: bytes | None = None,
            check: bool = True) -> RemoteResult:
        host = self._get(target)
        line, seen = host.key
        if target.host_key and target.host_key != line or not target.host_key and target.host_key_fingerprint != seen:
            pinned = target.host_key_fingerprint
            raise HostKeyChanged(f"{target.label}: the host key changed (pinned {pinned}, now {seen})",
                                 pinned=pinned, seen=seen)
        if host.refuse_key:
            raise AuthenticationFailed(f"{target.label}: the host refused the key for user {target.user}")
        self.calls.append((target.address, command))  # only what reached the host
        if command == "sh -s":
            assert stdin and b"CORRAL-PROBE-BEGIN" in stdin
            if host.hangs:
                raise CommandTimedOut(f"{target.label}: `sh -s` no exit status within 75 s")
            if host.gate is not None:
                host.gate.wait(10)
            time.sleep(host.delay)
            return RemoteResult(0, host.probe.encode(), b"")
        return RemoteResult(0, b"", b"")

    def read_clock(self, target: SshTarget, clock: object = None, limit: float = 10.0) -> tuple[float, float, float]:
        host = self._get(target)
        now = self.clock()
        return now + host.clock_offset, now - 0.001, now + 0.001


def use_fake_ssh(cp: ControlPlane, advertise_url: str | None = URL) -> FakeSsh:
    """Give ``cp`` a FakeSsh and an advertised URL; the FakeSsh."""
    fake = FakeSsh()
    cp.ssh = fake
    cp.settings = dataclasses.replace(cp.settings, advertise_url=advertise_url)
    return fake


def without(text: str, *prefixes: str) -> str:
    """Probe output without the lines starting with any of ``prefixes``."""
    return "\n".join(line for line in text.splitlines() if not line.startswith(prefixes)) + "\n"
