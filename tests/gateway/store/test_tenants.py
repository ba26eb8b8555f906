import pytest

from gateway.store.tenants import (
    TenantExists,
    TenantNotFound,
    authenticate,
    create_tenant,
    create_token,
    hash_token,
    list_tenants,
    revoke_tokens,
)
from gateway.store.schema import api_tokens
from sqlalchemy import select


def test_create_and_authenticate(engine):
    tenant, token = create_tenant(engine, "Acme AS")
    assert token.startswith("sgw_") and len(token) > 40
    assert authenticate(engine, token) == tenant
    assert authenticate(engine, token + "x") is None
    assert authenticate(engine, "not-a-token") is None


def test_token_is_stored_hashed_only(engine):
    _, token = create_tenant(engine, "Acme AS")
    with engine.connect() as conn:
        stored = [r.token_hash for r in conn.execute(select(api_tokens))]
    assert stored == [hash_token(token)]
    assert token not in stored[0]


def test_duplicate_name_rejected(engine):
    create_tenant(engine, "Acme AS")
    with pytest.raises(TenantExists):
        create_tenant(engine, "Acme AS")
    assert [t.name for t in list_tenants(engine)] == ["Acme AS"]


def test_rotation_and_revocation(engine):
    tenant, first = create_tenant(engine, "Acme AS")
    second = create_token(engine, "Acme AS", "ci")
    assert authenticate(engine, second) == tenant
    assert revoke_tokens(engine, "Acme AS") == 2
    assert authenticate(engine, first) is None
    assert authenticate(engine, second) is None
    with pytest.raises(TenantNotFound):
        create_token(engine, "Nobody")


def test_tenants_are_separate(engine):
    a, ta = create_tenant(engine, "A")
    b, tb = create_tenant(engine, "B")
    assert authenticate(engine, ta).id == a.id
    assert authenticate(engine, tb).id == b.id != a.id
