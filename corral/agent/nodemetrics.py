"""What the agent measures of its node for its reports (``MetricsSpec`` -> ``NodeMetrics``).

Two scopes (``MetricsSpec.scope``):

- "host" (the ssh provider: the node is its machine): the host's CPU time as cores busy,
  its memory, 1-minute load, network bytes per second over every interface but loopback,
  and each data directory's filesystem.
- "node" (the local provider: many nodes share one machine): only what is the node's own.
  CPU and memory of the process trees of the agent, its daemons and its steps (the roots:
  daemons re-adopted after an agent restart are not the agent's children, so they are
  roots of their own), and the bytes under the node's directory against its instance
  type's disk. The machine's load and network are nobody's in particular: not reported.

Rates are over the interval between two measurements, so the first one has none. This runs
every ``interval_seconds`` (10 s) on every node, so it is kept cheap: one walk of the
process table per measurement (the roots are mostly in the agent's own tree) and a walk of
the node's directory at most every ``DISK_CACHE_SECONDS``.

Standard library and psutil only: the agent runs on hosts without the control plane.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Protocol

import psutil

from corral.agent.protocol import DiskUsage, MetricsSpec, NodeMetrics

log = logging.getLogger("corral.agent.nodemetrics")

DISK_CACHE_SECONDS = 30.0  # walking a node's directory (HDFS blocks, YARN's caches) is the costly part
# psutil's create_time is the boot time (whole seconds in /proc/stat, which moves by one as
# the clock is adjusted) plus the start tick: off by up to a second or so. A pid seen again
# with a create_time this close is the same process (a reused pid within that time is not
# a concern), and a process first seen with a create_time at most this long before the
# previous measurement is still taken as started after it.
CREATE_TIME_SLACK = 1.5

Clock = Callable[[], float]  # epoch seconds


@dataclass(frozen=True)
class ProcSample:
    """One process as read now. CPU times are cumulative seconds since it started."""

    pid: int
    ppid: int
    create_time: float  # epoch seconds
    cpu_seconds: float  # its own user + system time
    reaped_cpu_seconds: float  # user + system time of the children it has waited for
    rss_bytes: int


class System(Protocol):
    """What the meter reads of the machine (``PsutilSystem``; tests pass fakes)."""

    def processes(self, roots: Iterable[int]) -> list[ProcSample]:
        """Every process in the union of the roots' trees (roots included), once each."""

    def is_alive(self, pid: int, create_time: float) -> bool:
        """Whether that process (that pid, started then) still exists."""

    def cpu_busy_seconds(self) -> float:
        """The host's cumulative non-idle CPU seconds over all its cores."""

    def cpu_count(self) -> int: ...

    def memory(self) -> tuple[int, int]:
        """The host's (used, total) memory, bytes."""

    def load1(self) -> float: ...

    def net_bytes(self) -> dict[str, tuple[int, int]]:
        """Cumulative (received, sent) bytes per interface, loopback left out."""

    def disk_usage(self, path: str) -> tuple[int, int, int]:
        """(total, used, free) bytes of the filesystem holding ``path``."""

    def tree_bytes(self, path: str) -> int:
        """The bytes of the files under ``path``."""


def _same(create_time: float, other: float) -> bool:
    """Whether two create_times of one pid are one process (``CREATE_TIME_SLACK``)."""
    return abs(create_time - other) < CREATE_TIME_SLACK


def tree_bytes(path: str) -> int:
    """The apparent size (``du -sb``) of the regular files under ``path``: symlinks are not
    followed (a node's directory links to the host's shared runtime, which is not the
    node's), a file with several hard links counts once, and files that vanish or cannot
    be read during the walk are skipped (daemons write and delete all the time)."""
    total = 0
    linked: set[tuple[int, int]] = set()
    stack = [path]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        st = entry.stat(follow_symlinks=False)
                        if st.st_nlink > 1:
                            key = (st.st_dev, st.st_ino)
                            if key in linked:
                                continue
                            linked.add(key)
                        total += st.st_size
                except OSError:
                    continue
    return total


