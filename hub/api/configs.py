"""Config backups of a device: ``GET /api/devices/{name}/configs`` (versions), ``…/configs/{version}``
(one version's text) and ``GET /api/devices/{name}/config-diff?a=&b=`` (unified diff, default previous →
latest). Unknown devices and versions are 404 with a one-line ``detail`` (the app maps ``NotFound``).

A running config can hold secrets (password hashes, SNMP communities, keys): its text and diffs need the
operator role; the list of versions (times, hashes, sizes) is for every viewer."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get
from litestar.params import FromPath, Parameter, QueryParameter

from swtel.hub.storage import configs

from ..service import HubDep

CONFIG_TEXT = {"min_role": "operator"}  # read by the auth middleware (hub/auth/middleware.py)


@get("/api/devices/{name:str}/configs", tags=["config"], summary="A device's stored config versions, oldest first")
async def config_list(hub: HubDep, name: FromPath[str]) -> list[dict[str, Any]]:
    return await configs.versions(hub.require_storage().pool, name, must_exist=True)


@get("/api/devices/{name:str}/configs/{number:int}", tags=["config"], summary="One config version with its text",
     opt=CONFIG_TEXT)
async def config_get(hub: HubDep, name: FromPath[str], number: FromPath[Annotated[int, Parameter(ge=-(2**62), le=2**62, description="version number (negative: from the latest)")]]) -> dict[str, Any]:
    return await configs.version(hub.require_storage().pool, name, number)


@get("/api/devices/{name:str}/config-diff", tags=["config"], summary="Unified diff between two config versions",
     opt=CONFIG_TEXT)
async def config_diff(
    hub: HubDep,
    name: FromPath[str],
    a: Annotated[int | None, QueryParameter(ge=-(2**62), le=2**62, description="from this version (default: the one before b)")] = None,
    b: Annotated[int | None, QueryParameter(ge=-(2**62), le=2**62, description="to this version (default: the latest)")] = None,
) -> dict[str, Any]:
    if a is None and b is not None:
        a = b - 1
    return await configs.diff(hub.require_storage().pool, name, a, b)
