"""The host lab (tests/hostlab.py) the SSH provider's tests run on, proved with real SSH:
logins with the lab's key only, private files, the network confined to the lab's subnet,
isolated spawns, reboots with @reboot cron lines, link down/up, changed host keys, and
that nothing of a lab is left after close, also of a lab whose owner was killed."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import paramiko
import pytest

from tests import hostlab_sys as sysx
from tests.hostlab import HostLab, LabHost, sweep_stale

pytestmark = [pytest.mark.integration, pytest.mark.host_lab(3, java=[True, True, False])]
REPO = Path(__file__).resolve().parents[2]


def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def ok(host: LabHost, command: str) -> str:
    proc = host.ssh(command)
    assert proc.returncode == 0, f"{host.name}: {command!r} -> {proc.returncode}: {proc.stderr}"
    return proc.stdout


def machine_view() -> dict[str, str]:
    """What `ip netns list`, `ip link`, the mount table and ps show (for leftovers)."""
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return {"netns": sysx.run(["ip", "netns", "list"]).stdout, "links": sysx.run(["ip", "-o", "link"]).stdout,
            "mounts": Path("/proc/self/mountinfo").read_text(), "ps": ps}


def test_hosts_are_made_fast_with_their_own_addresses_and_keys(host_lab: HostLab) -> None:
    print(f"\nlab of 3 hosts created in {host_lab.timings['create']:.2f} s")
    assert host_lab.timings["create"] < 15
    assert host_lab.subnet.subnet_of(sysx.LAB_RANGE)
    addresses = [h.address for h in host_lab]
    assert len(set(addresses)) == 3 and host_lab.control_address not in addresses
    assert all(h.port == 22 for h in host_lab)
    prints = {h.fingerprint() for h in host_lab} | {h.fingerprint("rsa") for h in host_lab}
    assert len(prints) == 6  # every host its own ed25519 and rsa key
    for host in host_lab:
        listed = sysx.run(["ssh-keygen", "-lf", str(host.path("/etc/ssh/ssh_host_ed25519_key.pub"))]).stdout
        assert listed.split()[1] == host.fingerprint()
    key = host_lab.client_key_path
    assert key.stat().st_mode & 0o777 == 0o600
    assert key.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert host_lab.client_public_key.startswith("ssh-ed25519 ")


def test_each_host_answers_ssh_with_python_and_java_as_configured(host_lab: HostLab) -> None:
    for host in host_lab:
        out = ok(host, "hostname; hostname -I; python3.11 -c 'import sys, venv, ensurepip; print(sys.executable)'")
        name, addresses, python = out.split("\n")[:3]
        assert (name, addresses.split(), python) == (host.name, [host.address], "/usr/bin/python3.11")
        java = host.ssh("java -version")
        if host.java:
            assert java.returncode == 0 and 'version "17.' in java.stderr, java.stderr
        else:
            assert java.returncode == 127 and "java: command not found" in java.stderr
    assert [h.java for h in host_lab] == [True, True, False]


def test_paramiko_checks_the_host_key_and_reuses_one_connection(host_lab: HostLab) -> None:
    host = host_lab[1]
    client = paramiko.SSHClient()
    client.load_host_keys(str(host.known_hosts_path))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(host.address, port=22, username="root", key_filename=str(host_lab.client_key_path),
                   look_for_keys=False, allow_agent=False, timeout=5)
    try:
        transport = client.get_transport()
        assert transport is not None
        served = transport.get_remote_server_key()
        assert sysx.fingerprint(f"{served.get_name()} {served.get_base64()}") == host.fingerprint()
        results: list[str] = []

        def one(i: int) -> None:  # 30 channels at once on one connection (MaxSessions 50)
            _, stdout, _ = client.exec_command(f"sleep 0.5; echo {i}")
            results.append(stdout.read().decode().strip())

        threads = [threading.Thread(target=one, args=(i,)) for i in range(30)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(results, key=int) == [str(i) for i in range(30)]
    finally:
        client.close()


def test_only_the_lab_key_logs_in(host_lab: HostLab, tmp_path: Path) -> None:
    host = host_lab[0]
    password = host.ssh_argv("true")
    password[1:1] = ["-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password,keyboard-interactive"]
    proc = subprocess.run(password, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert proc.returncode == 255 and "Permission denied (publickey)" in proc.stderr
    other = tmp_path / "other"
    sysx.start_keygen(other, "ed25519", "stranger").wait()
    stranger = host.ssh_argv("true")
    stranger[stranger.index(str(host_lab.client_key_path))] = str(other)
    proc = subprocess.run(stranger, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert proc.returncode == 255 and "Permission denied (publickey)" in proc.stderr
    unknown = tmp_path / "known_hosts"
    unknown.write_text("".join(f"{line}\n" for line in host_lab[1].known_hosts_lines()))  # another host's keys
    proc = host.ssh("true", known_hosts=unknown)
    assert proc.returncode == 255 and "Host key verification failed" in proc.stderr


def test_files_written_on_a_host_stay_on_it(host_lab: HostLab) -> None:
    first, *others = list(host_lab)
    word = secrets.token_hex(6)
    dirs = ["/root", "/tmp", "/opt", "/home", "/var/tmp", "/srv"]
    ok(first, " && ".join(f"echo {word} > {d}/hostlab-{word}" for d in dirs))
    for d in dirs:
        assert first.path(f"{d}/hostlab-{word}").read_text() == f"{word}\n"  # its disk, on the machine
        assert not Path(f"{d}/hostlab-{word}").exists()  # not the machine's own directory
    for other in others:
        found = other.ssh(" ; ".join(f"test -e {d}/hostlab-{word} && echo {d}" for d in dirs) + " ; true")
        assert found.returncode == 0 and found.stdout == ""
    # the rest of the machine is read-only on hosts, and this checkout is not there at all
    proc = first.ssh("touch /etc/hostlab-probe /usr/hostlab-probe")
    assert proc.returncode == 1 and proc.stderr.count("Read-only file system") == 2
    # hidden by an empty mount, or under one of the host's private directories (a checkout in /tmp)
    assert ok(first, f"ls -A {REPO} 2>/dev/null | wc -l").strip() == "0"
    assert (REPO / "pyproject.toml").is_file()  # while it is there on the machine
    for hidden in host_lab.hidden:
        assert ok(first, f"ls -A {hidden} | wc -l").strip() == "0"
    listed = ok(first, "ls -A /tmp").split()
    assert f"hostlab-{word}" in listed and not any(name.startswith("corral-hostlab") for name in listed)


def test_hosts_reach_the_lab_subnet_and_nothing_else(host_lab: HostLab) -> None:
    host, neighbour = host_lab[0], host_lab[1]
    routes = [line.strip() for line in host.run("ip -4 route", check=True).stdout.splitlines()]
    assert routes == [f"{host_lab.subnet} dev eth0 proto kernel scope link src {host.address}"]  # no default route
    assert all(line.split()[:3] == ["::1", "dev", "lo"] for line in host.run("ip -6 route", check=True).stdout.splitlines())
    assert "inet6" not in host.run("ip -6 addr show dev eth0", check=True).stdout
    # the lab turns on no forwarding (the hosts' missing routes are what confines them)
    conf = Path("/proc/sys/net/ipv4/conf")
    assert (conf / host_lab.bridge / "forwarding").read_text() == (conf / "default/forwarding").read_text()
    others = [a["local"] for e in json.loads(sysx.run(["ip", "-j", "-4", "addr"]).stdout) for a in e["addr_info"]
              if not a["local"].startswith(("127.", "198.18.", "198.19."))]
    # no route: the kernel refuses at once and not one packet is sent
    nameservers = re.findall(r"^nameserver\s+(\S+)", Path("/etc/resolv.conf").read_text(), re.M)
    for target in [*others, *nameservers, "198.19.255.254"]:
        probe = host.run(f"ip route get {target}")
        assert probe.returncode != 0 and "Network is unreachable" in probe.stderr, target
        connect = host.run(["python3.11", "-c", f"import socket; socket.create_connection(({target!r}, 22), 2)"])
        assert "Network is unreachable" in connect.stderr, target
    # the control plane's address and the other hosts answer
    port = free_port(host_lab.control_address)
    with socket.create_server((host_lab.control_address, port)) as server:
        def answer() -> None:
            conn, _ = server.accept()
            with conn:
                conn.sendall(b"control plane\n")
        t = threading.Thread(target=answer)
        t.start()
        got = host.run(["python3.11", "-c", f"import socket; print(socket.create_connection(({host_lab.control_address!r}, {port}), 5).recv(64).decode())"])
        t.join(10)
    assert got.stdout.strip() == "control plane", got.stderr
    banner = host.run(["python3.11", "-c", f"import socket; print(socket.create_connection(({neighbour.address!r}, 22), 5).recv(7).decode())"])
    assert banner.stdout.strip() == "SSH-2.0"


def test_an_isolated_spawn_sees_no_host_process_or_file(host_lab: HostLab, tmp_path: Path) -> None:
    host = host_lab[0]
    word = secrets.token_hex(6)
    ok(host, f"echo {word} > /root/spawn-{word} && echo {word} > /tmp/spawn-{word}")
    port = free_port(host_lab.control_address)
    script = textwrap.dedent(f"""
        import json, os, socket, subprocess
        pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
        me = os.getpid()
        server = socket.create_server(({host_lab.control_address!r}, {port}))
        ssh = subprocess.run({host.ssh_argv("cat /root/spawn-" + word)!r}, capture_output=True, text=True)
        print(json.dumps({{
            "pids": pids, "me": me,
            "host_files": [os.path.exists(p) for p in {[str(host.path(f"/root/spawn-{word}")), f"/root/spawn-{word}", f"/tmp/spawn-{word}"]!r}],
            "lab_disks": os.listdir({str(host_lab.hosts_dir)!r}),
            "netns": os.path.exists("/run/netns/{host.netns}"),
            "client_key": os.access({str(host_lab.client_key_path)!r}, os.R_OK),
            "ssh": ssh.stdout.strip(),
        }}))
    """)
    out = tmp_path / "spawn.out"
    with open(out, "wb") as stdout:
        spawn = host_lab.spawn_isolated([sys.executable, "-c", script], stdout=stdout, stderr=subprocess.STDOUT)
        assert spawn.wait(30) == 0, out.read_text()
    seen = json.loads(out.read_text().splitlines()[-1])
    assert seen["pids"] == [1, seen["me"]]  # its namespace's init and itself: no host's, no machine's process
    assert seen["host_files"] == [False, False, False] and seen["lab_disks"] == [] and seen["netns"] is False
    assert seen["client_key"] is True and seen["ssh"] == word  # it reaches the host over SSH only
    # a spawn's signals: terminate reaches the command, kill ends everything in its namespace
    sleeper = host_lab.spawn_isolated(["sleep", "600"])
    assert sleeper.pid is not None and sysx.ns_inode(sleeper.pid, "pid") not in (sysx.ns_inode(os.getpid(), "pid"), host._pidns)
    sleeper.terminate()
    assert sleeper.wait(10) == 128 + signal.SIGTERM
    family = host_lab.spawn_isolated(["sh", "-c", "trap '' TERM; sleep 600 & sleep 600"])
    assert family.pid is not None
    inode = sysx.ns_inode(family.pid, "pid")
    family.kill()
    family.wait(10)
    assert inode is not None and sysx.members("pid", inode, live=True) == []


def test_processes_and_ports_of_a_host_show_what_was_started_there(host_lab: HostLab) -> None:
    host = host_lab[1]
    cmdlines = [p.cmdline for p in host.processes()]
    assert host.processes()[0].pid == 1 and "hostlab-init" in cmdlines[0]
    assert any(c.startswith("sshd: /usr/sbin/sshd -D") for c in cmdlines) and "/usr/sbin/cron -f" in cmdlines
    assert host.user_processes() == [] and host.listening_ports() == [(host.address, 22)]
    ok(host, f"nohup python3.11 -m http.server 8123 --bind {host.address} >/dev/null 2>&1 &")
    sysx.wait_until(lambda: (host.address, 8123) in host.listening_ports(), 10, "the http server")
    [server] = host.user_processes()
    assert "http.server 8123" in server.cmdline
    host.run(f"kill -9 {server.pid}", check=True)  # pid as the host sees it
    sysx.wait_until(lambda: host.user_processes() == [], 10, "the server to die")
    assert host.listening_ports() == [(host.address, 22)]


def test_reboot_kills_everything_keeps_the_disk_and_runs_reboot_lines(host_lab: HostLab) -> None:
    host = host_lab[1]
    key = host.fingerprint()
    ok(host, "echo '@reboot echo booted >> /root/boots' | crontab - && touch /tmp/before /root/kept && "
             "rm -f /root/boots && (setsid sleep 600 >/dev/null 2>&1 &)")
    sysx.wait_until(lambda: any(p.cmdline == "sleep 600" for p in host.user_processes()), 10, "the sleep")
    started = time.monotonic()
    host.reboot()
    print(f"\nreboot took {time.monotonic() - started:.2f} s")
    sysx.wait_until(lambda: host.path("/root/boots").exists(), 15, "the @reboot line")
    assert host.path("/root/boots").read_text() == "booted\n"
    assert ok(host, "ls /tmp; ls /root/kept; crontab -l").split() == ["/root/kept", "@reboot", "echo", "booted", ">>", "/root/boots"]
    assert not any("sleep" in p.cmdline for p in host.processes())
    assert host.fingerprint() == key  # the disk survives
    host.reboot(graceful=True)
    sysx.wait_until(lambda: host.path("/root/boots").read_text() == "booted\nbooted\n", 15, "the second @reboot")
    ok(host, "crontab -r && rm /root/boots /root/kept")


def test_a_link_down_times_out_and_back_up_works(host_lab: HostLab) -> None:
    host = host_lab[1]
    host.link_down()
    try:
        assert host.link_is_up is False
        started = time.monotonic()
        proc = host.ssh("true", connect_timeout=2, timeout=20)
        assert proc.returncode == 255 and time.monotonic() - started < 8, proc.stderr
    finally:
        host.link_up()
    assert host.link_is_up is True
    sysx.wait_until(lambda: host.ssh("true", connect_timeout=2).returncode == 0, 15, "ssh after link up")


def test_java_can_be_hidden_and_shown_at_run_time(host_lab: HostLab) -> None:
    host = host_lab[0]
    host.hide_java()
    try:
        assert host.ssh("command -v java").returncode == 1 and host.java is False
    finally:
        host.show_java()
    assert host.ssh("java -version").returncode == 0


def test_a_regenerated_host_key_is_refused_by_old_known_hosts(host_lab: HostLab, tmp_path: Path) -> None:
    host = host_lab[0]
    before = host.fingerprint()
    old = tmp_path / "known_hosts.old"
    shutil.copyfile(host.known_hosts_path, old)
    host.regenerate_host_key()
    assert host.fingerprint() != before
    refused = host.ssh("true", known_hosts=old)
    assert refused.returncode == 255 and "REMOTE HOST IDENTIFICATION HAS CHANGED" in refused.stderr
    client = paramiko.SSHClient()
    client.load_host_keys(str(old))
    with pytest.raises(paramiko.BadHostKeyException):
        client.connect(host.address, username="root", key_filename=str(host_lab.client_key_path),
                       look_for_keys=False, allow_agent=False, timeout=5)
    client.close()
    assert ok(host, "echo fine").strip() == "fine"  # the lab's known_hosts has the new key


def test_close_leaves_nothing_and_a_second_lab_coexists(host_lab: HostLab) -> None:
    lab = HostLab(2)
    try:
        assert lab.subnet != host_lab.subnet and lab.bridge != host_lab.bridge
        ok(lab[0], "nohup sleep 600 >/dev/null 2>&1 &")
        spawn = lab.spawn_isolated(["sleep", "600"])
        inodes = [h._pidns for h in lab] + [sysx.ns_inode(spawn.pid or 0, "pid")]
        pids = [h.init_pid for h in lab] + [spawn.pid]
    finally:
        lab.close()
    print(f"\nlab of 2 hosts: created in {lab.timings['create']:.2f} s, closed in {lab.timings['close']:.2f} s")
    lab.close()  # idempotent
    view = machine_view()
    for text in view.values():
        assert lab.tag not in text and str(lab.dir) not in text and str(lab.subnet.network_address)[:-1] not in text
    assert not lab.dir.exists()
    assert not any(sysx.ns_inode(p, "pid") in inodes and not sysx.is_zombie(p) for p in sysx.pids())
    assert not any(os.path.exists(f"/proc/{p}") and sysx.describe(p) is not None for p in pids if p)
    assert ok(host_lab[0], "echo still").strip() == "still"  # the other lab is untouched


def test_the_lab_of_a_killed_owner_dies_and_is_swept(host_lab: HostLab) -> None:
    owner = textwrap.dedent("""
        import json, os, signal
        from tests.hostlab import HostLab
        lab = HostLab(1)
        spawn = lab.spawn_isolated(["sleep", "600"])
        print(json.dumps({"tag": lab.tag, "netns": lab[0].netns, "dir": str(lab.dir), "spawn": spawn.pid}), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # no close, no atexit
    """)
    proc = subprocess.run([sys.executable, "-c", owner], capture_output=True, text=True, timeout=60,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    dead = json.loads(proc.stdout.strip().splitlines()[-1])
    # its hosts and spawns die with it (pdeathsig); names and directory stay until a sweep
    sysx.wait_until(lambda: not sysx.netns_pids(dead["netns"]) and not sysx.marked(dead["tag"]), 10, "the orphans to die")
    assert dead["netns"] in sysx.run(["ip", "netns", "list"]).stdout and Path(dead["dir"]).exists()
    assert dead["tag"] in sweep_stale()
    view = machine_view()
    assert all(dead["tag"] not in text for text in view.values()) and not Path(dead["dir"]).exists()
    assert ok(host_lab[2], "echo alive").strip() == "alive"  # a live lab is never swept
    assert re.fullmatch(r"hl\d+x\d+", host_lab.tag)


def test_a_failed_test_and_an_interrupted_run_leave_nothing(host_lab: HostLab, tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text("from tests.hostlab_fixtures import host_lab_factory  # noqa: F401\n")
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(f"""
        def test_fails(host_lab_factory):
            lab = host_lab_factory(1)
            open({str(tmp_path / "failed.tag")!r}, "w").write(lab.tag)
            assert lab[0].ssh("true").returncode == 0
            assert False, "a failing test"
    """))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    failed = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", "/dev/null",
                             "--rootdir", str(tmp_path), str(tmp_path / "test_inner.py")],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert failed.returncode == 1 and "a failing test" in failed.stdout, failed.stdout + failed.stderr
    interrupted = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        from tests.hostlab import HostLab
        lab = HostLab(1)
        print(lab.tag, flush=True)
        raise KeyboardInterrupt  # uncaught: the interpreter exits, atexit closes the lab
    """)], capture_output=True, text=True, timeout=60, cwd=REPO, env=env)
    assert "KeyboardInterrupt" in interrupted.stderr
    view = machine_view()
    for tag in ((tmp_path / "failed.tag").read_text(), interrupted.stdout.split()[0]):
        assert all(tag not in text for text in view.values())
        assert not list(Path(tempfile.gettempdir()).glob(f"{sysx.DIR_PREFIX}{tag}"))