class PsutilSystem:
    """``System`` on the real machine."""

    def __init__(self) -> None:
        self._loopback: dict[str, bool] = {}

    def processes(self, roots: Iterable[int]) -> list[ProcSample]:
        found: dict[int, psutil.Process] = {}
        for pid in roots:
            # Daemons and steps are mostly the agent's children: a root already found in
            # an earlier root's tree costs no second walk of the process table.
            if pid in found:
                continue
            try:
                root = psutil.Process(pid)
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue  # exited between being listed and being read
            for proc in tree:
                found.setdefault(proc.pid, proc)
        samples = []
        for proc in found.values():
            try:
                with proc.oneshot():  # one read of /proc/<pid>/stat for all of these
                    cpu = proc.cpu_times()
                    samples.append(ProcSample(
                        pid=proc.pid, ppid=proc.ppid(), create_time=proc.create_time(),
                        cpu_seconds=cpu.user + cpu.system,
                        reaped_cpu_seconds=cpu.children_user + cpu.children_system,
                        rss_bytes=proc.memory_info().rss))
            except psutil.Error:
                continue
        return samples

    def is_alive(self, pid: int, create_time: float) -> bool:
        try:
            return _same(psutil.Process(pid).create_time(), create_time)
        except psutil.Error:
            return False

    def cpu_busy_seconds(self) -> float:
        times = psutil.cpu_times()
        # As psutil's own cpu_percent: guest time is already in user and nice on Linux.
        total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
        return total - times.idle - getattr(times, "iowait", 0.0)

    def cpu_count(self) -> int:
        return psutil.cpu_count() or os.cpu_count() or 1

    def memory(self) -> tuple[int, int]:
        vm = psutil.virtual_memory()
        return vm.used, vm.total

    def load1(self) -> float:
        return os.getloadavg()[0]

    def net_bytes(self) -> dict[str, tuple[int, int]]:
        counters = psutil.net_io_counters(pernic=True)
        if any(name not in self._loopback for name in counters):  # an interface came (rare)
            stats = psutil.net_if_stats()
            for name in counters:
                flags = getattr(stats.get(name), "flags", "")
                self._loopback[name] = "loopback" in flags.split(",") or (not flags and name == "lo")
        return {name: (c.bytes_recv, c.bytes_sent) for name, c in counters.items() if not self._loopback[name]}

    def disk_usage(self, path: str) -> tuple[int, int, int]:
        usage = shutil.disk_usage(path)
        return usage.total, usage.used, usage.free

    def tree_bytes(self, path: str) -> int:
        return tree_bytes(path)


@dataclass(frozen=True)
class _Seen:
    create_time: float
    cumulative: float  # own + reaped children's CPU seconds at the last measurement
    parent_counted: bool  # its parent was among the node's processes too


