"""Bearer-token authentication for /api/v1/*. Tenants are resolved from hashed tokens."""

from __future__ import annotations

import time
from typing import Awaitable, Callable

from aiohttp import web

from gateway.api.errors import ApiError
from gateway.store.db import run_db
from gateway.store.tenants import Tenant, authenticate, hash_token

TENANT_KEY = web.RequestKey("sendgw.tenant", Tenant)
PUBLIC_PATHS = {"/api/v1/openapi.json"}
CACHE_SECONDS = 10.0  # how long a verified token is trusted without asking the database


class TokenCache:
    """Short-lived memory of verified tokens (by hash), so hot paths skip a database round trip."""

    def __init__(self, ttl: float = CACHE_SECONDS, size: int = 10_000):
        self.ttl, self.size = ttl, size
        self._entries: dict[str, tuple[float, Tenant]] = {}

    def get(self, key: str) -> Tenant | None:
        hit = self._entries.get(key)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        return None

    def put(self, key: str, tenant: Tenant) -> None:
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self.ttl, tenant)


def make_auth_middleware(engine, cache: TokenCache):
    @web.middleware
    async def auth_middleware(request: web.Request,
                              handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if request.path.startswith("/api/") and request.path not in PUBLIC_PATHS:
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            challenge = {"WWW-Authenticate": 'Bearer realm="sendgw"'}
            if scheme.lower() != "bearer" or not token.strip():
                raise ApiError(401, "unauthorized", "missing bearer token (Authorization: Bearer <token>)",
                               headers=challenge)
            token = token.strip()
            if not (token.isascii() and token.isprintable()):  # ours are; raw non-UTF-8 bytes broke hashing
                raise ApiError(401, "unauthorized", "invalid or revoked token", headers=challenge)
            key = hash_token(token)
            tenant = cache.get(key)
            if tenant is None:
                tenant = await run_db(authenticate, engine, token)
                if tenant is None:
                    raise ApiError(401, "unauthorized", "invalid or revoked token", headers=challenge)
                cache.put(key, tenant)
            request[TENANT_KEY] = tenant
        return await handler(request)

    return auth_middleware


def current_tenant(request: web.Request) -> Tenant:
    return request[TENANT_KEY]
