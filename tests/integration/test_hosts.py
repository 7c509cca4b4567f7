"""``corral host`` against a real control plane and real OpenSSH servers on loopback: the
check over SSH (READY with facts), a wrong fingerprint refused at add, a host whose
commands see no java, a regenerated host key marked HOST_KEY_CHANGED, drain and remove.

Each sshd is a throw-away Debian ``/usr/sbin/sshd -D`` on 127.0.0.1 with a free port, its
host key and the client key generated in tmp_path, root login by key only. The one for
the java case sets its sessions' PATH (``SetEnv``) to a directory with all of /usr/bin but
java, so its commands see a host without Java, as the agent would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.integration.conftest import ControlPlaneProcess, free_port

pytestmark = pytest.mark.integration


class Sshd:
    def __init__(self, directory: Path, client_key: Path, extra: str = ""):
        self.dir = directory
        self.dir.mkdir()
        self.port = free_port()
        self.host_key = directory / "ssh_host_ed25519_key"
        self.config = directory / "sshd_config"
        self.config.write_text(f"""Port {self.port}
ListenAddress 127.0.0.1
HostKey {self.host_key}
PidFile {directory / 'sshd.pid'}
AuthorizedKeysFile {client_key}.pub
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
{extra}
""")
        self.proc: subprocess.Popen[bytes] | None = None
        self.new_host_key()

    def new_host_key(self) -> None:
        for path in (self.host_key, self.host_key.with_suffix(".pub")):
            path.unlink(missing_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.host_key)], check=True)

    @property
    def fingerprint(self) -> str:
        out = subprocess.run(["ssh-keygen", "-lf", f"{self.host_key}.pub"], capture_output=True, text=True, check=True)
        return out.stdout.split()[1]

    def start(self) -> None:
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
        log = self.dir / "log"
        log.unlink(missing_ok=True)
        self.proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-f", str(self.config), "-E", str(log)],
                                     start_new_session=True)
        deadline = time.monotonic() + 10
        while not (log.exists() and f"port {self.port}" in log.read_text(errors="replace")):
            assert self.proc.poll() is None and time.monotonic() < deadline, "sshd did not start"
            time.sleep(0.05)

    def restart_with_new_key(self) -> None:
        """The listener only: sessions open now end when their connections close (killing
        one mid-command could leave a lock of the login shell's start-up files behind)."""
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(10)
        self.new_host_key()
        self.start()

    def stop(self) -> None:
        """The listener and every session it forked (they are in its process group)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        self.proc = None


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("hosts")
    key = base / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    bin_dir = base / "bin-without-java"
    bin_dir.mkdir()
    # Everything of /usr/bin but java: the login shell's start-up files (root's .bashrc
    # may run pyenv, which needs rm, mkdir ...) work as on any host.
    for tool in Path("/usr/bin").iterdir():
        if tool.name != "java":
            (bin_dir / tool.name).symlink_to(tool)
    good = Sshd(base / "sshd-good", key)
    nojava = Sshd(base / "sshd-nojava", key, extra=f"SetEnv PATH={bin_dir}")
    home = base / "home"
    home.mkdir()
    server = ControlPlaneProcess(home)
    try:
        good.start()
        nojava.start()
        server.start()
        yield {"key": key, "good": good, "nojava": nojava, "server": server, "home": home}
    finally:
        server.stop()
        good.stop()
        nojava.stop()


def corral(lab: dict[str, Any], *argv: str) -> tuple[int, str, str]:
    env = {**os.environ, "CORRAL_URL": lab["server"].url, "CORRAL_HOME": str(lab["home"] / "cli")}
    done = subprocess.run([sys.executable, "-m", "corral.cli.main", *argv], capture_output=True, text=True, env=env,
                          timeout=180)
    return done.returncode, done.stdout, done.stderr


def add_json(lab: dict[str, Any], *argv: str) -> tuple[int, dict[str, Any]]:
    code, out, err = corral(lab, "host", "add", "127.0.0.1", "--key", str(lab["key"]), *argv, "-o", "json")
    assert out, err
    return code, json.loads(out)


def test_hosts_over_real_ssh(lab: dict[str, Any]) -> None:
    good, nojava = lab["good"], lab["nojava"]
    wrong = "SHA256:" + "A" * 43
    code, _, err = corral(lab, "host", "add", "127.0.0.1", "--port", str(good.port), "--key", str(lab["key"]),
                          "--host-key-fingerprint", wrong)
    assert code == 2 and f"host_key_fingerprint: the host presents {good.fingerprint}, not {wrong}" in err

    code, host = add_json(lab, "--port", str(good.port), "--name", "lo", "--cores", "2", "--memory", "4g",
                          "--label", "rack=r1")
    failed = [c["message"] for c in host["checks"] if not c["ok"]]
    assert code == 0 and host["status"] == "READY", failed
    assert host["host_key_fingerprint"] == good.fingerprint and host["host_key"].startswith("ssh-ed25519 ")
    assert (host["cores"], host["memory_mb"], host["labels"], host["has_private_key"]) == (2, 4096, {"rack": "r1"}, True)
    facts = host["facts"]
    assert facts["java"]["major"] == 17 and facts["python"]["version"].startswith("3.11.") and facts["python"]["venv"]
    assert facts["cores"] == os.cpu_count() and facts["memory_mb"] > 4096 and facts["ssh_address"] == "127.0.0.1"
    assert abs(facts["clock"]["skew_seconds"]) < 1 and facts["control_plane"]["ok"]
    assert "PRIVATE KEY" not in json.dumps(host)

    code, host = add_json(lab, "--port", str(nojava.port), "--name", "nojava")
    assert code == 1 and host["status"] == "FAILED_CHECK"
    failing = [c["message"] for c in host["checks"] if not c["ok"] and c["severity"] == "error"]
    assert failing == ["java: not found, need 17: apt-get install -y openjdk-17-jdk-headless"]
    code, out, _ = corral(lab, "host", "check", "nojava")
    assert code == 1 and "java: not found, need 17: apt-get install -y openjdk-17-jdk-headless" in out

    good.restart_with_new_key()
    code, out, _ = corral(lab, "host", "check", "lo")
    assert code == 1 and "HOST_KEY_CHANGED" in out
    described = json.loads(corral(lab, "host", "describe", "lo", "-o", "json")[1])
    assert described["status_reason"].startswith("host key changed: pinned ")
    assert f"now {good.fingerprint}; if the host was reinstalled, remove and add it again" in described["status_reason"]
    assert described["host_key_fingerprint"] != good.fingerprint  # never silently accepted

    code, out, _ = corral(lab, "host", "drain", "nojava", "-o", "json")
    assert code == 0 and json.loads(out)["status"] == "DRAINED"
    code, out, _ = corral(lab, "host", "remove", "lo")
    assert code == 0 and "removed" in out
    listed = json.loads(corral(lab, "host", "list", "-o", "json")[1])
    assert [(h["name"], h["status"]) for h in listed] == [("nojava", "DRAINED")]
    everything = json.loads(corral(lab, "host", "list", "--all", "-o", "json")[1])
    assert sorted(h["status"] for h in everything) == ["DRAINED", "REMOVED"]

    code, host = add_json(lab, "--port", str(good.port), "--name", "lo", "--cores", "2", "--memory", "4g")
    assert code == 0 and host["status"] == "READY" and host["host_key_fingerprint"] == good.fingerprint, host
