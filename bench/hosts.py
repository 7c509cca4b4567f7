"""Hadoop + Spark on SSH hosts against the local provider (a benchmark, not a timed test):
`make bench` runs it after bench/data.py; it needs root (the host lab, ``tests/hostlab.py``:
3 SSH hosts in network namespaces on a bridge in 198.18.0.0/15).

The same spec (1 MASTER + 2 CORE, the default services: HDFS, YARN, MapReduce, Spark) runs
with ``provider: ssh`` on the lab's hosts, through a control plane in namespaces of its
own with auth on (``tests/hostlab_plane.LabPlane``), and on the local provider through a
loopback control plane of its own (``bench.common.Server``). Each host is registered with
``cores``/``memory`` equal to its group's local instance type (``NODE_GROUPS``: MASTER
local.small, CORE local.medium, from ``corral.domain.catalog.INSTANCE_TYPES``), so the
daemons are sized as on local: a namespace host otherwise sees the whole machine.

1. cold: the first ssh create on fresh hosts (no agent, no runtime cache): create -> WAITING.
2. warm: --creates more ssh creates on the same hosts (agent and runtime cached), median.
3. local: --creates local creates, median; warm and local runs alternate, so noise of the
   machine hits both alike. One cluster runs at any moment (each is terminated, and its
   hosts READY again, before the next create).
4. bytes on the wire per host, cold and the first warm create: the host's veth counters
   from before the create request until WAITING (inter-host traffic of the starting
   daemons included), and the sizes of the host's ``~/.corral-host`` caches after cold.

Floors (issue 11, §5): warm <= 1.3 x local; cold <= warm + 60 s. A missed floor is printed
as MISSED; the exit status is 0 all the same (this is a report). Before the figures, the
event timelines (seconds after each cluster's creation) of cold, the first warm and local
runs and the slowest of each when another, to show where the time goes.
The last line printed is one JSON object with every figure and ``floors``
{name: {"value", "limit", "ok"}}.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import NODE_GROUPS, Api, Server, time_create  # noqa: E402
from corral.cli.paging import list_all  # noqa: E402
from corral.domain.catalog import INSTANCE_TYPES  # noqa: E402
from tests.hostlab import HostLab, LabHost, unavailable_reason  # noqa: E402
from tests.hostlab_plane import LabPlane  # noqa: E402

WARM_VS_LOCAL_LIMIT = 1.3  # warm <= 1.3 x local (issue 11, §5)
COLD_EXTRA_LIMIT_S = 60.0  # cold <= warm + 60 s (issue 11, §5)
HOST_DIRS = ("agent", "cache", "runtime")  # under ~/.corral-host: corral.hosts.layout
LOCAL_SPEC: dict[str, Any] = {"name": "bench-hosts-local", "node_groups": NODE_GROUPS}


@dataclass
class Run:
    """One create -> WAITING: its seconds, cluster id and, on ssh, bytes per host name."""

    kind: str  # cold, warm or local
    seconds: float
    cluster_id: str
    wire: dict[str, dict[str, int]] = field(default_factory=dict)


def lab_layout(lab: HostLab) -> tuple[dict[str, Any], dict[str, dict[str, int]], dict[str, str]]:
    """NODE_GROUPS on the lab: each group takes its count of hosts in order. Returns the ssh
    spec, each host's registration sizes {name: {"cores", "memory"}} (its group's instance
    type's vCPUs and MiB) and each host's role."""
    hosts = iter(lab.hosts)
    groups, sizes, roles = [], {}, {}
    for group in NODE_GROUPS:
        size = INSTANCE_TYPES[group["instance_type"]]
        names = [next(hosts).name for _ in range(group["count"])]
        groups.append({"role": group["role"], "hosts": names})
        for name in names:
            sizes[name] = {"cores": size.vcpus, "memory": size.memory_mib}
            roles[name] = group["role"]
    return {"name": "bench-hosts-ssh", "provider": "ssh", "node_groups": groups}, sizes, roles


def wire_counters(lab: HostLab) -> dict[str, tuple[int, int]]:
    """{host name: (bytes received by the host, bytes sent by it)} so far. ``LabHost.veth`` is
    the bridge's end of the host's veth pair: what it transmits goes to the host, what it
    receives came from the host."""
    def read(host: LabHost, counter: str) -> int:
        return int((Path("/sys/class/net") / host.veth / "statistics" / counter).read_text())

    return {h.name: (read(h, "tx_bytes"), read(h, "rx_bytes")) for h in lab.hosts}


def ssh_create(api: Api, lab: HostLab, spec: dict[str, Any], kind: str) -> Run:
    before = wire_counters(lab)
    seconds, cid = time_create(api, spec)
    after = wire_counters(lab)
    wire = {name: {"received_by_host": after[name][0] - before[name][0], "sent_by_host": after[name][1] - before[name][1]}
            for name in before}
    return Run(kind, seconds, cid, wire)


def ssh_terminate(api: Api, plane: LabPlane, lab: HostLab, cid: str) -> None:
    """Terminate and wait until every host is READY again (released by its node)."""
    api.terminate(cid)
    for host in lab.hosts:
        plane.wait(lambda: plane.http.get(f"/hosts/{host.name}").json()["status"] == "READY", 120,
                   f"{host.name} READY after terminate")


def cache_sizes(lab: HostLab) -> dict[str, dict[str, int]]:
    """{host name: {dir: bytes}} of ``~/.corral-host/<dir>`` for HOST_DIRS (du -sb on the host)."""
    sizes = {}
    for host in lab.hosts:
        paths = " ".join(f"/root/.corral-host/{d}" for d in HOST_DIRS)
        out = host.run(f"du -sb {paths}", check=True).stdout
        sizes[host.name] = {Path(path).name: int(n) for n, path in (line.split("\t", 1) for line in out.splitlines())}
    return sizes


def timeline(api: Api, cid: str) -> list[dict[str, Any]]:
    """The cluster's events as {"t": seconds after its creation, "where", "code", "message"};
    ``where`` is the node's host (ssh) or role and address (local), else "cluster"."""
    cluster = api.http.get(f"/clusters/{cid}").json()
    start = datetime.fromisoformat(cluster["timeline"]["created_at"])
    where = {n["id"]: n.get("host") or f"{n['role']}@{n['address']}" for n in cluster["nodes"]}
    return [{"t": round((datetime.fromisoformat(e["time"]) - start).total_seconds(), 2),
             "where": where.get(e["node_id"], "cluster"), "code": e["code"], "message": e["message"]}
            for e in list_all(api.http, f"/clusters/{cid}/events")]


