"""The shell the ssh provider runs on hosts: one function per remote step, each a bash
script (run by ``SshPool.run`` under a remote ``timeout``) with every path and id quoted.

Each script is safe to run twice and after a half-finished earlier run (the control
plane may die at any point and call it again), and prints what the provider parses on
stdout: ``key=value`` lines, or one word. Secrets never appear here: the agent token
travels as a 0600 file (``SshPool.put``) or on stdin.

Process rules, as the local provider's: every process of a node carries
``CORRAL_NODE_ID=<node>`` in its environment (the agent passes it down to daemons, steps
and YARN containers), and ``run/agent.lock`` is held by the node's agent while it lives.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

NODE_MARKER = "CORRAL_NODE_ID"
# The PATH agents start with when the host's SSH session gives none worth keeping (cron
# gives /usr/bin:/bin); the session's own PATH is appended.
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
STATE_CONFLICT = 75  # flock's exit status when the agent holds the lock (-E), apart from errors


def q(value: str) -> str:
    return shlex.quote(value)


def _marker_pids(node_id: str) -> str:
    """Shell that prints the pids whose environment has the node's marker, one per line: a
    single grep over /proc/*/environ (NUL-separated entries, matched whole). A process of
    another user is not readable and not ours; the grep itself carries no marker."""
    return (f"grep -lzxF -- {q(f'{NODE_MARKER}={node_id}')} /proc/[0-9]*/environ 2>/dev/null "
            "| sed -n 's#^/proc/\\([0-9]*\\)/environ$#\\1#p'")


def probe() -> str:
    """The login's home and PATH, whether the tools Corral needs are there (``key=value``)."""
    return ("printf 'home=%s\\n' \"$HOME\"; printf 'path=%s\\n' \"$PATH\"; "
            "printf 'java_home=%s\\n' \"${JAVA_HOME:-}\"; "
            "for t in python3.11 setsid flock crontab ss; do "
            "command -v \"$t\" >/dev/null 2>&1 && printf 'has_%s=1\\n' \"$t\" || printf 'has_%s=0\\n' \"$t\"; done")


def parse_pairs(text: str) -> dict[str, str]:
    pairs = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            pairs[key.strip()] = value
    return pairs


def agent_state(node_dir: str) -> str:
    """Prints RUNNING, STOPPED or MISSING, like ``LocalProvider.query_node``: the agent
    holds ``run/agent.lock``; a non-blocking flock tells whether anyone does (the agent's
    own lock attempt retries for 2 s, so this instant's hold never makes it step aside)."""
    d = q(node_dir)
    return (f"[ -d {d} ] || {{ echo MISSING; exit 0; }}; "
            f"[ -e {d}/run/agent.lock ] || {{ echo STOPPED; exit 0; }}; "
            f"flock -n -E {STATE_CONFLICT} {d}/run/agent.lock true; rc=$?; "
            f"if [ $rc -eq {STATE_CONFLICT} ]; then echo RUNNING; elif [ $rc -eq 0 ]; then echo STOPPED; "
            "else echo \"flock failed with $rc\" >&2; exit $rc; fi")


def env_complete(env_dir: str) -> str:
    return f"[ -f {q(env_dir)}/.corral-complete ] && echo yes || echo no"


def prepare(node_dir: str, subdirs: tuple[str, ...], helper_dir: str) -> str:
    """Create the node's directories (``run`` private: it holds the agent's token) and the
    directory the installer goes to."""
    dirs = " ".join(q(f"{node_dir}/{sub}") for sub in subdirs)
    return f"mkdir -p {dirs} {q(helper_dir)} && chmod 700 {q(node_dir)}/run"


@dataclass(frozen=True)
class AgentLaunch:
    """What the start script needs; ``env`` is the agent's whole environment (``env -i``):
    the markers, HOME/USER/PATH of the login and nothing of the control plane's."""

    node_id: str
    node_dir: str
    python: str
    env: dict[str, str]

    @property
    def script_path(self) -> str:
        return f"{self.node_dir}/run/agent-start.sh"


def start_script(launch: AgentLaunch) -> str:
    """``run/agent-start.sh``: starts the agent detached (``setsid -f``: a new session, so
    it outlives the SSH session and its hang-up; stdin from /dev/null; output appended to
    ``logs/agent.log``). Run over SSH by ``create_node``/``start_node`` and by the node's
    ``@reboot`` crontab line; exits quietly once the node directory is gone (an agent that
    cleaned up by itself)."""
    d = launch.node_dir
    assignments = " ".join(f"{k}={q(v)}" for k, v in sorted(launch.env.items()))
    return (
        "#!/bin/sh\n"
        f"# Starts the Corral agent of node {launch.node_id} (written by the ssh provider; also run at boot by cron).\n"
        f"cd {q(d)} 2>/dev/null || exit 0\n"
        "[ -f agent.json ] || exit 0\n"
        f"exec setsid -f env -i {assignments} {q(launch.python)} -m corral.agent --config {q(d + '/agent.json')} "
        f"</dev/null >>{q(d + '/logs/agent.log')} 2>&1\n"
    )


def cron_line(launch: AgentLaunch, tag: str) -> str:
    return f"@reboot /bin/sh {q(launch.script_path)} {tag}"


