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


INBOX_ITEM = {
    "type": "object",
    "required": ["id", "sender", "receiver", "document_type", "process", "as4_message_id", "instance_id",
                 "received_at", "state", "valid"],
    "properties": {
        "id": {"type": "string"},
        "sender": {"type": "string", "description": "SBDH sender participant id"},
        "receiver": {"type": "string", "description": "SBDH receiver participant id"},
        "document_type": {"type": "string"},
        "process": {"type": "string"},
        "as4_message_id": {"type": "string"},
        "instance_id": {"type": "string", "description": "SBDH InstanceIdentifier"},
        "received_at": {"type": "string", "format": "date-time"},
        "state": {"type": "string", "enum": ["received", "acknowledged"]},
        "valid": {"type": ["boolean", "null"], "description": "null until validated"},
    },
}

ID_PARAM = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
PAGE_PARAMS = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}},
    {"name": "cursor", "in": "query", "schema": {"type": "string"}, "description": "`next` of the previous page"},
]

PATHS.update({
    "/api/v1/inbox": {"get": {
        "summary": "Documents received for your participants, newest first",
        "parameters": [{"name": "state", "in": "query", "schema": {"type": "string",
                                                                   "enum": ["received", "acknowledged"]}}]
        + PAGE_PARAMS,
        "responses": {"200": {"description": "a page of items", "content": {"application/json": {"schema": {
            "type": "object", "properties": {
                "items": {"type": "array", "items": {"$ref": "#/components/schemas/InboxItem"}},
                "next": {"type": ["string", "null"]}}}}}},
            "400": _err("bad state, limit or cursor"), "401": _err("missing or invalid bearer token")},
    }},
    "/api/v1/inbox/{id}": {"get": {
        "summary": "One received document: metadata, validation report, events, webhook deliveries",
        "parameters": [ID_PARAM],
        "responses": {"200": {"description": "details"}, "404": _err("not in your inbox")},
    }},
    "/api/v1/inbox/{id}/document": {"get": {
        "summary": "The business document (SBDH removed), byte-identical to what the sender put in it",
        "parameters": [ID_PARAM],
        "responses": {"200": {"description": "XML", "content": {"application/xml": {}}},
                      "404": _err("not in your inbox")},
    }},
    "/api/v1/inbox/{id}/ack": {"post": {
        "summary": "Acknowledge that you have taken over the document (idempotent)",
        "parameters": [ID_PARAM],
        "responses": {"200": {"description": "the updated item"}, "404": _err("not in your inbox")},
    }},
    "/api/v1/webhook": {
        "get": {"summary": "Your webhook URL and delivery counts by state",
                "responses": {"200": {"description": "webhook"}}},
        "put": {"summary": "Set your webhook URL; returns a new HMAC-SHA256 signing secret (shown once)",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["url"], "properties": {"url": {"type": "string"}}}}}},
                "responses": {"200": {"description": "url, secret, signature_header"},
                              "400": _err("invalid URL or body")}},
        "delete": {"summary": "Stop webhook notifications", "responses": {"200": {"description": "cleared"}}},
    },
})

DOCUMENT_STATES = ["queued", "sending", "retrying", "delivered", "failed", "undeliverable", "routing", "opened",
                   "paid"]
DOCUMENT = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "state": {"type": "string", "enum": DOCUMENT_STATES},
        "sender": {"type": "string"}, "receiver": {"type": "string"},
        "document_type": {"type": "string"}, "process": {"type": "string"},
        "as4_message_id": {"type": "string", "description": "kept for every retry"},
        "instance_id": {"type": "string", "description": "SBDH InstanceIdentifier"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "endpoint": {"type": ["string", "null"]},
        "attempt_count": {"type": "integer"},
        "attempts": {"type": "array", "items": {"type": "object"},
                     "description": "GET /api/v1/documents/{id} only: one item per attempt with timestamps, "
                                    "outcome, HTTP status and error"},
        "last_error": {"type": ["string", "null"]},
        "links": {"type": "object"},
    },
}

PATHS.update({
    "/api/v1/documents": {
        "post": {
            "summary": "Submit a document for delivery: validated, then durably queued (202)",
            "parameters": [{"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"},
                            "description": "same key + same body = the same document; different body = 409"}],
            "requestBody": {"required": True, "content": {
                "application/xml": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {"schema": {"type": "object", "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "options": {"type": "string", "description":
                                "JSON: receiver, document_type, process (overrides), recipient (B2C hints), "
                                "channel, rules"}}}}}},
            "responses": {
                "202": {"description": "queued", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"id": {"type": "string"}, "state": {"type": "string"},
                                                     "links": {"type": "object"}}}}}},
                "400": _err("not XML or bad options"), "403": _err("the sender is not your participant"),
                "409": _err("Idempotency-Key reused with another body"),
                "413": _err("too large"),
                "422": _err("invalid document (details = validation report) or unknown type"),
            },
        },
        "get": {
            "summary": "Your submitted documents, newest first",
            "parameters": [{"name": "state", "in": "query", "schema": {"type": "string", "enum": DOCUMENT_STATES}},
                           {"name": "receiver", "in": "query", "schema": {"type": "string"},
                            "description": "participant id, e.g. 0192:923609016"},
                           {"name": "sender", "in": "query", "schema": {"type": "string"},
                            "description": "participant id"}]
            + PAGE_PARAMS,
            "responses": {"200": {"description": "a page", "content": {"application/json": {"schema": {
                "type": "object", "properties": {
                    "items": {"type": "array", "items": {"$ref": "#/components/schemas/Document"}},
                    "next": {"type": ["string", "null"]}}}}}}},
        },
    },
    "/api/v1/documents/{id}": {"get": {
        "summary": "State, endpoint, attempts (with timestamps and errors), events and evidence of a document",
        "parameters": [ID_PARAM],
        "responses": {"200": {"description": "details"}, "404": _err("no such document")},
    }},
    "/api/v1/documents/{id}/evidence/{kind}": {"get": {
        "summary": "Stored evidence: receipt (the receiving AP's signed receipt), as4-request, "
                   "validation-report, error-signal",
        "parameters": [ID_PARAM, {"name": "kind", "in": "path", "required": True, "schema": {
            "type": "string", "enum": ["receipt", "as4-request", "validation-report", "error-signal"]}}],
        "responses": {"200": {"description": "the evidence bytes"}, "404": _err("no such document or evidence")},
    }},
})

