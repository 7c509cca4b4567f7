"""How long each non-terminal state may last before the reconciler forces a way out."""

from __future__ import annotations

STARTING_SECONDS = 180.0  # every agent must register (includes a cold runtime cache check)
BOOTSTRAPPING_SECONDS = 1800.0  # runtime deploy (a pip install on a fresh host), bootstrap actions, daemons
TERMINATING_SECONDS = 120.0  # beyond it, remaining nodes are force-terminated and the cluster ends with errors
AGENT_LOST_SECONDS = 20.0  # no report for this long: the agent is checked and restarted
STOP_GRACE_SECONDS = 15.0  # agents get this long to stop their daemons before the provider kills them
MAX_PROVIDER_ATTEMPTS = 5
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0


def backoff(attempts: int) -> float:
    return min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempts - 1))
