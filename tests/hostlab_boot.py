"""What a lab host is made of: its disk (the private directories and files, seeded on the
root filesystem), its sshd configuration, the boot script that builds its mount namespace,
and the init that runs as PID 1 of its PID namespace (sshd and cron, reaping orphans).
Also the init of an isolated spawn. ``tests/hostlab.py`` documents the behaviour.
"""

from __future__ import annotations

import grp
import json
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Iterable

# Every directory a host (and Corral on it) writes: a private bind mount of the host's
# disk. /run and /tmp are emptied at each boot, like a real reboot (tmpfs /run, Debian's
# boot-time /tmp clean); the rest persists. /tmp is bound last: the disks live under the
# machine's /tmp, which the host's own /tmp hides.
PRIVATE_DIRS = ("/root", "/home", "/opt", "/srv", "/var/tmp", "/var/log", "/var/spool/cron",
                "/etc/ssh", "/etc/cron.d", "/run", "/tmp")
# Per-host files: its name, its /etc/hosts (the lab's hosts), no DNS server (glibc then asks
# 127.0.0.1, the host's own loopback), and a crontab without the machine's daily jobs.
PRIVATE_FILES = ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/etc/crontab")
VOLATILE = ("/run", "/tmp")
JVM_DIR = "/usr/lib/jvm"  # Debian's openjdk-17; /usr/bin/java -> /etc/alternatives/java -> here
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HOST_PYTHON = "/usr/bin/python3.11"  # Debian's own; the hosts' init runs on it
# Top-level directories a fresh Debian host has; any other one holding this checkout or
# its virtualenv (here /work) is hidden on hosts, so nothing reaches a host but over SSH.
FHS_TOP = {"bin", "boot", "dev", "etc", "home", "lib", "lib32", "lib64", "libx32", "media", "mnt",
           "opt", "proc", "root", "run", "sbin", "srv", "sys", "tmp", "usr", "var"}

SSHD_CONFIG = """\
# hostlab: only key authentication, root by key, logs to /var/log/sshd.log (-E)
ListenAddress {address}
Port 22
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_rsa_key
PidFile /run/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitEmptyPasswords no
# no PAM: pam_loginuid and pam_systemd have nothing to talk to in a namespace host
UsePAM no
StrictModes yes
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AcceptEnv LANG LC_*
LogLevel VERBOSE
# connection reuse: many channels on one connection, many connections at once
MaxSessions 50
MaxStartups 100:30:200
Subsystem sftp /usr/lib/openssh/sftp-server
"""

CRONTAB = """\
# hostlab: the host's /etc/crontab (the machine's daily jobs do not run on lab hosts)
SHELL=/bin/sh
PATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin
"""

# PID 1 of a host: starts sshd and cron, restarts either after 1 s if it exits (as a
# service manager would), reaps every orphan; SIGTERM = orderly shutdown (TERM to all,
# KILL after 5 s); SIGUSR1 = power cut (KILL to all, then it exits: a SIGKILLed init would
# make unshare complain). Runs on Debian's python with -I -S: no site-packages of the machine.
HOST_INIT = r"""
import json, os, signal, sys, time
SERVICES, ENV = json.loads(@SERVICES@), json.loads(@ENV@)
children, stopping = {}, []
def start(name):
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(s, signal.SIG_DFL)
            null = os.open("/dev/null", os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.execve(SERVICES[name][0], SERVICES[name], ENV)
        finally:
            os._exit(127)
    children[pid] = name
def on_term(signum, frame):
    stopping.append(time.monotonic())
    try:
        os.kill(-1, signal.SIGTERM)
    except OSError:
        pass
def on_usr1(signum, frame):  # the power cut: everything dies at once, this init too
    try:
        os.kill(-1, signal.SIGKILL)
    finally:
        os._exit(0)
signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGUSR1, on_usr1)
for name in SERVICES:
    start(name)
print("hostlab-init: started " + " ".join(SERVICES), flush=True)
while not stopping:
    try:
        pid, status = os.wait()
    except ChildProcessError:
        time.sleep(0.2)
        continue
    name = children.pop(pid, None)
    if name is not None and not stopping:
        print(f"hostlab-init: {name} exited ({status}); restarting it in 1 s", flush=True)
        time.sleep(1)
        start(name)
deadline = stopping[0] + 5
while time.monotonic() < deadline:
    try:
        if os.waitpid(-1, os.WNOHANG)[0] == 0:
            time.sleep(0.05)
    except ChildProcessError:
        break
try:
    os.kill(-1, signal.SIGKILL)
except OSError:
    pass
"""

