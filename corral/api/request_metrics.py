"""Every HTTP request's latency into ``corral_api_request_duration_seconds``
(``corral.control.telemetry``): the public API, the agent API (reports, plan long polls,
logs) and ``/metrics`` itself.

The ``route`` label is the route's template (``/api/v1/clusters/{cluster_id}``), never the
raw path: ids in label values would make a new series per cluster, node and step. The
template is found by matching the path against the app's routes as the router does (first
full match, else the first route of the path for another method, the router's 405): the
router's own ``scope["route"]`` names an included router's route without its prefix, and
a request ``AccessMiddleware`` refuses (401/403) never reaches the router. A path no route
has is ``unmatched``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corral.control.context import ControlPlane

UNMATCHED = "unmatched"


@dataclass(frozen=True)
class _Template:
    regex: re.Pattern[str]
    template: str  # the path format: converters dropped, ``{path:path}`` -> ``{path}``
    methods: frozenset[str] | None  # None: any method


class RouteTemplates:
    """The app's routes with their full paths (included routers' prefixes joined), in
    the router's order; rebuilt when the app's route list changes length."""

    def __init__(self) -> None:
        self._routes: list[_Template] = []
        self._built_for = -1

    def template(self, scope: Scope) -> str:
        routes: list[BaseRoute] = list(getattr(getattr(scope.get("app"), "router", None), "routes", []))
        if len(routes) != self._built_for:
            self._routes = self._build(routes)
            self._built_for = len(routes)
        path, root = scope.get("path", ""), scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):] or "/"
        method = scope.get("method", "GET").upper()
        other_method = None
        for route in self._routes:
            if route.regex.match(path):
                if route.methods is None or method in route.methods:
                    return route.template
                other_method = other_method or route.template
        return other_method or UNMATCHED

    @staticmethod
    def _build(routes: list[BaseRoute]) -> list[_Template]:
        built = []
        for context in iter_route_contexts(routes):
            path = context.path
            if not isinstance(path, str):
                continue
            regex, template, _ = compile_path(path)
            methods = context.methods
            built.append(_Template(regex, context.path_format or template,
                                   frozenset(m.upper() for m in methods) if methods else None))
        return built


class RequestMetricsMiddleware:
    """Pure ASGI, outermost: it times authentication too, and passes streamed bodies and
    long polls through untouched. The time is from the request's arrival to the end of
    its response body, seconds."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self.templates = RouteTemplates()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # the server's error middleware answers 500 when the app raises before a response

        async def send_timed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_timed)
        finally:
            cp: ControlPlane | None = getattr(scope["app"].state, "cp", None)
            if cp is not None:  # None only before the lifespan has set it
                cp.telemetry.request(scope["method"], self.templates.template(scope), status,
                                     time.perf_counter() - started)