def node_sizes(api: Api, cid: str) -> list[dict[str, Any]]:
    nodes = api.http.get(f"/clusters/{cid}").json()["nodes"]
    return sorted(({"role": n["role"], "vcpus": n["vcpus"], "memory_mib": n["memory_mib"]} for n in nodes),
                  key=lambda n: (n["role"] != "MASTER", n["vcpus"]))


def floor(value: float, limit: float) -> dict[str, Any]:
    return {"value": round(value, 2), "limit": round(limit, 2), "ok": value <= limit}


def mb(n: int) -> str:
    return f"{n / 1e6:9.1f}"


def report(result: dict[str, Any], roles: dict[str, str], timelines: dict[str, list[dict[str, Any]]]) -> None:
    print("\n== where the time goes: events, seconds after each cluster's creation ==")
    for kind, events in timelines.items():
        print(f"-- {kind} --")
        for e in events:
            print(f"  {e['t']:7.2f}  {e['where']:<22} {e['code']:<22} {e['message'][:110]}")
    print("\n== create -> WAITING, 1 MASTER + 2 CORE, HDFS + YARN + MapReduce + Spark ==")
    print(f"  cold  (ssh, fresh hosts)   {result['cold_s']:7.2f} s")
    print(f"  warm  (ssh) median         {result['warm_s_median']:7.2f} s   runs {result['warm_s_runs']}")
    print(f"  local median               {result['local_s_median']:7.2f} s   runs {result['local_s_runs']}")
    print(f"  warm / local               {result['warm_vs_local_ratio']:7.2f}")
    print(f"  cold - warm                {result['cold_minus_warm_s']:7.2f} s")
    print("\n== bytes on the wire per host (MB), create request -> WAITING; caches after cold (MB) ==")
    print(f"  {'host':<16}{'cold recv':>10}{'cold sent':>10}{'warm recv':>10}{'warm sent':>10}"
          + "".join(f"{d:>10}" for d in HOST_DIRS))
    for name, role in roles.items():
        cold, warm, cache = result["bytes_cold"][name], result["bytes_warm"][name], result["host_cache_bytes"][name]
        print(f"  {name + ' ' + role:<16}{mb(cold['received_by_host'])} {mb(cold['sent_by_host'])} "
              f"{mb(warm['received_by_host'])} {mb(warm['sent_by_host'])}" + "".join(f" {mb(cache[d])}" for d in HOST_DIRS))
    print("\n== floors ==")
    for name, f in result["floors"].items():
        print(f"  {name:<24} {f['value']:8.2f} <= {f['limit']:8.2f}   {'ok' if f['ok'] else 'MISSED'}")


