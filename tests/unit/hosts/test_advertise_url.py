"""CORRAL_ADVERTISE_URL: the URL hosts reach the control plane at."""

from __future__ import annotations

import pytest
from pathlib import Path

from corral.settings import Settings, resolve_advertise_url


def test_defaults_to_where_the_server_listens() -> None:
    assert resolve_advertise_url(None, "127.0.0.1", 7420) == "http://127.0.0.1:7420"
    assert resolve_advertise_url(None, "fd00::5", 7420) == "http://[fd00::5]:7420"


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_no_default_on_a_wildcard_address(host: str) -> None:
    assert resolve_advertise_url(None, host, 7420) is None


def test_given_url_wins_and_is_checked() -> None:
    assert resolve_advertise_url("http://198.18.0.1:7420/", "0.0.0.0", 7420) == "http://198.18.0.1:7420"
    for bad in ("198.18.0.1:7420", "ftp://h", "http://", "http://h/?x=1"):
        with pytest.raises(ValueError, match="CORRAL_ADVERTISE_URL"):
            resolve_advertise_url(bad, "0.0.0.0", 7420)


def test_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CORRAL_HOME", str(tmp_path))
    monkeypatch.setenv("CORRAL_HOST", "0.0.0.0")
    monkeypatch.delenv("CORRAL_ADVERTISE_URL", raising=False)
    assert Settings.from_env().advertise_url is None
    monkeypatch.setenv("CORRAL_ADVERTISE_URL", "http://198.18.0.1:7420")
    assert Settings.from_env().advertise_url == "http://198.18.0.1:7420"
