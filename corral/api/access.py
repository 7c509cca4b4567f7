"""Who may call ``/api/v1`` and ``/metrics``, and the audit record of every mutating call.

``AccessMiddleware`` guards every path under ``/api/v1`` except ``/api/v1/health``, and
``/metrics`` (a viewer's: what it shows is what the API's reads show; the agent API,
``/agent/v1``, keeps the per-cluster agent token). It runs before routing, so
the rule is by path prefix and covers routes added later (the hosts routes) without a
line of theirs, and a request without a valid token gets 401 before its body is read (a
route dependency would run after FastAPI parses the JSON body: a malformed body got 422
without any token) and before a missing route's 404.

- Auth on (``Settings.auth_required``): ``Authorization: Bearer <token>``
  (``corral.control.tokens``). None, another scheme, or an unknown or revoked token:
  401 with ``WWW-Authenticate: Bearer``. A role below the one the call needs
  (``required_role``): 403 naming that role.
- Auth off (a loopback-only server): every request is ``local`` with the admin role.

Every POST/PUT/PATCH/DELETE under ``/api/v1``, allowed or not, writes one audit record
(``corral.control.audit``) when its response starts, so the record exists before the
client sees the answer. Tokens are never logged, echoed or put in a record.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corral.api import actions
from corral.control import audit, tokens
from corral.control.context import ControlPlane
from corral.control.tokens import LOCAL, Principal, Role
from corral.settings import Settings, is_loopback
from corral.store.db import Store

log = logging.getLogger(__name__)
API_PREFIX = actions.API_PREFIX
OPEN_PATHS = frozenset({f"{API_PREFIX}/health"})
METRICS_PATH = "/metrics"  # the control plane's Prometheus endpoint, outside API_PREFIX but guarded
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PRINCIPAL_KEY = "corral.principal"  # in the ASGI scope, for handlers (``current_principal``)
HOW_TO_PASS = ("send 'Authorization: Bearer <token>'; the CLI sends CORRAL_TOKEN or the token saved by `corral login`")


def _under(rel: str, prefix: str) -> bool:
    return rel == prefix or rel.startswith(prefix + "/")


def required_role(method: str, path: str) -> Role:
    """The least role that may make the call (issue 11 §3): tokens and the audit log are
    admin's; hosts and alert webhooks are admin's to change and anyone's to read; every other read is a
    viewer's and every other change (clusters, steps, data, artifacts, ...) an operator's."""
    rel = path.removeprefix(API_PREFIX)
    mutating = method.upper() in MUTATING
    if _under(rel, "/tokens") or _under(rel, "/audit"):
        return Role.admin
    if _under(rel, "/hosts") or _under(rel, "/alerts/webhooks"):  # webhooks send cluster data off the machine
        return Role.admin if mutating else Role.viewer
    return Role.operator if mutating else Role.viewer


# Why a request is refused with 401: the message, and the WWW-Authenticate challenge (RFC 6750 §3).
UNAUTHENTICATED = {
    "missing": ("this server requires a token", 'Bearer realm="corral"'),
    "malformed": ("the Authorization header is not 'Bearer <token>'", 'Bearer realm="corral", error="invalid_request"'),
    "invalid": ("the token is not valid (unknown or revoked)", 'Bearer realm="corral", error="invalid_token"'),
}


def authenticate(cp: ControlPlane, authorization: str | None) -> tuple[Principal | None, str]:
    """The caller, or None and why not (a key of ``UNAUTHENTICATED``)."""
    if not cp.settings.auth_required:
        return LOCAL, ""
    if not authorization:
        return None, "missing"
    scheme, _, secret = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None, "malformed"
    principal = tokens.verify(cp.store, secret.strip())
    return (principal, "") if principal is not None else (None, "invalid")


def startup_refusal(settings: Settings, store: Store | None) -> str | None:
    """Why a control plane with these settings must not start, or None (issue 11 §3): auth
    off on an address other machines may reach, or auth on and no admin token to manage
    the others with. ``store`` None checks the address only."""
    if not settings.auth_required and not is_loopback(settings.host):
        return (f"CORRAL_AUTH=off is only allowed on a loopback address, and CORRAL_HOST is {settings.host}: "
                "unset CORRAL_AUTH to require tokens, or bind to 127.0.0.1")
    if settings.auth_required and store is not None and not tokens.has_admin(store):
        why = "CORRAL_AUTH=required" if settings.auth else f"CORRAL_HOST={settings.host} is not a loopback address"
        return (f"authentication is required ({why}) but no admin token exists: create one with "
                "`corral token create --name admin --role admin` on this host, then start again; "
                "clients pass a token as CORRAL_TOKEN=<token> or save it with `corral login`")
    return None


def current_principal(request: Request) -> Principal:
    """The caller of this request (a route dependency; set by ``AccessMiddleware``)."""
    principal = request.scope.get(PRINCIPAL_KEY)
    if not isinstance(principal, Principal):
        raise RuntimeError("AccessMiddleware is not installed")
    return principal


class AccessMiddleware:
    """Pure ASGI (not ``BaseHTTPMiddleware``): streamed uploads and long polls pass through
    untouched."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (_under(path, API_PREFIX) or path == METRICS_PATH) or path in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        cp: ControlPlane = scope["app"].state.cp
        method = scope["method"].upper()
        header = Headers(scope=scope).get("authorization")
        # A token check is a query: off the event loop. With auth off there is nothing to check.
        principal, problem = (await run_in_threadpool(authenticate, cp, header) if cp.settings.auth_required
                              else (LOCAL, ""))
        recorder = _Recorder(cp, scope, principal) if method in MUTATING else None

        async def send_recorded(message: Message) -> None:
            if recorder is not None and message["type"] == "http.response.start":
                await recorder.record(int(message["status"]))
            await send(message)

        if principal is None:
            message, challenge = UNAUTHENTICATED[problem]
            response: JSONResponse | None = JSONResponse({"detail": f"authentication required: {message}; {HOW_TO_PASS}"},
                                                         status_code=401, headers={"WWW-Authenticate": challenge})
        else:
            needed = required_role(method, path)
            response = None if principal.role.allows(needed) else JSONResponse(
                {"detail": f"token {principal.name!r} has the {principal.role.value} role; "
                           f"{method} {path} needs the {needed.value} role"}, status_code=403)
        if response is not None:
            await response(scope, receive, send_recorded)
            return
        scope[PRINCIPAL_KEY] = principal
        try:
            await self.app(scope, receive, send_recorded)
        except Exception:
            if recorder is not None:
                await recorder.record(500)  # the server's error middleware answers 500
            raise


class _Recorder:
    """Writes a mutating call's audit record once, when its status is known."""

    def __init__(self, cp: ControlPlane, scope: Scope, principal: Principal | None):
        self.cp, self.scope, self.principal, self.done = cp, scope, principal, False

    async def record(self, status_code: int) -> None:
        if self.done:
            return
        self.done = True
        scope: dict[str, Any] = self.scope  # type: ignore[assignment]
        action, target = actions.describe(scope["method"], scope["path"],
                                          scope.get("query_string", b"").decode("latin-1"))
        client = scope.get("client")
        entry = audit.Entry(actor=self.principal.name if self.principal else tokens.ANONYMOUS,
                            role=self.principal.role.value if self.principal else None,
                            method=scope["method"].upper(), path=scope["path"], action=action,
                            target=scope.get(actions.TARGET_KEY) or target, status_code=status_code,
                            remote=client[0] if client else None)
        try:
            await run_in_threadpool(audit.record, self.cp.store, entry)
        except Exception:  # the call itself has happened: answer it, and say loudly that its record is missing
            log.exception("could not write the audit record of %s %s (%d)", entry.method, entry.path, status_code)
