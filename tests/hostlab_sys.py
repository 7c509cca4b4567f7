"""The host lab's system plumbing: names and owner markers, the choice of a free subnet,
``ip`` calls, the scan of /proc by namespace, SSH key files, and the sweep of labs whose
owner died. ``tests/hostlab.py`` builds the lab from these; nothing here starts a host.

Naming (the owner marker): a lab's tag is ``hl<owner pid>x<k>`` (``k`` counts the labs of
one process), so every name it makes says who owns it and stays within Linux's 15-byte
interface names (IFNAMSIZ 16 with the NUL): the bridge is the tag, host ``i``'s veth end in
the root namespace ``<tag>v<i>``, its network namespace ``<tag>-host<i>``, its directory
``<base>/corral-hostlab-<tag>``. A lab is stale when its owner is dead or is a different
process with the same pid (start time in ``owner.json`` differs, or the pid is this
process's and the tag is not one of its live labs).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple

log = logging.getLogger("tests.hostlab")

# RFC 2544 reserves 198.18.0.0/15 for benchmarking: no route leaves the machine for it.
LAB_RANGE = ipaddress.IPv4Network("198.18.0.0/15")
TAG_RE = re.compile(r"^hl(?P<pid>\d{1,7})x(?P<k>\d{1,2})$")
LINK_RE = re.compile(r"^(?P<tag>hl\d{1,7}x\d{1,2})(?:v\d{1,2})?$")
NETNS_RE = re.compile(r"^(?P<tag>hl\d{1,7}x\d{1,2})-host\d+$")
DIR_PREFIX = "corral-hostlab-"
SPAWN_MARKER = "CORRAL_HOSTLAB_SPAWN"  # env var of isolated spawns: the owning lab's tag
MAX_HOSTS = 99  # two digits in "<tag>v<i>" keep a veth name within 15 bytes


class HostLabError(RuntimeError):
    """The lab could not do what was asked; the message says what failed (with the
    command's stderr, or the tail of a host's boot and sshd logs)."""


class HostProcess(NamedTuple):
    """One process of a host: ``pid`` as the host sees it, ``cmdline`` its argv joined by
    spaces (``[comm]`` for a zombie or kernel-less argv)."""

    pid: int
    cmdline: str


class ListeningPort(NamedTuple):
    """A listening TCP socket inside a host's network namespace."""

    address: str
    port: int


