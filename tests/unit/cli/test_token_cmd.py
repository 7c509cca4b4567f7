"""``corral token``, ``login``/``logout``, ``audit list`` and the CLI's answers to 401/403:
``corral`` run in-process against the real API (uvicorn) over the test's control plane,
or against its store directly when it has no token."""

from __future__ import annotations

import dataclasses
import io
import json
import stat
import sys
from pathlib import Path
from typing import Iterator

import pytest
import typer

from corral.cli import credentials
from corral.cli.audit_cmd import parse_since
from corral.control import tokens
from corral.control.context import ControlPlane
from corral.store.models import AuditRecord
from tests.unit.apiserver import serve
from tests.unit.cli.conftest import corral


@pytest.fixture
def on_store(cp: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> ControlPlane:
    """The CLI pointed at ``cp``'s store (its home and database), with no server and no token."""
    monkeypatch.setenv("CORRAL_HOME", str(cp.settings.home))
    monkeypatch.setenv("CORRAL_DATABASE_URL", cp.settings.database_url)
    monkeypatch.setenv("CORRAL_URL", "http://127.0.0.1:9")  # nothing listens: the store path must not call it
    return cp


@pytest.fixture
def secured_url(cp: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, dict[str, str]]]:
    """The API over ``cp`` with auth required, a token per role, and the CLI pointed at it."""
    cp.settings = dataclasses.replace(cp.settings, auth="required")
    secrets = {role: tokens.create_token(cp.store, role, role, created_by=None)[1] for role in ("admin", "operator", "viewer")}
    with serve(cp) as url:
        monkeypatch.setenv("CORRAL_URL", url)
        monkeypatch.setenv("CORRAL_HOME", str(cp.settings.home.parent / "cli-home"))
        yield url, secrets


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("corral: error: ")
    return lines[0]


def test_the_first_admin_token_is_made_on_the_store(on_store: ControlPlane, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert corral(monkeypatch, "token", "create", "--name", "admin", "--role", "admin", "-o", "json") == 0
    out, err = capsys.readouterr()
    made = json.loads(out)
    assert made["name"] == "admin" and made["role"] == "admin" and made["created_by"] == "local"
    assert tokens.verify(on_store.store, made["token"]) is not None
    assert err == ""
    assert corral(monkeypatch, "token", "create", "--name", "ci", "--role", "viewer") == 0
    out, _ = capsys.readouterr()
    assert "on the store of" in out and "directly" in out
    secret = next(line for line in out.splitlines() if line.startswith("crl_"))
    assert tokens.verify(on_store.store, secret) is not None
    assert corral(monkeypatch, "token", "list") == 0
    listed, _ = capsys.readouterr()
    assert "admin" in listed and "ci" in listed and made["token"] not in listed and secret not in listed
    assert corral(monkeypatch, "token", "revoke", "ci", "-o", "json") == 0
    assert json.loads(capsys.readouterr().out)["revoked_at"] is not None
    with on_store.store.session() as s:
        rows = [(r.actor, r.method, r.action, r.target, r.status_code) for r in s.query(AuditRecord).order_by(AuditRecord.id)]
    assert rows == [("local", "CLI", "token.create", "admin", 201), ("local", "CLI", "token.create", "ci", 201),
                    ("local", "CLI", "token.revoke", "ci", 200)]


@pytest.mark.parametrize("argv, message, audited", [
    (["--name", "admin", "--role", "admin"], "a token named 'admin' exists", [409]),
    (["--name", "bad name", "--role", "viewer"], "name: a token name is 1 to 64 letters", [422]),
    (["--name", "x", "--role", "root"], "Invalid value for '--role'", []),  # a usage error: the store is not opened
])
def test_bad_token_requests_are_exit_2_with_one_line(on_store: ControlPlane, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str], argv: list[str], message: str,
                                                     audited: list[int]) -> None:
    tokens.create_token(on_store.store, "admin", "admin", created_by=None)
    capsys.readouterr()
    assert corral(monkeypatch, "token", "create", *argv) == 2
    out, err = capsys.readouterr()
    assert message in one_error_line(err) and "crl_" not in out + err
    with on_store.store.session() as s:
        assert [r.status_code for r in s.query(AuditRecord)] == audited


