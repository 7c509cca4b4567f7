"""The host check: what a registered host has (the probe) and whether Corral can run a
node there (the evaluation), with the exact fix for each thing missing.

The probe (``probe.sh``) is one POSIX-sh script sent over SSH on stdin to ``sh -s``; it
prints ``key<TAB>value`` lines (``parse_probe`` turns them into the ``facts`` dict stored
on the host) and answers even on a host without Python or Java. The host's clock is read
by a second, tiny command on the warm connection, timed over one line's round trip only
(``SshPool.read_clock``), so the control plane's clock at the midpoint of that round trip
is a good estimate of "the same moment" (NTP's offset estimate with a symmetric path).

``evaluate`` is pure: facts in, ``CheckItem`` list out. Rules and their sources:

- Linux, ``python3.11`` with ``venv`` and ``ensurepip`` (the agent's virtual environment
  is built from Corral's wheels with it, ``corral.runtime.repository``), Java of the
  release's major version (``corral.domain.catalog``; the agent refuses any other,
  ``corral.agent.runtime.check_java``), found as the agent finds it (JAVA_HOME, else PATH).
- Memory at least the smallest instance type (``local.small``, 2 GiB); cores at least 1.
  ``host add --cores/--memory`` override what was found (a test host in a network
  namespace sees the whole machine); an override above what the host has is a warning.
- Free disk of the file system holding ``~/.corral-host`` (``corral.hosts.layout``): the
  runtime cache alone is ~1 GiB (pyspark, the Hadoop jars, class-data archives), plus the
  agent's environment, logs and HDFS blocks: an error below 2 GiB, a warning below 10 GiB.
- Clock skew: an error above 5 s, a warning above 1 s (YARN container tokens and HDFS
  block tokens carry expiry times compared across hosts; logs and events are ordered by
  time; Kerberos, later, allows 5 minutes but breaks long before on token renewals).
- Ports: every fixed port a daemon of any role binds (the services' ``node_ports``),
  since a host may get any role. A listener counts when it is on a wildcard address or on
  the address the host answered SSH on (``SSH_CONNECTION``): Corral's daemons bind the
  node's address, so a listener on another specific address (another loopback address,
  another interface) does not collide with them. The process is named when ``ss -p`` (or
  /proc) lets the login user see it.
- The control plane's advertised URL (``CORRAL_ADVERTISE_URL``) must answer from the
  host: agents call the control plane, never the other way round.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from corral.domain.catalog import DEFAULT_RELEASE, INSTANCE_TYPES, RELEASES
from corral.hosts import layout
from corral.providers.ssh_transport import SshPool, SshTarget

PROBE_VERSION = 1
PROBE_TIMEOUT = 60.0  # seconds the probe may run on the host (the reach test alone waits 5 s)
JAVA_MAJOR = RELEASES[DEFAULT_RELEASE].java_major
PYTHON = "3.11"
MIN_MEMORY_MB = min(t.memory_mib for t in INSTANCE_TYPES.values())
MIN_CORES = 1
DISK_ERROR_MB = 2048
DISK_WARN_MB = 10240
SKEW_ERROR_S = 5.0
SKEW_WARN_S = 1.0
WILDCARDS = frozenset({"0.0.0.0", "::", "*"})
ERROR, WARNING = "error", "warning"
_BEGIN, _END = "CORRAL-PROBE-BEGIN", "CORRAL-PROBE-END"


class ProbeFailed(Exception):
    """The probe ran but its answer is missing or unreadable (killed by its timeout, no
    ``sh`` on the host); the message says what came back."""


@dataclass(frozen=True)
class CheckItem:
    """One finding. ``ok`` False with ``severity`` "error" fails the host; a "warning" is
    shown but does not. ``message`` is the line people read, e.g.
    ``java: found 11, need 17: apt-get install -y openjdk-17-jdk-headless``."""

    name: str
    ok: bool
    severity: str
    found: str
    need: str
    fix: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def failing(items: list[CheckItem]) -> list[CheckItem]:
    """The items that fail the host (errors that are not ok)."""
    return [i for i in items if not i.ok and i.severity == ERROR]


# -- the probe ------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _script() -> str:
    return (Path(__file__).parent / "probe.sh").read_text()


def probe_script(advertise_url: str | None) -> bytes:
    """The probe with its two inputs set in front (quoted: they are data, not shell)."""
    head = f"CORRAL_URL={shlex.quote(advertise_url or '')}\nCORRAL_BASE={shlex.quote(layout.BASE)}\n"
    return (head + _script()).encode()


def run_probe(ssh: SshPool, target: SshTarget, advertise_url: str | None,
              clock: Callable[[], float] = time.time) -> tuple[dict[str, Any], float]:
    """Probe the host: (facts, the control plane's clock when the host read its own).

    Raises ``ProbeFailed`` and the transport's errors (``HostUnreachable``,
    ``HostKeyChanged``, ``AuthenticationFailed``, ``CommandTimedOut``).
    """
    result = ssh.run(target, "sh -s", stdin=probe_script(advertise_url), timeout=PROBE_TIMEOUT, check=False)
    if _END not in result.text:
        tail = (result.stderr.decode("utf-8", "replace").strip() or result.text.strip())[-300:]
        raise ProbeFailed(f"the host check did not finish (exit {result.exit_code}): {tail or 'no output'}")
    facts = parse_probe(result.text)
    host_time, sent, received = ssh.read_clock(target, clock)
    now = (sent + received) / 2
    facts["clock"] = {"host_time": host_time, "control_plane_time": now, "round_trip": round(received - sent, 4),
                      "skew_seconds": round(host_time - now, 3)}
    return facts, now


def parse_probe(text: str) -> dict[str, Any]:
    """The probe's output as facts (the shape ``evaluate`` reads and ``hosts.facts`` keeps).
    Lines outside the markers (a login banner, a noisy ``.bashrc``) are ignored."""
    raw: dict[str, str] = {}
    multi: dict[str, list[str]] = {"ss": [], "proc_tcp": [], "proc_socket": []}
    inside = False
    for line in text.splitlines():
        if line.startswith(_BEGIN):
            inside = True
            continue
        if line.startswith(_END):
            break
        if not inside or "\t" not in line:
            continue
        key, value = line.split("\t", 1)
        if key in multi:
            multi[key].append(value)
        else:
            raw[key] = value.strip()
    ssh_conn = raw.get("ssh_connection", "").split()
    return {
        "probe": PROBE_VERSION,
        "user": raw.get("user") or None,
        "home": raw.get("home") or None,
        "ssh_address": _normal_address(ssh_conn[2]) if len(ssh_conn) >= 3 else None,
        "os": {k: raw.get(f"os_{k}") or None for k in ("id", "id_like", "version_id", "pretty_name")},
        "kernel": {"name": raw.get("kernel_name") or None, "release": raw.get("kernel_release") or None,
                   "machine": raw.get("machine") or None},
        "python": _python(raw),
        "java": _java(raw),
        "cores": _int(raw.get("cores")),
        "memory_mb": _kb_to_mb(raw.get("mem_total_kb")),
        "memory_available_mb": _kb_to_mb(raw.get("mem_available_kb")),
        "disk": _disk(raw),
        "listening": _listeners(multi["ss"], multi["proc_tcp"], multi["proc_socket"]),
        "control_plane": ({"url": raw.get("reach_url"), "tool": raw.get("reach_tool"),
                           "ok": raw.get("reach_ok") == "1", "detail": raw.get("reach_detail")}
                          if raw.get("reach_url") else None),
    }


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _kb_to_mb(value: str | None) -> int | None:
    kb = _int(value)
    return kb // 1024 if kb is not None else None


def _python(raw: dict[str, str]) -> dict[str, Any] | None:
    if not raw.get("python_path"):
        return None
    venv = raw.get("python_venv")
    return {"path": raw["python_path"], "executable": raw.get("python_executable") or None,
            "version": raw.get("python_version") or None, "error": raw.get("python_error") or None,
            "venv": venv == "ok", "venv_error": None if venv in (None, "ok") else venv}


def java_major(version_line: str) -> int | None:
    """``openjdk version "17.0.15"`` -> 17, ``"1.8.0_292"`` -> 8 (as ``corral.agent.runtime``)."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_line)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major


