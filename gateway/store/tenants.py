"""Tenants (issuers) and their bearer tokens. Tokens are random and stored only as SHA-256."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.store.schema import api_tokens, tenants

TOKEN_PREFIX = "sgw_"


class TenantExists(Exception):
    """A tenant with this name already exists."""


class TenantNotFound(Exception):
    """No tenant with this name or id."""


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    created_at: dt.datetime
    webhook_url: str | None = None
    webhook_secret: str | None = None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _row_to_tenant(row) -> Tenant:
    return Tenant(row.id, row.name, row.created_at, row.webhook_url, row.webhook_secret)


def create_tenant(engine: Engine, name: str) -> tuple[Tenant, str]:
    """Create a tenant and its first API token; returns the token in clear text (shown once)."""
    name = name.strip()
    if not name or len(name) > 200:
        raise ValueError("tenant name must be 1-200 characters")
    tenant = Tenant(str(uuid.uuid4()), name, _now())
    try:
        with engine.begin() as conn:
            conn.execute(insert(tenants).values(id=tenant.id, name=tenant.name, created_at=tenant.created_at))
            token = _insert_token(conn, tenant.id, "initial")
    except IntegrityError as exc:
        raise TenantExists(f"tenant {name!r} already exists") from exc
    return tenant, token


def _insert_token(conn, tenant_id: str, label: str | None) -> str:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    conn.execute(insert(api_tokens).values(
        id=str(uuid.uuid4()), tenant_id=tenant_id, token_hash=hash_token(token), label=label, created_at=_now()))
    return token


def create_token(engine: Engine, tenant_name: str, label: str | None = None) -> str:
    """An additional token for an existing tenant (e.g. for key rotation)."""
    with engine.begin() as conn:
        tenant = get_tenant_by_name(conn, tenant_name)
        return _insert_token(conn, tenant.id, label)


def revoke_tokens(engine: Engine, tenant_name: str) -> int:
    """Revoke every token of a tenant; returns how many were active."""
    with engine.begin() as conn:
        tenant = get_tenant_by_name(conn, tenant_name)
        result = conn.execute(update(api_tokens)
                              .where(api_tokens.c.tenant_id == tenant.id, api_tokens.c.revoked_at.is_(None))
                              .values(revoked_at=_now()))
        return result.rowcount


def get_tenant_by_name(conn, name: str) -> Tenant:
    row = conn.execute(select(tenants).where(tenants.c.name == name)).first()
    if row is None:
        raise TenantNotFound(f"no tenant named {name!r}")
    return _row_to_tenant(row)


def list_tenants(engine: Engine) -> list[Tenant]:
    with engine.connect() as conn:
        return [_row_to_tenant(r) for r in conn.execute(select(tenants).order_by(tenants.c.name))]


def authenticate(engine: Engine, token: str) -> Tenant | None:
    """The tenant owning an active token, or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    with engine.connect() as conn:
        row = conn.execute(
            select(tenants)
            .join(api_tokens, api_tokens.c.tenant_id == tenants.c.id)
            .where(api_tokens.c.token_hash == hash_token(token), api_tokens.c.revoked_at.is_(None))
        ).first()
    return _row_to_tenant(row) if row else None
