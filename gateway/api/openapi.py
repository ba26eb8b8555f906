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
        "document_type": {"type": "object", "description": "what was recognised: root, namespace, "
                          "customization_id, profile_id, sbdh, encoding", "additionalProperties": {}},
        "schematron_skipped": {"type": "boolean", "description": "the XSD failed, so Schematron did not run"},
        "layers": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "kind": {"type": "string", "enum": ["xsd", "schematron"]},
            "artefact": {"type": "string"}, "version": {"type": "string"}, "sha256": {"type": "string"},
            "status": {"type": "string"}, "fatal": {"type": "integer"}, "warnings": {"type": "integer"}}}},
    },
}


def _err(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


VALIDATION_UNAVAILABLE = _err("validation artefacts missing or validation timed out")


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
        "responses": {"200": _json("healthy", _ref("Health")), "503": _json("database unreachable", _ref("Health"))},
    }},
    "/api/v1/openapi.json": {"get": {
        "summary": "This document (no token needed)",
        "security": [],
        "responses": {"200": _json("OpenAPI document", {"type": "object"})},
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
            "200": {"description": "validation report (valid or not); SVRL with format=svrl",
                    "content": {"application/json": {"schema": _ref("Report")}, "application/svrl+xml": {}}},
            "400": _err("not XML, forbidden XML (DTD/entities), or malformed request"),
            "413": _err("document larger than [validation] max_bytes"),
            "422": _err("unknown document type or rule set"),
            "503": VALIDATION_UNAVAILABLE,
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

EVENTS = {"type": "array", "items": {"type": "object", "properties": {
    "at": {"type": "string", "format": "date-time"}, "kind": {"type": "string"}, "detail": {}}}}

INBOX_DETAILS = {"allOf": [_ref("InboxItem"), {"type": "object", "properties": {
    "conversation_id": {"type": ["string", "null"]},
    "duplicate_of": {"type": ["string", "null"], "description": "an earlier message with the same InstanceIdentifier"},
    "acknowledged_at": {"type": ["string", "null"], "format": "date-time"},
    "validation": {"oneOf": [_ref("Report"), {"type": "null"}]},
    "events": EVENTS,
    "webhooks": {"type": "array", "items": {"type": "object", "properties": {
        "id": {"type": "string"}, "event": {"type": "string"}, "state": {"type": "string"},
        "attempts": {"type": "integer"}, "last_status": {"type": ["integer", "null"]},
        "last_error": {"type": ["string", "null"]}, "delivered_at": {"type": ["string", "null"]}}}},
    "links": {"type": "object", "properties": {"document": {"type": "string"}, "ack": {"type": "string"}}},
}}]}

WEBHOOK = {"type": "object", "properties": {
    "url": {"type": ["string", "null"]},
    "secret": {"type": "string", "description": "PUT only: the new HMAC-SHA256 signing secret (shown once)"},
    "signature_header": {"type": "string"},
    "deliveries": {"type": "object", "additionalProperties": {"type": "integer"},
                   "description": "GET only: delivery counts by state"},
}}

ID_PARAM = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}


def _page(item: str) -> dict[str, Any]:
    return {"type": "object", "required": ["items", "next"], "properties": {
        "items": {"type": "array", "items": _ref(item)},
        "next": {"type": ["string", "null"], "description": "cursor of the next page; null on the last"}}}

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
        "responses": {"200": _json("a page of items", _page("InboxItem")), "400": _err("bad state, limit or cursor")},
    }},
    "/api/v1/inbox/{id}": {"get": {
        "summary": "One received document: metadata, validation report, events, webhook deliveries",
        "parameters": [ID_PARAM],
        "responses": {"200": _json("details", _ref("InboxDetails")), "404": _err("not in your inbox")},
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
        "responses": {"200": _json("the updated item", _ref("InboxItem")), "404": _err("not in your inbox")},
    }},
    "/api/v1/webhook": {
        "get": {"summary": "Your webhook URL and delivery counts by state",
                "responses": {"200": _json("url, signature_header, deliveries", _ref("Webhook"))}},
        "put": {"summary": "Set your webhook URL; returns a new HMAC-SHA256 signing secret (shown once)",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["url"], "additionalProperties": False,
                    "properties": {"url": {"type": "string"}}}}}},
                "responses": {"200": _json("url, secret, signature_header", _ref("Webhook")),
                              "400": _err("invalid URL or body (no field but url)"),
                              "413": _err("body above 1 MB")}},
        "delete": {"summary": "Stop webhook notifications",
                   "responses": {"200": _json("cleared: url is null", _ref("Webhook"))}},
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
        "last_error": {"type": ["string", "null"]},
        "links": {"type": "object", "properties": {
            "self": {"type": "string"}, "receipt": {"type": "string"}, "pdf": {"type": "string"}}},
    },
}

