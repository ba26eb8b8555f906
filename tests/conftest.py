"""Shared fixtures: where the shared test data lives, and synced artefact/trust caches."""

from __future__ import annotations

import contextlib
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


# ---------------------------------------------------------------------------------------------
# Databases: every test that asks for `db_url` (directly or through `engine`) runs once per
# backend in SENDGW_TEST_DATABASES (default "sqlite,postgresql") and is marked `storage`.
# PostgreSQL tests each get a fresh schema in SENDGW_TEST_POSTGRES_URL; when that server is not
# reachable they are skipped, unless SENDGW_TEST_REQUIRE_POSTGRES=1 (CI), where they fail.

POSTGRES_URL = os.environ.get("SENDGW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _backends() -> list[str]:
    raw = os.environ.get("SENDGW_TEST_DATABASES", "sqlite,postgresql")
    return [b.strip() for b in raw.split(",") if b.strip()]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "db_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.storage)


def pytest_configure(config):
    config.addinivalue_line("markers", "storage: touches the database; runs on SQLite and PostgreSQL")


@contextlib.contextmanager
def postgres_schema(prefix: str):
    """The URL of a fresh schema on the test PostgreSQL server, dropped afterwards; None when the
    server cannot be reached (a test failure when SENDGW_TEST_REQUIRE_POSTGRES=1)."""
    import uuid

    import sqlalchemy as sa

    from gateway.store.db import normalise_url

    admin = sa.create_engine(normalise_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # pragma: no cover - depends on the machine
        admin.dispose()
        if os.environ.get("SENDGW_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL required but not reachable at {POSTGRES_URL}: {exc}")
        yield None
        return
    schema = prefix + uuid.uuid4().hex[:16]
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=_backends())
def db_url(request, tmp_path):
    """A database URL with an empty database, for one backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/sendgw-test.db"
        return
    if request.param != "postgresql":
        raise ValueError(f"unknown test database backend {request.param!r}")
    with postgres_schema("t_") as url:
        if url is None:
            pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}")
        yield url


@pytest.fixture
def engine(db_url):
    """A migrated database engine."""
    from gateway.store.db import make_engine
    from gateway.store.migrate import upgrade

    eng = make_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def artefact_cache(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache holding every pinned official validation artefact, synced from the mirror."""
    from schematron.sync import sync

    target = tmp_path_factory.mktemp("artefacts")
    sync(target, shared_dir / "artefacts")
    return target
