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
import shutil
import tempfile
from pathlib import Path

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from gateway.store.schema import payloads


class PayloadMissing(Exception):
    """A payload row exists but its bytes are gone (file store damaged)."""


# A payload is given as bytes, or as a file whose content is stored (read in chunks, so a large
# received message need not be in memory; the caller keeps the file until the row is committed).
Payload = bytes | Path
_CHUNK = 1 << 20


def _digest(data: Payload) -> tuple[str, int]:
    """(SHA-256 hex, size) of a payload."""
    if isinstance(data, Path):
        h, size = hashlib.sha256(), 0
        with open(data, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
                size += len(chunk)
        return h.hexdigest(), size
    return hashlib.sha256(data).hexdigest(), len(data)


def _insert(conn: Connection, values: dict | list[dict]):
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(payloads).values(values if isinstance(values, list) else [values])
    return stmt.on_conflict_do_nothing(index_elements=["sha256"])


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
        if not path.parent.is_dir():
            path.parent.mkdir(parents=True, exist_ok=True)
            for folder in (path.parent.parent, path.parent.parent.parent):  # the new folders' entries
                _fsync_dir(folder)
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
        _fsync_dir(path.parent)

    def stage(self, blobs: list[Payload]) -> list[str]:
        """Write and fsync the files for `blobs` now, before the transaction that will `put` them.

        Why: an fsync inside a transaction holds the database lock for its duration (SQLite has
        one writer), while outside it concurrent requests' fsyncs overlap in the journal. `put`
        then finds each file in place and only adds the row. A crash between the two leaves an
        unreferenced file, never a row without its file. Database mode: nothing to do."""
        return [sha for sha, _ in self._stage(blobs)]

    def _stage(self, blobs: list[Payload]) -> list[tuple[str, int]]:
        digests = [_digest(data) for data in blobs]
        if self.mode != "file":
            return digests
        # All files first, then each folder once: a message's payloads share the folder fsyncs.
        folders: set[Path] = set()
        written: list[tuple[str, Path]] = []
        try:
            for (sha, size), data in zip(digests, blobs):
                path = self._path(sha)
                if any(p == path for _, p in written) or (path.exists() and path.stat().st_size == size):
                    continue
                if not path.parent.is_dir():
                    top_existed = path.parent.parent.is_dir()
                    path.parent.mkdir(parents=True, exist_ok=True)
                    folders.add(path.parent.parent)
                    if not top_existed:
                        folders.add(path.parent.parent.parent)
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
                written.append((tmp, path))
                with os.fdopen(fd, "wb") as fh:
                    if isinstance(data, Path):
                        with open(data, "rb") as src:
                            shutil.copyfileobj(src, fh, _CHUNK)
                    else:
                        fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
            for tmp, path in written:
                os.replace(tmp, path)
                folders.add(path.parent)
        except BaseException:
            for tmp, _ in written:
                Path(tmp).unlink(missing_ok=True)
            raise
        for folder in folders:
            _fsync_dir(folder)
        return digests

    def put_many(self, conn: Connection, blobs: list[Payload]) -> list[str]:
        """`put` for several payloads with one INSERT; returns their SHA-256s in order."""
        now = dt.datetime.now(dt.timezone.utc)
        digests = self._stage(blobs)
        rows: dict[str, dict] = {}
        for (sha, size), data in zip(digests, blobs):
            if sha in rows:
                continue
            row = {"sha256": sha, "size": size, "created_at": now}
            if self.mode == "database":
                row["data"] = data.read_bytes() if isinstance(data, Path) else data
            rows[sha] = row
        conn.execute(_insert(conn, list(rows.values())))
        return [sha for sha, _ in digests]

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
