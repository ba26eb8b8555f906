"""An API client against the real app: real database (both backends), real validation engine."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.config import Settings
from gateway.store.tenants import create_tenant


class InProcessValidation:
    """The real validation engine run in a thread (one compiled engine for the whole session).

    The server uses the process pool; API tests share one engine so they don't pay for compiling
    the stylesheets in every test.
    """

    def __init__(self, validator):
        self.validator = validator

    async def start(self):
        pass

    async def close(self):
        pass

    async def validate(self, data, rules=None, fmt="json", at=None):
        def run():
            report = self.validator.validate(data, rules, at)
            if fmt == "svrl":
                return report.to_svrl()
            if fmt == "json-bytes":
                return json.dumps(report.to_dict()).encode()
            return report.to_dict()

        return await asyncio.to_thread(run)


@pytest.fixture(scope="session")
def validator(artefact_cache):
    from validation.engine import Validator

    return Validator(artefact_cache, max_bytes=2 * 1024 * 1024)


@pytest.fixture
def settings(db_url, tmp_path, artefact_cache, trust_dir):
    s = Settings()
    s.database.url = db_url
    s.base_dir = tmp_path
    s.artefacts.cache = str(artefact_cache)
    s.validation.max_bytes = 2 * 1024 * 1024
    s.storage.directory = str(tmp_path / "payloads")
    s.trust.cache = str(trust_dir)
    return s


@pytest.fixture
async def make_client(engine, settings, validator):
    clients = []

    async def make(**kw):
        app = create_app(settings, engine=engine, validation=InProcessValidation(validator),
                         run_workers=kw.pop("run_workers", False), **kw)
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for c in clients:
        await c.close()


@pytest.fixture
async def client(make_client):
    return await make_client()


@pytest.fixture
def tenant(engine):
    t, token = create_tenant(engine, "Acme AS")
    return t, {"Authorization": f"Bearer {token}"}