def run(argv: list[str], *, input: str | None = None, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command of the lab's own; a failure raises :class:`HostLabError` with stderr."""
    proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise HostLabError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def ip_batch(lines: Iterable[str], *, netns: str | None = None) -> None:
    """Run ``ip`` commands in one process (``ip -batch``); in ``netns`` when given."""
    text = "".join(line + "\n" for line in lines)
    if text:
        run(["ip", *(["-n", netns] if netns else []), "-batch", "-"], input=text)


# ---- owners and tags -------------------------------------------------------------------

def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (clock ticks since boot), None when the pid is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def owner_alive(tag: str, base_dir: Path, own_tags: set[str]) -> bool:
    """Whether the process that made lab ``tag`` still runs (see the module docstring)."""
    match = TAG_RE.match(tag)
    if match is None:
        return True  # not ours to judge
    pid = int(match["pid"])
    if pid == os.getpid():
        return tag in own_tags
    started = process_start_time(pid)
    if started is None:
        return False
    try:
        recorded = json.loads((base_dir / f"{DIR_PREFIX}{tag}" / "owner.json").read_text())["start_time"]
    except (OSError, ValueError, KeyError):
        return True  # pid alive, no record to tell a reused pid apart: leave it
    return bool(recorded == started)


def write_owner(lab_dir: Path) -> None:
    (lab_dir / "owner.json").write_text(json.dumps({"pid": os.getpid(), "start_time": process_start_time(os.getpid())}))


# ---- subnets ---------------------------------------------------------------------------

def used_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network the root namespace has an address or a route in."""
    found: list[ipaddress.IPv4Network] = []
    for entry in json.loads(run(["ip", "-j", "-4", "addr"]).stdout or "[]"):
        for info in entry.get("addr_info", []):
            found.append(ipaddress.IPv4Network(f"{info['local']}/{info['prefixlen']}", strict=False))
    for route in json.loads(run(["ip", "-j", "-4", "route", "show", "table", "all"]).stdout or "[]"):
        dst = route.get("dst", "")
        if dst and dst != "default" and route.get("type", "unicast") in ("unicast", "local", "broadcast"):
            try:
                found.append(ipaddress.IPv4Network(dst if "/" in dst else f"{dst}/32", strict=False))
            except ValueError:
                continue
    return found


def pick_subnet(used: Iterable[ipaddress.IPv4Network], wanted: str | None, n_hosts: int) -> ipaddress.IPv4Network:
    """``wanted`` (checked), else the first /24 of 198.18.0.0/15 that overlaps nothing in
    ``used``. Raises ValueError for a subnet outside the range, too small for the bridge
    and ``n_hosts`` hosts, or already in use."""
    used = [u for u in used if u.overlaps(LAB_RANGE)]
    if wanted is not None:
        subnet = ipaddress.IPv4Network(wanted)
        if not subnet.subnet_of(LAB_RANGE):
            raise ValueError(f"subnet {subnet} is not inside {LAB_RANGE} (the benchmarking range)")
        if subnet.num_addresses - 2 < n_hosts + 1:
            raise ValueError(f"subnet {subnet} has no room for the bridge and {n_hosts} hosts")
        if any(subnet.overlaps(u) for u in used):
            raise ValueError(f"subnet {subnet} is in use on this machine")
        return subnet
    for candidate in LAB_RANGE.subnets(new_prefix=24):
        if not any(candidate.overlaps(u) for u in used):
            return candidate
    raise HostLabError(f"no free /24 left in {LAB_RANGE}")


# ---- processes -------------------------------------------------------------------------

def ns_inode(pid: int, kind: str) -> int | None:
    """The inode of /proc/<pid>/ns/<kind> (which namespace it is in), None when gone."""
    try:
        return os.stat(f"/proc/{pid}/ns/{kind}").st_ino
    except OSError:
        return None


def pids() -> Iterator[int]:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            yield int(entry)


def describe(pid: int) -> HostProcess | None:
    """The process as its own PID namespace sees it (innermost NSpid), None when gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    inner = int(fields.get("NSpid", str(pid)).split()[-1])
    cmdline = raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
    return HostProcess(inner, cmdline or f"[{fields.get('Name', '?').strip()}]")


def members(kind: str, inode: int, live: bool = False) -> list[int]:
    """Root-namespace pids of every process in namespace ``kind`` with that inode (with
    ``live``, not the zombies: dead, only waiting for a parent to reap them)."""
    return [pid for pid in pids() if ns_inode(pid, kind) == inode and not (live and is_zombie(pid))]


def is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def marked(tag: str) -> list[int]:
    """Pids of processes whose environment carries ``SPAWN_MARKER=tag``."""
    needle = f"{SPAWN_MARKER}={tag}".encode()
    found = []
    for pid in pids():
        try:
            if needle in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                found.append(pid)
        except OSError:
            continue
    return found


def kill_all(pids_: Iterable[int]) -> None:
    for pid in pids_:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def netns_pids(netns: str) -> list[int]:
    proc = run(["ip", "netns", "pids", netns], check=False)
    return [int(p) for p in proc.stdout.split()] if proc.returncode == 0 else []


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.02) -> None:
    """Poll ``predicate()`` until true; HostLabError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise HostLabError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class IsolatedProcess:
    """A command in PID and mount namespaces of its own (``HostLab.spawn_isolated``).
    ``pid``: the command's root-namespace pid (None if it ended before it was seen);
    ``init_pid``: its namespace's PID 1; ``returncode`` as the command's (128+N: signal N)."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen
        self.init_pid: int | None = None
        self.pid: int | None = None
        deadline = time.monotonic() + 10
        while self.popen.poll() is None and time.monotonic() < deadline:
            if self.init_pid is None:
                found = children(popen.pid)
                self.init_pid = found[0] if found else None
            if self.init_pid is not None:
                found = children(self.init_pid)
                if found:
                    self.pid = found[0]
                    return
            time.sleep(0.005)

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    def poll(self) -> int | None:
        return self.popen.poll()

    def wait(self, timeout: float | None = None) -> int:
        """The exit status; subprocess.TimeoutExpired after ``timeout`` s."""
        return self.popen.wait(timeout)

    def send_signal(self, sig: int) -> None:
        if self.pid is not None and self.popen.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        """SIGTERM to the command (its namespace ends when it exits)."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL to the command; its init then exits, which kills all else in the
        namespace at once. (The init itself only when the command is unknown: a killed
        init makes unshare complain on stderr.)"""
        if self.popen.poll() is None:
            kill_all([self.pid if self.pid is not None else self.init_pid if self.init_pid is not None else self.popen.pid])

    def end(self, timeout: float = 15) -> None:
        """kill, and make sure the namespace is gone within ``timeout`` s."""
        self.kill()
        try:
            self.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_all([p for p in (self.init_pid, self.popen.pid) if p is not None])
            self.wait(5)

    def stop(self, grace: float = 10) -> int:
        """terminate, then kill after ``grace`` s; the exit status."""
        self.terminate()
        try:
            return self.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.wait(10)


