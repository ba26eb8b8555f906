import hashlib
import os

import pytest
from sqlalchemy import select

from gateway.store.payloads import PayloadMissing, PayloadStore
from gateway.store.schema import payloads


@pytest.fixture(params=["file", "database"])
def store(request, tmp_path):
    return PayloadStore(request.param, tmp_path / "payloads")


def test_round_trip_and_dedup(engine, store):
    data = b"<Invoice/>" * 1000
    with engine.begin() as conn:
        sha = store.put(conn, data)
        assert store.put(conn, data) == sha  # idempotent inside one transaction
    with engine.begin() as conn:
        assert store.put(conn, data) == sha  # and across transactions
    with engine.connect() as conn:
        assert store.get(conn, sha) == data
    assert sha == hashlib.sha256(data).hexdigest()


def test_unknown_hash(engine, store):
    with engine.connect() as conn, pytest.raises(KeyError):
        store.get(conn, "0" * 64)


def test_file_store_detects_damage(engine, tmp_path):
    store = PayloadStore("file", tmp_path / "p")
    with engine.begin() as conn:
        sha = store.put(conn, b"hello")
    store._path(sha).write_bytes(b"tampered")
    with engine.connect() as conn, pytest.raises(PayloadMissing, match="corrupt"):
        store.get(conn, sha)
    store._path(sha).unlink()
    with engine.connect() as conn, pytest.raises(PayloadMissing, match="missing"):
        store.get(conn, sha)


def test_rolled_back_transaction_leaves_no_row(engine, store):
    with pytest.raises(RuntimeError):
        with engine.begin() as conn:
            sha = store.put(conn, b"doomed")
            raise RuntimeError
    with engine.connect() as conn, pytest.raises(KeyError):
        store.get(conn, sha)


def test_bad_mode():
    with pytest.raises(ValueError, match="file' or 'database"):
        PayloadStore("s3")


def test_stage_writes_files_before_any_row_then_put_many_adds_rows(engine, store, tmp_path):
    blobs = [b"<Invoice>1</Invoice>", b"<SBD>x</SBD>", b"<Invoice>1</Invoice>", b"receipt"]
    shas = store.stage(blobs)
    assert shas == [hashlib.sha256(b).hexdigest() for b in blobs]
    files = sorted(p for p in (tmp_path / "payloads").rglob("*") if p.is_file())
    if store.mode == "file":  # durable files, no temporary leftovers, one per distinct payload
        assert sorted(p.name for p in files) == sorted(set(shas))
        assert all(store._path(sha).read_bytes() == b for sha, b in zip(shas, blobs))
    else:
        assert files == []
    with engine.connect() as conn, pytest.raises(KeyError):
        store.get(conn, shas[0])  # staged, not stored: no row yet
    with engine.begin() as conn:
        assert store.put_many(conn, blobs) == shas
        assert store.put_many(conn, blobs[:2]) == shas[:2]  # idempotent
    with engine.connect() as conn:
        assert [store.get(conn, sha) for sha in shas] == blobs


def test_put_many_writes_files_that_were_not_staged(engine, tmp_path):
    store = PayloadStore("file", tmp_path / "p")
    with engine.begin() as conn:
        [sha] = store.put_many(conn, [b"late"])
    assert store._path(sha).read_bytes() == b"late"


def test_payloads_given_as_files_are_stored_like_bytes(engine, store, tmp_path):
    """Large received messages reach the store as temp files, read in chunks (never whole)."""
    data = os.urandom(3 * 1024 * 1024 + 7)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    shas = store.stage([src, b"small"])
    assert shas == [hashlib.sha256(data).hexdigest(), hashlib.sha256(b"small").hexdigest()]
    with engine.begin() as conn:
        assert store.put_many(conn, [src, b"small", src]) == shas + shas[:1]
    src.unlink()  # the caller's temp file may go once the row is committed
    with engine.connect() as conn:
        assert store.get(conn, shas[0]) == data
        assert conn.execute(select(payloads.c.size).where(payloads.c.sha256 == shas[0])).scalar() == len(data)
