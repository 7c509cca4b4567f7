"""The reconciler's host pass with a scripted transport: check outcomes, retries up to the
deadline, key pinning, liveness, and hosts checked side by side."""

from __future__ import annotations

import threading
import time
from typing import Any, Iterator

import pytest
from sqlalchemy import update

from corral.control import hosts
from corral.control.context import ControlPlane
from corral.hosts.spec import HostSpec
from corral.reconcile.deadlines import HOST_CHECK_SECONDS
from corral.reconcile.hosts import LIVENESS_SECONDS, HostReconciler
from corral.store.models import Host
from tests.unit.hosts.fakessh import RECORDED, FakeSsh, key_of, use_fake_ssh, without


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ssh(cp: ControlPlane, clock: Clock) -> FakeSsh:
    fake = use_fake_ssh(cp)
    fake.clock = clock
    fake.host("198.18.0.5")
    return fake


@pytest.fixture
def rec(cp: ControlPlane, clock: Clock) -> Iterator[HostReconciler]:
    r = HostReconciler(cp, clock=clock)
    yield r
    r.stop()


def add(cp: ControlPlane, **body: Any) -> Host:
    return hosts.add_host(cp, HostSpec.model_validate({"address": "198.18.0.5", **body}))


def settle(rec: HostReconciler) -> None:
    rec.tick()
    rec.wait_idle()


def get(cp: ControlPlane, name: str) -> Host:
    return hosts.get_host(cp, name)


def test_a_good_host_becomes_ready_with_facts(cp: ControlPlane, ssh: FakeSsh, rec: HostReconciler) -> None:
    add(cp, name="h", cores=2, memory="4g")
    settle(rec)
    host = get(cp, "h")
    assert host.status == "READY", host.status_reason
    assert host.facts["java"]["major"] == 17 and host.facts["clock"]["round_trip"] >= 0
    assert all(c["ok"] for c in host.checks) and host.checked_at and host.last_seen_at
    assert "198.18.0.5" in ssh.forgotten  # the check opened a fresh connection: the pinned key was verified


def test_a_failed_check_names_each_missing_thing(cp: ControlPlane, ssh: FakeSsh, rec: HostReconciler) -> None:
    ssh.hosts[("198.18.0.5", 22)].probe = without(RECORDED, "java_")
    ssh.hosts[("198.18.0.5", 22)].clock_offset = 9.0
    add(cp, name="h")
    settle(rec)
    host = get(cp, "h")
    assert host.status == "FAILED_CHECK"
    assert host.status_reason is not None
    assert host.status_reason.startswith("java: not found, need 17: apt-get install -y openjdk-17-jdk-headless; clock: 9.0 s "
                                         "ahead of the control plane, need within 5 s")


def test_a_silent_host_is_retried_until_the_deadline(cp: ControlPlane, ssh: FakeSsh, rec: HostReconciler,
                                                     clock: Clock) -> None:
    add(cp, name="h")
    ssh.hosts[("198.18.0.5", 22)].down = True
    settle(rec)
    host = get(cp, "h")
    assert host.status == "CHECKING" and "attempt 1" in (host.status_reason or "")
    settle(rec)  # backing off: not due yet
    assert [c for c in ssh.calls if c[1] == "sh -s"] == []
    clock.now += 1
    settle(rec)
    assert "attempt 2" in (get(cp, "h").status_reason or "")
    clock.now += HOST_CHECK_SECONDS
    settle(rec)
    host = get(cp, "h")
    assert host.status == "UNREACHABLE" and "no SSH answer" in (host.status_reason or "")
    assert host.checks[0]["name"] == "ssh"


def test_a_probe_that_never_ends_fails_the_check_at_the_deadline(cp: ControlPlane, ssh: FakeSsh, rec: HostReconciler,
                                                                  clock: Clock) -> None:
    ssh.hosts[("198.18.0.5", 22)].hangs = True
    add(cp, name="h")
    settle(rec)
    assert get(cp, "h").status == "CHECKING"
    clock.now += HOST_CHECK_SECONDS + 1
    settle(rec)
    host = get(cp, "h")
    assert host.status == "FAILED_CHECK" and "did not finish" in (host.status_reason or "")
    assert "~/.bashrc" in (host.status_reason or "")


def test_a_refused_key_fails_the_check(cp: ControlPlane, ssh: FakeSsh, rec: HostReconciler) -> None:
    ssh.hosts[("198.18.0.5", 22)].refuse_key = True
    add(cp, name="h", user="corral")
    settle(rec)
    host = get(cp, "h")
    assert host.status == "FAILED_CHECK" and "refused the key for user corral" in (host.status_reason or "")
    assert host.checks[0]["fix"] == "add the public key to ~corral/.ssh/authorized_keys"


def test_a_changed_host_key_is_refused_and_marked(cp: ControlPlane, ssh: FakeSsh, rec: HostReconciler) -> None:
    add(cp, name="h")
    settle(rec)
    ssh.hosts[("198.18.0.5", 22)].key = key_of(2)
    ran = len(ssh.calls)
    hosts.check_host(cp, "h")
    settle(rec)
    host = get(cp, "h")
    assert host.status == "HOST_KEY_CHANGED"
    assert host.status_reason == (f"host key changed: pinned {key_of(1)[1]}, now {key_of(2)[1]}; "
                                  "if the host was reinstalled, remove and add it again")
    assert len(ssh.calls) == ran  # nothing ran on the impostor
    assert host.host_key_fingerprint == key_of(1)[1]  # never silently accepted