class NodeMeter:
    """Measures one node by ``spec``; ``measure()`` returns a ``NodeMetrics``.

    ``roots`` gives the pids whose process trees are the node ("node" scope): the agent's
    own, each supervised daemon's, each running step's. Not thread-safe: one caller."""

    def __init__(self, spec: MetricsSpec, node_dir: Path, roots: Callable[[], Iterable[int]],
                 clock: Clock = time.time, system: System | None = None) -> None:
        self.spec = spec
        self.node_dir = str(node_dir)
        self.roots = roots
        self.clock = clock
        self.system: System = system if system is not None else PsutilSystem()
        self._last_at: float | None = None
        self._procs: dict[int, _Seen] = {}  # by pid, as of the last measurement
        self._busy: float | None = None
        self._net: dict[str, tuple[int, int]] = {}
        self._disk_used: tuple[float, int] | None = None  # (measured at, bytes)

    def measure(self) -> NodeMetrics:
        now = self.clock()
        metrics = self._measure_node(now) if self.spec.scope == "node" else self._measure_host(now)
        self._last_at = now
        return metrics

    # -- "node": the node's own processes and directory -----------------------------------------

    def _measure_node(self, now: float) -> NodeMetrics:
        samples = self.system.processes(self.roots())
        current = {s.pid: s for s in samples}
        cores = None
        if self._last_at is not None and now > self._last_at:
            cores = self._cpu_seconds(current, self._last_at) / (now - self._last_at)
        self._procs = {s.pid: _Seen(s.create_time, s.cpu_seconds + s.reaped_cpu_seconds, s.ppid in current)
                       for s in samples}
        spec = self.spec
        return NodeMetrics(
            at=now, scope="node", cpu_cores_used=cores,
            vcpus=spec.vcpus or self.system.cpu_count(),
            memory_used_bytes=sum(s.rss_bytes for s in samples),
            memory_total_bytes=spec.memory_bytes or self.system.memory()[1],
            processes=len(samples), disks=self._node_disk(now))

    def _cpu_seconds(self, current: dict[int, ProcSample], since: float) -> float:
        """CPU seconds the node's processes used since the last measurement.

        Each process counts its own time and that of the children it waited for (the
        kernel adds a reaped child's whole time to its parent's): a task that starts and
        ends between two measurements (a YARN container, a hook) is so counted at its
        parent. A process seen last time and reaped since by a parent also seen then was
        already counted up to last time: that part is taken off again."""
        used = 0.0
        for pid, sample in current.items():
            cumulative = sample.cpu_seconds + sample.reaped_cpu_seconds
            seen = self._procs.get(pid)
            if seen is not None and _same(seen.create_time, sample.create_time):
                used += max(0.0, cumulative - seen.cumulative)
            elif sample.create_time > since - CREATE_TIME_SLACK:
                used += cumulative  # started since (maybe on a reused pid): all of it is new
            # else: already running but not counted before (a root adopted since): from now on
            if seen is not None and not _same(seen.create_time, sample.create_time):
                used -= self._reaped_share(pid, seen)  # the old holder of that pid is gone
        for pid, seen in self._procs.items():
            if pid not in current:
                used -= self._reaped_share(pid, seen)
        # Never below 0: a child whose parent did not wait for it (the time went elsewhere).
        return max(0.0, used)

    def _reaped_share(self, pid: int, seen: _Seen) -> float:
        """What a process counted last time and gone from the node now adds again through
        its parent's reaped time: all it had been counted for, if its parent was the node's
        and it is gone indeed (not orphaned out of the tree, still running)."""
        if seen.parent_counted and not self.system.is_alive(pid, seen.create_time):
            return seen.cumulative
        return 0.0

    def _node_disk(self, now: float) -> list[DiskUsage]:
        """The node's directory, or nothing while it cannot be read (not the CPU and memory
        figures' fault)."""
        try:
            fs_total, _, fs_free = self.system.disk_usage(self.node_dir)
        except OSError:
            return []
        if self._disk_used is None or now - self._disk_used[0] >= DISK_CACHE_SECONDS or now < self._disk_used[0]:
            self._disk_used = (now, self.system.tree_bytes(self.node_dir))
        used = self._disk_used[1]
        total = self.spec.disk_bytes or fs_total
        # Nodes share the filesystem: the node's room is what its size leaves, at most what is free.
        return [DiskUsage(path=self.node_dir, used_bytes=used, total_bytes=total,
                          free_bytes=max(0, min(fs_free, total - used)))]

    # -- "host": the whole machine ------------------------------------------------------------------

    def _measure_host(self, now: float) -> NodeMetrics:
        system = self.system
        dt = now - self._last_at if self._last_at is not None else 0.0
        busy = system.cpu_busy_seconds()
        cores = max(0.0, busy - self._busy) / dt if self._busy is not None and dt > 0 else None
        self._busy = busy
        net = system.net_bytes()
        rx = tx = None
        if self._last_at is not None and dt > 0:
            # Per interface: one that appeared has no rate yet, a counter that went back
            # (the interface was recreated) counts from its new start.
            common = [n for n in net if n in self._net]
            rx = sum(max(0, net[n][0] - self._net[n][0]) for n in common) / dt
            tx = sum(max(0, net[n][1] - self._net[n][1]) for n in common) / dt
        self._net = net
        used, total = system.memory()
        disks = []
        for path in self.spec.data_dirs:
            try:
                d_total, d_used, d_free = system.disk_usage(path)
            except OSError:
                continue  # not made yet (no daemon that uses it started)
            disks.append(DiskUsage(path=path, used_bytes=d_used, free_bytes=d_free, total_bytes=d_total))
        return NodeMetrics(
            at=now, scope="host", cpu_cores_used=cores, vcpus=system.cpu_count(),
            memory_used_bytes=used, memory_total_bytes=total, load1=system.load1(),
            net_rx_bytes_per_second=rx, net_tx_bytes_per_second=tx, disks=disks)
