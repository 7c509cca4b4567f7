"""Node replacement (self-healing, EMR's ``UnhealthyNodeReplacement``): which CORE and TASK
nodes are replaced, and how fast.

A node is due for replacement when its agent has been lost for ``lost_grace`` seconds and
its processes are gone (the provider found none: a node whose daemons still run is only
unreachable and may come back), or when its NodeManager has stayed UNHEALTHY for
``unhealthy_grace`` seconds (a disk above YARN's 90 % threshold, say). A MASTER is never
replaced: it is restarted in place on its kept directory.

Rate limits, so one cause shared by many nodes does not start a storm: at most
``max_in_flight`` replacements at once and ``max_per_hour`` per cluster; and when at least
half of the cluster's CORE and TASK nodes (and at least two) are unhealthy with the same
health report (``cause``: without each node's own paths) at the same time, the cause is taken to be shared (every node of a machine
on one full disk) and nothing is replaced for it: a new node would land on the same disk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

HOUR = 3600.0


@dataclass(frozen=True)
class NodeHealth:
    node_id: str
    role: str  # MASTER, CORE or TASK
    lost_since: float | None = None  # the agent's reports stopped (epoch seconds)
    processes_gone: bool = False  # the provider found none of the node's processes
    unhealthy_since: float | None = None  # the NodeManager became UNHEALTHY
    health_report: str = ""  # the NodeManager's healthReport


@dataclass(frozen=True)
class ReplacementRules:
    lost_grace: float = 120.0
    unhealthy_grace: float = 300.0
    max_in_flight: int = 1
    max_per_hour: int = 4


@dataclass(frozen=True)
class Verdict:
    node_id: str
    replace: bool
    reason: str


def due(node: NodeHealth, rules: ReplacementRules, now: float) -> str | None:
    """Why ``node`` should be replaced now, or None (MASTER nodes: always None)."""
    if node.role == "MASTER":
        return None
    if node.lost_since is not None and node.processes_gone and now - node.lost_since >= rules.lost_grace:
        return f"its agent has been lost for {now - node.lost_since:.0f} s and none of its processes runs"
    if node.unhealthy_since is not None and now - node.unhealthy_since >= rules.unhealthy_grace:
        report = f": {node.health_report}" if node.health_report else ""
        return f"its NodeManager has been UNHEALTHY for {now - node.unhealthy_since:.0f} s{report}"
    return None


def cause(report: str) -> str:
    """A health report without what is each node's own (the paths in brackets, numbers), so
    that the same cause on every node compares equal: ``1/1 local-dirs usable space is below
    configured utilization percentage/no more usable space [ /n/n-1/data/yarn/local : used
    space above threshold of 90.0% ]`` -> ``local-dirs usable space is below configured
    utilization percentage/no more usable space`` (NodeManager's DirectoryCollection)."""
    text = re.sub(r"\[[^\]]*\]", " ", report)
    text = re.sub(r"\b\d+/\d+\s+", "", text)
    return " ".join(text.split()).strip(" ;")


def decide(nodes: Sequence[NodeHealth], rules: ReplacementRules, now: float, in_flight: int,
           started_last_hour: int) -> list[Verdict]:
    """A verdict for every node due for replacement, in order (lost nodes first, then the
    longest unhealthy): replace, or held with the reason. ``in_flight``: replacements of
    this cluster not finished yet; ``started_last_hour``: those begun in the last hour."""
    workers = [n for n in nodes if n.role != "MASTER"]
    unhealthy = [n for n in workers if n.unhealthy_since is not None]
    causes = [cause(n.health_report) for n in unhealthy]
    shared = {c for c in set(causes) if causes.count(c) >= max(2, (len(workers) + 1) // 2)}
    candidates = [(n, reason) for n in workers if (reason := due(n, rules, now)) is not None]
    candidates.sort(key=lambda item: (item[0].lost_since is None,
                                      item[0].lost_since or item[0].unhealthy_since or 0.0))
    verdicts = []
    for node, reason in candidates:
        lost = node.lost_since is not None and node.processes_gone
        if not lost and cause(node.health_report) in shared:
            count = causes.count(cause(node.health_report))
            verdicts.append(Verdict(node.node_id, False, f"held: {count} of {len(workers)} nodes are unhealthy with "
                                    f"the same report, a cause they share ({cause(node.health_report) or 'no report'})"))
        elif in_flight >= rules.max_in_flight or started_last_hour >= rules.max_per_hour:
            limit = ("a replacement is already under way" if in_flight >= rules.max_in_flight
                     else f"{started_last_hour} replacements began in the last hour (at most {rules.max_per_hour})")
            verdicts.append(Verdict(node.node_id, False, f"held: {limit}; due because {reason}"))
        else:
            in_flight, started_last_hour = in_flight + 1, started_last_hour + 1
            verdicts.append(Verdict(node.node_id, True, reason))
    return verdicts
