"""Auth refused in both modes: bad signature, stale Date, content hash, unknown sender; bad/wrong tokens."""

from __future__ import annotations

import datetime as dt

import aiohttp
import pytest

from gateway.channels.base import ChannelError
from gateway.channels.digipost import schema, signing
from gateway.channels.digipost.adapter import DigipostAdapter

from .conftest import BROKER, CLIENT_ID, Offset, bearer_config, recipient, signature_config


async def refused(adapter) -> ChannelError:
    with pytest.raises(ChannelError) as err:
        await adapter.reachability(recipient("mailbox"))
    await adapter.close()
    return err.value


# -- signature mode ---------------------------------------------------------------------------


async def test_signature_with_unregistered_key_is_refused(sim, other_key, clock):
    err = await refused(DigipostAdapter(signature_config(sim, other_key), clock=clock))
    assert err.code == "auth-refused" and not err.transient
    assert err.status == 403 and err.api_error.code == "INVALID_SIGNATURE"
    assert "===START===" in err.api_error.message  # Digipost echoes its canonical string


async def test_stale_date_is_refused(sim, sender_key, clock):
    skewed = Offset(clock, -dt.timedelta(minutes=6))
    err = await refused(DigipostAdapter(signature_config(sim, sender_key), clock=skewed))
    assert err.code == "auth-refused" and err.api_error.code == "DATE_HEADER_OUTSIDE_ACCEPTED_INTERVAL"


async def test_date_inside_window_is_accepted(sim, sender_key, clock):
    adapter = DigipostAdapter(signature_config(sim, sender_key), clock=Offset(clock, dt.timedelta(minutes=4)))
    assert (await adapter.reachability(recipient("mailbox"))).reachable
    await adapter.close()


async def test_unknown_sender_and_sender_without_certificate(sim, sender_key, clock):
    err = await refused(DigipostAdapter(signature_config(sim, sender_key, broker_id="999999"), clock=clock))
    assert err.code == "auth-refused" and err.api_error.code == "UNKNOWN_USER_ID"
    sim.register_sender("555555")  # registered, but no certificate uploaded
    err = await refused(DigipostAdapter(signature_config(sim, sender_key, broker_id="555555"), clock=clock))
    assert err.code == "auth-refused" and err.api_error.code == "MISSING_CERTIFICATE"


async def raw_post(sim, headers, body):
    async with aiohttp.ClientSession() as http:
        async with http.post(sim.base_url + "/identification", data=body, headers=headers) as resp:
            return resp.status, schema.parse_error(await resp.read())


async def test_body_not_matching_content_hash_is_refused(sim, sender_key, clock):
    from gateway.channels.digipost.client import DigipostClient

    client = DigipostClient(base_url=sim.base_url, broker_id=BROKER, private_key=sender_key, clock=clock)
    body = schema.build_identification(schema.RecipientId("personal-identification-number", "01018512345"))
    headers = client.request_headers("POST", "/identification", "", body, schema.MEDIA_TYPE, clock())
    status, err = await raw_post(sim, headers, body.replace(b"0101", b"0202"))
    assert (status, err.code) == (400, "INVALID_SHA256")
    del headers[signing.H_CONTENT_SHA256]
    status, err = await raw_post(sim, headers, body)
    assert (status, err.code) == (400, "MISSING_SHA256")
    headers = client.request_headers("POST", "/identification", "", body, schema.MEDIA_TYPE, clock())
    headers.pop(signing.H_SIGNATURE)
    status, err = await raw_post(sim, headers, body)
    assert (status, err.code) == (403, "MISSING_SIGNATURE")
    headers = client.request_headers("POST", "/IDENTIFICATION-other", "", body, schema.MEDIA_TYPE, clock())
    status, err = await raw_post(sim, headers, body)  # signed for another path
    assert (status, err.code) == (403, "INVALID_SIGNATURE")
    await client.close()


# -- bearer mode (token endpoint behind mutual TLS) ---------------------------------------------