def test_with_a_token_the_cli_goes_through_the_api(cp: ControlPlane, secured_url: tuple[str, dict[str, str]],
                                                   monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _, secret = secured_url
    monkeypatch.setenv("CORRAL_TOKEN", secret["admin"])
    assert corral(monkeypatch, "token", "create", "--name", "ci", "--role", "operator", "-o", "json") == 0
    made = json.loads(capsys.readouterr().out)
    assert made["created_by"] == "admin"  # made by the API, as the admin token's call
    assert corral(monkeypatch, "token", "list", "-o", "json") == 0
    out, err = capsys.readouterr()
    assert [t["name"] for t in json.loads(out)] == ["admin", "operator", "viewer", "ci"]
    assert not any(s in out + err for s in [*secret.values(), made["token"]])
    assert corral(monkeypatch, "token", "revoke", "ci") == 0
    assert "Token ci revoked" in capsys.readouterr().out
    assert corral(monkeypatch, "audit", "list", "-o", "json") == 0
    records = json.loads(capsys.readouterr().out)
    assert [(r["actor"], r["action"], r["target"], r["result"]) for r in records] == [
        ("admin", "token.create", "ci", "ok"), ("admin", "token.revoke", "ci", "ok")]
    assert corral(monkeypatch, "audit", "list", "--since", "1h", "-o", "json") == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
    assert corral(monkeypatch, "audit", "list", "--since", "2100-01-01T00:00", "-o", "json") == 0
    assert json.loads(capsys.readouterr().out) == []
    assert corral(monkeypatch, "audit", "list") == 0
    assert "admin" in capsys.readouterr().out


def test_401_and_403_are_exit_2_saying_how_to_pass_a_token(secured_url: tuple[str, dict[str, str]],
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url, secret = secured_url
    assert corral(monkeypatch, "cluster", "list") == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"the Corral server at {url} refused the request: it requires a token and none was sent" in line
    assert "CORRAL_TOKEN=<token>" in line and f"corral login --url {url}" in line
    monkeypatch.setenv("CORRAL_TOKEN", "crl_" + "w" * 43)
    assert corral(monkeypatch, "cluster", "list") == 2
    line = one_error_line(capsys.readouterr().err)
    assert "the token sent is not valid" in line and "crl_www" not in line
    monkeypatch.setenv("CORRAL_TOKEN", secret["viewer"])
    assert corral(monkeypatch, "cluster", "list") == 0
    assert corral(monkeypatch, "cluster", "terminate", "c-1") == 2
    line = one_error_line(capsys.readouterr().err)
    assert "has the viewer role; POST /api/v1/clusters/c-1/terminate needs the operator role" in line
    assert "use a token with that role" in line and secret["viewer"] not in line
    script = tmp_path / "job.sh"
    script.write_text("echo hi\n")
    assert corral(monkeypatch, "step", "add", "c-1", "--type", "shell", "--", "bash", str(script)) == 2  # the upload's 403
    line = one_error_line(capsys.readouterr().err)
    assert "needs the operator role" in line and secret["viewer"] not in line


def test_login_checks_and_saves_the_token_0600_and_logout_forgets_it(
        secured_url: tuple[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    url, secret = secured_url
    monkeypatch.setattr(sys, "stdin", io.StringIO("crl_not-a-valid-token\n"))
    assert corral(monkeypatch, "login", "--token-stdin") == 2
    assert "not valid" in one_error_line(capsys.readouterr().err)
    assert not credentials.path().exists()
    monkeypatch.setattr(sys, "stdin", io.StringIO(secret["operator"] + "\n"))
    assert corral(monkeypatch, "login", "--url", url + "/", "--token-stdin") == 0
    out, _ = capsys.readouterr()
    assert "as operator (operator)" in out and secret["operator"] not in out
    path = credentials.path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text()) == {"servers": {url: {"token": secret["operator"]}}}
    assert corral(monkeypatch, "cluster", "list") == 0  # the saved token is sent
    monkeypatch.setenv("CORRAL_TOKEN", secret["viewer"])  # and CORRAL_TOKEN wins over it
    assert credentials.token_for(url) == secret["viewer"]
    monkeypatch.delenv("CORRAL_TOKEN")
    assert corral(monkeypatch, "logout") == 0
    assert f"Logged out of {url}" in capsys.readouterr().out
    assert credentials.saved_token(url) is None
    assert corral(monkeypatch, "cluster", "list") == 2


def test_login_to_a_server_without_auth_saves_nothing(api_url: str, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("crl_anything\n"))
    assert corral(monkeypatch, "login", "--token-stdin") == 2
    assert "runs without authentication" in one_error_line(capsys.readouterr().err)
    assert not credentials.path().exists()


def test_since_takes_durations_and_local_times() -> None:
    assert parse_since("30m", now=10_000.0) == 10_000.0 - 1800
    assert parse_since("2d", now=200_000.0) == 200_000.0 - 172_800
    assert parse_since("2026-12-01T10:00+00:00") == 1796119200.0
    assert isinstance(parse_since("2026-12-01T10:00"), float)
    for bad in ("yesterday", "10x", "", "-1h"):
        with pytest.raises(typer.BadParameter):
            parse_since(bad)
