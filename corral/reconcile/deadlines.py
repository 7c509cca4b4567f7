"""How long each non-terminal state may last before the reconciler forces a way out."""

from __future__ import annotations

import os


def _seconds(name: str, default: float) -> float:
    """Operators (and tests) may shorten or lengthen a deadline, e.g. CORRAL_BOOTSTRAPPING_TIMEOUT=600."""
    return float(os.environ.get(f"CORRAL_{name}_TIMEOUT", default))


STARTING_SECONDS = _seconds("STARTING", 180.0)  # every agent must register
BOOTSTRAPPING_SECONDS = _seconds("BOOTSTRAPPING", 1800.0)  # runtime deploy (pip on a fresh host), bootstrap, daemons
TERMINATING_SECONDS = _seconds("TERMINATING", 120.0)  # then remaining nodes are reported and the cluster ends with errors
AGENT_LOST_SECONDS = _seconds("AGENT_LOST", 20.0)  # no report for this long: the agent is checked, restarted
# A LOST node (its agent silent, its machine unreachable) may come back: a host rebooting,
# a network link flapping. The cluster stays up meanwhile; past this, the node counts as
# failed and the cluster's failure path applies (INSTANCE_FAILURE, TERMINATED_WITH_ERRORS),
# as for a node that is gone. CORRAL_NODE_LOST_TIMEOUT changes it.
NODE_LOST_SECONDS = _seconds("NODE_LOST", 900.0)
# Node replacement (corral.reconcile.replace): a node whose agent is lost and whose
# processes are gone is replaced after NODE_REPLACE_LOST; one its services report unhealthy
# (a NodeManager UNHEALTHY) after NODE_UNHEALTHY, so a passing condition does not cost a node.
NODE_REPLACE_LOST_SECONDS = _seconds("NODE_REPLACE_LOST", 120.0)
NODE_UNHEALTHY_SECONDS = _seconds("NODE_UNHEALTHY", 300.0)
# One agent check of a silent node (``provider.query_node``: the ssh provider's waits 10 s
# for SSH, then up to 20 s for the answer) counts as "its machine does not answer" past this.
NODE_PROBE_SECONDS = _seconds("NODE_PROBE", 35.0)
LOST_RETRY_CAP = 30.0  # a LOST node's machine is asked again at most this far apart
HOST_CHECK_SECONDS = _seconds("HOST_CHECK", 120.0)  # a host check's retries end here: UNREACHABLE or FAILED_CHECK
CANCEL_SWEEP_SECONDS = 60.0  # a cancelled step's YARN applications are still killed this long after
STOP_GRACE_SECONDS = 15.0  # agents get this long to stop their daemons before the provider kills them
LOG_ARCHIVE_GRACE_SECONDS = 50.0  # and this much more when they copy their logs to a LogUri
MAX_PROVIDER_ATTEMPTS = 5
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0


def backoff(attempts: int) -> float:
    return min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempts - 1))


def lost_retry(attempts: int) -> float:
    """Seconds until a LOST node's machine is asked again: 1, 2, 4 ... capped at LOST_RETRY_CAP."""
    return min(LOST_RETRY_CAP, 2.0 ** max(0, attempts - 1))
