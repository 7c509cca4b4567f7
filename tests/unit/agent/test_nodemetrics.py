"""Node metrics: rates between measurements with fakes and a fake clock, then the real
machine (a busy child's CPU and memory, a directory's bytes), then the agent, which
attaches the newest measurement to its reports without making them urgent."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import psutil
import pytest

from corral.agent import agent as agent_module
from corral.agent import nodemetrics
from corral.agent.nodemetrics import NodeMeter, ProcSample, PsutilSystem, tree_bytes
from corral.agent.protocol import MetricsSpec, NodePlan, NodeReport, ReportAck, RuntimeSpec

NODE = MetricsSpec(scope="node", vcpus=2, memory_bytes=4 << 30, disk_bytes=10_000)


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeSystem:
    """A machine whose processes and counters the test sets; records what was asked."""

    procs: dict[int, ProcSample] = field(default_factory=dict)
    busy: float = 0.0
    net: dict[str, tuple[int, int]] = field(default_factory=dict)
    fs: tuple[int, int, int] = (1 << 40, 0, 5_000)  # total, used, free
    dir_bytes: int = 0
    missing: set[str] = field(default_factory=set)  # paths that are not there
    walks: int = 0
    roots_asked: list[list[int]] = field(default_factory=list)

    def processes(self, roots: Iterable[int]) -> list[ProcSample]:
        self.roots_asked.append(list(roots))
        return list(self.procs.values())

    def is_alive(self, pid: int, create_time: float) -> bool:
        p = self.procs.get(pid)
        return p is not None and p.create_time == create_time

    def cpu_busy_seconds(self) -> float:
        return self.busy

    def cpu_count(self) -> int:
        return 8

    def memory(self) -> tuple[int, int]:
        return 3 << 30, 16 << 30

    def load1(self) -> float:
        return 1.25

    def net_bytes(self) -> dict[str, tuple[int, int]]:
        return dict(self.net)

    def disk_usage(self, path: str) -> tuple[int, int, int]:
        if path in self.missing:
            raise FileNotFoundError(path)
        return self.fs

    def tree_bytes(self, path: str) -> int:
        self.walks += 1
        return self.dir_bytes

    def put(self, pid: int, cpu: float, *, ppid: int = 1, created: float = 0.0, reaped: float = 0.0,
            rss: int = 1000) -> None:
        self.procs[pid] = ProcSample(pid, ppid, created, cpu, reaped, rss)


def meter(system: FakeSystem, clock: Clock, spec: MetricsSpec = NODE, roots: list[int] | None = None) -> NodeMeter:
    return NodeMeter(spec, Path("/nodes/n-1"), lambda: roots or [10], clock=clock, system=system)


# -- "node": rates with fakes ---------------------------------------------------------------------


def test_first_measurement_has_no_rate_then_per_process_deltas() -> None:
    system, clock = FakeSystem(), Clock()
    system.put(10, cpu=5.0, rss=100)
    system.put(11, cpu=2.0, ppid=10, rss=50)
    m = meter(system, clock, roots=[10, 42])
    first = m.measure()
    assert first.cpu_cores_used is None
    assert (first.memory_used_bytes, first.processes, first.at) == (150, 2, clock.now)
    assert (first.vcpus, first.memory_total_bytes) == (NODE.vcpus, NODE.memory_bytes)
    assert first.load1 is None and first.net_rx_bytes_per_second is None  # the machine's, not the node's
    assert system.roots_asked == [[10, 42]]
    clock.now += 10
    system.put(10, cpu=9.0, rss=120)  # +4 s
    system.put(11, cpu=8.0, ppid=10, rss=50)  # +6 s
    second = m.measure()
    assert second.cpu_cores_used == pytest.approx(10.0 / 10)
    assert second.memory_used_bytes == 170


def test_a_new_process_counts_whole_only_if_it_started_since_the_last_measurement() -> None:
    system, clock = FakeSystem(), Clock()
    system.put(10, cpu=1.0)
    m = meter(system, clock)
    m.measure()
    clock.now += 10
    system.put(11, cpu=3.0, ppid=10, created=clock.now - 5)  # started in the interval
    system.put(12, cpu=100.0, created=clock.now - 3600)  # long running, counted from now on (a root adopted since)
    assert m.measure().cpu_cores_used == pytest.approx(3.0 / 10)
    clock.now += 10
    system.put(12, cpu=104.0, created=clock.now - 3610)
    assert m.measure().cpu_cores_used == pytest.approx(4.0 / 10)


def test_a_reused_pid_is_a_new_process() -> None:
    system, clock = FakeSystem(), Clock()
    system.put(10, cpu=1.0)
    system.put(11, cpu=50.0, ppid=99, created=clock.now - 100)  # parent not counted: not subtracted later
    m = meter(system, clock)
    m.measure()
    clock.now += 10
    system.put(11, cpu=2.0, ppid=99, created=clock.now - 4)  # the old 11 is gone, a new one got its pid
    assert m.measure().cpu_cores_used == pytest.approx(2.0 / 10)  # not 2 - 50 clamped, not 0


def test_a_child_reaped_by_a_counted_parent_is_counted_once() -> None:
    """The kernel adds a waited-for child's whole CPU time to its parent's children times."""
    system, clock = FakeSystem(), Clock()
    system.put(10, cpu=1.0)  # the agent
    system.put(11, cpu=30.0, ppid=10, created=clock.now - 60)  # a daemon, 30 s of CPU so far
    m = meter(system, clock)
    m.measure()
    clock.now += 10
    # 11 used 2 s more, exited and was waited for by 10 (32 s); so was a task that started
    # and ended within the interval (3 s); 10 itself used 0.5 s.
    del system.procs[11]
    system.put(10, cpu=1.5, reaped=32.0 + 3.0)
    assert m.measure().cpu_cores_used == pytest.approx((0.5 + 2.0 + 3.0) / 10)


def test_an_exited_process_whose_parent_was_not_counted_only_stops_counting() -> None:
    system, clock = FakeSystem(), Clock()
    system.put(10, cpu=1.0)
    system.put(20, cpu=500.0, ppid=1, created=clock.now - 3600)  # a re-adopted daemon: init reaps it
    m = meter(system, clock, roots=[10, 20])
    m.measure()
    clock.now += 10
    del system.procs[20]
    system.put(10, cpu=2.0)
    assert m.measure().cpu_cores_used == pytest.approx(1.0 / 10)


def test_a_vanished_process_still_alive_elsewhere_is_not_taken_off() -> None:
    """Orphaned (its parent died), it left the tree alive: its time was never reaped here."""
    system, clock = FakeSystem(), Clock()
    system.put(10, cpu=1.0)
    system.put(11, cpu=40.0, ppid=10)
    m = meter(system, clock)
    m.measure()
    clock.now += 10
    system.put(11, cpu=41.0, ppid=1)
    system.procs = {10: ProcSample(10, 1, 0.0, 2.0, 0.0, 1000)}
    alive = {(11, 0.0)}
    system.is_alive = lambda pid, ct: (pid, ct) in alive  # type: ignore[method-assign]
    assert m.measure().cpu_cores_used == pytest.approx(1.0 / 10)


def test_disk_use_is_walked_at_most_every_30_seconds_and_bounded_by_the_node_size() -> None:
    system, clock = FakeSystem(dir_bytes=4_000, fs=(1 << 40, 0, 50_000)), Clock()
    m = meter(system, clock)
    [disk] = m.measure().disks
    assert (disk.path, disk.used_bytes, disk.total_bytes) == ("/nodes/n-1", 4_000, NODE.disk_bytes)
    assert disk.free_bytes == NODE.disk_bytes - 4_000  # the filesystem has more, the node's size not
    system.dir_bytes, system.fs = 9_000, (1 << 40, 0, 2_000)
    clock.now += nodemetrics.DISK_CACHE_SECONDS - 1
    [disk] = m.measure().disks
    assert system.walks == 1 and disk.used_bytes == 4_000
    assert disk.free_bytes == 2_000  # the filesystem's free space is read every time (cheap)
    clock.now += 1
    [disk] = m.measure().disks
    assert system.walks == 2 and disk.used_bytes == 9_000
    assert disk.free_bytes == 1_000
    system.dir_bytes = 20_000
    clock.now += nodemetrics.DISK_CACHE_SECONDS
    assert m.measure().disks[0].free_bytes == 0  # over its size: no room, never negative


def test_without_a_size_the_node_has_the_machines() -> None:
    system, clock = FakeSystem(fs=(777_000, 1, 5_000)), Clock()
    system.put(10, cpu=1.0)
    metrics = meter(system, clock, spec=MetricsSpec(scope="node")).measure()
    assert (metrics.vcpus, metrics.memory_total_bytes) == (8, 16 << 30)
    assert (metrics.disks[0].total_bytes, metrics.disks[0].free_bytes) == (777_000, 5_000)


# -- "host": the machine's counters ----------------------------------------------------------------


def test_host_rates_per_interface_and_each_existing_data_directory() -> None:
    spec = MetricsSpec(scope="host", data_dirs=["/d/data", "/d/not-yet", "/d"])
    system, clock = FakeSystem(busy=100.0, net={"eth0": (1_000, 500)}, fs=(10_000, 3_000, 7_000)), Clock()
    system.missing.add("/d/not-yet")
    m = meter(system, clock, spec=spec)
    first = m.measure()
    assert first.cpu_cores_used is None and first.net_rx_bytes_per_second is None
    assert (first.vcpus, first.memory_used_bytes, first.memory_total_bytes, first.load1) == (8, 3 << 30, 16 << 30, 1.25)
    assert [d.path for d in first.disks] == ["/d/data", "/d"]  # each, even on one filesystem
    assert (first.disks[0].used_bytes, first.disks[0].free_bytes, first.disks[0].total_bytes) == (3_000, 7_000, 10_000)
    assert first.processes is None
    clock.now += 4
    system.busy = 106.0
    system.net = {"eth0": (5_000, 2_500), "eth1": (10**9, 10**9)}  # eth1 is new: no rate yet
    second = m.measure()
    assert second.cpu_cores_used == pytest.approx(1.5)
    assert (second.net_rx_bytes_per_second, second.net_tx_bytes_per_second) == (pytest.approx(1_000), pytest.approx(500))
    clock.now += 2
    system.net = {"eth0": (100, 100), "eth1": (10**9 + 200, 10**9 + 2)}  # eth0 recreated: its counter restarted
    third = m.measure()
    assert (third.net_rx_bytes_per_second, third.net_tx_bytes_per_second) == (pytest.approx(100), pytest.approx(1))


# -- the real machine -------------------------------------------------------------------------------

BUSY_CHILD = "import time\nkeep = bytearray(64 << 20)\nend = time.time() + 30\nwhile time.time() < end: pass\n"


@pytest.fixture
def busy_child() -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen([sys.executable, "-c", BUSY_CHILD])
    try:
        deadline = time.monotonic() + 10
        while psutil.Process(child.pid).memory_info().rss < 64 << 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        yield child
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize("as_root", ["child", "parent"])
def test_a_busy_process_tree_is_measured(busy_child: subprocess.Popen[bytes], as_root: str) -> None:
    # As the root itself, or found in the test process's tree (as a daemon in the agent's).
    roots = [busy_child.pid] if as_root == "child" else [os.getpid()]
    m = NodeMeter(NODE, Path("/nonexistent"), lambda: roots, system=PsutilSystem())
    first = m.measure()
    time.sleep(1.0)
    second = m.measure()
    assert first.cpu_cores_used is None
    assert second.cpu_cores_used is not None and second.cpu_cores_used > 0.3
    child_rss = psutil.Process(busy_child.pid).memory_info().rss
    assert second.memory_used_bytes >= child_rss >= 64 << 20
    assert second.processes is not None and second.processes >= (1 if as_root == "child" else 2)


def test_a_short_task_reaped_within_the_interval_is_counted(tmp_path: Path) -> None:
    """A parent (as a NodeManager) runs a 0.7 s CPU-bound task that starts after the first
    measurement and is waited for before the second: only the parent's reaped time has it."""
    task = "import time\nend = time.process_time() + 0.7\nwhile time.process_time() < end: pass\n"
    parent_code = (f"import subprocess, sys, time\ntime.sleep(0.4)\nsubprocess.run([sys.executable, '-c', {task!r}])\n"
                   f"open({str(tmp_path / 'done')!r}, 'w').close()\ntime.sleep(30)\n")
    parent = subprocess.Popen([sys.executable, "-c", parent_code])
    try:
        time.sleep(0.15)  # the interpreter is up (its start-up is not what is measured here)
        m = NodeMeter(NODE, Path("/nonexistent"), lambda: [parent.pid], system=PsutilSystem())
        start = time.monotonic()
        m.measure()
        while not (tmp_path / "done").exists():
            assert time.monotonic() - start < 15
            time.sleep(0.05)
        second = m.measure()
        elapsed = time.monotonic() - start
        assert second.cpu_cores_used is not None
        assert second.cpu_cores_used * elapsed > 0.6  # the task's 0.7 s, less the clock ticks' rounding
    finally:
        parent.kill()
        parent.wait()