def _terminated(signum: int, _frame: Any) -> NoReturn:
    raise SystemExit(128 + signum)  # unwinds the with-blocks: clusters, planes and lab are cleaned up


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--creates", type=int, default=3, help="warm and local creates each (median)")
    args = parser.parse_args()
    reason = unavailable_reason()
    if reason is not None:
        print(f"bench/hosts.py skipped: {reason}")
        print(json.dumps({"skipped": reason}))
        return 0
    signal.signal(signal.SIGTERM, _terminated)
    with tempfile.TemporaryDirectory(prefix="corral-bench-hosts-") as tmp, contextlib.ExitStack() as stack:
        # unwound last to first: local clusters and plane, ssh clusters, the lab plane, the lab
        lab = stack.enter_context(HostLab(sum(g["count"] for g in NODE_GROUPS)))
        ssh_spec, sizes, roles = lab_layout(lab)
        (Path(tmp) / "ssh").mkdir()
        plane = LabPlane(lab, Path(tmp) / "ssh")
        stack.callback(plane.stop)
        ssh = stack.enter_context(Api(plane.http))
        local = stack.enter_context(Server(Path(tmp) / "local", subnet="127.93.0.0/16"))
        not_ready = {n: h["status_reason"] for n, h in plane.add_hosts(lab.hosts, sizes).items() if h["status"] != "READY"}
        if not_ready:
            raise RuntimeError(f"lab hosts not READY: {not_ready}")

        cold = ssh_create(ssh, lab, ssh_spec, "cold")
        print(f"cold ssh create -> WAITING: {cold.seconds:.2f} s", flush=True)
        caches = cache_sizes(lab)
        timelines = {"cold (ssh)": timeline(ssh, cold.cluster_id)}
        sized = {"ssh": node_sizes(ssh, cold.cluster_id)}
        ssh_terminate(ssh, plane, lab, cold.cluster_id)
        warm: list[Run] = []
        locals_: list[Run] = []
        for i in range(args.creates):
            warm.append(ssh_create(ssh, lab, ssh_spec, "warm"))
            print(f"warm ssh create {i + 1} -> WAITING: {warm[-1].seconds:.2f} s", flush=True)
            if i == 0:
                timelines["first warm (ssh)"] = timeline(ssh, warm[-1].cluster_id)
            ssh_terminate(ssh, plane, lab, warm[-1].cluster_id)
            seconds, cid = time_create(local, LOCAL_SPEC)
            locals_.append(Run("local", seconds, cid))
            print(f"local create {i + 1} -> WAITING: {seconds:.2f} s", flush=True)
            if i == 0:
                timelines["first local"] = timeline(local, cid)
                sized["local"] = node_sizes(local, cid)
            local.terminate(cid)
        for kind, api, runs in (("warm (ssh)", ssh, warm), ("local", local, locals_)):
            slowest = max(range(len(runs)), key=lambda i: runs[i].seconds)
            if slowest:  # the first is there already; an outlier's own timeline says what held it up
                timelines[f"slowest {kind}, run {slowest + 1}"] = timeline(api, runs[slowest].cluster_id)

    warm_s = statistics.median(r.seconds for r in warm)
    local_s = statistics.median(r.seconds for r in locals_)
    result: dict[str, Any] = {
        "cold_s": round(cold.seconds, 2),
        "warm_s_median": round(warm_s, 2),
        "warm_s_runs": [round(r.seconds, 2) for r in warm],
        "local_s_median": round(local_s, 2),
        "local_s_runs": [round(r.seconds, 2) for r in locals_],
        "warm_vs_local_ratio": round(warm_s / local_s, 3),
        "cold_minus_warm_s": round(cold.seconds - warm_s, 2),
        "bytes_cold": cold.wire,
        "bytes_warm": warm[0].wire,
        "bytes_warm_runs": [r.wire for r in warm],
        "host_cache_bytes": caches,
        "host_registered_sizes": sizes,
        "node_sizes": sized,
        "floors": {"warm_le_1.3x_local": floor(warm_s, WARM_VS_LOCAL_LIMIT * local_s),
                   "cold_le_warm_plus_60s": floor(cold.seconds, warm_s + COLD_EXTRA_LIMIT_S)},
        "creates": args.creates,
        "cpus": os.cpu_count(),
    }
    report(result, roles, timelines)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
