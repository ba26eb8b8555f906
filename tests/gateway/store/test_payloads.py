import hashlib

import pytest

from gateway.store.payloads import PayloadMissing, PayloadStore


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