def test_tree_bytes_sums_file_sizes_without_following_links(tmp_path: Path) -> None:
    node, outside = tmp_path / "node", tmp_path / "outside"
    (node / "data" / "hdfs" / "data").mkdir(parents=True)
    (node / "logs").mkdir()
    outside.mkdir()
    sizes = {"data/hdfs/data/blk_1": 123_456, "data/hdfs/data/blk_1.meta": 971, "logs/a.log": 10, "empty": 0}
    for name, size in sizes.items():
        (node / name).write_bytes(os.urandom(size))
    (outside / "big").write_bytes(b"x" * 500_000)
    (node / "runtime").symlink_to(outside, target_is_directory=True)  # the host's shared runtime
    (node / "big-link").symlink_to(outside / "big")
    os.link(node / "logs" / "a.log", node / "logs" / "a.log.1")  # a hard link counts once
    assert tree_bytes(str(node)) == sum(sizes.values())
    assert tree_bytes(str(tmp_path / "missing")) == 0
    spec = MetricsSpec(scope="node", disk_bytes=1 << 30)
    [disk] = NodeMeter(spec, node, lambda: [os.getpid()]).measure().disks
    assert disk.used_bytes == sum(sizes.values()) and disk.total_bytes == 1 << 30
    assert disk.free_bytes == min(shutil.disk_usage(node).free, (1 << 30) - disk.used_bytes)


