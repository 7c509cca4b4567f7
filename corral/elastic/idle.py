"""Idle auto-termination's clock (EMR's ``AutoTerminationPolicy.IdleTimeout``).

A cluster is idle when it has no step PENDING or RUNNING, no YARN application running or
waiting other than Corral's own always-on ones (the SQL endpoint's), and no query running
on the SQL endpoint. Idle time starts at the first observation that finds it idle and
restarts whenever anything is seen running. An observation that could not be made (the
ResourceManager not answering) neither starts nor restarts it, and a cluster is ended only
on an observation that found it idle, never on a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_IDLE_TIMEOUT = 60  # seconds, EMR's minimum
MAX_IDLE_TIMEOUT = 7 * 86400  # EMR's maximum
ACTIVE_YARN_STATES = frozenset({"NEW", "NEW_SAVING", "SUBMITTED", "ACCEPTED", "RUNNING"})


@dataclass(frozen=True)
class YarnApp:
    id: str
    state: str  # the RM's YarnApplicationState


@dataclass(frozen=True)
class Activity:
    """One look at the cluster: its steps, the RM's applications, the SQL endpoint's queries."""

    active_steps: tuple[str, ...] = ()  # ids of steps PENDING or RUNNING
    yarn_apps: tuple[YarnApp, ...] = ()
    sql_queries_running: int = 0


def busy_reason(activity: Activity, own_apps: frozenset[str] = frozenset()) -> str | None:
    """Why the cluster is not idle (the first thing found), or None when it is.
    ``own_apps``: ids of Corral's always-on applications, which do not count."""
    if activity.active_steps:
        return f"step {activity.active_steps[0]} is pending or running"
    for app in activity.yarn_apps:
        if app.state in ACTIVE_YARN_STATES and app.id not in own_apps:
            return f"YARN application {app.id} is {app.state}"
    if activity.sql_queries_running:
        return f"{activity.sql_queries_running} SQL quer{'y is' if activity.sql_queries_running == 1 else 'ies are'} running"
    return None


def idle_since(previous: float | None, busy: str | None, observed: bool, now: float) -> float | None:
    """The new start of idle time after an observation at ``now``: None while busy, kept
    when the observation failed (``observed`` False), else the earlier start or ``now``."""
    if not observed:
        return previous
    if busy is not None:
        return None
    return previous if previous is not None else now


def expired(since: float | None, timeout: float, observed: bool, now: float) -> bool:
    """Whether to terminate now: idle for ``timeout`` seconds, seen idle this time."""
    return observed and since is not None and now - since >= timeout