# PID 1 of an isolated spawn: hides the lab's host disks and network-namespace handles
# from its mount namespace, runs the command, reaps orphans, exits with the command's
# status (128 + N when signal N killed it), which ends the namespace and all left in it.
SPAWN_INIT = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
def hide(path, mode):  # an empty read-only tmpfs over path
    if libc.mount(b"hostlab-hidden", path.encode(), b"tmpfs", 1, f"mode={mode:o},size=16k".encode()) != 0:
        sys.exit(f"hostlab spawn: cannot hide {path}: {os.strerror(ctypes.get_errno())}")
netns = [line.split()[4] for line in open("/proc/self/mountinfo") if line.split()[4].startswith("/run/netns")]
for target in sorted(netns, key=len, reverse=True):
    libc.umount2(target.encode(), 2)  # MNT_DETACH
if os.path.isdir("/run/netns"):
    hide("/run/netns", 0o755)
hide(sys.argv[1], 0o700)
pid = os.fork()  # the init's only child: the command (no helper process to mistake for it)
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    except OSError as exc:
        print(f"hostlab spawn: cannot run {sys.argv[2]}: {exc}", file=sys.stderr, flush=True)
    os._exit(127)
while True:
    waited, status = os.wait()
    if waited == pid:
        sys.exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
