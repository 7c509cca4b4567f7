"""The reconciler's pass over registered hosts: host checks and liveness, over SSH, in a
bounded pool of their own (``corral.reconcile.workers.KeyedPool``: hosts are checked in
parallel; a slow or silent host holds one worker, never the cluster passes or the other
hosts).

Which host gets what (each host has at most one job in flight):

- CHECKING: the full check (``corral.hosts.check``). Before anything is sent, a host
  whose key is not pinned yet (it did not answer at add) has it scanned and pinned, or
  compared with the fingerprint the user gave. The outcome: READY (or DRAINED, a drained
  host's target), FAILED_CHECK (the failing items in ``status_reason``; also a key the
  host refuses), HOST_KEY_CHANGED. A transient failure (no SSH answer, the probe killed
  by its timeout) is retried with backoff until ``HOST_CHECK_SECONDS`` after the host
  became CHECKING, then the host ends UNREACHABLE or FAILED_CHECK with the reason. The
  state is in the row: a control plane killed mid-check checks the host again on restart
  (one attempt even past the deadline).
- ALLOCATED / DRAINING with ``checked_at`` cleared (``host check`` on it): the probe only
  records facts and items, without the ports (its node's daemons hold them); the status
  and the allocation are the ssh provider's and stay, except a changed host key.
- READY, every ``LIVENESS_SECONDS`` (since ``last_seen_at``): ``true`` over SSH. No
  answer -> UNREACHABLE; a refused key -> CHECKING (the check says what is wrong).
- UNREACHABLE, every ``LIVENESS_SECONDS``: when SSH answers again -> CHECKING, and the
  full check decides whether it is READY again.

Writes are conditional on the status read (``corral.control.hosts.transition``): a host
removed, drained or reserved while its check ran is never overwritten. Retry state is in
memory (a restart retries at once). Times are epoch seconds of the injectable clock.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import and_, or_, select, update

from corral.control.context import ControlPlane
from corral.control.hosts import ALLOCATED_STATES, mark_host_key_changed, target_of, transition
from corral.domain.states import HostState
from corral.hosts.check import CheckItem, ProbeFailed, evaluate, failing, run_probe
from corral.providers.ssh_transport import (AuthenticationFailed, CommandTimedOut, HostKeyChanged, HostUnreachable,
                                            SshError)
from corral.reconcile.deadlines import HOST_CHECK_SECONDS, backoff
from corral.reconcile.workers import KeyedPool
from corral.store.models import Host

log = logging.getLogger("corral.reconcile.hosts")
LIVENESS_SECONDS = 60.0
WORKERS = 8  # checks mostly wait on the network; the machine may have 2 cores


@dataclass
class _Job:
    host_id: str
    kind: str  # "check", "recheck" (allocated: facts only) or "liveness"


class HostReconciler:
    """``tick()`` from the reconcile loop submits due hosts; ``stop()`` at shutdown."""

    def __init__(self, cp: ControlPlane, clock: Callable[[], float] = time.time, workers: int = WORKERS):
        self.cp = cp
        self.clock = clock
        self._jobs = KeyedPool(workers, "host-check")  # at most one job per host in flight
        self._attempts: dict[str, int] = {}
        self._next_at: dict[str, float] = {}  # host id -> not before (backoff, liveness interval)

    def stop(self) -> None:
        self._jobs.stop()

    # -- scheduling ---------------------------------------------------------------------------

    def due(self, now: float) -> list[_Job]:
        """Hosts with work now, by the rules of the module docstring."""
        stale = now - LIVENESS_SECONDS
        with self.cp.store.session() as s:
            rows = s.execute(select(Host.id, Host.status).where(or_(
                Host.status == HostState.CHECKING.value,
                and_(Host.status.in_(ALLOCATED_STATES), Host.checked_at.is_(None)),
                and_(Host.status == HostState.READY.value, or_(Host.last_seen_at.is_(None), Host.last_seen_at <= stale)),
                Host.status == HostState.UNREACHABLE.value))).all()
        jobs = []
        for host_id, status in rows:
            if self._next_at.get(host_id, 0.0) > now:
                continue
            kind = {"CHECKING": "check", "READY": "liveness", "UNREACHABLE": "liveness"}.get(status, "recheck")
            jobs.append(_Job(host_id, kind))
        return jobs

    def tick(self) -> None:
        for job in self.due(self.clock()):
            self._jobs.submit(job.host_id, functools.partial(self._run, job))  # None: that host's is in flight

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Until no job is in flight (tests)."""
        self._jobs.wait_idle(timeout)

    def _run(self, job: _Job) -> None:
        try:
            if job.kind == "liveness":
                self.liveness(job.host_id)
            else:
                self.check(job.host_id)
        except Exception:  # noqa: BLE001 - a database hiccup: the host is due again after a backoff
            log.exception("host job %s for %s failed", job.kind, job.host_id)
            self._retry_later(job.host_id)

    def _retry_later(self, host_id: str) -> None:
        attempts = self._attempts.get(host_id, 0) + 1
        self._attempts[host_id] = attempts
        self._next_at[host_id] = self.clock() + backoff(attempts)

    def _done(self, host_id: str, next_in: float = 0.0) -> None:
        self._attempts.pop(host_id, None)
        if next_in:
            self._next_at[host_id] = self.clock() + next_in
        else:
            self._next_at.pop(host_id, None)

    def _load(self, host_id: str) -> Host | None:
        with self.cp.store.session() as s:
            return s.get(Host, host_id)

    # -- the full check -------------------------------------------------------------------------

    def check(self, host_id: str) -> None:
        """One attempt at the host's check (CHECKING), or a re-check of an allocated host."""
        host = self._load(host_id)
        if host is None:
            return
        state = HostState(host.status)
        allocated = host.status in ALLOCATED_STATES
        if not (state is HostState.CHECKING or (allocated and host.checked_at is None)):
            return
        if not host.host_key and not self._pin(host):
            return
        target = target_of(host)
        if not allocated:
            self.cp.ssh.forget(target)  # a fresh connection: the pinned key is verified now
        try:
            facts, now = run_probe(self.cp.ssh, target, self.cp.settings.advertise_url, self.clock)
        except HostKeyChanged as exc:
            with self.cp.store.session() as s:
                mark_host_key_changed(s, host, exc, self.clock())
                s.execute(update(Host).where(Host.id == host.id).values(checked_at=self.clock()))
            return self._done(host_id)
        except AuthenticationFailed as exc:
            item = CheckItem("ssh", False, "error", "key refused", "a key the host accepts",
                             f"add the public key to ~{host.user}/.ssh/authorized_keys", f"ssh: {exc}")
            return self._finish(host, {**(host.facts or {})}, [item], failed_state=HostState.FAILED_CHECK)
        except HostUnreachable as exc:
            return self._transient(host, f"no SSH answer: {exc}", HostState.UNREACHABLE)
        except CommandTimedOut as exc:  # SSH answered; the login shell or the probe hangs
            return self._transient(host, f"the host check did not finish: {exc} (does a start-up file of the login "
                                         "shell, e.g. ~/.bashrc, wait for something?)", HostState.FAILED_CHECK)
        except (ProbeFailed, SshError) as exc:
            return self._transient(host, f"the host check failed: {exc}", HostState.FAILED_CHECK)
        items = evaluate(facts, now=now, advertise_url=self.cp.settings.advertise_url,
                         cores_override=host.cores_override, memory_mb_override=host.memory_mb_override,
                         allocated=allocated)
        self._finish(host, facts, items, failed_state=HostState.FAILED_CHECK)

    def _pin(self, host: Host) -> bool:
        """Scan and pin the key of a host added while it did not answer; whether the check
        may go on."""
        bare = target_of(host)
        try:
            line, seen = self.cp.ssh.scan_host_key(bare)
        except (HostUnreachable, SshError) as exc:
            self._transient(host, f"no SSH answer: {exc}", HostState.UNREACHABLE)
            return False
        now = self.clock()
        with self.cp.store.session() as s:
            if host.host_key_fingerprint and seen != host.host_key_fingerprint:
                reason = (f"host key mismatch: the host presents {seen}, not the given {host.host_key_fingerprint}; "
                          "if that is the host's key, remove and add it again with that fingerprint")
                transition(s, host.id, HostState(host.status), HostState.HOST_KEY_CHANGED, now, status_reason=reason)
                self._done(host.id)
                return False
            s.execute(update(Host).where(Host.id == host.id, Host.host_key.is_(None))
                      .values(host_key=line, host_key_fingerprint=seen))
        host.host_key, host.host_key_fingerprint = line, seen
        return True

    def _transient(self, host: Host, reason: str, final: HostState) -> None:
        """Retry with backoff, until the check's deadline: then ``final`` with ``reason``."""
        now = self.clock()
        if host.status in ALLOCATED_STATES:  # a re-check of an allocated host is not retried
            item = CheckItem("ssh", False, "error", reason, "an answer", "", f"ssh: {reason}")
            return self._finish(host, dict(host.facts or {}), [item], failed_state=final)
        if now < host.status_changed_at + HOST_CHECK_SECONDS:
            self._retry_later(host.id)
            with self.cp.store.session() as s:
                s.execute(update(Host).where(Host.id == host.id, Host.status == HostState.CHECKING.value)
                          .values(status_reason=f"checking (attempt {self._attempts[host.id]}): {reason}"))
            return None
        item = CheckItem("ssh" if final is HostState.UNREACHABLE else "probe", False, "error", reason, "an answer", "",
                         f"{reason} (for {HOST_CHECK_SECONDS:.0f} s)")
        return self._finish(host, dict(host.facts or {}), [item], failed_state=final)

    def _finish(self, host: Host, facts: dict[str, Any], items: list[CheckItem], failed_state: HostState) -> None:
        now = self.clock()
        bad = failing(items)
        warnings = [i for i in items if not i.ok and i.severity == "warning"]
        values = {"facts": facts, "checks": [i.to_dict() for i in items], "checked_at": now}
        if host.status in ALLOCATED_STATES:
            with self.cp.store.session() as s:
                s.execute(update(Host).where(Host.id == host.id, Host.status == host.status).values(**values))
            return self._done(host.id)
        reason = "; ".join(i.message for i in (bad or warnings)) or None
        for _ in range(3):  # a drain may change the target meanwhile: decide on the current one
            with self.cp.store.session() as s:
                current = s.get(Host, host.id)
                if current is None or current.status != HostState.CHECKING.value:
                    log.info("host %s changed during its check; its result is dropped", host.name)
                    break
                drained = current.target == HostState.DRAINED.value
                end = HostState.DRAINED if drained else failed_state if bad else HostState.READY
                said = ("drained" + (f"; check: {reason}" if reason else "")) if drained else reason
                extra = {"last_seen_at": now} if end is HostState.READY else {}
                if transition(s, host.id, HostState.CHECKING, end, now, target_is=current.target, status_reason=said,
                              **values, **extra):
                    log.info("host %s checked: %s%s", host.name, end.value, f" ({said})" if said else "")
                    break
        self._done(host.id)

    # -- liveness ---------------------------------------------------------------------------------

    def liveness(self, host_id: str) -> None:
        """``true`` over SSH on a READY or UNREACHABLE host (see the module docstring)."""
        host = self._load(host_id)
        if host is None or host.status not in (HostState.READY.value, HostState.UNREACHABLE.value):
            return
        state = HostState(host.status)
        target = target_of(host)
        try:
            self.cp.ssh.run(target, "true", timeout=10)
        except HostKeyChanged as exc:
            with self.cp.store.session() as s:
                mark_host_key_changed(s, host, exc, self.clock())
            return self._done(host_id)
        except AuthenticationFailed:
            with self.cp.store.session() as s:
                transition(s, host_id, state, HostState.CHECKING, self.clock(), status_reason="the host refused the key")
            return self._done(host_id)
        except SshError as exc:
            if state is HostState.READY:
                with self.cp.store.session() as s:
                    transition(s, host_id, state, HostState.UNREACHABLE, self.clock(), status_reason=f"no SSH answer: {exc}")
                log.warning("host %s is unreachable: %s", host.name, exc)
            return self._done(host_id, next_in=LIVENESS_SECONDS)
        now = self.clock()
        with self.cp.store.session() as s:
            if state is HostState.READY:
                s.execute(update(Host).where(Host.id == host_id, Host.status == state.value).values(last_seen_at=now))
            else:
                transition(s, host_id, state, HostState.CHECKING, now, last_seen_at=now,
                           status_reason="answers again: checking")
        self._done(host_id)

