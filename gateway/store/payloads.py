"""Content-addressed payload store: bytes by SHA-256, in a directory or in the database.

The database always holds a `payloads` row (hash, size); the bytes live either in files under a
directory (default; written and fsynced before the row commits, so a committed row always has its
file) or in the row itself (`[storage] payloads = "database"`), so that several gateway machines
can share one PostgreSQL database and nothing else.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import tempfile
from pathlib import Path

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from gateway.store.schema import payloads


class PayloadMissing(Exception):
    """A payload row exists but its bytes are gone (file store damaged)."""


def _insert(conn: Connection, values: dict):
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(payloads).values(**values).on_conflict_do_nothing(index_elements=["sha256"])


class PayloadStore:
    def __init__(self, mode: str = "file", directory: Path | None = None):
        if mode not in ("file", "database"):
            raise ValueError(f"[storage] payloads must be 'file' or 'database', not {mode!r}")
        if mode == "file" and directory is None:
            raise ValueError("file payload store needs a directory")
        self.mode, self.directory = mode, directory

    def _path(self, sha: str) -> Path:
        assert self.directory is not None
        return self.directory / sha[:2] / sha[2:4] / sha

    def _write_file(self, sha: str, data: bytes) -> None:
        path = self._path(sha)
        if path.exists() and path.stat().st_size == len(data):
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def put(self, conn: Connection, data: bytes) -> str:
        """Store `data` (idempotent) inside the caller's transaction; returns its SHA-256 hex."""
        sha = hashlib.sha256(data).hexdigest()
        now = dt.datetime.now(dt.timezone.utc)
        if self.mode == "file":
            self._write_file(sha, data)
            conn.execute(_insert(conn, {"sha256": sha, "size": len(data), "created_at": now}))
        else:
            conn.execute(_insert(conn, {"sha256": sha, "size": len(data), "data": data, "created_at": now}))
        return sha

    def get(self, conn: Connection, sha: str) -> bytes:
        row = conn.execute(select(payloads.c.size, payloads.c.data).where(payloads.c.sha256 == sha)).first()
        if row is None:
            raise KeyError(sha)
        if row.data is not None:
            return bytes(row.data)
        if self.directory is None:
            raise PayloadMissing(f"payload {sha} has no bytes in the database and no file store is configured")
        try:
            data = self._path(sha).read_bytes()
        except FileNotFoundError as exc:
            raise PayloadMissing(f"payload file for {sha} is missing") from exc
        if hashlib.sha256(data).hexdigest() != sha:
            raise PayloadMissing(f"payload file for {sha} is corrupt (hash mismatch)")
        return data


def payload_store_from(settings) -> PayloadStore:
    return PayloadStore(settings.storage.payloads, settings.path(settings.storage.directory))
