"""The Nets file channel as seen from our side: an outgoing and an incoming directory.

AvtaleGiro has no request/response API for claims in the file flow: we drop claim files where the
transfer agent (SFTP or the bank's file channel, agreed at onboarding) picks them up for Nets
(00008080), and Nets' files (mandate lists, OCR settlement data, receipts) appear in an incoming
directory. This module is that edge and nothing more: atomic writes (a pick-up agent never sees a
half-written file), listing complete incoming files in arrival order, and moving processed files
to the archive. What the files mean is decided by the adapter.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .claims import write_claim_file_atomic

#: Names we never treat as finished incoming files: hidden/temporary names of transfer agents.
_PARTIAL_SUFFIXES = (".tmp", ".part", ".partial", ".filepart", ".crdownload", ".lock")


class DropConflict(RuntimeError):
    """A different file with the same name is already waiting in the outgoing directory."""


@dataclass(frozen=True)
class IncomingEntry:
    path: Path
    name: str
    size: int
    mtime: float  # seconds since the epoch
    mtime_ns: int


class NetsFileChannel:
    def __init__(self, outgoing_dir: str | os.PathLike[str], incoming_dir: str | os.PathLike[str],
                 archive_dir: str | os.PathLike[str]):
        self.outgoing = Path(outgoing_dir)
        self.incoming = Path(incoming_dir)
        self.archive = Path(archive_dir)

    def ensure_dirs(self) -> None:
        for d in (self.outgoing, self.incoming, self.archive):
            d.mkdir(parents=True, exist_ok=True)

    # -- outgoing ----------------------------------------------------------------------------

    def outgoing_path(self, file_name: str) -> Path:
        return self.outgoing / file_name

    def drop(self, file_name: str, data: bytes) -> bool:
        """Write ``data`` atomically as ``outgoing/file_name``; False if identical bytes are already there.

        Never replaces a waiting file: a different file under the same name is a
        :class:`DropConflict` (it would mean two claims share a transmission number).
        """
        self.outgoing.mkdir(parents=True, exist_ok=True)
        try:
            write_claim_file_atomic(self.outgoing, file_name, data)
        except FileExistsError:
            existing = self.outgoing_path(file_name).read_bytes()
            if existing == data:
                return False
            raise DropConflict(f"{file_name} already exists in {self.outgoing} with other content") from None
        return True

    # -- incoming ----------------------------------------------------------------------------

    def list_incoming(self) -> list[IncomingEntry]:
        """Regular, non-hidden, non-temporary files in arrival order (mtime, then name)."""
        if not self.incoming.is_dir():
            return []
        out = []
        with os.scandir(self.incoming) as it:
            for e in it:
                if e.name.startswith(".") or e.name.lower().endswith(_PARTIAL_SUFFIXES):
                    continue
                try:
                    if not e.is_file(follow_symlinks=False):
                        continue
                    st = e.stat(follow_symlinks=False)
                except FileNotFoundError:  # taken by another worker meanwhile
                    continue
                out.append(IncomingEntry(Path(e.path), e.name, st.st_size, st.st_mtime, st.st_mtime_ns))
        out.sort(key=lambda x: (x.mtime_ns, x.name))
        return out

    def archive_file(self, entry: IncomingEntry, sha256: str, subdir: str = "") -> str:
        """Move a processed incoming file to the archive (``subdir`` e.g. ``rejected``); its new path.

        Keeps the name; a name already taken by another file gets the content hash appended.
        """
        target_dir = self.archive / subdir if subdir else self.archive
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / entry.name
        if target.exists():
            if _sha256(target) == sha256:
                entry.path.unlink(missing_ok=True)
                return str(target)
            target = target_dir / f"{entry.name}.{sha256[:12]}"
        try:
            os.replace(entry.path, target)
        except OSError:  # archive on another file system
            shutil.move(str(entry.path), str(target))
        return str(target)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
