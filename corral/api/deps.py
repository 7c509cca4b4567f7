"""Request dependencies shared by the routers."""

from __future__ import annotations

from fastapi import Request

from corral.control.context import ControlPlane


async def plane(request: Request) -> ControlPlane:
    # async: FastAPI runs a plain ``def`` dependency on a worker thread, a hop (and a turn
    # at the GIL behind whatever else runs) per request for an attribute read.
    return request.app.state.cp  # type: ignore[no-any-return]
