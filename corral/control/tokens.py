"""API tokens: roles, create / list / revoke, and the check of a presented bearer token.

A token's secret is ``crl_`` + 32 random bytes (url-safe base64, 43 characters); only its
SHA-256 (hex) is stored, in ``api_tokens.secret_hash`` (unique). A plain, unsalted hash is
enough because the secret is 256 random bits, not a password: neither a dictionary nor a
precomputed table can reach it, and a salt would only prevent the lookup by hash that
verifies a token in one indexed query. Comparing by that lookup also leaves no secret-
dependent string comparison to time. The secret is returned once, by ``create_token``.

Roles are ordered: ``viewer`` reads; ``operator`` also manages clusters, steps, data and
artifacts; ``admin`` also manages hosts and tokens and reads the audit log (the rule per
request: ``corral.api.access.required_role``).

Functions take the ``Store`` (not a ``ControlPlane``): ``corral token create`` uses them on
the store directly, which is how the first admin token is made.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from enum import Enum

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from corral import ids
from corral.errors import Conflict, FieldError, NotFound, ValidationFailed
from corral.store.db import Store
from corral.store.models import ApiToken

SECRET_PREFIX = "crl_"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
NAME_RULE = "a token name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
LAST_USED_EVERY = 60.0  # seconds: ``last_used_at`` is written at most this often per token


class Role(str, Enum):
    viewer = "viewer"
    operator = "operator"
    admin = "admin"

    @property
    def rank(self) -> int:
        return ROLE_ORDER.index(self)

    def allows(self, needed: "Role") -> bool:
        return self.rank >= needed.rank


ROLE_ORDER = (Role.viewer, Role.operator, Role.admin)


@dataclass(frozen=True)
class Principal:
    """Who makes a request: a token's name and role, ``local`` (admin) when auth is off."""

    name: str
    role: Role


LOCAL = Principal("local", Role.admin)  # every request when CORRAL_AUTH=off
ANONYMOUS = "anonymous"  # the audit actor of a request without a valid token


def hash_secret(secret: str) -> str:
    """SHA-256 of the secret, lowercase hex (64 characters)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def check_name(name: str) -> None:
    """Raises ``ValidationFailed`` naming ``name`` when it breaks ``NAME_RULE``."""
    if not NAME_PATTERN.fullmatch(name):
        raise ValidationFailed([FieldError(("name",), NAME_RULE)])


def parse_role(role: str) -> Role:
    """Raises ``ValidationFailed`` naming ``role`` for anything but admin, operator, viewer."""
    try:
        return Role(role)
    except ValueError:
        raise ValidationFailed([FieldError(("role",), "must be one of admin, operator, viewer")]) from None


def create_token(store: Store, name: str, role: str, created_by: str | None) -> tuple[ApiToken, str]:
    """A new token and its secret (shown once; only its hash is kept). A revoked token's
    name may be taken again (its row is replaced; the audit log keeps its calls by name).
    Raises ``ValidationFailed`` for a bad name or role, ``Conflict`` when an unrevoked
    token has the name."""
    check_name(name)
    parsed = parse_role(role)
    secret = new_secret()
    try:
        with store.session() as s:
            existing = s.scalar(select(ApiToken).where(ApiToken.name == name))
            if existing is not None and existing.revoked_at is None:
                raise Conflict(f"a token named {name!r} exists; revoke it first (`corral token revoke {name}`) "
                               "or choose another name")
            if existing is not None:
                s.delete(existing)
                s.flush()
            row = ApiToken(id=ids.new_id("t"), name=name, role=parsed.value, secret_hash=hash_secret(secret),
                           created_by=created_by, created_at=time.time())
            s.add(row)
    except IntegrityError:  # a concurrent create of the same name
        raise Conflict(f"a token named {name!r} exists") from None
    return row, secret


def list_tokens(store: Store) -> list[ApiToken]:
    """Every token, revoked ones too, oldest first."""
    with store.session() as s:
        return list(s.scalars(select(ApiToken).order_by(ApiToken.created_at, ApiToken.id)))


def revoke_token(store: Store, name: str) -> ApiToken:
    """Revoke the token ``name`` (at once: the next request with it gets 401). Revoking a
    revoked token changes nothing. Raises ``NotFound``."""
    with store.session() as s:
        row = s.scalar(select(ApiToken).where(ApiToken.name == name))
        if row is None:
            raise NotFound("token", name)
        if row.revoked_at is None:
            row.revoked_at = time.time()
        return row


def verify(store: Store, secret: str, now: float | None = None) -> Principal | None:
    """The principal of a presented secret, or None when it is unknown or revoked. Records
    ``last_used_at`` at most once per ``LAST_USED_EVERY`` seconds per token (a conditional
    UPDATE, so concurrent requests do not each write)."""
    if not secret.startswith(SECRET_PREFIX) or len(secret) > 256:
        return None  # not one of ours: no query
    now = time.time() if now is None else now
    digest = hash_secret(secret)
    with store.session() as s:
        row = s.execute(select(ApiToken.id, ApiToken.name, ApiToken.role, ApiToken.last_used_at)
                        .where(ApiToken.secret_hash == digest, ApiToken.revoked_at.is_(None))).first()
        if row is None:
            return None
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY:
            stale = ApiToken.last_used_at.is_(None) | (ApiToken.last_used_at <= now - LAST_USED_EVERY)
            s.execute(update(ApiToken).where(ApiToken.id == row.id, stale).values(last_used_at=now))
        return Principal(row.name, Role(row.role))


def has_admin(store: Store) -> bool:
    """Whether an unrevoked admin token exists (the server needs one to start with auth)."""
    with store.session() as s:
        return s.scalar(select(ApiToken.id).where(ApiToken.role == Role.admin.value, ApiToken.revoked_at.is_(None))
                        .limit(1)) is not None