async def test_bearer_token_is_fetched_over_mtls_and_reused(tls_sim, pki, client_cert, clock):
    adapter = DigipostAdapter(bearer_config(tls_sim, pki, client_cert), clock=clock)
    assert (await adapter.reachability(recipient("mailbox"))).reachable
    assert (await adapter.reachability(recipient("name"))).reachable
    token_calls = [r for r in tls_sim.requests if r.path == "/oauth2/token"]
    assert len(token_calls) == 1 and token_calls[0].status == 200
    form = dict(x.split("=", 1) for x in token_calls[0].body.decode().split("&"))
    assert form["grant_type"] == "client_credentials" and form["client_id"] == CLIENT_ID
    assert form["scope"] == f"dpost-api%3A{BROKER}"
    api = [r for r in tls_sim.requests if r.path == "/identification"]
    assert all(r.headers["Authorization"].startswith("Bearer ") for r in api)
    assert all(signing.H_SIGNATURE not in r.headers for r in api)
    assert all(r.headers[signing.H_USER_ID] == BROKER for r in api)
    await adapter.close()


async def test_revoked_token_is_refreshed_once(tls_sim, pki, client_cert, clock):
    adapter = DigipostAdapter(bearer_config(tls_sim, pki, client_cert), clock=clock)
    assert (await adapter.reachability(recipient("mailbox"))).reachable
    tls_sim.revoke_tokens()
    assert (await adapter.reachability(recipient("name"))).reachable
    assert [r.status for r in tls_sim.requests if r.path == "/identification"] == [200, 401, 200]
    assert len([r for r in tls_sim.requests if r.path == "/oauth2/token"]) == 2
    await adapter.close()


async def test_token_endpoint_refuses_unknown_client(tls_sim, pki, clock):
    stranger = pki.issue_client("someone-else")
    err = await refused(DigipostAdapter(bearer_config(tls_sim, pki, stranger, client_id="someone-else"), clock=clock))
    assert err.code == "auth-refused" and err.status == 401 and "invalid_client" in err.message


async def test_token_endpoint_requires_client_certificate(tls_sim, pki, client_cert, clock):
    cfg = bearer_config(tls_sim, pki, client_cert, client_cert_path=None, client_key_path=None)
    err = await refused(DigipostAdapter(cfg, clock=clock))
    assert err.code == "auth-refused" and "client certificate" in err.message


async def test_token_for_another_broker_is_refused(tls_sim, pki, client_cert, clock):
    err = await refused(DigipostAdapter(bearer_config(tls_sim, pki, client_cert, broker_id="111111"), clock=clock))
    assert err.code == "auth-refused" and "invalid_scope" in err.message


async def test_wrong_bearer_token_is_refused(tls_sim, pki, clock):
    from gateway.channels.digipost.client import DigipostClient, TokenProvider

    class FixedToken(TokenProvider):
        async def get(self, session):
            return "not-a-token-digipost-issued"

    tokens = FixedToken(token_url="unused", client_id=CLIENT_ID, scope="x", resource="y", ssl_context=None)
    import ssl

    ctx = ssl.create_default_context(cafile=str(pki.ca_file))
    client = DigipostClient(base_url=tls_sim.base_url, broker_id=BROKER, token_provider=tokens, ssl_context=ctx,
                            digipost_public_key=signing.load_public_key(tls_sim.certificate_pem), clock=clock)
    with pytest.raises(ChannelError) as err:
        await client.identify(schema.RecipientId("personal-identification-number", "01018512345"))
    assert err.value.code == "auth-refused" and err.value.status == 401
    await client.close()


async def test_signature_is_not_accepted_for_bearer_only_sender(tls_sim, pki, sender_key, clock):
    cfg = signature_config(tls_sim, sender_key, ca_file=str(pki.ca_file))
    err = await refused(DigipostAdapter(cfg, clock=clock))
    assert err.code == "auth-refused" and err.api_error.code == "MISSING_CERTIFICATE"
