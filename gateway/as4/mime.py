"""MIME multipart/related packaging of AS4 messages (SOAP part first, then one part per payload).

The parser streams: it reads the body in chunks, keeps the SOAP part in memory (capped) and spools
every attachment to a Blob (temp file when large). Caps: total size, number of parts, header block
size, SOAP size. Both CRLF (RFC 2046) and bare-LF framing are accepted because real captured
messages (phase4's WrongCompression vector) use LF.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterable

from .blob import CHUNK, Blob, BlobWriter
from .errors import EbmsError, mime_inconsistency
from .limits import DEFAULT_LIMITS, Limits


@dataclass
class MimePart:
    headers: dict[str, str]  # lower-cased names; last one wins
    blob: Blob

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    @property
    def content_id(self) -> str | None:
        cid = self.headers.get("content-id")
        if cid is None:
            return None
        cid = cid.strip()
        if cid.startswith("<") and cid.endswith(">"):
            cid = cid[1:-1]
        return cid.strip()


@dataclass
class MimeMessage:
    soap: bytes
    soap_headers: dict[str, str]
    attachments: list[MimePart] = field(default_factory=list)

    def close(self) -> None:
        for part in self.attachments:
            part.blob.close()


_PARAM_RE = re.compile(r';\s*([!#$%&\'*+\-.^_`|~0-9A-Za-z]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)')


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Type header into (lower-case media type, parameters) per RFC 2045/7231."""
    value = (value or "").strip()
    mtype, _, rest = value.partition(";")
    params: dict[str, str] = {}
    for name, val in _PARAM_RE.findall(";" + rest):
        if val.startswith('"'):
            val = re.sub(r"\\(.)", r"\1", val[1:-1])
        params.setdefault(name.lower(), val)
    return mtype.strip().lower(), params


def _headers(block: bytes, limits: Limits) -> dict[str, str]:
    if len(block) > limits.max_part_header_bytes:
        raise mime_inconsistency("MIME part header block too large", "mime-header-size")
    try:
        text = block.decode("ascii")
    except UnicodeDecodeError:
        text = block.decode("latin-1")
    out: dict[str, str] = {}
    last = None
    for line in re.split(r"\r?\n", text):
        if not line:
            continue
        if line[0] in " \t" and last:
            out[last] += " " + line.strip()
            continue
        if ":" not in line:
            raise mime_inconsistency(f"malformed MIME header line {line[:60]!r}", "mime-header")
        name, value = line.split(":", 1)
        last = name.strip().lower()
        out[last] = value.strip()
    return out


class _Reader:
    """Buffered reader over bytes or a binary file, counting bytes against the message cap."""

    def __init__(self, source: bytes | BinaryIO, cap: int):
        if isinstance(source, (bytes, bytearray, memoryview)):
            if len(source) > cap:
                raise EbmsError("EBMS:0007", f"message larger than {cap} bytes", check="message-size",
                                http_status=413)
            source = io.BytesIO(source)  # shares the bytes; parsed chunk by chunk like a file
        self._src = source
        self.buf = bytearray()
        self.total = 0
        self.cap = cap
        self.eof = False

    def fill(self) -> bool:
        if self.eof:
            return False
        chunk = self._src.read(CHUNK)
        if not chunk:
            self.eof = True
            return False
        self.total += len(chunk)
        if self.total > self.cap:
            raise EbmsError("EBMS:0007", f"message larger than {self.cap} bytes", check="message-size",
                            http_status=413)
        self.buf += chunk
        return True


