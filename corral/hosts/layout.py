"""Where Corral keeps its files on a host reached over SSH (the ssh provider, the host
check, the runtime cache). Shared by the control plane, which writes paths into commands,
and nothing else: the agent on a host reads its own paths from its ``agent.json``.

Everything is under one base directory in the login user's home, so a host needs no
root and ``terminate`` / ``host remove`` know exactly what is Corral's::

    ~/.corral-host/
        agent/<bundle>/         virtual environment of the agent (Corral + pinned deps),
                                one per agent bundle digest, built offline from wheels
                                by the installer beside them (corral.hosts.agent_install)
        cache/wheels/<sha256>/<wheel>
                                wheels fetched from the control plane's repository (by their
                                file names, which pip needs; sha256-checked)
        runtime/                the release runtime cache (CORRAL_RUNTIME_CACHE for agents):
                                pyspark, the Hadoop jars, JDBC drivers, S3A; kept across clusters
        nodes/<cluster>/<node>/ node directories (conf, data, logs, run, steps, artifacts, tmp);
                                removed when the node is terminated
        orphaned-logs/<cluster>/<node>/
                                the logs of a node whose agent cleaned up by itself (its
                                cluster ended while the host was unreachable), until the
                                control plane copies them back
        locks/                  flock files: the agent install, the crontab edit
"""

from __future__ import annotations

BASE = ".corral-host"  # relative to the login user's home on the host


def base(home: str) -> str:
    return f"{home.rstrip('/')}/{BASE}"


def agent_env(home: str, bundle_digest: str) -> str:
    return f"{base(home)}/agent/{bundle_digest[:16]}"


def wheel_cache(home: str) -> str:
    return f"{base(home)}/cache/wheels"


def runtime_cache(home: str) -> str:
    return f"{base(home)}/runtime"


def nodes_root(home: str) -> str:
    return f"{base(home)}/nodes"


def node_dir(home: str, cluster_id: str, node_id: str) -> str:
    return f"{nodes_root(home)}/{cluster_id}/{node_id}"


def orphaned_logs(home: str, cluster_id: str, node_id: str) -> str:
    return f"{base(home)}/orphaned-logs/{cluster_id}/{node_id}"


def install_lock(home: str) -> str:
    """Held while wheels are fetched and an agent environment is built (one at a time per host)."""
    return f"{base(home)}/locks/agent-install.lock"


def crontab_lock(home: str) -> str:
    """Held while the login user's crontab is rewritten (read, filter, write back)."""
    return f"{base(home)}/locks/crontab.lock"


def cron_tag(node_id: str) -> str:
    """The comment that ends a node's ``@reboot`` crontab line: how it is found and removed."""
    return f"# corral-node {node_id}"