"""


def default_hidden() -> list[str]:
    """Top-level non-FHS directories holding this checkout, the corral package or the
    interpreter running the tests (``/work`` here); hosts see them empty."""
    here = Path(__file__).resolve().parent.parent
    roots = {here, Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), Path(sys.executable).resolve()}
    try:
        import corral

        roots.add(Path(corral.__file__).resolve())
    except ImportError:
        pass
    tops = {Path("/", p.parts[1]) for p in roots if len(p.parts) > 1 and p.parts[1] not in FHS_TOP}
    return sorted(str(t) for t in tops)


def check_private_dirs(extra: Iterable[str], hidden: Iterable[str]) -> list[str]:
    """The private directories: the defaults plus ``extra``, each absolute. One already
    under a private directory needs no mount of its own and is dropped. Raises ValueError
    for a relative path, one under a hidden directory, or one the machine lacks (making
    its mount point would write the machine's root filesystem)."""
    dirs = list(PRIVATE_DIRS)
    for raw in extra:
        path = os.path.normpath(raw)
        if not path.startswith("/") or path == "/":
            raise ValueError(f"private directory {raw!r} must be an absolute path below /")
        if any(_under(path, d) for d in dirs):
            continue
        if any(_under(path, h) for h in hidden):
            raise ValueError(f"private directory {raw!r} is under a directory hidden on hosts")
        if not os.path.isdir(path):
            raise ValueError(f"private directory {raw!r} does not exist on this machine; put it under one of {', '.join(PRIVATE_DIRS)}")
        dirs.insert(-1, path)  # before /tmp, which is always last
    return dirs


def _under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def seed_disk(disk: Path, dirs: list[str], *, name: str, address: str, hosts_file: str, authorized_key: str) -> None:
    """Create a host's disk: its private directories (Debian's owners and modes), root's
    authorized key and dotfiles, /etc/ssh without the machine's host keys, its files."""
    modes = {"/root": 0o700, "/tmp": 0o1777, "/var/tmp": 0o1777}
    for d in dirs:
        target = disk / d.lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        target.chmod(modes.get(d, 0o755))
    ssh_dir = disk / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(authorized_key + "\n")
    (ssh_dir / "authorized_keys").chmod(0o600)
    for dot in ("bashrc", "profile"):
        source = Path(f"/usr/share/base-files/dot.{dot}")
        if source.exists():
            shutil.copyfile(source, disk / f"root/.{dot}")
    crontabs = disk / "var/spool/cron/crontabs"
    crontabs.mkdir(exist_ok=True)
    os.chown(crontabs, 0, grp.getgrnam("crontab").gr_gid)
    crontabs.chmod(0o1730)  # Debian's: crontab(1) is setgid crontab
    etc_ssh = disk / "etc/ssh"
    for item in ("moduli", "ssh_config"):
        if Path("/etc/ssh", item).exists():
            shutil.copyfile(Path("/etc/ssh", item), etc_ssh / item)
    if Path("/etc/ssh/ssh_config.d").is_dir():
        shutil.copytree("/etc/ssh/ssh_config.d", etc_ssh / "ssh_config.d", dirs_exist_ok=True)
    (etc_ssh / "sshd_config").write_text(SSHD_CONFIG.format(address=address))
    files = {"/etc/hostname": name + "\n", "/etc/hosts": hosts_file,
             "/etc/resolv.conf": "# hostlab: no DNS server; the lab's names are in /etc/hosts\n",
             "/etc/crontab": CRONTAB}
    for path, text in files.items():
        (disk / path.lstrip("/")).write_text(text)


def clear_volatile(disk: Path) -> None:
    """Empty /run and /tmp of a host that is down (its reboot)."""
    for d in VOLATILE:
        root = disk / d.lstrip("/")
        for entry in list(root.iterdir()) if root.exists() else []:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def boot_script(disk: Path, dirs: list[str], hidden: list[str], *, name: str, java: bool) -> str:
    """The ``sh`` script a host boots with, as PID 1 of fresh PID, mount, UTS and IPC
    namespaces inside its network namespace: its mounts (only in its mount namespace, whose
    propagation ``unshare`` makes private), then it becomes the init."""
    q = shlex.quote
    lines = [
        "set -eu",
        # copies of the machine's netns handles would keep other labs' namespaces alive
        "umount -R -l /run/netns 2>/dev/null || true",
        "mount -t sysfs -o nosuid,nodev,noexec sysfs /sys",  # this network namespace's view
        "mount -t tmpfs -o nosuid,nodev,mode=1777,size=256m shm /dev/shm",
    ]
    lines += [f"mount --bind {q(str(disk) + d)} {q(d)}" for d in dirs[:-1] + list(PRIVATE_FILES)]
    lines += [f"mount -t tmpfs -o ro,mode=755,size=16k hostlab-hidden {q(h)}" for h in hidden]
    if not java:
        lines.append(f"mount -t tmpfs -o ro,mode=755,size=16k hostlab-nojava {JVM_DIR}")
    lines += [
        f"mount --bind {q(str(disk) + dirs[-1])} {q(dirs[-1])}",
        # everything else is the machine's and read-only here: a write outside the private
        # directories fails (EROFS) instead of leaking between hosts and the machine
        "mount -o remount,bind,ro /",
        "mkdir -p /run/sshd /run/lock && chmod 0755 /run/sshd && chmod 1777 /run/lock",
        f"hostname {q(name)}",
    ]
    services = {"sshd": ["/usr/sbin/sshd", "-D", "-f", "/etc/ssh/sshd_config", "-E", "/var/log/sshd.log"],
                "cron": ["/usr/sbin/cron", "-f"]}
    env = {"PATH": HOST_PATH, "LANG": "C.UTF-8"}
    # the program on stdin keeps PID 1's command line short in ps
    # the program comes on stdin: PID 1's command line stays "python3.11 -I -S - hostlab-init"
    program = HOST_INIT.replace("@SERVICES@", repr(json.dumps(services))).replace("@ENV@", repr(json.dumps(env)))
    lines.append(f"exec {HOST_PYTHON} -I -S - hostlab-init <<'HOSTLAB_INIT'")
    return "\n".join(lines) + "\n" + program.strip("\n") + "\nHOSTLAB_INIT\n"


def hide_java_argv() -> list[str]:
    return ["mount", "-t", "tmpfs", "-o", "ro,mode=755,size=16k", "hostlab-nojava", JVM_DIR]


def host_env() -> dict[str, str]:
    """The environment of :meth:`LabHost.run` commands: a login's, not the test's."""
    return {"PATH": HOST_PATH, "HOME": "/root", "USER": "root", "LOGNAME": "root",
            "SHELL": "/bin/bash", "LANG": "C.UTF-8"}
