"""POST /api/v1/validate: the validation service over HTTP (report in the body, always 200)."""

from __future__ import annotations

from aiohttp import web

from gateway.api.body import read_upload
from gateway.api.errors import ApiError
from gateway.services import services
from validation.errors import ArtefactError, ValidationInputError

routes = web.RouteTableDef()


@routes.post("/api/v1/validate")
async def validate(request: web.Request) -> web.StreamResponse:
    svc = services(request.app)
    upload = await read_upload(request, svc.settings.validation.max_bytes)
    rules = request.query.get("rules") or upload.options.get("rules") or svc.settings.validation.default_rules or None
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "svrl"):
        raise ApiError(400, "invalid-format", "format must be json or svrl")
    try:
        result = await svc.validation.validate(upload.data, rules, fmt=fmt)
    except ValidationInputError as exc:
        raise ApiError(exc.http_status, exc.code, str(exc)) from exc
    except ArtefactError as exc:
        raise ApiError(503, "artefacts-unavailable", str(exc)) from exc
    if fmt == "svrl":
        return web.Response(body=result, content_type="application/svrl+xml")
    return web.json_response(result)
