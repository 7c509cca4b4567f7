"""The host lab's pure rules (no root needed): subnet choice, owner markers and names,
fingerprints, private-directory checks, the boot script's mount order."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests import hostlab
from tests import hostlab_boot as boot
from tests import hostlab_sys as sysx

N = ipaddress.IPv4Network


def test_the_first_free_slash_24_of_the_benchmarking_range_is_picked() -> None:
    used = [N("127.0.0.0/8"), N("198.18.0.0/24"), N("198.18.1.7/32"), N("10.0.0.0/8")]
    assert sysx.pick_subnet(used, None, 3) == N("198.18.2.0/24")
    assert sysx.pick_subnet([], None, 3) == N("198.18.0.0/24")


def test_a_wanted_subnet_must_be_in_range_free_and_big_enough() -> None:
    assert sysx.pick_subnet([], "198.19.4.0/24", 3) == N("198.19.4.0/24")
    with pytest.raises(ValueError, match="not inside 198.18.0.0/15"):
        sysx.pick_subnet([], "10.1.0.0/24", 3)
    with pytest.raises(ValueError, match="in use"):
        sysx.pick_subnet([N("198.19.4.128/25")], "198.19.4.0/24", 3)
    with pytest.raises(ValueError, match="no room"):
        sysx.pick_subnet([], "198.19.4.0/30", 3)


def test_no_free_subnet_left_is_an_error() -> None:
    with pytest.raises(sysx.HostLabError, match="no free /24"):
        sysx.pick_subnet([sysx.LAB_RANGE], None, 1)


def test_names_fit_linux_interface_names_and_carry_the_owner() -> None:
    tag = "hl4194304x99"  # the largest pid and lab counter
    assert len(f"{tag}v{sysx.MAX_HOSTS}") <= 15
    assert sysx.LINK_RE.match(f"{tag}v7")["tag"] == tag  # type: ignore[index]
    assert sysx.LINK_RE.match(tag)["tag"] == tag  # type: ignore[index]
    assert sysx.NETNS_RE.match(f"{tag}-host12")["tag"] == tag  # type: ignore[index]
    assert sysx.LINK_RE.match("eth0") is None and sysx.NETNS_RE.match("someone-elses") is None


def test_an_owner_is_alive_only_if_its_pid_and_start_time_match(tmp_path: Path) -> None:
    mine = f"hl{os.getpid()}x3"
    assert sysx.owner_alive(mine, tmp_path, {mine}) is True
    assert sysx.owner_alive(mine, tmp_path, set()) is False  # our pid, not our lab: a dead namesake's
    child = subprocess.Popen(["sleep", "30"])
    try:
        tag = f"hl{child.pid}x0"
        assert sysx.owner_alive(tag, tmp_path, set()) is True  # no record: left alone
        lab_dir = tmp_path / f"{sysx.DIR_PREFIX}{tag}"
        lab_dir.mkdir()
        (lab_dir / "owner.json").write_text(json.dumps({"pid": child.pid, "start_time": sysx.process_start_time(child.pid)}))
        assert sysx.owner_alive(tag, tmp_path, set()) is True
        (lab_dir / "owner.json").write_text(json.dumps({"pid": child.pid, "start_time": 1}))
        assert sysx.owner_alive(tag, tmp_path, set()) is False  # the pid was reused
    finally:
        child.kill()
        child.wait()
    assert sysx.owner_alive(tag, tmp_path, set()) is False


def test_fingerprints_are_what_ssh_keygen_prints() -> None:
    public = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIxHMJDhMINBtfN4sp4+nxZ1kITjf4YRkLSPQxlaSzaS"
    # `ssh-keygen -lf` of this key: 256 SHA256:eU5e46+EyXI6G6q/3gOEKWe44OMARPSfZhaJu/o5H9Y x (ED25519)
    assert sysx.fingerprint(public) == "SHA256:eU5e46+EyXI6G6q/3gOEKWe44OMARPSfZhaJu/o5H9Y"


def test_extra_private_dirs_are_checked() -> None:
    assert boot.check_private_dirs(["/opt/corral", "/root/x"], ["/work"]) == list(boot.PRIVATE_DIRS)
    dirs = boot.check_private_dirs(["/usr/share"], [])
    assert dirs[-1] == "/tmp" and "/usr/share" in dirs
    for bad, message in (("relative", "absolute"), ("/", "absolute"), ("/work/x", "hidden"),
                         ("/var/lib/no-such-hostlab-dir", "does not exist")):
        with pytest.raises(ValueError, match=message):
            boot.check_private_dirs([bad], ["/work"])


def test_the_boot_script_binds_tmp_last_then_makes_the_rest_read_only() -> None:
    script = boot.boot_script(Path("/tmp/lab/disk"), list(boot.PRIVATE_DIRS), ["/work"], name="host1", java=False)
    mounts = [line for line in script.splitlines() if line.startswith("mount ")]
    binds = [line.split()[-1] for line in mounts if line.startswith("mount --bind")]
    assert binds[-1] == "/tmp" and set(binds) == set(boot.PRIVATE_DIRS) | set(boot.PRIVATE_FILES)
    assert mounts[-1] == "mount -o remount,bind,ro /"  # per-mount flag: never the machine's superblock
    assert any(line.endswith(" /work") for line in mounts) and any(line.endswith(" /usr/lib/jvm") for line in mounts)
    assert "/usr/lib/jvm" not in boot.boot_script(Path("/d"), list(boot.PRIVATE_DIRS), [], name="h", java=True)


def test_labs_say_why_they_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "needs root" in (hostlab.unavailable_reason() or "")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(hostlab.shutil, "which", lambda name: None)
    assert "iproute2" in (hostlab.unavailable_reason() or "")


def test_a_lab_needs_one_to_99_hosts_and_one_java_flag_each() -> None:
    with pytest.raises(ValueError, match="1 to 99 hosts"):
        hostlab.HostLab(0)
    with pytest.raises(ValueError, match="java has 2 values for 3 hosts"):
        hostlab.HostLab(3, java=[True, False])
