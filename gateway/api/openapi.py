"""GET /api/v1/openapi.json: the OpenAPI 3.1 description of the HTTP API.

Kept next to the handlers and extended with every endpoint; a test checks that every route the
app serves is described here.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway import __version__

routes = web.RouteTableDef()

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "stable machine-readable code"},
                "message": {"type": "string", "description": "human-readable reason"},
                "details": {},
            },
        }
    },
}

REPORT_ITEM = {
    "type": "object",
    "required": ["rule", "severity", "message", "location", "line", "layer"],
    "properties": {
        "rule": {"type": "string", "description": "rule id, or XSD for schema errors"},
        "severity": {"type": "string", "enum": ["fatal", "warning"]},
        "message": {"type": "string"},
        "location": {"type": "string", "description": "XPath of the failing node"},
        "line": {"type": ["integer", "null"]},
        "layer": {"type": "string"},
    },
}

REPORT = {
    "type": "object",
    "required": ["valid", "rules", "artefacts", "errors", "warnings"],
    "properties": {
        "valid": {"type": "boolean", "description": "false iff there is any fatal item"},
        "rules": {"type": "string", "description": "id of the rule set applied"},
        "artefacts": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "version": {"type": "string"}}}},
        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/ReportItem"}},
        "warnings": {"type": "array", "items": {"$ref": "#/components/schemas/ReportItem"}},
    },
}


def _err(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


XML_BODY = {
    "required": True,
    "content": {
        "application/xml": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "file": {"type": "string", "format": "binary"},
            "options": {"type": "string", "description": "JSON object with options"}}}},
    },
}

PATHS: dict[str, Any] = {
    "/health": {"get": {
        "summary": "Liveness and database check (no token needed)",
        "security": [],
        "responses": {"200": {"description": "healthy"}, "503": {"description": "database unreachable"}},
    }},
    "/api/v1/openapi.json": {"get": {
        "summary": "This document (no token needed)",
        "security": [],
        "responses": {"200": {"description": "OpenAPI document"}},
    }},
    "/api/v1/validate": {"post": {
        "summary": "Validate a document (XSD + Schematron) and return the report",
        "parameters": [
            {"name": "rules", "in": "query", "required": False, "schema": {"type": "string"},
             "description": "force a rule set id (see `sendgw artefacts list`)"},
            {"name": "format", "in": "query", "required": False,
             "schema": {"type": "string", "enum": ["json", "svrl"], "default": "json"}},
        ],
        "requestBody": XML_BODY,
        "responses": {
            "200": {"description": "validation report (valid or not)",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Report"}}}},
            "400": _err("not XML, forbidden XML (DTD/entities), or malformed request"),
            "401": _err("missing or invalid bearer token"),
            "413": _err("document larger than [validation] max_bytes"),
            "422": _err("unknown document type or rule set"),
        },
    }},
}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "SEND gateway API", "version": __version__,
                 "description": "Peppol access point and EHF gateway. All /api/v1 endpoints except this "
                                "document need `Authorization: Bearer <token>` (see `sendgw tenant create`). "
                                "Errors are `{\"error\": {\"code\", \"message\"}}`."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR, "Report": REPORT, "ReportItem": REPORT_ITEM},
        },
        "security": [{"bearer": []}],
        "paths": PATHS,
    }


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(document())
