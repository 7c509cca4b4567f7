"""A throw-away OpenSSH server on a loopback address, for the ssh provider's tests on a
machine without the namespace host lab: generated host and client keys in a temporary
directory, root's login by key only, SFTP, and ``SetEnv HOME=`` so everything Corral puts
in the login's home lands in the test's directory (never in /root).

    with Sshd(tmp_path) as server:
        server.address, server.port, server.client_key (text), server.host_key_line
        server.stop(); server.start()   # a host off the network, and back
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

SSHD = "/usr/sbin/sshd"


def _free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


class Sshd:
    def __init__(self, root: Path, address: str = "127.0.77.1"):
        self.root, self.address = root, address
        self.home = root / "home"
        self.port = _free_port(address)
        self.proc: subprocess.Popen[bytes] | None = None
        root.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(exist_ok=True)
        for name in ("host_key", "client_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / name)], check=True)
        (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
        (root / "authorized_keys").chmod(0o600)
        (root / "sshd_config").write_text(
            f"ListenAddress {address}\nPort {self.port}\nHostKey {root / 'host_key'}\nPidFile {root / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {root / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
            "Subsystem sftp internal-sftp\n"
            f"SetEnv HOME={self.home} PATH=/usr/local/bin:/usr/bin:/bin\n")
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory

    @property
    def client_key(self) -> str:
        return (self.root / "client_key").read_text()

    @property
    def host_key_line(self) -> str:
        kind, b64 = (self.root / "host_key.pub").read_text().split()[:2]
        return f"{kind} {b64}"

    def start(self) -> None:
        self.proc = subprocess.Popen([SSHD, "-D", "-f", str(self.root / "sshd_config"), "-E", str(self.root / "sshd.log")])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.address, self.port), timeout=0.5) as s:
                    if s.recv(4).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"sshd did not start: {(self.root / 'sshd.log').read_text()[-2000:]}")

    def stop(self) -> None:
        """The listener and every session it serves (sshd's children) end: a host whose
        SSH is gone. Processes started detached by sessions (agents) keep running."""
        if self.proc is None:
            return
        subprocess.run(["pkill", "-TERM", "-P", str(self.proc.pid)], check=False)
        self.proc.terminate()
        self.proc.wait(10)
        self.proc = None

    def __enter__(self) -> "Sshd":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