def test_a_host_down_at_add_is_pinned_by_its_first_check(cp: ControlPlane, ssh: FakeSsh, rec: HostReconciler) -> None:
    fake = ssh.hosts[("198.18.0.5", 22)]
    fake.down = True
    add(cp, name="h")
    fake.down = False
    settle(rec)
    host = get(cp, "h")
    assert (host.status, host.host_key, host.host_key_fingerprint) == ("READY", *key_of(1))


def test_a_given_fingerprint_is_compared_when_the_host_was_down_at_add(cp: ControlPlane, ssh: FakeSsh,
                                                                        rec: HostReconciler) -> None:
    fake = ssh.hosts[("198.18.0.5", 22)]
    fake.down = True
    add(cp, name="h", host_key_fingerprint=key_of(3)[1])
    fake.down = False
    settle(rec)
    host = get(cp, "h")
    assert host.status == "HOST_KEY_CHANGED" and f"presents {key_of(1)[1]}, not the given {key_of(3)[1]}" in (
        host.status_reason or "")


def test_a_drain_during_the_check_ends_drained(cp: ControlPlane, ssh: FakeSsh, rec: HostReconciler) -> None:
    gate = threading.Event()
    ssh.hosts[("198.18.0.5", 22)].gate = gate
    add(cp, name="h")
    rec.tick()
    hosts.drain_host(cp, "h")
    gate.set()
    rec.wait_idle()
    host = get(cp, "h")
    assert host.status == "DRAINED" and host.facts and host.status_reason == "drained"


def test_a_remove_during_the_check_drops_its_result(cp: ControlPlane, ssh: FakeSsh, rec: HostReconciler) -> None:
    gate = threading.Event()
    ssh.hosts[("198.18.0.5", 22)].gate = gate
    host = add(cp, name="h")
    rec.tick()
    hosts.remove_host(cp, "h")
    gate.set()
    rec.wait_idle()
    assert get(cp, host.id).status == "REMOVED"


def test_an_allocated_host_keeps_its_node_on_a_recheck(cp: ControlPlane, ssh: FakeSsh, rec: HostReconciler) -> None:
    add(cp, name="h")
    settle(rec)
    taken = RECORDED.replace("reach_url", "ss\tLISTEN 0 50 0.0.0.0:8088 0.0.0.0:* users:((\"java\",pid=5,fd=1))\nreach_url")
    ssh.hosts[("198.18.0.5", 22)].probe = taken
    with cp.store.session() as s:
        s.execute(update(Host).where(Host.name == "h").values(status="ALLOCATED", node_id="n-1", cluster_id="c-1"))
    hosts.check_host(cp, "h")
    settle(rec)
    host = get(cp, "h")
    assert (host.status, host.node_id) == ("ALLOCATED", "n-1") and host.checked_at is not None
    assert not hosts.check_pending(host) and all(c["ok"] for c in host.checks)


def test_liveness_marks_a_silent_ready_host_and_rechecks_it_when_back(cp: ControlPlane, ssh: FakeSsh,
                                                                       rec: HostReconciler, clock: Clock) -> None:
    add(cp, name="h")
    settle(rec)
    fake = ssh.hosts[("198.18.0.5", 22)]
    fake.down = True
    settle(rec)
    assert get(cp, "h").status == "READY"  # seen just now: not probed yet
    clock.now += LIVENESS_SECONDS + 1
    settle(rec)
    host = get(cp, "h")
    assert host.status == "UNREACHABLE" and "no SSH answer" in (host.status_reason or "")
    fake.down = False
    settle(rec)
    assert get(cp, "h").status == "UNREACHABLE"  # probed again only after the interval
    clock.now += LIVENESS_SECONDS + 1
    settle(rec)
    assert get(cp, "h").status == "CHECKING"
    settle(rec)
    assert get(cp, "h").status == "READY"


def test_a_slow_host_does_not_hold_up_the_others(cp: ControlPlane, ssh: FakeSsh, rec: HostReconciler) -> None:
    gate = threading.Event()
    ssh.host("198.18.0.6", gate=gate)
    add(cp, name="slow", address="198.18.0.6")
    add(cp, name="fast")
    rec.tick()
    deadline = time.monotonic() + 10
    while get(cp, "fast").status == "CHECKING" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (get(cp, "fast").status, get(cp, "slow").status) == ("READY", "CHECKING")
    rec.tick()  # the slow one is in flight: not submitted twice
    gate.set()
    rec.wait_idle()
    assert get(cp, "slow").status == "READY"
    assert len([c for c in ssh.calls if c == ("198.18.0.6", "sh -s")]) == 1


def test_a_check_cut_short_by_a_restart_runs_again(cp: ControlPlane, ssh: FakeSsh, clock: Clock) -> None:
    """The state is in the row: a new process's pass checks a CHECKING host, once even
    past the deadline (the old process may have died long ago)."""
    host = add(cp, name="h")
    with cp.store.session() as s:
        s.execute(update(Host).where(Host.id == host.id).values(status_changed_at=clock.now - 10 * HOST_CHECK_SECONDS))
    fresh = HostReconciler(cp, clock=clock)
    try:
        settle(fresh)
    finally:
        fresh.stop()
    assert get(cp, "h").status == "READY"
