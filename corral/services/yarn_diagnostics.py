"""What the ResourceManager says about a step's applications, in words: why one waits
(ACCEPTED with the scheduler's diagnostics, or RUNNING with container requests that are
not granted) and a failed one's own error line.

Pure functions over the RM's REST JSON (``/ws/v1/cluster/apps/{id}``: ``state``,
``diagnostics``, ``runningContainers``, ``resourceRequests``; ``/ws/v1/cluster/nodes``:
``availMemoryMB``, ``availableVirtualCores``), so unit tests drive them with the RM's
own documents; ``corral.services.yarn`` fetches those.
"""

from __future__ import annotations

import re
from typing import Any

from corral.services.base import WaitMemo

# Scheduling normally takes a second or two; a wait becomes news after this long. (Spark
# itself warns after 15 s without executors: spark.starvation.timeout.)
WAIT_GRACE_SECONDS = 15.0
_NOT_STARTED = ("NEW", "NEW_SAVING", "SUBMITTED", "ACCEPTED")
# The CapacityScheduler prefixes its diagnostics with the time: "[Tue Dec 01 ...] ".
_STAMP = re.compile(r"^\s*\[[^\]]*\]\s*")
# A Java exception class (package.Class...Exception/Error) or a Python one (ValueError:).
_EXCEPTION = re.compile(
    r"((?:[a-zA-Z_$][\w$]*\.)+[A-Z][\w$]*(?:Exception|Error|Throwable|Failure)\b.*"
    r"|\b[A-Z][A-Za-z]*(?:Error|Exception): .*)")
_FRAME = re.compile(r"^\s*(at\s|\.\.\. \d+ more|File \")")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _size(memory_mb: int, vcores: int) -> str:
    return f"{memory_mb} MB, {_plural(vcores, 'vcore')}"


def largest_free(nodes: list[dict[str, Any]]) -> tuple[int, int] | None:
    """(MB, vcores) free on the RUNNING NodeManager with the most free memory."""
    free = [(int(n.get("availMemoryMB") or 0), int(n.get("availableVirtualCores") or 0))
            for n in nodes if n.get("state") == "RUNNING"]
    return max(free) if free else None


def _free_text(nodes: list[dict[str, Any]]) -> str:
    free = largest_free(nodes)
    return f"largest free on a NodeManager: {_size(*free)}" if free else "no NodeManager is RUNNING"


def pending_asks(app: dict[str, Any]) -> list[tuple[int, int, int]]:
    """(containers, MB, vcores) the application asks for and has not been granted: its
    off-switch (``resourceName`` ``*``) requests, which carry the totals (node- and
    rack-local requests repeat them)."""
    asks: dict[tuple[int, int], int] = {}
    for request in app.get("resourceRequests") or []:
        count = int(request.get("numContainers") or 0)
        if request.get("resourceName") != "*" or count <= 0:
            continue
        capability = request.get("capability") or {}
        size = (int(capability.get("memory") or 0), int(capability.get("vCores") or 0))
        asks[size] = asks.get(size, 0) + count
    return [(count, mb, vcores) for (mb, vcores), count in sorted(asks.items(), reverse=True)]


def scheduler_diagnostic(diagnostics: str) -> str:
    """The scheduler's reason from an ACCEPTED application's diagnostics, without its time
    stamp and with its ``Details :`` (the resources it compared) in parentheses, e.g.
    ``Queue's AM resource limit exceeded (AM Resource Request = <memory:1024, vCores:1>; ...)``."""
    text = " ".join(_STAMP.sub("", diagnostics).split())
    text = text.replace("Application is added to the scheduler and is not yet activated.", "").strip()
    head, _, details = text.partition("Details :")
    head = head.strip().rstrip(".").strip()
    details = "; ".join(part.strip() for part in details.split(";") if part.strip() and "Partition" not in part)
    return f"{head} ({details})" if head and details else head or details


