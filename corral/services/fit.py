"""A model of what a scheduler can place, used to size containers and to refuse specs
(and steps) that could never run.

YARN (CapacityScheduler with the DefaultResourceCalculator, memory only, as Corral
configures it), following Hadoop 3.5's own rules:

- A request is normalized up to a multiple of ``yarn.scheduler.minimum-allocation-mb``
  (``DefaultResourceCalculator.normalize``); one above
  ``yarn.scheduler.maximum-allocation-mb`` is rejected (``SchedulerUtils.validateResourceRequest``,
  and Spark's ``Client.verifyClusterResources`` fails the submit).
- ApplicationMasters of a queue may together use at most
  ``maximum-am-resource-percent`` of its resources, normalized up
  (``LeafQueue.calculateAndGetAMResourceLimitPerPartition``); an application whose AM would
  exceed it stays ACCEPTED ("Queue's AM resource limit exceeded") — except the first AM of an
  empty queue, which is always activated (``LeafQueue.activateApplications``).
- A container runs on one NodeManager with that much memory free. Where AMs land is the
  scheduler's choice, so a guarantee must hold for every placement of the AMs.

Standalone Spark: an executor needs one Worker with its memory and cores free
(``Master.startExecutorsOnWorkers``); otherwise the driver logs "Initial job has not
accepted any resources" for ever.

Everything here is pure (numbers in, a reason or None out) and unit-tested against those
rules; ``corral.services.sizing`` feeds it a cluster's effective configuration.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Yarn:
    """The scheduler side: each NodeManager's memory (MiB) and the allocation settings."""

    nodemanagers: tuple[int, ...]
    min_allocation_mib: int
    max_allocation_mib: int
    am_percent: float  # yarn.scheduler.capacity.maximum-am-resource-percent (root.default at 100 %)

    def normalize(self, mib: int) -> int:
        """A request as the scheduler grants it (``DefaultResourceCalculator.normalize``)."""
        step = max(1, self.min_allocation_mib)
        return max(step, math.ceil(max(mib, self.min_allocation_mib) / step) * step)

    @property
    def total_mib(self) -> int:
        return sum(self.nodemanagers)

    @property
    def am_limit_mib(self) -> int:
        """The queue's AM limit: total × percent, normalized up (``multiplyAndNormalizeUp``)."""
        step = max(1, self.min_allocation_mib)
        return max(step, math.ceil(self.total_mib * self.am_percent / step) * step)


@dataclass(frozen=True)
class YarnApp:
    """What an application needs before it makes progress: its AM, then at least one of
    each kind of worker container (an executor; a map and later a reduce), all MiB as
    requested (before normalization). ``containers`` may be empty (an uber job)."""

    name: str
    am_mib: int
    containers: tuple[tuple[str, int], ...] = ()  # (what, MiB), e.g. ("executor", 1792)


def _placements(yarn: Yarn, ams: list[int]) -> list[list[int]]:
    """Every way the AM containers (normalized MiB) can land on NodeManagers, as the free
    memory left on each node; placements that do not fit are not possible. NodeManagers of
    the same size are interchangeable, so at most len(ams) of each size are considered
    (the others stay empty, which the caller adds back)."""
    sizes = sorted(set(yarn.nodemanagers))
    considered: list[int] = []
    for size in sizes:
        considered += [size] * min(yarn.nodemanagers.count(size), len(ams))
    results: list[list[int]] = []
    for choice in itertools.product(range(len(considered)), repeat=len(ams)):
        free = list(considered)
        ok = True
        for node, am in zip(choice, ams):
            free[node] -= am
            if free[node] < 0:
                ok = False
                break
        if ok:
            untouched = [s for s in sizes for _ in range(yarn.nodemanagers.count(s) - min(yarn.nodemanagers.count(s), len(ams)))]
            results.append(free + untouched)
    return results


def yarn_unschedulable(yarn: Yarn, app: YarnApp, always_on: tuple[YarnApp, ...] = ()) -> str | None:
    """Why ``app`` may never make progress while the ``always_on`` applications hold their
    AMs (their worker containers come and go), or None when YARN will always run it.

    The reason is one sentence naming the container and the setting at fault.
    """
    if not yarn.nodemanagers:
        return "the cluster has no NodeManager"
    for what, mib in (("ApplicationMaster", app.am_mib), *app.containers):
        if yarn.normalize(mib) > yarn.max_allocation_mib:
            return (f"its {what} ({mib} MiB) is larger than yarn.scheduler.maximum-allocation-mb "
                    f"({yarn.max_allocation_mib} MiB), so YARN refuses it")
    others = [yarn.normalize(a.am_mib) for a in always_on]
    mine = yarn.normalize(app.am_mib)
    if others and sum(others) + mine > yarn.am_limit_mib:
        held = " + ".join(f"{a.name} {yarn.normalize(a.am_mib)}" for a in always_on)
        return (f"its ApplicationMaster ({mine} MiB) does not fit the queue's AM limit ({yarn.am_limit_mib} MiB = "
                f"{yarn.am_percent:g} x {yarn.total_mib} MiB, yarn.scheduler.capacity.maximum-am-resource-percent) "
                f"beside {held} MiB: it would stay ACCEPTED (Queue's AM resource limit exceeded)")
    placements = _placements(yarn, [*others, mine])
    if not placements:
        beside = " and ".join(f"{a.name}'s ApplicationMaster" for a in always_on)
        return f"its ApplicationMaster ({mine} MiB) does not fit on any NodeManager" + (f" beside {beside}" if beside else "")
    for what, mib in app.containers:
        need = yarn.normalize(mib)
        for free in placements:
            if max(free) < need:
                ams = " and ".join([f"{a.name}'s ApplicationMaster" for a in always_on] + ["its own"])
                placed = f"{ams} are" if always_on else "its own ApplicationMaster is"
                return (f"its {what} ({need} MiB) fits on no NodeManager once {placed} placed where YARN may put "
                        f"{'them' if always_on else 'it'} (NodeManagers of {', '.join(str(n) for n in sorted(set(yarn.nodemanagers)))} MiB, "
                        f"at most {max(free)} MiB left free on one)")
    return None


@dataclass(frozen=True)
class Worker:
    memory_mib: int
    cores: int


def standalone_unschedulable(workers: tuple[Worker, ...], executor_mib: int, executor_cores: int) -> str | None:
    """Why a standalone application's executor can be placed on no Worker, or None."""
    if not workers:
        return "the cluster has no Spark Worker"
    if any(w.memory_mib >= executor_mib and w.cores >= executor_cores for w in workers):
        return None
    largest = max(workers, key=lambda w: (w.memory_mib, w.cores))
    return (f"an executor of {executor_mib} MiB and {executor_cores} cores fits on no Spark Worker (largest: "
            f"{largest.memory_mib} MiB, {largest.cores} cores): its driver would wait for ever "
            "('Initial job has not accepted any resources')")