def test_a_node_directory_that_cannot_be_read_leaves_out_only_the_disk() -> None:
    system, clock = FakeSystem(missing={"/nodes/n-1"}), Clock()
    system.put(10, cpu=1.0, rss=5)
    metrics = meter(system, clock).measure()
    assert metrics.disks == [] and metrics.memory_used_bytes == 5 and system.walks == 0


def test_the_host_measured_for_real(tmp_path: Path) -> None:
    m = NodeMeter(MetricsSpec(scope="host", data_dirs=[str(tmp_path)]), tmp_path, lambda: [])
    m.measure()
    time.sleep(0.3)
    metrics = m.measure()
    assert metrics.cpu_cores_used is not None and 0 <= metrics.cpu_cores_used <= metrics.vcpus + 0.5
    assert metrics.vcpus == psutil.cpu_count() and metrics.memory_total_bytes == psutil.virtual_memory().total
    assert 0 < metrics.memory_used_bytes < metrics.memory_total_bytes and metrics.load1 is not None
    assert metrics.net_rx_bytes_per_second is not None and metrics.net_rx_bytes_per_second >= 0
    [disk] = metrics.disks
    assert disk.total_bytes == shutil.disk_usage(tmp_path).total
    assert "lo" not in PsutilSystem().net_bytes()


