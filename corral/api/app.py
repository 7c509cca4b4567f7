"""The FastAPI application: public API, agent API, access and audit, error mapping, reconciler lifecycle."""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from corral import __version__
from corral.api import routes_alerts
from corral.api import (routes_agent, routes_artifacts, routes_audit, routes_clusters, routes_data, routes_hosts,
                        routes_groups, routes_metrics, routes_monitoring, routes_repository, routes_steps, routes_tokens)
from corral.api.access import METRICS_PATH, AccessMiddleware, startup_refusal
from corral.api.request_metrics import RequestMetricsMiddleware
from corral.control.context import ControlPlane
from corral.errors import CorralError, ValidationFailed
from corral.reconcile.loop import Reconciler
from corral.settings import Settings


def create_app(cp: ControlPlane | None = None, run_reconciler: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        plane = cp or ControlPlane.from_settings(Settings.from_env())
        refusal = startup_refusal(plane.settings, plane.store)
        if refusal:  # `corral.server.serve` says so before this; here for any other way of serving the app
            raise RuntimeError(f"refusing to start: {refusal}")
        app.state.cp = plane
        reconciler = Reconciler(plane) if run_reconciler else None
        if reconciler:
            reconciler.start()
        try:
            yield
        finally:
            if reconciler:
                reconciler.stop()
            plane.heartbeats.flush(plane.store, time.time(), force=True)  # the last heartbeat times kept in memory
            plane.ssh.close_all()
            plane.repository.close()

    app = FastAPI(title="Corral", version=__version__, lifespan=lifespan,
                  description="Self-hosted elastic MapReduce: clusters, steps, events.")

    @app.exception_handler(RequestValidationError)
    async def _malformed(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own answer echoes each bad value ("input"), and a bad value may be a
        # secret (a too-long password, an object-store key): name the field, never the value.
        detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "value_error")}
                  for e in exc.errors()]
        return JSONResponse(status_code=422, content={"detail": detail})

    @app.exception_handler(ValidationFailed)
    async def _invalid(_: Request, exc: ValidationFailed) -> JSONResponse:
        detail = [{"loc": [exc.where, *e.loc], "msg": e.msg, "type": "value_error"} for e in exc.errors]
        return JSONResponse(status_code=422, content={"detail": detail})

    @app.exception_handler(CorralError)
    async def _corral_error(_: Request, exc: CorralError) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content={"detail": str(exc)})

    @app.get("/api/v1/health", tags=["meta"])
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get(METRICS_PATH, tags=["meta"], response_class=Response)
    def metrics(request: Request) -> Response:
        """The control plane's own metrics and the nodes' newest measurements, in the
        Prometheus text format (``corral.control.telemetry``); a viewer's when auth is on."""
        plane: ControlPlane = request.app.state.cp
        return Response(plane.telemetry.render(plane), media_type=CONTENT_TYPE_LATEST)

    # The agents' routes first: most requests are theirs (a report every 2 s per node), and
    # a request is matched against each route in turn (the prefixes do not overlap).
    app.include_router(routes_agent.router, prefix="/agent/v1")
    app.include_router(routes_repository.router, prefix="/agent/v1")
    app.include_router(routes_clusters.router, prefix="/api/v1")
    app.include_router(routes_groups.router, prefix="/api/v1")
    app.include_router(routes_metrics.router, prefix="/api/v1")
    app.include_router(routes_monitoring.router, prefix="/api/v1")
    app.include_router(routes_alerts.router, prefix="/api/v1")
    app.include_router(routes_steps.router, prefix="/api/v1")
    app.include_router(routes_data.router, prefix="/api/v1")
    app.include_router(routes_artifacts.router, prefix="/api/v1")
    app.include_router(routes_tokens.router, prefix="/api/v1")
    app.include_router(routes_audit.router, prefix="/api/v1")
    app.include_router(routes_hosts.router, prefix="/api/v1")
    # Every /api/v1 route but health, and /metrics, by prefix: also routers included after this line.
    app.add_middleware(AccessMiddleware)
    # Added last, so outermost: every request is timed, those AccessMiddleware refuses too.
    app.add_middleware(RequestMetricsMiddleware)
    logging.getLogger("corral").setLevel(logging.INFO)
    return app
