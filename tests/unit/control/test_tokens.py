"""API tokens (``corral.control.tokens``) and the audit log's rows (``corral.control.audit``),
on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from corral.control import audit, tokens
from corral.control.tokens import Principal, Role
from corral.errors import Conflict, NotFound, ValidationFailed
from corral.store.db import Store
from corral.store.models import ApiToken


def test_a_token_is_random_and_only_its_hash_is_stored(store: Store) -> None:
    row, secret = tokens.create_token(store, "ci", "operator", created_by="admin")
    other_row, other = tokens.create_token(store, "ci2", "viewer", created_by=None)
    assert secret.startswith("crl_") and len(secret) == 4 + 43 and secret != other
    assert (row.name, row.role, row.created_by, row.revoked_at) == ("ci", "operator", "admin", None)
    with store.engine.connect() as conn:
        raw = " ".join(str(v) for r in conn.execute(text("select * from api_tokens")) for v in r)
    assert secret not in raw and secret.removeprefix("crl_") not in raw and other not in raw
    assert tokens.hash_secret(secret) in raw  # found by its hash


def test_verify_knows_valid_tokens_only(store: Store) -> None:
    _, secret = tokens.create_token(store, "ci", "operator", created_by=None)
    assert tokens.verify(store, secret) == Principal("ci", Role.operator)
    assert tokens.verify(store, secret + "x") is None
    assert tokens.verify(store, "crl_" + "A" * 43) is None
    assert tokens.verify(store, "not-a-corral-token") is None
    assert tokens.verify(store, "") is None
    tokens.revoke_token(store, "ci")
    assert tokens.verify(store, secret) is None  # at once


def test_last_used_is_written_at_most_once_a_minute(store: Store) -> None:
    _, secret = tokens.create_token(store, "ci", "viewer", created_by=None)

    def last_used() -> float | None:
        return next(t.last_used_at for t in tokens.list_tokens(store) if t.name == "ci")

    assert last_used() is None
    tokens.verify(store, secret, now=1000.0)
    assert last_used() == 1000.0
    tokens.verify(store, secret, now=1030.0)
    assert last_used() == 1000.0
    tokens.verify(store, secret, now=1061.0)
    assert last_used() == 1061.0


def test_names_and_roles_are_checked_and_names_are_unique(store: Store) -> None:
    for bad in ("", "with space", "-leading", "x" * 65, "a/b", "ünïcode"):
        with pytest.raises(ValidationFailed) as info:
            tokens.create_token(store, bad, "viewer", created_by=None)
        assert [e.loc for e in info.value.errors] == [("name",)]
    with pytest.raises(ValidationFailed) as info:
        tokens.create_token(store, "ok", "root", created_by=None)
    assert [e.loc for e in info.value.errors] == [("role",)]
    tokens.create_token(store, "admin", "admin", created_by=None)
    with pytest.raises(Conflict, match="a token named 'admin' exists"):
        tokens.create_token(store, "admin", "viewer", created_by=None)
    tokens.revoke_token(store, "admin")
    row, secret = tokens.create_token(store, "admin", "admin", created_by=None)  # a revoked name is free again
    assert tokens.verify(store, secret) == Principal("admin", Role.admin)
    assert [t.name for t in tokens.list_tokens(store)] == ["admin"]
    with pytest.raises(NotFound):
        tokens.revoke_token(store, "nobody")


def test_revoke_is_idempotent_and_has_admin_follows_it(store: Store) -> None:
    assert not tokens.has_admin(store)
    tokens.create_token(store, "op", "operator", created_by=None)
    assert not tokens.has_admin(store)
    tokens.create_token(store, "boss", "admin", created_by=None)
    assert tokens.has_admin(store)
    first = tokens.revoke_token(store, "boss").revoked_at
    assert first is not None and tokens.revoke_token(store, "boss").revoked_at == first
    assert not tokens.has_admin(store)


def test_roles_are_ordered() -> None:
    assert Role.admin.allows(Role.operator) and Role.admin.allows(Role.viewer) and Role.operator.allows(Role.viewer)
    assert not Role.viewer.allows(Role.operator) and not Role.operator.allows(Role.admin)


def test_audit_rows_page_by_id_and_filter_by_time(store: Store) -> None:
    for i, status in enumerate((201, 401, 403, 422, 500)):
        audit.record(store, audit.Entry(actor="a", role="admin", method="POST", path=f"/api/v1/x/{i}", action="x.update",
                                        target=str(i), status_code=status, remote="127.0.0.1", time=100.0 + i))
    rows = audit.list_records(store, None, None, 10)
    assert [r.result for r in rows] == ["ok", "denied", "denied", "failed", "failed"]
    assert [r.target for r in audit.list_records(store, 102.0, None, 10)] == ["2", "3", "4"]
    first = audit.list_records(store, None, None, 2)
    assert [r.target for r in audit.list_records(store, None, first[-1].id, 2)] == ["2", "3"]


def test_a_token_row_has_no_secret_column_beyond_the_hash() -> None:
    assert {c.name for c in ApiToken.__table__.columns} == {
        "id", "name", "role", "secret_hash", "created_by", "created_at", "last_used_at", "revoked_at"}