def _accepted_reason(app: dict[str, Any], waited: float, nodes: list[dict[str, Any]]) -> str:
    diagnostic = scheduler_diagnostic(str(app.get("diagnostics") or ""))
    asks = pending_asks(app)
    am = f"its ApplicationMaster ({_size(asks[0][1], asks[0][2])})" if asks else "its ApplicationMaster"
    where = f"{app.get('id')} {app.get('state')} for {waited:.0f} s, {am} not started; {_free_text(nodes)}"
    return f"{diagnostic} [{where}]" if diagnostic else where


def waiting_reason(apps: list[dict[str, Any]], nodes: list[dict[str, Any]], memo: WaitMemo, now: float,
                   grace: float = WAIT_GRACE_SECONDS) -> str | None:
    """``waiting for YARN: ...`` when one of ``apps`` (the RM's app documents) has waited
    longer than ``grace`` seconds: ACCEPTED without its ApplicationMaster, or RUNNING with
    containers requested and not granted. A RUNNING application that was granted a
    container since the last check starts its wait again: it is being served, slowly.
    ``memo`` carries first-seen times between calls; ``now`` is epoch seconds."""
    reasons: list[str] = []
    seen: set[str] = set()
    for app in apps:
        app_id, state = str(app.get("id")), app.get("state")
        if state in _NOT_STARTED:
            key = f"{app_id}:am"
            seen.add(key)
            waited = now - memo.first_seen(key, now)
            if waited >= grace:
                reasons.append(_accepted_reason(app, waited, nodes))
        elif state == "RUNNING":
            running = int(app.get("runningContainers") or 0)
            count_key = f"{app_id}:running"
            if running > memo.counts.get(count_key, running):
                for key in [k for k in memo.since if k.startswith(f"{app_id}:ask:")]:
                    del memo.since[key]
            memo.counts[count_key] = running
            for count, mb, vcores in pending_asks(app):
                key = f"{app_id}:ask:{mb}:{vcores}"
                seen.add(key)
                waited = now - memo.first_seen(key, now)
                if waited >= grace:
                    reasons.append(f"{_plural(count, 'container')} of {_size(mb, vcores)} requested, "
                                   f"not granted for {waited:.0f} s ({_free_text(nodes)})")
    memo.keep_only(seen)
    live = {f"{a.get('id')}:running" for a in apps if a.get("state") == "RUNNING"}
    for key in [k for k in memo.counts if k not in live]:
        del memo.counts[key]
    return "waiting for YARN: " + "; ".join(reasons) if reasons else None


def error_line(text: str, last: bool = False) -> str | None:
    """The line of ``text`` that names an exception (Java ``pkg.SomeException: ...`` or
    Python ``ValueError: ...``), without stack frames, ``Error: `` / ``Caused by: ``
    prefixes or a time stamp: the first one (a diagnostics summary leads with it), or with
    ``last`` the last one (a log's traceback ends with its root cause)."""
    found: list[str] = []
    for raw in text.splitlines():
        line = _STAMP.sub("", raw).strip()
        if not line or _FRAME.match(line):
            continue
        match = _EXCEPTION.search(line)
        if match:
            found.append(match.group(1).strip())
    if not found:
        return None
    return found[-1] if last else found[0]


def app_failure(app: dict[str, Any]) -> str | None:
    """A FAILED application's own error from its RM diagnostics (e.g. a cluster-mode Spark
    driver's ``User class threw exception: java.lang.IllegalStateException: ...``), or the
    diagnostics' first line when they name no exception; None unless it FAILED."""
    if app.get("finalStatus") != "FAILED" and app.get("state") != "FAILED":
        return None
    diagnostics = str(app.get("diagnostics") or "")
    line = error_line(diagnostics)
    if line:
        return line
    first = next((_STAMP.sub("", raw).strip() for raw in diagnostics.splitlines() if raw.strip()), "")
    return first or None
