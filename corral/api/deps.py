"""Request dependencies shared by the routers."""

from __future__ import annotations

from fastapi import Request

from corral.control.context import ControlPlane


def plane(request: Request) -> ControlPlane:
    return request.app.state.cp  # type: ignore[no-any-return]