# ---- keys ------------------------------------------------------------------------------

@dataclass(frozen=True)
class KeyJob:
    """An ``ssh-keygen`` run started in the background (keys are made in parallel)."""

    path: Path
    proc: subprocess.Popen[bytes]

    def wait(self) -> Path:
        _, err = self.proc.communicate(timeout=60)
        if self.proc.returncode != 0:
            raise HostLabError(f"ssh-keygen {self.path} failed: {err.decode().strip()}")
        return self.path


def start_keygen(path: Path, key_type: str, comment: str) -> KeyJob:
    """Begin generating an unencrypted OpenSSH key pair at ``path`` (+ ``.pub``). RSA keys
    are 2048 bits: still accepted by OpenSSH 9.2 and several times faster to make than
    3072 on this 2-core machine."""
    path.unlink(missing_ok=True)
    path.with_suffix(path.suffix + ".pub").unlink(missing_ok=True)
    bits = ["-b", "2048"] if key_type == "rsa" else []
    argv = ["ssh-keygen", "-q", "-t", key_type, *bits, "-N", "", "-C", comment, "-f", str(path)]
    return KeyJob(path, subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))


def public_key(path: Path) -> str:
    """``<type> <base64>`` of the key pair at ``path`` (comment dropped)."""
    kind, blob = Path(str(path) + ".pub").read_text().split()[:2]
    return f"{kind} {blob}"


def fingerprint(public: str) -> str:
    """``SHA256:<base64, unpadded>`` of an OpenSSH public key, as ``ssh-keygen -lf`` prints."""
    blob = base64.b64decode(public.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


# ---- stale labs ------------------------------------------------------------------------

def lab_names() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(tag -> interface names, tag -> network namespace names) of every lab on the machine."""
    links: dict[str, list[str]] = {}
    for entry in json.loads(run(["ip", "-j", "link"]).stdout or "[]"):
        name = entry.get("ifname", "")
        if (m := LINK_RE.match(name)) is not None:
            links.setdefault(m["tag"], []).append(name)
    spaces: dict[str, list[str]] = {}
    for line in run(["ip", "netns", "list"]).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if (m := NETNS_RE.match(name)) is not None:
            spaces.setdefault(m["tag"], []).append(name)
    return links, spaces


def remove_lab_dir(lab_dir: Path) -> None:
    """Delete a lab directory, first lazily unmounting anything mounted under it in this
    namespace (there should be nothing: hosts mount only inside their own namespaces)."""
    prefix = str(lab_dir) + "/"
    mounted = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
               if (line.split()[4] + "/").startswith(prefix)]
    for target in sorted(mounted, key=len, reverse=True):
        run(["umount", "-l", target], check=False)
    shutil.rmtree(lab_dir, ignore_errors=True)


def remove_lab(tag: str, links: list[str], spaces: list[str], lab_dir: Path) -> None:
    """Remove everything of lab ``tag``: processes (spawns by marker, hosts by network
    namespace), veths then the bridge, network namespaces, the directory."""
    kill_all(marked(tag))
    for netns in spaces:
        kill_all(netns_pids(netns))
    # veths before the bridge; deleting one end deletes its peer even when another mount
    # namespace still holds the network namespace open
    for name in sorted(links, key=lambda n: n == tag):
        run(["ip", "link", "del", name], check=False)
    for netns in spaces:
        wait_until(lambda: not netns_pids(netns), 10, f"the processes of {netns} to die")
        run(["ip", "netns", "del", netns], check=False)
    remove_lab_dir(lab_dir)


def sweep_stale(base_dir: Path, own_tags: set[str]) -> list[str]:
    """Remove every lab whose owner is dead (see the module docstring); the tags removed."""
    links, spaces = lab_names()
    tags = set(links) | set(spaces)
    for entry in base_dir.glob(f"{DIR_PREFIX}hl*"):
        tags.add(entry.name[len(DIR_PREFIX):])
    for pid in pids():
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for item in env:
            if item.startswith(SPAWN_MARKER.encode() + b"="):
                tags.add(item.split(b"=", 1)[1].decode(errors="replace"))
    removed = []
    for tag in sorted(tags):
        if TAG_RE.match(tag) is None or owner_alive(tag, base_dir, own_tags):
            continue
        log.warning("removing stale host lab %s (its owner is gone)", tag)
        remove_lab(tag, links.get(tag, []), spaces.get(tag, []), base_dir / f"{DIR_PREFIX}{tag}")
        removed.append(tag)
    return removed


def disable_ipv6(ifname: str) -> None:
    """No IPv6 (not even link-local) on a root-namespace interface of the lab: hosts reach
    198.18.0.0/15 and loopback only."""
    Path(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6").write_text("1\n")
