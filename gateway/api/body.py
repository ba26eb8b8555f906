"""Reading request bodies: an uploaded document (raw XML or a multipart/form-data part) and the
small JSON bodies of the settings endpoints, each with a size cap."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import BadHttpMessage

from gateway.api.errors import ApiError

CHUNK = 1 << 16
OPTIONS_LIMIT = 1 << 20
JSON_LIMIT = 1 << 20  # a webhook URL or a routing configuration; not [server] max_request_bytes


@dataclass
class Upload:
    data: bytes
    options: dict[str, Any] = field(default_factory=dict)
    filename: str | None = None


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "document-too-large", f"document larger than the limit of {limit} bytes")


async def _read_limited(stream, limit: int, too_large: ApiError | None = None) -> bytes:
    chunks, size = [], 0
    while True:
        chunk = await stream.read(CHUNK) if hasattr(stream, "read") else None
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise too_large or _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_part(part: BodyPartReader, limit: int, too_large: ApiError) -> bytes:
    """A part's bytes, refused as soon as they pass `limit` (never buffered whole first)."""
    data = bytearray()
    while chunk := await part.read_chunk(CHUNK):
        data += chunk
        if len(data) > limit:
            raise too_large
    return bytes(data)


async def read_upload(request: web.Request, limit: int, *, file_field: str = "file") -> Upload:
    """The document from the request: multipart part `file_field` (+ JSON part `options`) or the raw body."""
    if request.content_length is not None and request.content_length > limit + (1 << 20):
        raise _too_large(limit)
    if request.content_type.startswith("multipart/"):
        try:
            reader = await request.multipart()
            upload: Upload | None = None
            options: dict[str, Any] = {}
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):  # a nested multipart has no name to look for
                    raise ApiError(400, "invalid-multipart", "nested multipart parts are not accepted")
                if part.name == file_field:
                    if upload is not None:
                        raise ApiError(400, "invalid-multipart", f"more than one part named {file_field!r}")
                    upload = Upload(await _read_part(part, limit, _too_large(limit)), filename=part.filename)
                elif part.name == "options":
                    raw = await _read_part(part, OPTIONS_LIMIT, ApiError(
                        413, "options-too-large", "the options part is larger than 1 MB"))
                    try:
                        options = json.loads(raw or b"{}")
                    except (ValueError, RecursionError) as exc:  # RecursionError: [[[[… nested too deep
                        raise ApiError(400, "invalid-options", f"options part is not JSON: {exc}") from exc
                    if not isinstance(options, dict):
                        raise ApiError(400, "invalid-options", "options part must be a JSON object")
                else:
                    await part.release()
        except (ValueError, AssertionError, BadHttpMessage) as exc:  # aiohttp's multipart parser errors
            raise ApiError(400, "invalid-multipart", f"malformed multipart body: {exc}") from exc
        if upload is None:
            raise ApiError(400, "missing-file", f"multipart body has no part named {file_field!r}")
        upload.options = options
        return upload
    data = await _read_limited(request.content, limit)
    if not data:
        raise ApiError(400, "empty-body", "request body is empty; send the XML document as the body")
    return Upload(data)


async def read_json(request: web.Request, what: str) -> Any:
    """The JSON body of a settings request; `what` says in the 400 what it should have been."""
    too_large = ApiError(413, "payload-too-large", "a JSON body may be at most 1 MB")
    if request.content_length is not None and request.content_length > JSON_LIMIT:
        raise too_large
    raw = await _read_limited(request.content, JSON_LIMIT, too_large)
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: [[[[… nested too deep for the parser
        raise ApiError(400, "invalid-json", f"body must be {what}") from None
