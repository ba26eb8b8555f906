"""Payload bytes that live in memory when small and in a temporary file when large.

Large AS4 payloads (100 MB+) must never be held whole in memory: parts are spooled to disk while
parsed, and hashing, AES-GCM and gunzip run chunk by chunk over these blobs.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator

CHUNK = 1 << 20  # 1 MiB


class Blob:
    """An immutable byte string, backed by memory or by a file we own (deleted on `close`)."""

    def __init__(self, data: bytes | None = None, path: Path | None = None, *, owned: bool = False):
        if (data is None) == (path is None):
            raise ValueError("exactly one of data/path")
        self._data = data
        self._path = path
        self._owned = owned

    @classmethod
    def from_bytes(cls, data: bytes) -> "Blob":
        return cls(data=bytes(data))

    @classmethod
    def from_path(cls, path: Path | str) -> "Blob":
        """Wrap a file owned by the caller (never deleted by us)."""
        return cls(path=Path(path))

    @property
    def in_memory(self) -> bool:
        return self._data is not None

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def size(self) -> int:
        return len(self._data) if self._data is not None else self._path.stat().st_size

    def open(self) -> BinaryIO:
        return io.BytesIO(self._data) if self._data is not None else open(self._path, "rb")

    def __bytes__(self) -> bytes:
        return self.read_bytes()

    def __len__(self) -> int:
        return self.size

    def read_bytes(self) -> bytes:
        return self._data if self._data is not None else self._path.read_bytes()

    def chunks(self, size: int = CHUNK) -> Iterator[bytes]:
        if self._data is not None:
            mv = memoryview(self._data)
            for i in range(0, len(mv), size):
                yield bytes(mv[i:i + size])
            return
        with open(self._path, "rb") as fh:
            while chunk := fh.read(size):
                yield chunk

    def save_to(self, target: Path | str) -> Path:
        """Copy the content to `target` (a move when we own the temp file)."""
        target = Path(target)
        if self._data is not None:
            target.write_bytes(self._data)
        elif self._owned:
            shutil.move(str(self._path), target)
            self._path, self._owned = target, False
        else:
            shutil.copyfile(self._path, target)
        return target

    def close(self) -> None:
        if self._owned and self._path is not None:
            try:
                os.unlink(self._path)
            except FileNotFoundError:
                pass
            self._owned = False

    def __repr__(self) -> str:
        where = "memory" if self._data is not None else str(self._path)
        return f"<Blob {self.size} bytes in {where}>"


class BlobWriter:
    """Collects written bytes in memory up to `spill_at`, then in a temp file under `tmp_dir`.

    `limit` (optional) caps the total; exceeding it raises OverflowError before writing.
    """

    def __init__(self, tmp_dir: Path | str | None = None, spill_at: int = CHUNK, limit: int | None = None):
        self._buf = bytearray()
        self._fh: BinaryIO | None = None
        self._path: Path | None = None
        self._tmp_dir = tmp_dir
        self._spill_at = spill_at
        self._limit = limit
        self.size = 0

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self._limit is not None and self.size + len(data) > self._limit:
            raise OverflowError(f"more than {self._limit} bytes")
        self.size += len(data)
        if self._fh is None:
            self._buf += data
            if len(self._buf) > self._spill_at:
                fd, name = tempfile.mkstemp(prefix="sendgw-as4-", dir=self._tmp_dir)
                self._fh = os.fdopen(fd, "wb")
                self._path = Path(name)
                self._fh.write(self._buf)
                self._buf = bytearray()
        else:
            self._fh.write(data)

    def finish(self) -> Blob:
        if self._fh is None:
            return Blob(data=bytes(self._buf))
        self._fh.close()
        return Blob(path=self._path, owned=True)

    def abort(self) -> None:
        if self._fh is not None:
            self._fh.close()
            os.unlink(self._path)
            self._fh = None
