"""POST /api/v1/validate: the validation service over HTTP (report in the body, always 200)."""

from __future__ import annotations

from aiohttp import web

from gateway.api.body import read_upload
from gateway.api.errors import ApiError
from gateway.services import services
from validation.errors import ArtefactError, ValidationEngineError, ValidationInputError

routes = web.RouteTableDef()


async def run_validation(svc, data: bytes, rules: str | None, fmt: str = "json"):
    """The validation service's answer, or the ApiError its failure maps to (unusable input 4xx,
    artefacts missing 503, a crashed or timed-out validation worker 500/503)."""
    try:
        return await svc.validation.validate(data, rules, fmt=fmt)
    except (ValidationInputError, ArtefactError, ValidationEngineError) as exc:
        raise ApiError(exc.http_status, exc.code, str(exc)) from exc


def rules_option(options: dict) -> str | None:
    """`options.rules` of a multipart upload: a rule set id, or absent."""
    rules = options.get("rules")
    if rules is not None and not isinstance(rules, str):
        raise ApiError(400, "invalid-options", "options.rules must be a string (a rule set id)")
    return rules or None


@routes.post("/api/v1/validate")
async def validate(request: web.Request) -> web.StreamResponse:
    svc = services(request.app)
    upload = await read_upload(request, svc.settings.validation.max_bytes)
    rules = request.query.get("rules") or rules_option(upload.options) or svc.settings.validation.default_rules or None
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "svrl"):
        raise ApiError(400, "invalid-format", "format must be json or svrl")
    if fmt == "svrl":
        result = await run_validation(svc, upload.data, rules, "svrl")
        return web.Response(body=result, content_type="application/svrl+xml")
    # the worker serialises the report once; the server passes the bytes through
    result = await run_validation(svc, upload.data, rules, "json-bytes")
    return web.Response(body=result, content_type="application/json")
