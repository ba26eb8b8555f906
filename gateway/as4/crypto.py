"""Streaming primitives: SHA-256 over blobs, AES-128-GCM attachment encryption/decryption, gzip.

Everything runs chunk by chunk so 100 MB payloads never sit in memory. Attachment ciphertext format
(XML Encryption 1.1 §5.2.4): IV (12 bytes) || ciphertext || GCM tag (16 bytes), no AAD.
"""

from __future__ import annotations

import hashlib
import zlib
from typing import Callable, Iterable, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .blob import CHUNK, Blob, BlobWriter

IV_LEN = 12
TAG_LEN = 16


class DecryptError(Exception):
    pass


class DecompressError(Exception):
    def __init__(self, message: str, too_large: bool = False):
        super().__init__(message)
        self.too_large = too_large


def sha256_blob(blob: Blob) -> bytes:
    h = hashlib.sha256()
    for chunk in blob.chunks():
        h.update(chunk)
    return h.digest()


def gzip_stream(chunks: Iterable[bytes], level: int = 6) -> Iterator[bytes]:
    """Deterministic gzip (mtime 0, no file name, OS byte 255) so rebuilt payloads digest the same."""
    comp = zlib.compressobj(level, zlib.DEFLATED, -15, 9)
    crc = 0
    size = 0
    yield b"\x1f\x8b\x08\x00\x00\x00\x00\x00" + (b"\x02" if level == 9 else b"\x04" if level == 1 else b"\x00") + b"\xff"
    for chunk in chunks:
        crc = zlib.crc32(chunk, crc)
        size += len(chunk)
        out = comp.compress(chunk)
        if out:
            yield out
    yield comp.flush()
    yield (crc & 0xFFFFFFFF).to_bytes(4, "little") + (size & 0xFFFFFFFF).to_bytes(4, "little")


def gunzip_blob(blob: Blob, limit: int, tmp_dir=None, spill_at: int = CHUNK) -> Blob:
    """Decompress a gzip blob in chunks; stop as soon as the output exceeds `limit` bytes.

    Raises DecompressError (too_large=True for the bomb cap). Concatenated gzip members are
    accepted (RFC 1952); trailing garbage is not.
    """
    writer = BlobWriter(tmp_dir, spill_at=spill_at)
    produced = 0

    def emit(out: bytes) -> None:
        nonlocal produced
        produced += len(out)
        if produced > limit:
            raise DecompressError(f"decompressed payload exceeds {limit} bytes", too_large=True)
        writer.write(out)

    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    started = False
    try:
        for chunk in blob.chunks():
            data = chunk
            while data:
                if d.eof:
                    if data[:1] != b"\x1f":
                        raise DecompressError("trailing data after the gzip stream")
                    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                started = True
                emit(d.decompress(data, CHUNK))
                data = d.unused_data if d.eof else d.unconsumed_tail
        if started and not d.eof:
            emit(d.flush())
        if not started or not d.eof:
            raise DecompressError("truncated or empty gzip stream")
    except zlib.error as exc:
        writer.abort()
        raise DecompressError(f"invalid gzip data: {exc}") from exc
    except DecompressError:
        writer.abort()
        raise
    return writer.finish()


def aes_gcm_encrypt(chunks: Iterable[bytes], key: bytes, iv: bytes, sink: Callable[[bytes], None]) -> None:
    enc = Cipher(algorithms.AES(key), modes.GCM(iv)).encryptor()
    sink(iv)
    for chunk in chunks:
        out = enc.update(chunk)
        if out:
            sink(out)
    sink(enc.finalize())
    sink(enc.tag)


def aes_gcm_decrypt_blob(blob: Blob, key: bytes, tmp_dir=None, spill_at: int = CHUNK,
                         on_plain: Callable[[bytes], None] | None = None) -> Blob:
    """Decrypt IV||ct||tag; the plaintext is only returned once the tag verified."""
    size = blob.size
    if size < IV_LEN + TAG_LEN:
        raise DecryptError("attachment too short for AES-GCM")
    with blob.open() as fh:
        iv = fh.read(IV_LEN)
        fh.seek(size - TAG_LEN)
        tag = fh.read(TAG_LEN)
        fh.seek(IV_LEN)
        dec = Cipher(algorithms.AES(key), modes.GCM(iv, tag)).decryptor()
        remaining = size - IV_LEN - TAG_LEN
        writer = BlobWriter(tmp_dir, spill_at=spill_at)
        try:
            while remaining > 0:
                chunk = fh.read(min(CHUNK, remaining))
                if not chunk:
                    raise DecryptError("attachment truncated")
                remaining -= len(chunk)
                out = dec.update(chunk)
                if on_plain is not None:
                    on_plain(out)
                writer.write(out)
            dec.finalize()
        except InvalidTag as exc:
            writer.abort()
            raise DecryptError("AES-GCM authentication tag mismatch (payload altered or wrong key)") from exc
        except BaseException:
            writer.abort()
            raise
    return writer.finish()
