"""The server's start-up checks (``corral.server.main``): settings it must not run with are
one line on stderr and exit status 2, before it binds a port. Servers that do start:
tests/integration/test_auth.py."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterator

import pytest

from corral import secretbox, server
from corral.settings import Settings, is_loopback


@pytest.fixture(autouse=True)
def _restore_key() -> Iterator[None]:
    before = secretbox._box
    yield
    secretbox._box = before


def refusal(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path, **env: str) -> str:
    monkeypatch.setenv("CORRAL_HOME", str(home))
    monkeypatch.setenv("CORRAL_PORT", "9")  # never bound: every case is refused first
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as info:
        server.main()
    assert info.value.code == server.REFUSED
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert out == "" and len(lines) == 1, err
    assert lines[0].startswith("corral server: refusing to start: ")
    return lines[0]


def test_a_non_loopback_server_needs_an_admin_token(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path) -> None:
    line = refusal(monkeypatch, capsys, tmp_path / "home", CORRAL_HOST="0.0.0.0")
    assert "authentication is required (CORRAL_HOST=0.0.0.0 is not a loopback address) but no admin token exists" in line
    assert "create one with `corral token create --name admin --role admin` on this host, then start again" in line
    assert (tmp_path / "home" / "corral.db").exists()  # migrated: `token create` may go ahead on it


def test_auth_off_is_for_loopback_only(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    line = refusal(monkeypatch, capsys, tmp_path / "home", CORRAL_HOST="192.0.2.10", CORRAL_AUTH="off")
    assert "CORRAL_AUTH=off is only allowed on a loopback address, and CORRAL_HOST is 192.0.2.10" in line
    assert not (tmp_path / "home").exists()  # refused before anything was opened


def test_malformed_settings_name_their_variable(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    assert "CORRAL_AUTH must be 'required' or 'off'" in refusal(monkeypatch, capsys, tmp_path, CORRAL_AUTH="maybe")
    monkeypatch.delenv("CORRAL_AUTH")
    line = refusal(monkeypatch, capsys, tmp_path, CORRAL_SECRET_KEY="too-short")
    assert "CORRAL_SECRET_KEY is not a valid key" in line and "too-short" not in line


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.3.4.5", True), ("::1", True), ("[::1]", True),
                                            ("localhost", True), ("0.0.0.0", False), ("::", False),
                                            ("192.0.2.1", False), ("corral.example", False)])
def test_auth_is_required_off_loopback_by_default(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    settings = Settings(home=Path("/nonexistent"), database_url="sqlite://", host=host, port=1,
                        local_subnet=Settings.from_env().local_subnet)
    assert settings.auth_mode == ("off" if loopback else "required")
    assert dataclasses.replace(settings, auth="required").auth_required
    assert "k3y-value" not in repr(dataclasses.replace(settings, secret_key="k3y-value"))
