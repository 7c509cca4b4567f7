"""The host check's evaluation on recorded probe output, and the probe script itself run
by this machine's ``sh`` (the same script SSH sends to a host)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from corral.hosts.check import (CheckItem, effective_resources, evaluate, failing, parse_probe, probe_script,
                                required_ports)

RECORDED = (Path(__file__).parent / "probe_debian12.txt").read_text()
URL = "http://198.18.0.1:7420"
NOW = 1_765_000_000.0


def facts(**changes: Any) -> dict[str, Any]:
    """The recorded facts of a good Debian 12 host, its clock 0.2 s ahead, with ``changes``."""
    base = parse_probe(RECORDED)
    base["clock"] = {"host_time": NOW + 0.2}
    for key, value in changes.items():
        base[key] = value
    return base


def check(f: dict[str, Any], **kwargs: Any) -> list[CheckItem]:
    return evaluate(f, now=NOW, advertise_url=kwargs.pop("advertise_url", URL), **kwargs)


def messages(items: list[CheckItem]) -> list[str]:
    return [i.message for i in failing(items)]


def item(items: list[CheckItem], name: str) -> CheckItem:
    return next(i for i in items if i.name == name)


def test_the_recorded_facts_are_parsed() -> None:
    f = parse_probe(RECORDED)
    assert f["user"] == "corral" and f["home"] == "/home/corral" and f["ssh_address"] == "198.18.0.5"
    assert f["os"]["pretty_name"] == "Debian GNU/Linux 12 (bookworm)" and f["kernel"]["name"] == "Linux"
    assert f["python"] == {"path": "/usr/bin/python3.11", "executable": "/usr/bin/python3.11", "version": "3.11.2",
                           "error": None, "venv": True, "venv_error": None}
    assert f["java"]["major"] == 17 and f["java"]["version"] == "17.0.15"
    assert (f["cores"], f["memory_mb"]) == (8, 16000)
    assert f["disk"]["free_mb"] == 62400000 // 1024 and f["disk"]["mount"] == "/"
    assert {"address": "127.0.0.53", "port": 53, "process": "systemd-resolve (pid 401)"} in f["listening"]
    assert {"address": "::", "port": 22, "process": "sshd (pid 610)"} in f["listening"]
    assert f["control_plane"] == {"url": URL + "/api/v1/health", "tool": "/usr/bin/python3.11", "ok": True,
                                  "detail": "HTTP 200"}


def test_a_good_host_passes_every_item() -> None:
    items = check(facts())
    assert failing(items) == [] and all(i.ok for i in items), [i.message for i in items if not i.ok]
    assert {i.name for i in items} == {"os", "python3.11", "java", "cores", "memory", "disk", "clock", "ports",
                                       "control plane"}


def test_java_missing_or_old() -> None:
    assert messages(check(facts(java=None))) == ["java: not found, need 17: apt-get install -y openjdk-17-jdk-headless"]
    old = facts()
    old["java"] = {**old["java"], "major": 11, "version": "11.0.21"}
    assert messages(check(old)) == ["java: found 11, need 17: apt-get install -y openjdk-17-jdk-headless"]
    eight = parse_probe(RECORDED.replace('"17.0.15" 2025-04-15', '"1.8.0_392"'))
    eight["clock"] = {"host_time": NOW}
    assert messages(check(eight)) == ["java: found 8, need 17: apt-get install -y openjdk-17-jdk-headless"]


def test_python_missing_or_without_venv() -> None:
    assert messages(check(facts(python=None))) == ["python3.11: not found: apt-get install -y python3.11 python3.11-venv"]
    no_venv = parse_probe(RECORDED.replace("python_venv\tok", "python_venv\tModuleNotFoundError: No module named 'ensurepip'"))
    no_venv["clock"] = {"host_time": NOW}
    (line,) = messages(check(no_venv))
    assert line.startswith("python3.11: found 3.11.2 without the venv module (ModuleNotFoundError: No module named "
                           "'ensurepip')") and line.endswith(": apt-get install -y python3.11-venv")


def test_rhel_hosts_get_dnf_fixes() -> None:
    f = facts(java=None, os={"id": "rocky", "id_like": "rhel centos fedora", "version_id": "9", "pretty_name": "Rocky 9"})
    assert messages(check(f)) == ["java: not found, need 17: dnf install -y java-17-openjdk-headless"]


def test_a_taken_port_names_its_process() -> None:
    f = facts()
    f["listening"] += [{"address": "0.0.0.0", "port": 8088, "process": "java (pid 4242)"},
                       {"address": "198.18.0.5", "port": 9870, "process": None},
                       {"address": "198.18.0.9", "port": 8020, "process": "nc (pid 7)"}]  # another address: no clash
    assert messages(check(f)) == ["port 8088: in use by java (pid 4242): stop it or use another host",
                                  "port 9870: in use by a process the login user cannot see: stop it or use another host"]
    assert item(check(f), "port 8088").need == "free for yarn on MASTER"


def test_ports_of_an_allocated_host_are_its_nodes() -> None:
    f = facts()
    f["listening"].append({"address": "0.0.0.0", "port": 8088, "process": "java (pid 4242)"})
    assert messages(check(f, allocated=True)) == []


def test_the_proc_fallback_reads_addresses_and_owners() -> None:
    text = RECORDED.replace("ss\tLISTEN", "#\t").replace(
        "reach_url", "proc_tcp\t00000000:1F98 111\nproc_tcp\t0100007F:0016 112\n"
                     "proc_tcp\t0000000000000000FFFF0000050012C6:4E20 113\nproc_socket\t111 77 java\nreach_url")
    f = parse_probe(text)
    assert {"address": "0.0.0.0", "port": 8088, "process": "java (pid 77)"} in f["listening"]
    assert {"address": "127.0.0.1", "port": 22, "process": None} in f["listening"]
    assert {"address": "198.18.0.5", "port": 20000, "process": None} in f["listening"]


@pytest.mark.parametrize(("offset", "severity", "line"), [
    (7.25, "error", "clock: 7.2 s ahead of the control plane, need within 5 s: synchronize the host's clock "
                    "(apt-get install -y chrony)"),
    (-2.5, "warning", "clock: 2.5 s behind the control plane, best within 1 s: synchronize the host's clock "
                      "(apt-get install -y chrony)"),
    (0.4, None, None),
])
def test_clock_skew(offset: float, severity: str | None, line: str | None) -> None:
    clock = item(check(facts(clock={"host_time": NOW + offset})), "clock")
    if severity is None:
        assert clock.ok
    else:
        assert (clock.ok, clock.severity, clock.message) == (False, severity, line)


def test_control_plane_not_reachable_or_not_advertised() -> None:
    f = facts(control_plane={"url": URL + "/api/v1/health", "tool": "curl", "ok": False,
                             "detail": "curl: (7) Failed to connect to 198.18.0.1 port 7420"})
    assert messages(check(f)) == [
        f"control plane: {URL} not reachable from the host (curl: (7) Failed to connect to 198.18.0.1 port 7420): "
        "set CORRAL_ADVERTISE_URL to an address the host can reach"]
    (line,) = messages(check(facts(control_plane=None), advertise_url=None))
    assert line.endswith("set CORRAL_ADVERTISE_URL to an address the host can reach")


def test_low_disk() -> None:
    f = facts()
    f["disk"] = {**f["disk"], "free_mb": 1024}
    assert messages(check(f)) == ["disk: 1.0 GiB free for /home/corral/.corral-host (on /), need 2.0 GiB: "
                                  "free space there or use another host"]
    f["disk"] = {**f["disk"], "free_mb": 5 * 1024}
    assert messages(check(f)) == [] and item(check(f), "disk").severity == "warning"


def test_overrides_replace_what_was_found() -> None:
    f = facts()
    assert effective_resources(f, None, None) == (8, 16000)
    assert effective_resources(f, 2, 4096) == (2, 4096)
    items = check(f, cores_override=2, memory_mb_override=4096)
    assert failing(items) == []
    assert item(items, "memory").message == "memory: 4096 MiB (given with --memory; the host has 16000 MiB)"
    too_small = check(f, memory_mb_override=1024)
    assert messages(too_small) == ["memory: 1024 MiB (given with --memory; the host has 16000 MiB), need at least "
                                   "2048 MiB: use a larger host"]
    more = item(check(f, cores_override=64), "cores")
    assert (more.ok, more.severity) == (False, "warning")


def test_a_small_host_fails_on_memory() -> None:
    assert messages(check(facts(memory_mb=1000))) == ["memory: 1000 MiB, need at least 2048 MiB: use a larger host"]


def test_nothing_parsed_still_gives_every_item() -> None:
    f = parse_probe("CORRAL-PROBE-BEGIN 1\nkernel_name\tLinux\nCORRAL-PROBE-END\n")
    names = [i.name for i in failing(check(f))]
    assert names == ["python3.11", "java", "cores", "memory"]
    assert item(check(f), "control plane").severity == "warning"  # not tested: not a failure by itself


# -- the real script, run by this machine's sh ---------------------------------------------


def _run_probe(env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(["sh", "-s"], input=probe_script("http://127.0.0.1:9"), capture_output=True, env=env,
                         timeout=60, check=True)
    return parse_probe(out.stdout.decode())


def test_the_script_reports_this_machine() -> None:
    f = _run_probe({"PATH": os.environ["PATH"], "HOME": str(Path.home())})
    assert f["cores"] == os.cpu_count() and f["memory_mb"] > 0 and f["disk"]["free_mb"] > 0
    assert f["kernel"]["name"] == "Linux" and f["home"] == str(Path.home())
    assert f["python"] and f["python"]["version"].startswith("3.11.") and f["python"]["venv"]
    assert f["java"] and f["java"]["major"] == 17
    assert f["listening"], "ss shows at least one listening socket"
    assert f["control_plane"]["ok"] is False and "refused" in f["control_plane"]["detail"].lower()


def test_the_script_without_java_on_path(tmp_path: Path) -> None:
    """A PATH with the base tools and no java: the script still answers, java is missing."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "cat", "sed", "head", "tail", "tr", "id", "uname", "nproc", "df", "dirname", "readlink", "ls",
                 "awk", "grep"):
        found = subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True, text=True).stdout.strip()
        if found:
            (bin_dir / tool).symlink_to(found)
    f = _run_probe({"PATH": str(bin_dir), "HOME": str(tmp_path)})
    assert f["java"] is None and f["cores"] == os.cpu_count()
    assert f["listening"], "without ss, /proc/net/tcp is read"
    f["clock"] = {"host_time": NOW}
    assert "java: not found, need 17: apt-get install -y openjdk-17-jdk-headless" in messages(
        evaluate(f, now=NOW, advertise_url="http://127.0.0.1:9"))


def test_required_ports_are_not_empty() -> None:
    assert len(required_ports()) >= 20