def test_measuring_is_cheap() -> None:
    """Every 10 s on every node: well under a few milliseconds of CPU per measurement."""
    m = NodeMeter(MetricsSpec(scope="node"), Path("/nonexistent"), lambda: [os.getpid()])
    m.measure()
    before = time.process_time()
    for _ in range(20):
        m.measure()
    per = (time.process_time() - before) / 20
    assert per < 0.02, f"{per * 1000:.1f} ms of CPU per measurement"


# -- the agent --------------------------------------------------------------------------------------


class FakeClient:
    def __init__(self) -> None:
        self.reports: list[NodeReport] = []

    def report(self, report: NodeReport) -> ReportAck:
        self.reports.append(report)
        return ReportAck(plan_version=0, last_event_seq=0)


def make_agent(tmp_path: Path) -> tuple[agent_module.Agent, FakeClient]:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "agent.token").write_text("t")
    config = tmp_path / "agent.json"
    config.write_text(json.dumps({"node_id": "n-1", "directory": str(tmp_path), "runtime_dir": str(tmp_path / "rt"),
                                  "control_url": "http://127.0.0.1:9", "cluster_id": "c-1"}))
    agent = agent_module.Agent(config)
    client = FakeClient()
    agent.client = client  # type: ignore[assignment]
    return agent, client