ROUTING_CONFIG = {
    "type": "object",
    "description": "Ordered channel lists per segment (b2g is always [\"peppol\"]), per-channel settings "
                   "(secrets masked as ******** on GET; send them back unchanged to keep them) and costs.",
    "properties": {
        "b2c": {"type": "array", "items": {"type": "string", "enum": [
            "peppol", "efaktura", "avtalegiro", "digipost", "email", "sms", "print"]}},
        "b2b": {"type": "array", "items": {"type": "string"}},
        "b2g": {"type": "array", "items": {"type": "string", "enum": ["peppol"]}},
        "channels": {"type": "object", "additionalProperties": {"type": "object", "properties": {
            "cost_nok": {"type": "string"}, "settings": {"type": "object"}}}},
        "print_cost_nok": {"type": "string", "description": "baseline for the savings report"},
    },
}

PATHS.update({
    "/api/v1/routing": {
        "get": {"summary": "Your channel routing: priority lists, channel settings, costs",
                "responses": {"200": {"description": "routing", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Routing"}}}}}},
        "put": {"summary": "Replace your channel routing (validated by every channel adapter)",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Routing"}}}},
                "responses": {"200": {"description": "the stored routing (secrets masked)"},
                              "400": _err("invalid routing configuration")}},
    },
    "/api/v1/reports/channels": {"get": {
        "summary": "Per channel: invoices, delivery rate, cost and the saving against print-only",
        "parameters": [{"name": "from", "in": "query", "schema": {"type": "string"},
                        "description": "YYYY-MM-DD or ISO timestamp (default: 30 days before to)"},
                       {"name": "to", "in": "query", "schema": {"type": "string"},
                        "description": "YYYY-MM-DD (inclusive day) or ISO timestamp (default: now)"}],
        "responses": {"200": {"description": "report"}, "400": _err("bad period")},
    }},
    "/api/v1/documents/{id}/pdf": {"get": {
        "summary": "The document rendered as a Norwegian PDF/A-3 invoice with the UBL embedded",
        "parameters": [ID_PARAM],
        "responses": {"200": {"description": "PDF", "content": {"application/pdf": {}}},
                      "404": _err("no such document"), "422": _err("not an invoice or credit note")},
    }},
    "/as4": {"post": {
        "summary": "Peppol AS4 2.0.3 endpoint for other access points (path: [server] as4_path). Answers a "
                   "signed receipt, or a signed ebMS error signal (EBMS:0004 PEPPOL:NOT_SERVICED with "
                   "[as4] not_serviced_http_status, others with [as4] error_http_status)",
        "security": [],
        "requestBody": {"required": True, "content": {"multipart/related": {}}},
        "responses": {"200": {"description": "signed receipt (or NOT_SERVICED signal)",
                              "content": {"application/soap+xml": {}}},
                      "413": {"description": "message above [as4] max_message_bytes (signed signal)"},
                      "500": {"description": "signed ebMS error signal"},
                      "503": {"description": "no [ap] identity configured"}},
    }},
    "/callbacks/sms/linkmobility": {"post": {
        "summary": "LINK Mobility delivery reports (no bearer token: a shared secret in `token` or "
                   "X-Sendgw-Dlr-Token, see [callbacks])",
        "security": [],
        "responses": {"200": {"description": "recorded"}, "400": {"description": "unreadable report"},
                      "401": {"description": "bad token"}, "403": {"description": "source not allowed"}},
    }},
})


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "SEND gateway API", "version": __version__,
                 "description": "Peppol access point and EHF gateway. All /api/v1 endpoints except this "
                                "document need `Authorization: Bearer <token>` (see `sendgw tenant create`). "
                                "Errors are `{\"error\": {\"code\", \"message\"}}`."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR, "Report": REPORT, "ReportItem": REPORT_ITEM, "InboxItem": INBOX_ITEM,
                        "Document": DOCUMENT, "Routing": ROUTING_CONFIG},
        },
        "security": [{"bearer": []}],
        "paths": PATHS,
    }


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(document())
