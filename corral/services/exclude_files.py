"""The exclude files through which a shrink decommissions nodes gracefully.

- YARN (``yarn.resourcemanager.nodes.exclude-path``): the XML form, the only one with a
  per-node timeout (Hadoop's "Graceful Decommission of YARN Nodes"); Hadoop's
  ``HostsFileReader`` reads a file as XML only when its name ends in ``.xml``. ``yarn rmadmin
  -refreshNodes -g -server`` then has the RM drain each node for its timeout. The RM
  forgets a timeout when it restarts (YARN-5464), so Corral keeps each node's deadline in
  its store and writes the *remaining* seconds at every refresh; a restarted RM reading
  the file again resumes with what is left, never a fresh hour.
- HDFS (``dfs.hosts.exclude``): one DataNode address per line; ``hdfs dfsadmin
  -refreshNodes`` starts re-replicating the node's blocks, and the NameNode lists it
  DECOMMISSIONED once no block depends on it.

Names are what the daemons call the nodes: the NodeManager's host name (the RM's NodeId
host) and the DataNode's address.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence
from xml.sax.saxutils import escape


def yarn_exclude_xml(deadlines: Mapping[str, float | None], now: float) -> str:
    """The RM's exclude file for nodes host name -> decommission deadline (epoch seconds;
    None: no limit, written as -1). A deadline already past is written as 0: the RM
    decommissions the node at once."""
    lines = ['<?xml version="1.0"?>', "<hosts>"]
    for name in sorted(deadlines):
        deadline = deadlines[name]
        timeout = -1 if deadline is None else max(0, math.ceil(deadline - now))
        lines.append(f"  <host><name>{escape(name)}</name><timeout>{timeout}</timeout></host>")
    lines.append("</hosts>")
    return "\n".join(lines) + "\n"


def hdfs_exclude(addresses: Sequence[str]) -> str:
    """The NameNode's exclude file: one DataNode address per line (empty: none excluded)."""
    return "".join(f"{a}\n" for a in sorted(set(addresses)))