def plan_with(metrics: MetricsSpec | None) -> NodePlan:
    return NodePlan(version=1, cluster_id="c-1", node_id="n-1", role="CORE", address="127.0.0.1",
                    runtime=RuntimeSpec(release="r", spark_version="4", java_major=17), metrics=metrics)


def test_the_agent_attaches_its_newest_measurement_without_hurrying_a_report(tmp_path: Path) -> None:
    agent, client = make_agent(tmp_path)
    agent._take_snapshot()
    agent._report_now.clear()
    assert agent.measure() == agent_module.METER_IDLE_SECONDS  # no plan yet: nothing measured
    agent.plan = plan_with(MetricsSpec(scope="node", interval_seconds=10.0, disk_bytes=1 << 30))
    assert agent.measure() == 10.0
    agent._take_snapshot()  # the 0.1 s loop: nothing else changed
    assert not agent._report_now.is_set()  # the heartbeat carries it
    assert agent._send_report()
    sent = client.reports[-1].metrics
    assert sent is not None and sent.scope == "node" and sent.processes and sent.processes >= 1
    assert sent.disks[0].path == str(tmp_path)
    agent.measure()
    assert agent._send_report() and client.reports[-1].metrics.cpu_cores_used is not None  # type: ignore[union-attr]
    agent.plan = plan_with(None)  # monitoring turned off: the next report has none at once
    assert agent._send_report() and client.reports[-1].metrics is None


def test_a_failing_measurement_is_logged_once_and_reports_go_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    agent, client = make_agent(tmp_path)
    agent.plan = plan_with(MetricsSpec(scope="node"))
    agent.measure()
    assert agent._metrics is not None

    def broken(self: NodeMeter) -> None:
        raise OSError("no /proc")

    monkeypatch.setattr(NodeMeter, "measure", broken)
    agent.measure()
    agent.measure()
    assert agent._metrics is None
    assert sum("measuring the node failed" in r.getMessage() for r in caplog.records) == 1
    agent._take_snapshot()
    assert agent._send_report() and client.reports[-1].metrics is None


def test_the_roots_are_the_agent_its_daemons_and_its_steps(tmp_path: Path) -> None:
    agent, _ = make_agent(tmp_path)

    class Proc:
        def __init__(self, pid: int) -> None:
            self.pid = pid

    from corral.agent.protocol import ComponentSpec
    from corral.agent.supervisor import _Component

    agent.supervisor.components = {"a": _Component(ComponentSpec(name="a", service="s", argv=["x"]), process=Proc(501)),  # type: ignore[arg-type]
                                   "b": _Component(ComponentSpec(name="b", service="s", argv=["x"]))}
    agent.steps.procs = {"s-1": Proc(777)}  # type: ignore[dict-item]
    assert agent._meter_roots() == [os.getpid(), 501, 777]
