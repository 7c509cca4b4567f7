"""A lab of N real SSH hosts on this machine, for the SSH provider's integration tests.

Each host is a Linux network namespace with a veth (``eth0`` inside) on a bridge in the
root namespace, an address from 198.18.0.0/15 (RFC 2544's benchmarking range; no route
leaves the machine), Debian's OpenSSH server and cron, and PID, mount, UTS and IPC
namespaces of its own. Nothing passes between the test's control plane and a host but
over the network. Needs root and ``ip netns`` (else the fixtures skip), util-linux
(unshare, nsenter, setpriv), openssh-server/-client, cron, Debian's python3.11 with venv
(``scripts/ensure-test-servers.sh`` installs the packages; missing ones fail the test).

    with HostLab(3, java=[True, True, False]) as lab:
        server = lab.spawn_isolated([...], env=..., stdout=log)  # control plane on lab.control_address
        host = lab.hosts[0]
        host.ssh("hostname -I").stdout          # over real SSH, with the lab's client key
        host.run("ls /root").stdout             # nsenter, for assertions only

What a host sees (``tests/hostlab_boot.py``): private directories, bind mounts of its own
disk (``hosts/<name>/disk`` in the lab directory): /root, /home, /opt, /srv, /var/tmp,
/var/log, /var/spool/cron, /etc/ssh, /etc/cron.d, /run and /tmp (these two emptied at each
boot); its own /etc/hosts (the lab's hosts), /etc/hostname (= its name, also its UTS
hostname), /etc/resolv.conf (no DNS server) and /etc/crontab (none of the machine's jobs);
a tmpfs /dev/shm. Everything else is the machine's and read-only (a write fails with
EROFS, so nothing leaks between hosts and the machine); the non-FHS top-level directories
holding this checkout and its virtualenv (``/work`` here) are empty. So a host has Debian's
/usr/bin/python3.11 and Java 17 (/usr/bin/java -> /usr/lib/jvm) and nothing of Corral.
sshd: key authentication only, root by key (PermitRootLogin prohibit-password), listens on
the host's address port 22, host keys ed25519 + rsa of its own, MaxSessions 50,
MaxStartups 100:30:200, sftp, UsePAM no, LogLevel VERBOSE to /var/log/sshd.log. cron:
Debian's, run with -f; ``@reboot`` lines run at each boot. root's PATH is Debian's.

``HostLab(n, *, subnet=None, java=True, private_dirs=(), hidden=None, base_dir=None, boot_timeout=20.0)``
    Sweeps labs of dead owners (see ``tests/hostlab_sys.py``: names carry the owner's pid),
    picks ``subnet`` (a free /24 of 198.18.0.0/15 unless given; ValueError if outside the
    range, too small or in use), makes the bridge (``.1``, ``lab.control_address``) and
    hosts ``host1..hostN`` (``.2``...) and waits until every sshd answers. ``java``: one
    bool for all hosts or one per host; False mounts an empty directory over /usr/lib/jvm,
    so ``java`` is not found there. ``private_dirs``: more private directories (each must
    exist on the machine or lie under a private one). ``hidden``: directories hosts see
    empty (default: the non-FHS top-level directories of this checkout, ``/work``).
    ``n`` is 1..99. Raises HostLabError (after removing whatever it made) when a step
    fails, e.g. an sshd that does not answer within ``boot_timeout`` s (its logs quoted).
    Creating 3 hosts takes about a second. ``lab.timings``: ``create``/``close`` seconds.
    Make labs (and reboot hosts) in the main thread, as pytest does: only then do hosts die
    with a killed owner (PR_SET_PDEATHSIG follows the forking thread, so others skip it).
``lab.hosts``, ``lab[i]``, ``lab.host(name)``, ``len(lab)``, iteration.
``lab.subnet`` (IPv4Network), ``lab.control_address`` (bridge address: the hosts reach
    this and nothing else; no default route, no IP forwarding, no NAT, no IPv6 but ::1),
    ``lab.bridge``, ``lab.tag``, ``lab.dir`` (0700; ``client/`` and ``hosts/<name>/``).
``lab.client_key_path`` (ed25519, OpenSSH format, 0600; accepted for root by every host),
    ``lab.client_public_key``, ``lab.known_hosts_path`` (every host's current keys).
``lab.spawn_isolated(argv, *, env=None, cwd=None, stdout=None, stderr=None) -> IsolatedProcess``
    Runs ``argv`` (the control plane under test) in PID and mount namespaces of its own in
    the root network namespace (so it can listen on ``control_address``): it sees no host
    process, no host disk (``lab.dir/hosts`` is an empty read-only mount there) and no
    network-namespace handle. ``client/`` stays readable, for the SSH key.
    ``IsolatedProcess``: ``pid`` (the command's, root namespace; None if it ended before
    it was seen), ``init_pid``, ``poll()``, ``wait(timeout)``, ``returncode`` (the
    command's; 128+N if signal N killed it), ``send_signal(sig)``, ``terminate()``
    (SIGTERM to the command), ``kill()`` (SIGKILL: its namespace ends with everything the
    command started), ``stop(grace=10)`` (terminate, kill after grace; the status).
``lab.close()``: kills every host and spawn (PID namespaces end with their init), deletes
    veths, namespaces and bridge, removes the lab directory; idempotent, run by the
    fixtures after a failed test and at interpreter exit (atexit, so also after Ctrl-C).
    If the owner is killed outright, its hosts die with it (``setpriv --pdeathsig``, for
    labs made in the main thread) and the next lab sweeps what is left.

``LabHost``: ``name``, ``address``, ``port`` (22), ``user`` ("root"), ``netns``, ``veth``,
``java``, ``init_pid`` (root-namespace pid of its init; None while down), ``disk``.
    ``fingerprint(key_type="ed25519") -> "SHA256:..."`` (as ``ssh-keygen -lf`` prints);
    ``host_keys()`` {type: "ssh-ed25519 AAAA..."} (ed25519 and rsa, generated per host);
    ``known_hosts_path`` (this host's keys only); ``known_hosts_lines()``.
    ``ssh(command, *, timeout=30, known_hosts=None, connect_timeout=5)`` /
    ``ssh_argv(...)``: the system OpenSSH client, StrictHostKeyChecking=yes, BatchMode.
    ``reboot(graceful=False)``: every process of the host dies (SIGKILL, like a power cut;
    graceful: SIGTERM, KILL after 5 s), /run and /tmp are emptied, the rest of its disk
    stays; it boots again (sshd, cron: ``@reboot`` lines run) and returns once sshd answers.
    ``link_down()`` / ``link_up()``: the veth's bridge end down/up (connections then time
    out / work again); ``link_is_up``. ``hide_java()`` / ``show_java()``: at once and for
    later boots. ``regenerate_host_key()``: new keys, sshd reloaded (SIGHUP); returns once
    it serves them; the lab's known_hosts files are rewritten.
    Test-only views, never over SSH: ``run(command, *, input=None, timeout=60, check=False,
    env=None, cwd="/root") -> CompletedProcess[str]`` (nsenter into all its namespaces, a
    login-like environment; str = ``sh -c``; subprocess.TimeoutExpired); ``processes()`` [(pid inside the host,
    cmdline)]; ``user_processes(sessions=False)``: those but its init, sshd's listener and
    cron (and, unless ``sessions``, sshd's per-connection processes); ``listening_ports()``
    [(address, port)] of TCP listeners in its namespace; ``path(p) -> Path`` of the file on
    the machine that backs host path ``p`` (ValueError for /dev/shm, a tmpfs, and hidden
    paths; other paths are the machine's own, read-only on hosts).

Files: ``hosts/<name>/boot.log`` (its init's output), ``path("/var/log/sshd.log")``.
Errors: HostLabError (RuntimeError) with the failing command's stderr or the host's logs.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import ipaddress
import itertools
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any, Iterator, Sequence

from tests import hostlab_boot as boot
from tests import hostlab_sys as sysx
from tests.hostlab_sys import HostLabError, HostProcess, IsolatedProcess, ListeningPort

__all__ = ["HostLab", "LabHost", "IsolatedProcess", "HostLabError", "HostProcess", "ListeningPort",
           "sweep_stale", "unavailable_reason"]

_LIVE: dict[str, "HostLab"] = {}  # tag -> open lab of this process
_LIVE_LOCK = threading.Lock()
_COUNTER = itertools.count()
TOOLS = ("ip", "nsenter", "unshare", "setpriv", "ssh", "ssh-keygen", "ssh-keyscan", "ss", "mount")
DAEMONS = ("/usr/sbin/sshd", "/usr/sbin/cron", boot.HOST_PYTHON)


def unavailable_reason() -> str | None:
    """Why labs cannot run here (not root, no ``ip netns``), or None. Missing packages are
    not a reason to skip: HostLab raises HostLabError naming them."""
    if os.geteuid() != 0:
        return "the host lab needs root (network, PID and mount namespaces)"
    if shutil.which("ip") is None:
        return "`ip` (iproute2) is not installed"
    proc = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    if proc.returncode != 0:
        return f"`ip netns` is unavailable: {proc.stderr.strip()}"
    return None


@contextlib.contextmanager
def _creation_lock(base_dir: Path) -> Iterator[None]:
    # one lab at a time sweeps, picks its subnet and claims it with its bridge's address
    with open(base_dir / ".corral-hostlab.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def sweep_stale(base_dir: str | Path | None = None) -> list[str]:
    """Remove every lab on this machine whose owner is dead (its processes, veths, bridge,
    namespaces, directory); the tags removed. Every new HostLab does this first."""
    base = Path(base_dir or tempfile.gettempdir())
    with _creation_lock(base):
        return sysx.sweep_stale(base, own_tags=set(_LIVE))


def _pdeathsig() -> list[str]:
    # PR_SET_PDEATHSIG fires when the forking *thread* ends, so only the main thread uses it
    return ["setpriv", "--pdeathsig", "KILL", "--"] if threading.current_thread() is threading.main_thread() else []


class LabHost:
    """One host of a lab (see the module docstring for the API)."""

    port = 22
    user = "root"

    def __init__(self, lab: "HostLab", index: int, java: bool) -> None:
        self.lab = lab
        self.index = index
        self.name = f"host{index}"
        self.address = str(lab.subnet.network_address + 1 + index)
        self.netns = f"{lab.tag}-{self.name}"
        self.veth = f"{lab.tag}v{index}"
        self.java = java
        self.dir = lab.hosts_dir / self.name
        self.disk = self.dir / "disk"
        self.known_hosts_path = lab.client_dir / f"known_hosts.{self.name}"
        self._popen: subprocess.Popen[bytes] | None = None
        self.init_pid: int | None = None
        self._pidns: int | None = None

    def __repr__(self) -> str:
        return f"LabHost({self.name}, {self.address})"

    # ---- keys -----------------------------------------------------------------------
    def _key_path(self, key_type: str) -> Path:
        return self.disk / f"etc/ssh/ssh_host_{key_type}_key"

    def host_keys(self) -> dict[str, str]:
        """{"ed25519": "ssh-ed25519 AAAA...", "rsa": "ssh-rsa AAAA..."}: the current keys."""
        return {t: sysx.public_key(self._key_path(t)) for t in ("ed25519", "rsa")}

    def fingerprint(self, key_type: str = "ed25519") -> str:
        """``SHA256:...`` of the host's current key of that type."""
        return sysx.fingerprint(self.host_keys()[key_type])

    def known_hosts_lines(self) -> list[str]:
        return [f"{self.address} {key}" for key in self.host_keys().values()]

    def _start_keygen(self) -> list[sysx.KeyJob]:
        return [sysx.start_keygen(self._key_path(t), t, f"root@{self.name}") for t in ("ed25519", "rsa")]

    def regenerate_host_key(self, timeout: float = 15) -> None:
        """New ed25519 and rsa keys; sshd reloads them (SIGHUP re-executes it, sessions
        stay); returns once sshd serves the new ed25519 key. HostLabError otherwise."""
        for job in self._start_keygen():
            job.wait()
        self.lab._write_known_hosts()
        self.run("kill -HUP \"$(cat /run/sshd.pid)\"", check=True)
        wanted = self.host_keys()["ed25519"]

        def serves_new_key() -> bool:
            proc = sysx.run(["ssh-keyscan", "-T", "2", "-t", "ed25519", self.address], check=False, timeout=10)
            return any(line.split(None, 1)[1:] == [wanted] for line in proc.stdout.splitlines())

        sysx.wait_until(serves_new_key, timeout, f"sshd of {self.name} to serve its new key")

    # ---- boot -----------------------------------------------------------------------
    @property
    def is_up(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def _boot(self) -> None:
        boot.clear_volatile(self.disk)
        script = boot.boot_script(self.disk, self.lab.private_dirs, self.lab.hidden, name=self.name, java=self.java)
        argv = [*_pdeathsig(), "nsenter", f"--net=/run/netns/{self.netns}", "unshare", "--pid", "--fork",
                "--mount-proc", "--mount", "--uts", "--ipc", "--kill-child=SIGKILL", "--",
                "/bin/sh", "-c", script, f"hostlab-boot-{self.name}"]
        with open(self.dir / "boot.log", "ab") as log:
            self._popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                           cwd="/", env=boot.host_env(), start_new_session=True)
        unshare_pid = self._popen.pid
        sysx.wait_until(lambda: bool(sysx.children(unshare_pid)) or self._popen is None or self._popen.poll() is not None,
                        10, f"{self.name}'s init to start")
        found = sysx.children(unshare_pid)
        if not found:
            raise HostLabError(f"{self.name} did not boot:\n{self._logs()}")
        self.init_pid = found[0]
        self._pidns = sysx.ns_inode(self.init_pid, "pid")

    def _wait_ready(self, timeout: float) -> None:
        def answers() -> bool:
            if not self.is_up:
                raise HostLabError(f"{self.name} stopped while booting:\n{self._logs()}")
            try:
                with socket.create_connection((self.address, self.port), timeout=0.5) as sock:
                    return sock.recv(8).startswith(b"SSH-")
            except OSError:
                return False

        try:
            sysx.wait_until(answers, timeout, f"sshd on {self.name} ({self.address}:22)")
        except HostLabError as exc:
            raise HostLabError(f"{exc}\n{self._logs()}") from None

    def _logs(self) -> str:
        parts = []
        for label, path in (("boot.log", self.dir / "boot.log"), ("sshd.log", self.disk / "var/log/sshd.log")):
            try:
                parts.append(f"--- {label} ---\n" + "\n".join(path.read_text(errors="replace").splitlines()[-20:]))
            except OSError:
                parts.append(f"--- {label}: none ---")
        return "\n".join(parts)

    def _shutdown(self, graceful: bool = False) -> None:
        """Every process of the host dies; returns once none is left."""
        popen, init_pid = self._popen, self.init_pid
        if popen is not None and popen.poll() is None and init_pid is not None:
            # an init still booting has no handler yet and ignores both: SIGKILL after a while
            try:
                os.kill(init_pid, signal.SIGTERM if graceful else signal.SIGUSR1)
                popen.wait(10 if graceful else 2)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                sysx.kill_all([init_pid])
        if popen is not None:
            # unshare reaps the init and exits; killed first, it would leave the init's
            # zombie to the machine's PID 1, which may take seconds to reap it
            try:
                popen.wait(15)
            except subprocess.TimeoutExpired:
                sysx.kill_all([popen.pid])
                popen.wait(5)
        if self._pidns is not None:
            inode = self._pidns
            sysx.wait_until(lambda: not sysx.members("pid", inode, live=True), 10, f"{self.name}'s processes to die")
        self._popen, self.init_pid, self._pidns = None, None, None

    def reboot(self, graceful: bool = False, timeout: float | None = None) -> None:
        """Power-cycle the host (see the module docstring); returns once sshd answers."""
        self._shutdown(graceful)
        self._boot()
        self._wait_ready(timeout or self.lab.boot_timeout)

    # ---- network ----------------------------------------------------------------------
    def link_down(self) -> None:
        sysx.run(["ip", "link", "set", self.veth, "down"])

    def link_up(self) -> None:
        sysx.run(["ip", "link", "set", self.veth, "up"])

    @property
    def link_is_up(self) -> bool:
        """Whether the veth's bridge end is administratively up."""
        [link] = json.loads(sysx.run(["ip", "-j", "link", "show", self.veth]).stdout)
        return "UP" in link.get("flags", [])

    # ---- java -------------------------------------------------------------------------
    def hide_java(self) -> None:
        """No ``java`` on this host from now on (an empty /usr/lib/jvm), also after reboots."""
        if self.java and self.is_up:
            self._nsenter(boot.hide_java_argv(), check=True)
        self.java = False

    def show_java(self) -> None:
        if not self.java and self.is_up:
            self._nsenter(["umount", boot.JVM_DIR], check=True)
        self.java = True

    # ---- test-only views ----------------------------------------------------------------
    def _nsenter(self, argv: list[str], *, input: str | None = None, timeout: float = 60, check: bool = False,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        if not self.is_up or self.init_pid is None:
            raise HostLabError(f"{self.name} is not running")
        full = ["nsenter", "-t", str(self.init_pid), "-m", "-u", "-i", "-n", "-p", "--", *argv]
        proc = subprocess.run(full, input=input, capture_output=True, text=True, timeout=timeout,
                              env={**boot.host_env(), **(env or {})})
        if check and proc.returncode != 0:
            raise HostLabError(f"on {self.name}: {shlex.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    def run(self, command: str | Sequence[str], *, input: str | None = None, timeout: float = 60,
            check: bool = False, env: dict[str, str] | None = None, cwd: str = "/root") -> subprocess.CompletedProcess[str]:
        """Run ``command`` inside the host, not over SSH (assertions only): stdout/stderr as
        text; HostLabError if the host is down, or with ``check`` on a non-zero exit."""
        argv = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
        return self._nsenter(["/bin/sh", "-c", 'cd "$1" && shift && exec "$@"', "sh", cwd, *argv],
                             input=input, timeout=timeout, check=check, env=env)

    def processes(self) -> list[HostProcess]:
        """Every process of the host's PID namespace, by pid inside it; [] while down."""
        if self._pidns is None:
            return []
        found = [sysx.describe(pid) for pid in sysx.members("pid", self._pidns)]
        return sorted((p for p in found if p is not None), key=lambda p: p.pid)

    def user_processes(self, sessions: bool = False) -> list[HostProcess]:
        """processes() without the host's own (its init, sshd's listener, cron) and, unless
        ``sessions``, without sshd's per-connection processes (``sshd: root@notty``...)."""
        def own(p: HostProcess) -> bool:
            return (p.pid == 1 or p.cmdline.startswith("sshd: /usr/sbin/sshd")
                    or p.cmdline == "/usr/sbin/cron -f" or (not sessions and p.cmdline.startswith("sshd: ")))
        return [p for p in self.processes() if not own(p)]

    def listening_ports(self) -> list[ListeningPort]:
        """TCP listeners in the host's network namespace (``ss -ltnH``), sorted."""
        out = sysx.run(["nsenter", f"--net=/run/netns/{self.netns}", "ss", "-ltnH"]).stdout
        found = set()
        for line in out.splitlines():
            local = line.split()[3]
            address, port = local.rsplit(":", 1)
            found.add(ListeningPort(address.strip("[]"), int(port)))
        return sorted(found)

    def path(self, host_path: str) -> Path:
        """The machine's file behind ``host_path`` (absolute) on this host, for assertions."""
        p = os.path.normpath(host_path)
        if not p.startswith("/"):
            raise ValueError(f"host path {host_path!r} is not absolute")
        if p == "/dev/shm" or p.startswith("/dev/shm/"):
            raise ValueError("/dev/shm is a tmpfs of the host's own; it has no file on the machine")
        if any(p == h or p.startswith(h + "/") for h in self.lab.hidden):
            raise ValueError(f"{host_path} is hidden on hosts")
        for private in sorted([*self.lab.private_dirs, *boot.PRIVATE_FILES], key=len, reverse=True):
            if p == private or p.startswith(private + "/"):
                return self.disk / p.lstrip("/")
        return Path(p)

    # ---- ssh --------------------------------------------------------------------------
    def ssh_argv(self, command: str, *, known_hosts: Path | str | None = None, connect_timeout: float = 5) -> list[str]:
        """The system ``ssh`` client's argv for ``command`` on this host as root."""
        return ["ssh", "-F", "/dev/null", "-i", str(self.lab.client_key_path), "-o", "IdentitiesOnly=yes",
                "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                "-o", f"UserKnownHostsFile={known_hosts or self.known_hosts_path}", "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", f"ConnectTimeout={connect_timeout:g}", "-o", "LogLevel=ERROR", "-p", str(self.port),
                f"{self.user}@{self.address}", command]

    def ssh(self, command: str, *, timeout: float = 30, known_hosts: Path | str | None = None,
            connect_timeout: float = 5, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``command`` over real SSH; the CompletedProcess (255: ssh itself failed)."""
        argv = self.ssh_argv(command, known_hosts=known_hosts, connect_timeout=connect_timeout)
        return subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout,
                              stdin=None if input is not None else subprocess.DEVNULL)


class HostLab:
    """N SSH hosts in network namespaces on a bridge (see the module docstring)."""

    def __init__(self, n: int, *, subnet: str | None = None, java: bool | Sequence[bool] = True,
                 private_dirs: Sequence[str] = (), hidden: Sequence[str] | None = None,
                 base_dir: str | Path | None = None, boot_timeout: float = 20.0) -> None:
        if not 1 <= n <= sysx.MAX_HOSTS:
            raise ValueError(f"a lab has 1 to {sysx.MAX_HOSTS} hosts, not {n}")
        javas = [java] * n if isinstance(java, bool) else list(java)
        if len(javas) != n:
            raise ValueError(f"java has {len(javas)} values for {n} hosts")
        reason = unavailable_reason()
        if reason is not None:
            raise HostLabError(reason)
        missing = [t for t in TOOLS if shutil.which(t) is None] + [d for d in DAEMONS if not os.access(d, os.X_OK)]
        if missing:
            raise HostLabError(f"missing {', '.join(missing)}: run scripts/ensure-test-servers.sh")
        self.hidden = [os.path.normpath(h) for h in (boot.default_hidden() if hidden is None else hidden)]
        self.private_dirs = boot.check_private_dirs(private_dirs, self.hidden)
        self.base_dir = Path(base_dir or tempfile.gettempdir())
        self.boot_timeout = boot_timeout
        self.timings: dict[str, float] = {}
        self.closed = False
        self._owner = os.getpid()
        self._close_lock = threading.Lock()
        self._spawns: list[IsolatedProcess] = []
        with _LIVE_LOCK:
            k = next(k % 100 for k in _COUNTER if f"hl{os.getpid()}x{k % 100}" not in _LIVE)
            self.tag = f"hl{os.getpid()}x{k}"
            _LIVE[self.tag] = self
        self.bridge = self.tag
        self.dir = self.base_dir / f"{sysx.DIR_PREFIX}{self.tag}"
        self.hosts_dir = self.dir / "hosts"
        self.client_dir = self.dir / "client"
        self.client_key_path = self.client_dir / "id_ed25519"
        self.known_hosts_path = self.client_dir / "known_hosts"
        self.hosts: list[LabHost] = []
        started = time.monotonic()
        try:
            self._create(n, subnet, javas)
        except BaseException:
            self.close()
            raise
        self.timings["create"] = time.monotonic() - started

    def _create(self, n: int, subnet: str | None, javas: list[bool]) -> None:
        with _creation_lock(self.base_dir):
            sysx.sweep_stale(self.base_dir, own_tags=set(_LIVE))
            self.subnet: ipaddress.IPv4Network = sysx.pick_subnet(sysx.used_networks(), subnet, n)
            self.control_address = str(self.subnet.network_address + 1)
            for d in (self.dir, self.hosts_dir, self.client_dir):
                d.mkdir(mode=0o700)
            sysx.write_owner(self.dir)
            (self.dir / "spawn-init.py").write_text(boot.SPAWN_INIT)
            sysx.run(["ip", "link", "add", self.bridge, "type", "bridge"])
            sysx.disable_ipv6(self.bridge)
            sysx.ip_batch([f"addr add {self.control_address}/{self.subnet.prefixlen} dev {self.bridge}",
                           f"link set {self.bridge} up"])
        self.hosts = [LabHost(self, i, javas[i - 1]) for i in range(1, n + 1)]
        jobs = [sysx.start_keygen(self.client_key_path, "ed25519", f"corral-hostlab-{self.tag}")]
        for host in self.hosts:
            host.disk.mkdir(parents=True)
            (host.disk / "etc/ssh").mkdir(parents=True)
            jobs += host._start_keygen()
        sysx.ip_batch([f"netns add {h.netns}" for h in self.hosts]
                      + [f"link add {h.veth} type veth peer name eth0 netns {h.netns}" for h in self.hosts])
        for host in self.hosts:
            sysx.disable_ipv6(host.veth)
        sysx.ip_batch([f"link set {h.veth} master {self.bridge} up" for h in self.hosts])
        inside = [subprocess.Popen(["nsenter", f"--net=/run/netns/{h.netns}", "sh", "-ec",
                                    "echo 1 > /proc/sys/net/ipv6/conf/eth0/disable_ipv6; ip link set lo up; "
                                    f"ip addr add {h.address}/{self.subnet.prefixlen} dev eth0; ip link set eth0 up"],
                                   stderr=subprocess.PIPE) for h in self.hosts]
        for host, proc in zip(self.hosts, inside):
            if proc.wait(30) != 0:
                raise HostLabError(f"network of {host.name}: {proc.stderr.read().decode().strip() if proc.stderr else ''}")
        for job in jobs:
            job.wait()
        self.client_public_key = sysx.public_key(self.client_key_path)
        hosts_file = "127.0.0.1\tlocalhost\n" + "".join(f"{h.address}\t{h.name}\n" for h in self.hosts)
        for host in self.hosts:
            boot.seed_disk(host.disk, self.private_dirs, name=host.name, address=host.address,
                           hosts_file=hosts_file, authorized_key=self.client_public_key)
        self._write_known_hosts()
        for host in self.hosts:
            host._boot()
        for host in self.hosts:
            host._wait_ready(self.boot_timeout)

    def _write_known_hosts(self) -> None:
        for host in self.hosts:
            host.known_hosts_path.write_text("".join(line + "\n" for line in host.known_hosts_lines()))
        self.known_hosts_path.write_text("".join(line + "\n" for h in self.hosts for line in h.known_hosts_lines()))

    # ---- access -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.hosts)

    def __iter__(self) -> Iterator[LabHost]:
        return iter(self.hosts)

    def __getitem__(self, index: int) -> LabHost:
        return self.hosts[index]

    def host(self, name: str) -> LabHost:
        """The host called ``name``; KeyError if there is none."""
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def __enter__(self) -> "HostLab":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- spawns -------------------------------------------------------------------------
    def spawn_isolated(self, argv: Sequence[str], *, env: dict[str, str] | None = None, cwd: str | Path | None = None,
                       stdout: IO[Any] | int | None = None, stderr: IO[Any] | int | None = None) -> IsolatedProcess:
        """Start ``argv`` where it cannot see the hosts (see the module docstring); ``env``
        defaults to this process's, ``stdout``/``stderr`` as for subprocess.Popen."""
        if self.closed:
            raise HostLabError("the lab is closed")
        environment = dict(os.environ if env is None else env)
        environment[sysx.SPAWN_MARKER] = self.tag
        chain = [*_pdeathsig(), "unshare", "--pid", "--fork", "--mount-proc", "--mount", "--kill-child=SIGKILL", "--",
                 sys.executable, "-I", "-S", str(self.dir / "spawn-init.py"), str(self.hosts_dir), *argv]
        popen = subprocess.Popen(chain, env=environment, cwd=cwd, stdin=subprocess.DEVNULL, stdout=stdout,
                                 stderr=stderr, start_new_session=True)
        spawn = IsolatedProcess(popen)
        self._spawns.append(spawn)
        return spawn

    # ---- teardown -----------------------------------------------------------------------
    def close(self) -> None:
        """Remove everything the lab made (idempotent); HostLabError lists what failed."""
        if os.getpid() != self._owner:
            raise HostLabError(f"lab {self.tag} belongs to process {self._owner}; a forked child cannot close it")
        with self._close_lock:
            if self.closed:
                return
            self.closed = True
            started = time.monotonic()
            problems: list[str] = []

            def attempt(what: str, action: Any) -> None:
                try:
                    action()
                except Exception as exc:  # go on: the rest must still be removed
                    problems.append(f"{what}: {exc}")

            for spawn in self._spawns:
                spawn.kill()
            for spawn in self._spawns:
                attempt("spawn", spawn.end)
            attempt("marked processes", lambda: sysx.kill_all(sysx.marked(self.tag)))
            for host in self.hosts:
                attempt(host.name, host._shutdown)
            links, spaces = sysx.lab_names()
            attempt("remove", lambda: sysx.remove_lab(self.tag, links.get(self.tag, []), spaces.get(self.tag, []), self.dir))
            with _LIVE_LOCK:
                _LIVE.pop(self.tag, None)
            self.timings["close"] = time.monotonic() - started
            if problems:
                raise HostLabError("closing lab " + self.tag + ": " + "; ".join(problems))


@atexit.register
def _close_all() -> None:
    for lab in [lab for lab in _LIVE.values() if lab._owner == os.getpid()]:  # not a forked child's
        try:
            lab.close()
        except Exception as exc:  # at exit nobody can act on it but the reader of stderr
            sysx.log.error("%s", exc)


if __name__ == "__main__":  # python -m tests.hostlab sweep: remove the labs of dead owners
    if sys.argv[1:] != ["sweep"]:
        sys.exit("usage: python -m tests.hostlab sweep")
    print("\n".join(sweep_stale()) or "no stale lab")