def _java(raw: dict[str, str]) -> dict[str, Any] | None:
    if not raw.get("java_path"):
        return None
    line = raw.get("java_version") or ""
    version = re.search(r'version "([^"]+)"', line)
    return {"path": raw["java_path"], "java_home": raw.get("java_home") or None,
            "version": version.group(1) if version else None, "major": java_major(line), "version_line": line}


def _disk(raw: dict[str, str]) -> dict[str, Any] | None:
    fields = raw.get("disk_df", "").split()
    # df -P: filesystem, 1024-blocks, used, available, capacity, mounted on
    if len(fields) < 6 or not fields[1].isdigit() or not fields[3].isdigit():
        return None
    return {"for": raw.get("disk_for"), "path": raw.get("disk_path"), "filesystem": fields[0],
            "mount": " ".join(fields[5:]), "total_mb": int(fields[1]) // 1024, "free_mb": int(fields[3]) // 1024}


def _normal_address(address: str) -> str:
    """``[::ffff:127.0.0.1]`` -> ``127.0.0.1``, ``127.0.0.53%lo`` -> ``127.0.0.53``, ``[::]`` -> ``::``."""
    address = address.strip("[]").split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _proc_address(hex_address: str) -> tuple[str, int] | None:
    """/proc/net/tcp{,6}'s ``0100007F:1F90`` -> ("127.0.0.1", 8080): the address is in the
    kernel's byte order (little-endian 32-bit words on x86 and arm64), the port is not."""
    try:
        host, port = hex_address.split(":")
        words = bytes.fromhex(host)
        packed = b"".join(words[i:i + 4][::-1] for i in range(0, len(words), 4))
        ip = ipaddress.ip_address(packed)
        return _normal_address(str(ip)), int(port, 16)
    except ValueError:
        return None


def _listeners(ss_lines: list[str], proc_tcp: list[str], proc_socket: list[str]) -> list[dict[str, Any]]:
    found: dict[tuple[str, int], str | None] = {}
    for line in ss_lines:
        fields = line.split()
        # State Recv-Q Send-Q Local:Port Peer:Port [users:(("name",pid=N,fd=M))]
        if len(fields) < 5 or ":" not in fields[3]:
            continue
        address, _, port = fields[3].rpartition(":")
        if not port.isdigit():
            continue
        proc = re.search(r'\("([^"]+)",pid=(\d+)', line)
        found[(_normal_address(address), int(port))] = f"{proc.group(1)} (pid {proc.group(2)})" if proc else None
    owners: dict[str, str] = {}
    for line in proc_socket:
        parts = line.split(maxsplit=2)
        if len(parts) == 3:
            owners.setdefault(parts[0], f"{parts[2]} (pid {parts[1]})")
    for line in proc_tcp:
        parts = line.split()
        parsed = _proc_address(parts[0]) if parts else None
        if parsed:
            found[parsed] = owners.get(parts[1]) if len(parts) > 1 else None
    return [{"address": a, "port": p, "process": proc} for (a, p), proc in sorted(found.items(), key=lambda kv: kv[0][1])]


# -- the ports Corral's daemons need ----------------------------------------------------------


def required_ports() -> dict[int, list[str]]:
    """Port -> the daemons' services and roles that bind it (``Service.node_ports``)."""
    from corral.services.registry import SERVICES  # noqa: PLC0415 - the services import much; only the check needs them

    ports: dict[int, list[str]] = {}
    for service in SERVICES.values():
        for role, numbers in service.node_ports.items():
            for port in numbers:
                ports.setdefault(port, []).append(f"{service.name} on {role.value}")
    return dict(sorted(ports.items()))


# -- the evaluation ---------------------------------------------------------------------------


def _positive(value: Any) -> int | None:
    """A whole positive number (also as text, ``"8"``); else None."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    return int(value)


def effective_resources(facts: dict[str, Any], cores_override: int | None,
                        memory_mb_override: int | None) -> tuple[int | None, int | None]:
    """(cores, memory MiB) a node on the host may use: ``host add --cores/--memory`` when
    given, else what the check found (``facts["cores"]``, ``facts["memory_mb"]``, as
    ``parse_probe`` stores them); None where neither is a whole positive number. The one
    rule for the check's items, host selection (``corral.hosts.selection``) and the API."""
    return (_positive(cores_override) or _positive(facts.get("cores")),
            _positive(memory_mb_override) or _positive(facts.get("memory_mb")))


def _family(facts: dict[str, Any]) -> str:
    os_ = facts.get("os") or {}
    ids = {os_.get("id") or "", *(os_.get("id_like") or "").split()}
    if ids & {"rhel", "fedora", "centos", "rocky", "almalinux", "ol", "amzn"}:
        return "rhel"
    return "debian" if ids & {"debian", "ubuntu"} or not os_.get("id") else "other"


def _fixes(facts: dict[str, Any]) -> dict[str, str]:
    family = _family(facts)
    if family == "rhel":
        return {"java": f"dnf install -y java-{JAVA_MAJOR}-openjdk-headless", "python": "dnf install -y python3.11",
                "venv": "dnf install -y python3.11", "clock": "dnf install -y chrony"}
    if family == "other":
        return {"java": f"install OpenJDK {JAVA_MAJOR} (or set JAVA_HOME to one)",
                "python": "install Python 3.11 with its venv module", "venv": "install Python 3.11's venv module",
                "clock": "run an NTP client (chrony, systemd-timesyncd)"}
    return {"java": f"apt-get install -y openjdk-{JAVA_MAJOR}-jdk-headless",
            "python": "apt-get install -y python3.11 python3.11-venv", "venv": "apt-get install -y python3.11-venv",
            "clock": "apt-get install -y chrony"}


def _gib(mb: int) -> str:
    return f"{mb / 1024:.1f} GiB"


def evaluate(facts: dict[str, Any], *, now: float, advertise_url: str | None, cores_override: int | None = None,
             memory_mb_override: int | None = None, allocated: bool = False,
             ports: dict[int, list[str]] | None = None) -> list[CheckItem]:
    """The check items for ``facts`` (``parse_probe`` plus ``clock``). ``now`` is the
    control plane's clock when the host read its own (``run_probe``); ``advertise_url``
    the URL the host was asked to reach (None: the control plane has none). On an
    ``allocated`` host the ports are its own node's and are not checked. ``ports``:
    port -> what needs it (default ``required_ports()``)."""
    fixes = _fixes(facts)
    items = [_os(facts), _python_item(facts, fixes), _java_item(facts, fixes),
             *_resources(facts, cores_override, memory_mb_override), _disk_item(facts), _clock(facts, now, fixes)]
    items += _ports(facts, required_ports() if ports is None else ports, allocated)
    items.append(_control_plane(facts, advertise_url))
    return items


def _ok(name: str, found: str, need: str = "", severity: str = ERROR) -> CheckItem:
    return CheckItem(name, True, severity, found, need, "", f"{name}: {found}")


def _os(facts: dict[str, Any]) -> CheckItem:
    kernel = facts.get("kernel") or {}
    pretty = (facts.get("os") or {}).get("pretty_name") or "unknown distribution"
    found = f"{pretty}, {kernel.get('name') or 'unknown kernel'} {kernel.get('release') or ''}".strip()
    if kernel.get("name") != "Linux":
        return CheckItem("os", False, ERROR, found, "Linux", "use a Linux host", f"os: {found}, need Linux: use a Linux host")
    return _ok("os", found, "Linux")


def _python_item(facts: dict[str, Any], fixes: dict[str, str]) -> CheckItem:
    py = facts.get("python")
    name, need = "python3.11", f"{PYTHON} with venv and ensurepip"
    if not py:
        return CheckItem(name, False, ERROR, "not found", need, fixes["python"], f"{name}: not found: {fixes['python']}")
    if py.get("error") or not py.get("version"):
        detail = py.get("error") or "no version"
        return CheckItem(name, False, ERROR, f"{py['path']} does not run ({detail})", need, fixes["python"],
                         f"{name}: {py['path']} does not run ({detail}): {fixes['python']}")
    version = py["version"]
    if not (version == PYTHON or version.startswith(PYTHON + ".")):
        return CheckItem(name, False, ERROR, version, PYTHON, fixes["python"],
                         f"{name}: found {version} at {py['path']}, need {PYTHON}: {fixes['python']}")
    if not py.get("venv"):
        return CheckItem(name, False, ERROR, f"{version} without venv", need, fixes["venv"],
                         f"{name}: found {version} without the venv module ({py.get('venv_error') or 'import failed'}), "
                         f"need venv and ensurepip: {fixes['venv']}")
    return _ok(name, f"{version} ({py.get('executable') or py['path']})", need)


def _java_item(facts: dict[str, Any], fixes: dict[str, str]) -> CheckItem:
    java = facts.get("java")
    need = str(JAVA_MAJOR)
    if not java:
        return CheckItem("java", False, ERROR, "not found", need, fixes["java"],
                         f"java: not found, need {need}: {fixes['java']}")
    major = java.get("major")
    if major != JAVA_MAJOR:
        found = str(major) if major is not None else f"an unreadable version ({java.get('version_line') or 'no output'})"
        return CheckItem("java", False, ERROR, found, need, fixes["java"], f"java: found {found}, need {need}: {fixes['java']}")
    return _ok("java", f"{java.get('version') or major} ({java['path']})", need)


def _resources(facts: dict[str, Any], cores_override: int | None, memory_mb_override: int | None) -> list[CheckItem]:
    cores, memory = effective_resources(facts, cores_override, memory_mb_override)
    found_cores, found_memory = facts.get("cores"), facts.get("memory_mb")
    items = []
    for name, value, found, override, minimum, unit, option in (
            ("cores", cores, found_cores, cores_override, MIN_CORES, "", "--cores"),
            ("memory", memory, found_memory, memory_mb_override, MIN_MEMORY_MB, " MiB", "--memory")):
        need = f"at least {minimum}{unit}"
        if value is None:
            items.append(CheckItem(name, False, ERROR, "unknown", need, f"give it with host add {option}",
                                   f"{name}: unknown (the host did not say), need {need}: give it with host add {option}"))
            continue
        shown = f"{value}{unit}" + (f" (given with {option}; the host has {found}{unit})" if override is not None else "")
        if value < minimum:
            items.append(CheckItem(name, False, ERROR, shown, need, "use a larger host",
                                   f"{name}: {shown}, need {need}: use a larger host"))
        elif override is not None and found is not None and override > found:
            items.append(CheckItem(name, False, WARNING, shown, f"at most {found}{unit}",
                                   f"give {option} at most what the host has",
                                   f"{name}: {shown}, more than the host has: give {option} at most {found}{unit}"))
        else:
            items.append(_ok(name, shown, need))
    return items


def _disk_item(facts: dict[str, Any]) -> CheckItem:
    disk = facts.get("disk")
    if not disk:
        return CheckItem("disk", False, WARNING, "unknown", f"{_gib(DISK_ERROR_MB)} free", "",
                         "disk: the free space could not be read (df failed)")
    free = disk["free_mb"]
    where = f"{_gib(free)} free for {disk.get('for') or '~/' + layout.BASE} (on {disk.get('mount') or disk.get('path')})"
    fix = "free space there or use another host"
    if free < DISK_ERROR_MB:
        return CheckItem("disk", False, ERROR, where, f"{_gib(DISK_ERROR_MB)}", fix,
                         f"disk: {where}, need {_gib(DISK_ERROR_MB)}: {fix}")
    if free < DISK_WARN_MB:
        return CheckItem("disk", False, WARNING, where, f"{_gib(DISK_WARN_MB)}", fix,
                         f"disk: {where}, best {_gib(DISK_WARN_MB)} or more (runtime cache, logs, HDFS blocks): {fix}")
    return _ok("disk", where, f"{_gib(DISK_ERROR_MB)}")


def _clock(facts: dict[str, Any], now: float, fixes: dict[str, str]) -> CheckItem:
    clock = facts.get("clock") or {}
    if clock.get("host_time") is None:
        return CheckItem("clock", False, WARNING, "unknown", f"within {SKEW_ERROR_S:.0f} s", "",
                         "clock: the host's time could not be read (`date +%s.%N`)")
    skew = float(clock["host_time"]) - now
    found = f"{abs(skew):.1f} s {'ahead of' if skew > 0 else 'behind'} the control plane"
    fix = f"synchronize the host's clock ({fixes['clock']})"
    if abs(skew) > SKEW_ERROR_S:
        return CheckItem("clock", False, ERROR, found, f"within {SKEW_ERROR_S:.0f} s", fix,
                         f"clock: {found}, need within {SKEW_ERROR_S:.0f} s: {fix}")
    if abs(skew) > SKEW_WARN_S:
        return CheckItem("clock", False, WARNING, found, f"within {SKEW_WARN_S:.0f} s", fix,
                         f"clock: {found}, best within {SKEW_WARN_S:.0f} s: {fix}")
    return _ok("clock", f"{abs(skew):.2f} s {'ahead of' if skew > 0 else 'behind'} the control plane",
               f"within {SKEW_ERROR_S:.0f} s")


def _ports(facts: dict[str, Any], ports: dict[int, list[str]], allocated: bool) -> list[CheckItem]:
    if allocated:
        return [_ok("ports", "not checked: the host runs a node, whose daemons hold them")]
    own = facts.get("ssh_address")
    taken: dict[int, str | None] = {}
    for listener in facts.get("listening") or []:
        port = listener.get("port")
        if port in ports and (own is None or listener.get("address") in WILDCARDS or listener.get("address") == own):
            taken.setdefault(port, listener.get("process"))
    items = []
    for port, proc in sorted(taken.items()):
        who = proc or "a process the login user cannot see"
        items.append(CheckItem(f"port {port}", False, ERROR, f"in use by {who}", f"free for {', '.join(ports[port])}",
                               "stop it or use another host", f"port {port}: in use by {who}: stop it or use another host"))
    if not items:
        items.append(CheckItem("ports", True, ERROR, f"all {len(ports)} free", ", ".join(str(p) for p in ports), "",
                               f"ports: the {len(ports)} that Corral's daemons bind are free"))
    return items


def _control_plane(facts: dict[str, Any], advertise_url: str | None) -> CheckItem:
    fix = "set CORRAL_ADVERTISE_URL to an address the host can reach"
    name = "control plane"
    if not advertise_url:
        return CheckItem(name, False, ERROR, "no advertised URL", "an address the host can reach", fix,
                         f"{name}: the control plane listens on all addresses and has no advertised URL: {fix}")
    reach = facts.get("control_plane") or {}
    if not reach or reach.get("tool") in (None, "none"):
        return CheckItem(name, False, WARNING, "not tested", "reachable", "install curl",
                         f"{name}: {advertise_url} not tested (no python3.11, curl or wget on the host)")
    if not reach.get("ok"):
        detail = reach.get("detail") or "no answer"
        return CheckItem(name, False, ERROR, f"not reachable ({detail})", "reachable", fix,
                         f"{name}: {advertise_url} not reachable from the host ({detail}): {fix}")
    return _ok(name, f"{advertise_url} reachable ({reach.get('detail') or 'answered'})", "reachable")
