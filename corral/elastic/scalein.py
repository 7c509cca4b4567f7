"""Which nodes leave on a scale-in, and whether a CORE shrink is safe.

Choice (EMR's and Dataproc's practice): the nodes a user names, else those hosting no
ApplicationMaster first (a leaving AM restarts its whole application), then the fewest
running containers (least work to drain), then the newest (the least local data and
cache), then by id so the choice is stable.

Safety of a CORE shrink (HDFS): the CORE nodes left must be at least ``dfs.replication``
(else every block stays under-replicated: the NameNode never finishes the decommission),
and must hold the data: the DFS bytes used (every replica) must fit in the capacity left
at no more than ``MAX_FILL`` of it. A user's request that fails either is refused; a
policy's is clamped to the largest safe shrink, with the reason (EMR's partial shrink).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

# The data left must fill at most this share of the remaining DataNodes' capacity: below
# the NodeManager's disk health threshold on the same disks (90 %,
# yarn.nodemanager.disk-health-checker.max-disk-utilization-per-disk-percentage), with room
# for the jobs' own output.
MAX_FILL = 0.8


@dataclass(frozen=True)
class Candidate:
    node_id: str
    app_masters: int = 0
    running_containers: int = 0
    launched_at: float = 0.0  # epoch seconds


def choose_leaving(candidates: Sequence[Candidate], count: int, named: Sequence[str] = ()) -> list[str]:
    """The ids of ``count`` nodes to decommission. ``named``: the user's choice, all of
    them members of ``candidates``, exactly ``count`` of them. Raises ValueError saying
    which name is not a node of the group, or that the numbers differ."""
    if count < 0 or count > len(candidates):
        raise ValueError(f"cannot remove {count} of {len(candidates)} nodes")
    if named:
        members = {c.node_id for c in candidates}
        strangers = [n for n in named if n not in members]
        if strangers:
            raise ValueError(f"not a running node of the group: {', '.join(strangers)}")
        if len(set(named)) != count:
            raise ValueError(f"{len(set(named))} nodes named for a shrink by {count}")
        return list(dict.fromkeys(named))
    ranked = sorted(candidates, key=lambda c: (c.app_masters > 0, c.running_containers, -c.launched_at, c.node_id))
    return [c.node_id for c in ranked[:count]]


@dataclass(frozen=True)
class HdfsState:
    replication: int  # dfs.replication
    used_bytes: int  # DFS used, every replica (the NameNode's CapacityUsed)
    capacities: Sequence[int]  # bytes, each CORE node's DataNode capacity: kept nodes first, leavers last


def shrink_problem(core_after: int, hdfs: HdfsState) -> str | None:
    """Why CORE cannot go down to ``core_after`` nodes, or None when it can. The nodes kept
    are the first ``core_after`` of ``hdfs.capacities`` (the leavers are last)."""
    if core_after < hdfs.replication:
        return (f"CORE would have {core_after} node{'s' if core_after != 1 else ''}, fewer than dfs.replication "
                f"{hdfs.replication}: blocks could never be fully replicated")
    capacity = sum(hdfs.capacities[:core_after])
    if hdfs.used_bytes > MAX_FILL * capacity:
        return (f"the {core_after} CORE nodes left would hold {hdfs.used_bytes} bytes of HDFS data in "
                f"{capacity} bytes of capacity, more than {MAX_FILL:.0%} of it")
    return None


def safe_count(current: int, wanted: int, hdfs: HdfsState) -> tuple[int, str | None]:
    """For a policy: the smallest CORE count from ``wanted`` up to ``current`` that is safe,
    and the reason when it is not ``wanted`` (EMR's partial shrink)."""
    first = shrink_problem(wanted, hdfs)
    if first is None:
        return wanted, None
    for count in range(wanted + 1, current):
        if shrink_problem(count, hdfs) is None:
            return count, f"clamped to {count}: {first}"
    return current, f"no shrink: {first}"
