"""Pytest fixtures of the host lab (``tests/hostlab.py``); ``tests/conftest.py`` imports them.

- ``host_lab_factory`` (session): ``host_lab_factory(n, **HostLab options) -> HostLab``.
  Every lab it made is closed at the end of the session, also after failures; a test may
  close one earlier (close is idempotent).
- ``host_lab`` (module): one lab per test module, shaped by the module's ``host_lab``
  marker, ``pytestmark = [pytest.mark.integration, pytest.mark.host_lab(3, java=[True,
  True, False])]`` (no marker: 3 hosts with Java), closed after the module's last test.
  Tests that change a host (link down, hidden Java) put it back.

Both skip, with the reason, when the machine cannot run labs (not root, no ``ip netns``);
missing packages are a failure naming ``scripts/ensure-test-servers.sh``, never a skip.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

from tests.hostlab import HostLab, HostLabError, unavailable_reason


def _skip_unless_available() -> None:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"host lab unavailable: {reason}")


def _make(n: int, **options: Any) -> HostLab:
    try:
        return HostLab(n, **options)
    except HostLabError as exc:
        pytest.fail(f"could not create the host lab: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def host_lab_factory() -> Iterator[Callable[..., HostLab]]:
    """``factory(n, **options)``: a new HostLab, closed at the end of the session."""
    _skip_unless_available()
    made: list[HostLab] = []

    def factory(n: int, **options: Any) -> HostLab:
        lab = _make(n, **options)
        made.append(lab)
        return lab

    try:
        yield factory
    finally:
        for lab in made:
            lab.close()


@pytest.fixture(scope="module")
def host_lab(request: pytest.FixtureRequest) -> Iterator[HostLab]:
    """The module's lab (see the module docstring); closed after its last test."""
    _skip_unless_available()
    marker = request.node.get_closest_marker("host_lab")
    args, kwargs = (marker.args, marker.kwargs) if marker is not None else ((), {})
    lab = _make(*(args or (3,)), **kwargs)
    try:
        yield lab
    finally:
        lab.close()