def _edit_crontab(lock: str, tag: str, add: str | None) -> str:
    """Rewrite the login's crontab without the node's line (and with ``add``), under a
    flock: concurrent creates on one host must not lose each other's lines. Skipped (with
    ``cron=none``) where the host has no crontab."""
    pattern = q(f" {tag}$")
    append = f"printf '%s\\n' {q(add)};" if add else ""
    return (
        "if command -v crontab >/dev/null 2>&1; then "
        f"mkdir -p \"$(dirname {q(lock)})\"; exec 9>>{q(lock)}; flock -w 30 9 || exit 1; "
        f"{{ crontab -l 2>/dev/null | grep -v -- {pattern}; {append} }} | crontab - || exit 1; "
        "exec 9>&-; echo cron=crontab; else echo cron=none; fi"
    )


def start(launch: AgentLaunch, tag: str, cron_lock: str, wait: float = 15.0) -> str:
    """Install the ``@reboot`` line, start the agent unless one holds the lock, and wait
    until one does; prints ``cron=...``, ``agent=RUNNING|STOPPED`` and ``pid=`` (from
    ``run/agent.pid``, written once the agent holds the lock)."""
    d = q(launch.node_dir)
    rounds = int(wait / 0.2)
    return (
        f"{_edit_crontab(cron_lock, tag, cron_line(launch, tag))}\n"
        f"held() {{ flock -n -E {STATE_CONFLICT} {d}/run/agent.lock true; [ $? -eq {STATE_CONFLICT} ]; }}\n"
        # A pid file without a lock holder is a dead agent's: removed, so that the wait
        # below probes the lock only once the new agent holds it (and cannot disturb it).
        f"held || {{ rm -f {d}/run/agent.pid; /bin/sh {q(launch.script_path)}; }}\n"
        f"i=0; while [ $i -lt {rounds} ]; do [ -s {d}/run/agent.pid ] && held && break; sleep 0.2; i=$((i+1)); done\n"
        f"held && echo agent=RUNNING || echo agent=STOPPED\n"
        f"printf 'pid=%s\\n' \"$(sed -n 's/.*\"pid\": *\\([0-9]*\\).*/\\1/p' {d}/run/agent.pid 2>/dev/null)\"\n"
    )


def leftovers(node_id: str) -> str:
    return _marker_pids(node_id)


def stop(node_dir: str, node_id: str, timeout: float, grace: float = 2.0, rounds: int = 3) -> str:
    """Stop a node as ``LocalProvider.stop_node`` does: SIGTERM its agent (which stops its
    daemons and steps first) and wait up to ``timeout`` s for its lock to be free; then, in
    ``rounds``, SIGTERM whatever still carries the marker, SIGKILL it after ``grace`` s (a
    process that was starting a child when a round began leaves that child to the next).
    The agent's pid is taken from ``run/agent.pid`` only if that process carries the
    node's marker (never a recycled pid). Prints ``remaining=<pids>``."""
    d = q(node_dir)
    marker = q(f"{NODE_MARKER}={node_id}")
    waits = max(1, int(timeout / 0.2))
    return (
        f"pids() {{ {_marker_pids(node_id)}; }}\n"
        f"agent=$(sed -n 's/.*\"pid\": *\\([0-9]*\\).*/\\1/p' {d}/run/agent.pid 2>/dev/null)\n"
        f"if [ -n \"$agent\" ] && grep -qzxF -- {marker} /proc/$agent/environ 2>/dev/null; then\n"
        "  kill -TERM \"$agent\" 2>/dev/null\n"
        f"  i=0; while [ $i -lt {waits} ] && [ -d /proc/$agent ]; do sleep 0.2; i=$((i+1)); done\n"
        "fi\n"
        f"r=0; while [ $r -lt {rounds} ]; do\n"
        "  p=$(pids); [ -z \"$p\" ] && break\n"
        "  kill -TERM $p 2>/dev/null\n"
        f"  i=0; while [ $i -lt {max(1, int(grace / 0.2))} ]; do p=$(pids); [ -z \"$p\" ] && break; sleep 0.2; i=$((i+1)); done\n"
        "  [ -n \"$p\" ] && kill -KILL $p 2>/dev/null && sleep 0.5\n"
        "  r=$((r+1))\n"
        "done\n"
        "printf 'remaining=%s\\n' \"$(pids | tr '\\n' ' ')\"\n"
    )


def listening(node_id: str) -> str:
    """Prints ``<address>:<port> pid=<pid>`` for each TCP/UDP socket a process with the
    node's marker listens on (``ss -p`` shows the login's own processes), nothing when
    none. Run after ``stop``: anything printed is a port the node still holds."""
    return (
        f"p=$({_marker_pids(node_id)} | tr '\\n' ' '); [ -z \"$p\" ] && exit 0\n"
        "command -v ss >/dev/null 2>&1 || { echo \"no ss on the host; processes $p remain\"; exit 0; }\n"
        "for pid in $p; do ss -Hlntup 2>/dev/null | grep -F \"pid=$pid,\" | awk -v pid=$pid '{print $5\" pid=\"pid}'; done\n"
    )


def remove(node_dir: str, orphaned: str, tag: str, cron_lock: str) -> str:
    """Remove the node's directory (and its cluster's, once empty), orphaned logs and
    crontab line; then print what is left (``dir=``, ``cron=``) for the provider to check."""
    d, o = q(node_dir), q(orphaned)
    return (
        f"rm -rf {d} {o}; rmdir \"$(dirname {d})\" \"$(dirname {o})\" 2>/dev/null\n"
        f"( {_edit_crontab(cron_lock, tag, None)} ) >/dev/null || exit 1\n"
        f"[ -e {d} ] && echo dir=left || echo dir=gone\n"
        f"crontab -l 2>/dev/null | grep -q -- {q(f' {tag}$')} && echo cron=left || echo cron=gone\n"
    )
