"""A fake SSH transport for the ssh provider's unit tests: each "remote" command runs in a
local bash with the host's login environment only (HOME in the test's directory, a PATH
whose ``crontab`` keeps its table in a file), files are "put" on the local disk. So the
provider's real scripts run, in order, against a real filesystem and real processes; only
the network and sshd are left out (the integration tests have those).

The agent environment is faked too: ``<env>/bin/python`` is a bash script that behaves as
the agent does towards the provider (takes ``run/agent.lock``, writes ``run/agent.pid``,
keeps a child process, exits on SIGTERM, leaving its child to the provider's kill rounds).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from corral.providers.ssh_transport import HostKeyChanged, HostUnreachable, RemoteCommandFailed, RemoteResult, SshTarget
from corral.runtime.repository import Artifact, Bundle

FAKE_CRONTAB = """#!/bin/bash
table="$CRON_TABLE"
if [ "$1" = "-l" ]; then [ -f "$table" ] || { echo "no crontab for $USER" >&2; exit 1; }; cat "$table"; exit 0; fi
if [ "$1" = "-" ]; then cat > "$table.new" && mv "$table.new" "$table"; exit 0; fi
exit 2
"""

FAKE_AGENT = """#!/bin/bash
# fake agent: python -m corral.agent --config DIR/agent.json
cfg="$4"; dir="$(dirname "$cfg")"
exec 8>>"$dir/run/agent.lock"
for i in $(seq 20); do flock -n 8 && break; [ $i = 20 ] && exit 0; sleep 0.1; done  # as corral.agent
printf '{"pid": %d, "create_time": 0}' $$ > "$dir/run/agent.pid"
echo "fake agent $$ up"
sleep 300 8>&- &
trap 'exit 0' TERM
wait
"""


def fake_bundle() -> Bundle:
    data = b"not really a wheel"
    return Bundle(artifacts=(Artifact(name="corral-0.1.0-py3-none-any.whl", sha256=hashlib.sha256(data).hexdigest(),
                                      size=len(data), path=Path("/nonexistent")),))


class LocalShellPool:
    """``SshPool``'s interface over a local bash. ``fail`` makes every call raise it (a
    host off the network, a changed key); ``intercept`` maps a command substring to a
    function run instead of the command."""

    def __init__(self, home: Path, bin_dir: Path):
        self.home, self.bin_dir = home, bin_dir
        self.cron_table = home / ".crontab"
        self.commands: list[str] = []
        self.stdins: list[bytes | None] = []
        self.puts: list[tuple[str, int]] = []
        self.fail: Exception | None = None
        self.intercept: dict[str, object] = {}
        self.closed = False
        bin_dir.mkdir(parents=True, exist_ok=True)
        (bin_dir / "crontab").write_text(FAKE_CRONTAB)
        (bin_dir / "crontab").chmod(0o755)
        python = shutil.which("python3.11") or shutil.which("python3")
        assert python is not None
        (bin_dir / "python3.11").symlink_to(python)

    @property
    def env(self) -> dict[str, str]:
        return {"HOME": str(self.home), "USER": "corral", "PATH": f"{self.bin_dir}:/usr/bin:/bin",
                "CRON_TABLE": str(self.cron_table)}

    def run(self, target: SshTarget, command: str, *, timeout: float = 60.0, stdin: bytes | None = None,
            check: bool = True, connect_deadline: float | None = None) -> RemoteResult:
        if self.fail is not None:
            raise self.fail
        self.commands.append(command)
        self.stdins.append(stdin)
        for needle, action in self.intercept.items():
            if needle in command:
                return action(command, stdin)  # type: ignore[operator, no-any-return]
        proc = subprocess.run(["timeout", str(max(1, int(timeout))), "bash", "-c", command], input=stdin or b"",
                              capture_output=True, env=self.env, cwd=self.home)
        result = RemoteResult(proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            raise RemoteCommandFailed(target.label, command, proc.returncode, proc.stderr.decode())
        return result

    def put(self, target: SshTarget, data: bytes, remote_path: str, mode: int = 0o600) -> None:
        if self.fail is not None:
            raise self.fail
        self.puts.append((remote_path, mode))
        path = Path(remote_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.touch(mode=mode)
        tmp.chmod(mode)
        tmp.write_bytes(data)
        tmp.replace(path)

    def get_tree(self, target: SshTarget, remote_dir: str, local_dir: Path) -> int:
        if self.fail is not None:
            raise self.fail
        if not Path(remote_dir).is_dir():
            return 0
        shutil.copytree(remote_dir, local_dir, dirs_exist_ok=True)
        return sum(1 for p in Path(remote_dir).rglob("*") if p.is_file())

    def close_all(self) -> None:
        self.closed = True


def unreachable() -> HostUnreachable:
    return HostUnreachable("root@198.18.0.2:22: no SSH answer within 10 s (TimeoutError: timed out)")


def key_changed() -> HostKeyChanged:
    return HostKeyChanged("root@198.18.0.2:22: the host key changed (pinned SHA256:aaa, now SHA256:bbb); "
                          "refusing to connect")


def install_fake_env(env_dir: Path) -> None:
    """What ``agent_install`` leaves: an environment with its completion marker."""
    (env_dir / "bin").mkdir(parents=True, exist_ok=True)
    (env_dir / "bin" / "python").write_text(FAKE_AGENT)
    (env_dir / "bin" / "python").chmod(0o755)
    (env_dir / ".corral-complete").write_text("{}")


def marker_pids(node_id: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if f"CORRAL_NODE_ID={node_id}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def kill_marked(node_id: str) -> None:
    for pid in marker_pids(node_id):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    time.sleep(0.1)