DOCUMENT_DETAILS = {"allOf": [_ref("Document"), {"type": "object", "properties": {
    "attempts": {"type": "array", "description": "one item per attempt", "items": {"type": "object", "properties": {
        "number": {"type": "integer"}, "started_at": {"type": "string", "format": "date-time"},
        "finished_at": {"type": ["string", "null"], "format": "date-time"},
        "outcome": {"type": ["string", "null"],
                    "enum": ["delivered", "transient", "permanent", "not-serviced", "interrupted", None]},
        "endpoint_url": {"type": ["string", "null"]}, "http_status": {"type": ["integer", "null"]},
        "error": {"type": ["string", "null"]}}}},
    "events": EVENTS,
    "decisions": {"type": "array", "description": "B2C routing: each channel tried or skipped",
                  "items": {"type": "object", "properties": {
                      "channel": {"type": "string"}, "position": {"type": "integer"}, "state": {"type": "string"},
                      "reason": {"type": ["string", "null"]}, "detail": {}, "channel_ref": {"type": ["string", "null"]},
                      "cost_nok": {"type": ["string", "null"]}, "attempts": {"type": "integer"}, "summary": {},
                      "at": {"type": "string", "format": "date-time"}}}},
    "evidence": {"type": "array", "items": {"type": "object", "properties": {
        "kind": {"type": "string"}, "media_type": {"type": "string"}, "sha256": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "url": {"type": ["string", "null"], "description": "null for internal kinds"}}}},
}}]}

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
                "202": {"description": "queued (also the answer to a repeat with the same Idempotency-Key)",
                        "headers": {"Location": {"schema": {"type": "string"}, "description": "links.self"}},
                        "content": {"application/json": {"schema": {
                            "type": "object", "required": ["id", "state", "links"], "properties": {
                                "id": {"type": "string"}, "state": {"type": "string", "enum": DOCUMENT_STATES},
                                "links": DOCUMENT["properties"]["links"]}}}}},
                "400": _err("not XML, bad multipart, bad options or recipient"),
                "403": _err("the sender is not your participant"),
                "409": _err("Idempotency-Key reused with another body"),
                "413": _err("too large"),
                "422": _err("invalid document (details = validation report), unknown type, or a "
                            "StandardBusinessDocument"),
                "503": VALIDATION_UNAVAILABLE,
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
            "responses": {"200": _json("a page", _page("Document")),
                          "400": _err("bad state, limit, cursor, sender or receiver")},
        },
    },
    "/api/v1/documents/{id}": {"get": {
        "summary": "State, endpoint, attempts (with timestamps and errors), events and evidence of a document",
        "parameters": [ID_PARAM],
        "responses": {"200": _json("details", _ref("DocumentDetails")), "404": _err("no such document")},
    }},
    "/api/v1/documents/{id}/evidence/{kind}": {"get": {
        "summary": "Stored evidence: receipt (the receiving AP's signed receipt), as4-request, "
                   "validation-report, error-signal",
        "parameters": [ID_PARAM, {"name": "kind", "in": "path", "required": True, "schema": {
            "type": "string", "enum": ["receipt", "as4-request", "validation-report", "error-signal"]}}],
        "responses": {"200": {"description": "the evidence bytes, with the media type they were stored with",
                              "content": {"application/soap+xml": {}, "multipart/related": {},
                                          "application/json": {"schema": _ref("Report")}}},
                      "404": _err("no such document (not-found) or no evidence of that kind yet (no-evidence)")},
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

AMOUNT = {"type": "string", "description": "NOK, two decimals"}
CHANNEL_REPORT = {"type": "object", "properties": {
    "from": {"type": "string", "format": "date-time"}, "to": {"type": "string", "format": "date-time"},
    "print_cost_nok": {"type": "string"},
    "channels": {"type": "array", "items": {"type": "object", "properties": {
        "channel": {"type": "string"}, "invoices": {"type": "integer"}, "delivered": {"type": "integer"},
        "delivery_rate": {"type": ["number", "null"]}, "cost_nok": AMOUNT, "saving_vs_print_nok": AMOUNT}}},
    "total": {"type": "object", "properties": {
        "delivered": {"type": "integer"}, "cost_nok": AMOUNT, "saving_vs_print_nok": AMOUNT}},
}}

HEALTH = {"type": "object", "required": ["status", "version", "database"], "properties": {
    "status": {"type": "string", "enum": ["ok", "degraded"]}, "version": {"type": "string"},
    "database": {"type": "string", "description": "ok, or error: <kind>"}}}

PATHS.update({
    "/api/v1/routing": {
        "get": {"summary": "Your channel routing: priority lists, channel settings, costs",
                "responses": {"200": _json("routing", _ref("Routing"))}},
        "put": {"summary": "Replace your channel routing (validated by every channel adapter)",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Routing"}}}},
                "responses": {"200": _json("the stored routing (secrets masked)", _ref("Routing")),
                              "400": _err("invalid routing configuration"), "413": _err("body above 1 MB")}},
    },
    "/api/v1/reports/channels": {"get": {
        "summary": "Per channel: invoices, delivery rate, cost and the saving against print-only",
        "parameters": [{"name": "from", "in": "query", "schema": {"type": "string"},
                        "description": "YYYY-MM-DD or ISO timestamp (default: 30 days before to)"},
                       {"name": "to", "in": "query", "schema": {"type": "string"},
                        "description": "YYYY-MM-DD (inclusive day) or ISO timestamp (default: now)"}],
        "responses": {"200": _json("report", _ref("ChannelReport")), "400": _err("bad period"),
                      "409": _err("the stored routing cannot be read")},
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
                      "503": _err("no [ap] identity configured")},
    }},
    "/callbacks/sms/linkmobility": {"post": {
        "summary": "LINK Mobility delivery reports (no bearer token: a shared secret in `token` or "
                   "X-Sendgw-Dlr-Token, see [callbacks])",
        "security": [],
        "responses": {"200": {"description": "recorded", "content": {"text/plain": {}}},
                      "400": {"description": "unreadable report", "content": {"text/plain": {}}},
                      "401": {"description": "bad token", "content": {"text/plain": {}}},
                      "403": {"description": "source not allowed", "content": {"text/plain": {}}}},
    }},
})


def _with_auth_errors(paths: dict[str, Any]) -> dict[str, Any]:
    """Every operation behind the bearer token can answer 401; say so once, here."""
    for ops in paths.values():
        for op in ops.values():
            if op.get("security") != []:
                op["responses"].setdefault("401", _err("missing, invalid or revoked bearer token"))
    return paths


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
                        "InboxDetails": INBOX_DETAILS, "Webhook": WEBHOOK, "Document": DOCUMENT,
                        "DocumentDetails": DOCUMENT_DETAILS, "Routing": ROUTING_CONFIG,
                        "ChannelReport": CHANNEL_REPORT, "Health": HEALTH},
        },
        "security": [{"bearer": []}],
        "paths": _with_auth_errors(PATHS),
    }


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(document())
