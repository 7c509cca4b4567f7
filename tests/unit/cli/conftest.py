"""CLI unit-test fixtures: the real API over the test's control plane, and ``corral`` run in-process."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

from corral.cli.main import main
from corral.control.context import ControlPlane
from tests.unit.apiserver import serve


@pytest.fixture
def api_url(cp: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The API (uvicorn) over ``cp``, which the CLI talks to through ``CORRAL_URL``."""
    with serve(cp) as url:
        monkeypatch.setenv("CORRAL_URL", url)
        monkeypatch.setenv("CORRAL_HOME", str(tmp_path / "cli-home"))
        yield url


def corral(monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    """Run ``corral ARGV`` as the console script does; its exit code."""
    monkeypatch.setattr(sys, "argv", ["corral", *argv])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return int(exit_info.value.code or 0)