def parse_multipart(source: bytes | BinaryIO | Path, content_type: str, limits: Limits = DEFAULT_LIMITS,
                    tmp_dir: Path | str | None = None) -> MimeMessage:
    """Parse a multipart/related AS4 body. The first part must be the SOAP 1.2 envelope."""
    if isinstance(source, Path):
        with open(source, "rb") as fh:
            return parse_multipart(fh, content_type, limits, tmp_dir)
    mtype, params = parse_content_type(content_type or "")
    if mtype != "multipart/related":
        raise mime_inconsistency(f"Content-Type {mtype!r} is not multipart/related", "content-type")
    if params.get("type") and params["type"].lower() != "application/soap+xml":
        raise mime_inconsistency(f"multipart type {params['type']!r} is not application/soap+xml", "content-type")
    boundary = params.get("boundary")
    if not boundary or len(boundary) > 200:
        raise mime_inconsistency("multipart/related without a usable boundary", "boundary")
    dash = b"--" + boundary.encode("latin-1")
    rd = _Reader(source, limits.max_message_bytes)

    # Locate the first delimiter (at the start, or after a line break in the preamble).
    while True:
        idx = 0 if rd.buf.startswith(dash) else -1
        if idx < 0:
            j = rd.buf.find(b"\n" + dash)
            idx = j + 1 if j >= 0 else -1
        if idx >= 0:
            break
        if len(rd.buf) > limits.max_part_header_bytes * 4:
            raise mime_inconsistency("no MIME boundary found in preamble", "boundary")
        if not rd.fill():
            raise mime_inconsistency("MIME boundary not found", "boundary")
    del rd.buf[: idx + len(dash)]
    # Detect framing from the end of the first delimiter line.
    while b"\n" not in rd.buf[:200] and rd.fill():
        pass
    nl = rd.buf.find(b"\n")
    if nl < 0 or rd.buf[:nl].rstrip(b"\r \t"):
        raise mime_inconsistency("malformed first MIME delimiter line", "boundary")
    crlf = nl > 0 and rd.buf[nl - 1:nl] == b"\r"
    eol = b"\r\n" if crlf else b"\n"
    delim = eol + dash
    del rd.buf[: nl + 1]

    parts: list[tuple[dict[str, str], Blob]] = []
    closed = False
    try:
        while True:
            # headers
            while True:
                if rd.buf.startswith(eol):
                    hdr_end, hdr_len = 0, len(eol)
                    break
                j = rd.buf.find(eol + eol)
                if j >= 0:
                    hdr_end, hdr_len = j, 2 * len(eol)
                    break
                if len(rd.buf) > limits.max_part_header_bytes:
                    raise mime_inconsistency("MIME part header block too large", "mime-header-size")
                if not rd.fill():
                    raise mime_inconsistency("truncated MIME part headers", "truncated")
            headers = _headers(bytes(rd.buf[:hdr_end]), limits)
            del rd.buf[: hdr_end + hdr_len]
            if len(parts) + 1 > limits.max_parts:
                raise mime_inconsistency(f"more than {limits.max_parts} MIME parts", "mime-part-count")
            first = not parts
            writer = BlobWriter(tmp_dir, spill_at=limits.spill_bytes,
                                limit=limits.max_soap_bytes if first else None)
            try:
                while True:
                    j = rd.buf.find(delim)
                    if j >= 0:
                        writer.write(bytes(rd.buf[:j]))
                        del rd.buf[: j + len(delim)]
                        break
                    keep = len(delim) - 1
                    if len(rd.buf) > keep:
                        cut = len(rd.buf) - keep
                        writer.write(bytes(rd.buf[:cut]))
                        del rd.buf[:cut]
                    if not rd.fill():
                        raise mime_inconsistency("truncated MIME body (closing boundary missing)", "truncated")
            except OverflowError:
                writer.abort()
                raise mime_inconsistency(f"SOAP part larger than {limits.max_soap_bytes} bytes", "soap-size")
            except BaseException:
                writer.abort()
                raise
            parts.append((headers, writer.finish()))
            # After a delimiter: "--" closes, otherwise the rest of the line must be blank.
            while len(rd.buf) < 2 and rd.fill():
                pass
            if rd.buf.startswith(b"--"):
                closed = True
                break
            while b"\n" not in rd.buf[:200] and rd.fill():
                pass
            nl = rd.buf.find(b"\n")
            if nl < 0 or rd.buf[:nl].rstrip(b"\r \t"):
                raise mime_inconsistency("malformed MIME delimiter line", "boundary")
            del rd.buf[: nl + 1]
        if not closed:
            raise mime_inconsistency("closing MIME boundary missing", "truncated")
        if len(parts) < 1:
            raise mime_inconsistency("empty multipart body", "no-parts")
        soap_headers, soap_blob = parts[0]
        stype, sparams = parse_content_type(soap_headers.get("content-type", ""))
        if stype != "application/soap+xml":
            raise mime_inconsistency(f"first MIME part is {stype!r}, not application/soap+xml", "soap-part")
        soap = _decode(soap_headers, soap_blob, limits, tmp_dir).read_bytes()
        attachments = []
        for headers, blob in parts[1:]:
            decoded = _decode(headers, blob, limits, tmp_dir)
            if decoded is not blob:
                blob.close()
            attachments.append(MimePart(headers, decoded))
        return MimeMessage(soap=soap, soap_headers=soap_headers, attachments=attachments)
    except BaseException:
        for _, blob in parts:
            blob.close()
        raise


def _decode(headers: dict[str, str], blob: Blob, limits: Limits, tmp_dir) -> Blob:
    cte = headers.get("content-transfer-encoding", "binary").strip().lower()
    if cte in ("binary", "8bit", "7bit", ""):
        return blob
    if cte == "base64":
        writer = BlobWriter(tmp_dir, spill_at=limits.spill_bytes)
        rest = b""
        try:
            for chunk in blob.chunks():
                data = rest + re.sub(rb"\s+", b"", chunk)
                cut = len(data) - len(data) % 4
                writer.write(base64.b64decode(data[:cut], validate=True))
                rest = data[cut:]
            if rest:
                raise binascii.Error("incomplete base64 quantum")
        except (binascii.Error, ValueError) as exc:
            writer.abort()
            raise mime_inconsistency(f"invalid base64 MIME part: {exc}", "transfer-encoding")
        return writer.finish()
    raise mime_inconsistency(f"unsupported Content-Transfer-Encoding {cte!r}", "transfer-encoding")


def make_boundary(token: bytes) -> str:
    """A boundary from random bytes (passed in, so builds are reproducible)."""
    return "----=_Part_" + token.hex()


def multipart_content_type(boundary: str) -> str:
    return f'multipart/related; boundary="{boundary}"; type="application/soap+xml"'


def write_multipart(sink: BinaryIO, boundary: str, soap: bytes,
                    attachments: Iterable[tuple[str, Blob]]) -> None:
    """Write the AS4 MIME body: SOAP part, then each (content_id, encrypted blob) as binary parts."""
    b = boundary.encode("ascii")
    sink.write(b"--" + b + b"\r\nContent-Type: application/soap+xml;charset=UTF-8\r\n"
               b"Content-Transfer-Encoding: binary\r\n\r\n")
    sink.write(soap)
    for cid, blob in attachments:
        sink.write(b"\r\n--" + b + b"\r\nContent-Type: application/octet-stream\r\n"
                   b"Content-Transfer-Encoding: binary\r\nContent-ID: <" + cid.encode("ascii") + b">\r\n\r\n")
        for chunk in blob.chunks():
            sink.write(chunk)
    sink.write(b"\r\n--" + b + b"--\r\n")
