"""Shared fixtures: where the shared test data lives, and synced artefact/trust caches."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _shared_dir() -> Path:
    return Path(os.environ.get("SENDGW_SHARED_DIR") or REPO.parent / "shared").resolve()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    path = _shared_dir()
    if not path.is_dir():
        pytest.skip(f"shared test data not found at {path} (set SENDGW_SHARED_DIR)")
    return path


@pytest.fixture(scope="session")
def trust_dir(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trust cache holding every pinned Peppol CA certificate."""
    from certs.trust import sync_trust

    target = tmp_path_factory.mktemp("trust")
    sync_trust(shared_dir / "pki", target)
    return target
