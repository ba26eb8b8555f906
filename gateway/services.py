"""The long-lived services one gateway process holds, shared by the HTTP handlers and workers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from sqlalchemy import Engine

from gateway.config import Settings
from gateway.store.payloads import PayloadStore


@dataclass
class Services:
    settings: Settings
    engine: Engine
    validation: Any  # validation.pool.ValidationPool (async validate())
    payloads: PayloadStore
    extra: dict[str, Any] = field(default_factory=dict)


SERVICES = web.AppKey("sendgw.services", Services)


def services(app: web.Application) -> Services:
    return app[SERVICES]
