"""POST /as4 attacked with hostile and malformed messages, as an independent tester would.

Every case asserts the HTTP status, the ebMS code of the *signed* error signal (verified with our
certificate), that nothing but one event was stored, and that no 500 comes from a traceback (a
signal body always parses). Messages are built with our own core (fast) and mutated/re-signed
with the helpers of the AS4 core tests.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pytest
from sqlalchemy import func, select

from certs.devpki import make_ap_cert, make_ca
from certs.trust import TrustStore
from gateway.as4 import SIGNAL_CONTENT_TYPE, build_receipt, build_user_message, parse_signal
from gateway.as4.constants import NSMAP, TEST_ACTION, TEST_SERVICE
from gateway.identifiers import ParticipantId
from gateway.identity import ApIdentity
from gateway.store.participants import add_participant
from gateway.store.schema import events, evidence, messages
from tests.gateway.as4.conftest import ACTION, C1, C4, NOW, PROC, Mutable, Pki, make_sbd

S12 = NSMAP["S12"]


@pytest.fixture(scope="module")
def pki() -> Pki:
    ca = make_ca(now=NOW)
    return Pki(ca, make_ap_cert("PNO000001", ca, now=NOW), make_ap_cert("PNO000002", ca, now=NOW),
               TrustStore.from_pem(ca.cert_pem()))


def build(pki: Pki, payload: bytes | None = None, *, signer=None, **overrides):
    signer = signer or pki.sender
    args = dict(message_id=f"{uuid.uuid4()}@sender.test", timestamp=NOW, from_party="PNO000001",
                to_party="PNO000002", service=PROC, action=ACTION, original_sender=C1, final_recipient=C4,
                signing_key=signer.key, signing_cert=signer.cert, receiver_cert=pki.receiver.cert)
    args.update(overrides)
    return build_user_message(payload if payload is not None else make_sbd(), **args)


@pytest.fixture
async def gw(make_client, engine, tenant, pki, settings):
    t, _ = tenant
    add_participant(engine, ParticipantId.parse(C4), t.name)
    identity = ApIdentity("PNO000002", pki.receiver.key, pki.receiver.cert, pki.trust)
    return await make_client(identity=identity)


def count(engine, table):
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def check_certificate_of(pki):
    def check(cert):
        assert cert == pki.receiver.cert, "signal not signed by our AP certificate"
    return check


async def post(client, body: bytes, content_type: str | None, **headers):
    if content_type is not None:
        headers["Content-Type"] = content_type
    resp = await client.post("/as4", data=body, headers=headers)
    return resp, await resp.read()


async def assert_rejected(client, engine, pki, body, content_type, code, *, status=500, ref=None, **headers):
    """A signed eb:Error with `code`, the HTTP status, nothing stored but the event."""
    events_before = count(engine, events)
    resp, raw = await post(client, body, content_type, **headers)
    assert resp.status == status, raw[:500]
    assert resp.headers["Content-Type"].startswith("application/soap+xml")
    signal = parse_signal(raw, check_certificate=check_certificate_of(pki))
    assert signal.signature_verified and not signal.is_receipt
    codes = code if isinstance(code, tuple) else (code,)
    assert len(signal.errors) == 1 and signal.errors[0].code in codes, signal.errors
    if ref is not None:
        assert signal.ref_to_message_id == ref
    assert count(engine, messages) == 0 and count(engine, evidence) == 0
    assert count(engine, events) == events_before + 1
    return signal.errors[0]


# --- HTTP / MIME level -----------------------------------------------------------------------------

async def test_valid_message_baseline(gw, engine, pki):
    out = build(pki)
    resp, raw = await post(gw, out.read_bytes(), out.content_type)
    assert resp.status == 200
    signal = parse_signal(raw, check_certificate=check_certificate_of(pki))
    assert signal.is_receipt and signal.ref_to_message_id == out.message_id
    assert count(engine, messages) == 1


@pytest.mark.parametrize("content_type", [None, "", "text/xml; charset=utf-8", "application/octet-stream",
                                          "multipart/mixed; boundary=x", "multipart/related",
                                          'multipart/related; boundary="b"; type="text/xml"'])
async def test_wrong_or_missing_content_type(gw, engine, pki, content_type):
    out = build(pki)
    body = out.read_bytes()
    if content_type is None:
        # aiohttp would add application/octet-stream for bytes; send a body with no Content-Type at all
        resp = await gw.post("/as4", data=body, skip_auto_headers=["Content-Type"])
        raw = await resp.read()
        assert resp.status == 500
        signal = parse_signal(raw, check_certificate=check_certificate_of(pki))
        assert [e.code for e in signal.errors] == ["EBMS:0007"]
        assert count(engine, messages) == 0
        return
    await assert_rejected(gw, engine, pki, body, content_type, "EBMS:0007")


async def test_multipart_without_the_soap_start_part(gw, engine, pki):
    """Only the attachment, no SOAP part: MIME inconsistency."""
    b = "b-1"
    body = (f"--{b}\r\nContent-Type: application/octet-stream\r\nContent-ID: <p@x>\r\n\r\n".encode()
            + b"\x00\x01binary" + f"\r\n--{b}--\r\n".encode())
    await assert_rejected(gw, engine, pki, body, f'multipart/related; boundary="{b}"; type="application/soap+xml"',
                          "EBMS:0007")


async def test_multipart_whose_start_parameter_names_a_missing_part(gw, engine, pki):
    out = build(pki)
    ct = out.content_type + '; start="<nothing-here@x>"'
    resp, raw = await post(gw, out.read_bytes(), ct)
    # The first part is the SOAP part (phase4/CXF behaviour); a dangling start parameter must not crash.
    assert resp.status in (200, 500)
    parse_signal(raw, check_certificate=check_certificate_of(pki))


async def test_missing_attachment(gw, engine, pki):
    m = Mutable(build(pki))
    m.attachments = []
    err = await assert_rejected(gw, engine, pki, *m.pack(), "EBMS:0011")
    assert err.ref_to_message_in_error


async def test_two_attachments_second_without_partinfo(gw, engine, pki):
    m = Mutable(build(pki))
    m.attachments.append(("second@evil", m.attachments[0][1]))
    await assert_rejected(gw, engine, pki, *m.pack(), "EBMS:0011")


async def test_attachment_content_id_not_matching_partinfo(gw, engine, pki):
    m = Mutable(build(pki))
    cid, data = m.attachments[0]
    m.attachments[0] = ("other-" + cid, data)
    await assert_rejected(gw, engine, pki, *m.pack(), "EBMS:0011")


async def test_duplicate_content_id(gw, engine, pki):
    m = Mutable(build(pki))
    m.attachments.append(m.attachments[0])
    await assert_rejected(gw, engine, pki, *m.pack(), "EBMS:0007")


@pytest.mark.parametrize("body", [b"", b"\xff\xfe\x00garbage\x80\x81", bytes(range(256)) * 8])
async def test_garbage_body(gw, engine, pki, body):
    await assert_rejected(gw, engine, pki, body, 'multipart/related; boundary="x"; type="application/soap+xml"',
                          "EBMS:0007")


@pytest.mark.parametrize("body", [b"\xff\xfe\x00garbage\x80\x81", b"<S12:Envelope", "<x>é</x>".encode("utf-16")])
async def test_garbage_soap(gw, engine, pki, body):
    await assert_rejected(gw, engine, pki, body, "application/soap+xml", "EBMS:0009")
    mime = b"--b\r\nContent-Type: application/soap+xml\r\n\r\n" + body + b"\r\n--b--\r\n"
    await assert_rejected(gw, engine, pki, mime, 'multipart/related; boundary="b"; type="application/soap+xml"',
                          "EBMS:0009")


async def test_oversize_body_by_content_length(gw, engine, pki, settings):
    settings.as4.max_message_bytes = 10_000
    out = build(pki, make_sbd(b"x" * 50_000))
    await assert_rejected(gw, engine, pki, out.read_bytes(), out.content_type, "EBMS:0007", status=413)


async def test_oversize_body_chunked(gw, engine, pki, settings):
    settings.as4.max_message_bytes = 10_000
    data = build(pki, make_sbd(os.urandom(20_000).hex().encode())).read_bytes()

    async def chunks():
        for i in range(0, len(data), 4096):
            yield data[i:i + 4096]

    out = build(pki)
    resp = await gw.post("/as4", data=chunks(), headers={"Content-Type": out.content_type})
    raw = await resp.read()
    assert resp.status == 413
    signal = parse_signal(raw, check_certificate=check_certificate_of(pki))
    assert [e.code for e in signal.errors] == ["EBMS:0007"]
    assert count(engine, messages) == 0


# --- SOAP / XML level ------------------------------------------------------------------------------

SOAP11 = b"""<?xml version="1.0"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header>
<eb:Messaging xmlns:eb="http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/"><eb:UserMessage>
<eb:MessageInfo><eb:Timestamp>2026-01-01T00:00:00Z</eb:Timestamp><eb:MessageId>soap11@x</eb:MessageId></eb:MessageInfo>
</eb:UserMessage></eb:Messaging></soap:Header><soap:Body/></soap:Envelope>"""


async def test_soap11_envelope(gw, engine, pki):
    mime = b"--b\r\nContent-Type: application/soap+xml\r\n\r\n" + SOAP11 + b"\r\n--b--\r\n"
    await assert_rejected(gw, engine, pki, mime, 'multipart/related; boundary="b"; type="application/soap+xml"',
                          "EBMS:0009", ref="soap11@x")
    await assert_rejected(gw, engine, pki, SOAP11, "text/xml", "EBMS:0007")


async def test_soap11_envelope_in_a_signed_message(gw, engine, pki):
    m = Mutable(build(pki))
    body, ct = m.pack()
    body = body.replace(S12.encode(), b"http://schemas.xmlsoap.org/soap/envelope/")
    await assert_rejected(gw, engine, pki, body, ct, "EBMS:0009")


@pytest.mark.parametrize("doctype", [
    b'<!DOCTYPE S12:Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
    b'<!DOCTYPE S12:Envelope SYSTEM "http://127.0.0.1:9/evil.dtd">',
    b'<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>',
])
async def test_doctype_in_signed_envelope(gw, engine, pki, doctype):
    out = build(pki)
    body = out.read_bytes().replace(b"?>", b"?>" + doctype, 1)
    await assert_rejected(gw, engine, pki, body, out.content_type, "EBMS:0009")


# --- ebMS header ------------------------------------------------------------------------------------

def _resigned(pki, mutate, **kw):
    m = Mutable(build(pki, **kw))
    mutate(m)
    m.resign(pki.sender.key)
    return m.pack()


async def test_message_id_missing(gw, engine, pki):
    def drop(m):
        mid = m.find(".//eb:MessageId")
        mid.getparent().remove(mid)
    await assert_rejected(gw, engine, pki, *_resigned(pki, drop), "EBMS:0009")


async def test_message_id_empty(gw, engine, pki):
    await assert_rejected(gw, engine, pki, *_resigned(pki, lambda m: setattr(m.find(".//eb:MessageId"), "text", " ")),
                          "EBMS:0009")


@pytest.mark.parametrize("path", [".//eb:Service", ".//eb:Action"])
async def test_empty_service_or_action(gw, engine, pki, path):
    await assert_rejected(gw, engine, pki, *_resigned(pki, lambda m: setattr(m.find(path), "text", "")),
                          "EBMS:0009")


@pytest.mark.parametrize("path", [".//eb:Service", ".//eb:Action"])
async def test_missing_service_or_action(gw, engine, pki, path):
    def drop(m):
        el = m.find(path)
        el.getparent().remove(el)
    await assert_rejected(gw, engine, pki, *_resigned(pki, drop), "EBMS:0009")


async def test_action_that_is_not_a_document_type(gw, engine, pki):
    """The Action is no Peppol document type identifier (the SBDH cannot agree with it either)."""
    await assert_rejected(gw, engine, pki, *_payload_with_action(pki, "not-a-scheme::x"), ("EBMS:0003", "EBMS:0004"))


def _payload_with_action(pki, action):
    from gateway.sbdh import build_sbd
    try:
        sbd = build_sbd(b"<Invoice xmlns='urn:oasis:names:specification:ubl:schema:xsd:Invoice-2'/>", sender=C1,
                        receiver=C4, document_id=action.split("::", 1)[1], process_id=PROC, country_c1="NO",
                        creation_date_time=NOW, instance_identifier=str(uuid.uuid4()))
    except Exception:
        sbd = make_sbd()
    out = build(pki, sbd, action=action)
    return out.read_bytes(), out.content_type


@pytest.mark.parametrize("mutate", [
    lambda m: m.find(".//eb:From/eb:PartyId").set("type", "urn:oasis:names:tc:ebcore:partyid-type:unregistered"),
    lambda m: m.find(".//eb:To/eb:PartyId").attrib.pop("type"),
])
async def test_wrong_party_id_type(gw, engine, pki, mutate):
    await assert_rejected(gw, engine, pki, *_resigned(pki, mutate), "EBMS:0010")


async def test_receipt_posted_to_the_user_message_endpoint(gw, engine, pki):
    out = build(pki)
    # a (validly signed) receipt from the sender, as if it posted a signal to us
    from gateway.as4 import receive_user_message
    rec = receive_user_message(out.read_bytes(), out.content_type, our_key=pki.receiver.key,
                               our_cert=pki.receiver.cert, trust=pki.trust, now=NOW)
    receipt = build_receipt(out.message_id, rec.reference_xml, message_id="sig-1@sender.test", timestamp=NOW,
                            signing_key=pki.sender.key, signing_cert=pki.sender.cert)
    rec.close()
    await assert_rejected(gw, engine, pki, receipt, SIGNAL_CONTENT_TYPE, "EBMS:0003")
    mime = b"--b\r\nContent-Type: application/soap+xml\r\n\r\n" + receipt + b"\r\n--b--\r\n"
    await assert_rejected(gw, engine, pki, mime, 'multipart/related; boundary="b"; type="application/soap+xml"',
                          "EBMS:0003")


async def test_error_signal_posted_to_the_user_message_endpoint(gw, engine, pki):
    from gateway.as4 import EbmsError, build_error_signal
    sig = build_error_signal(EbmsError("EBMS:0004", "x"), message_id="e-1@sender.test", timestamp=NOW,
                             signing_key=pki.sender.key, signing_cert=pki.sender.cert, ref_to_message_id="m@x")
    await assert_rejected(gw, engine, pki, sig, SIGNAL_CONTENT_TYPE, "EBMS:0003")


# --- payload -----------------------------------------------------------------------------------------

async def test_payload_that_is_not_gzip(gw, engine, pki):
    import gateway.as4.usermessage as um
    real = um.gzip_stream
    um.gzip_stream = lambda chunks: iter([b"<Invoice>plain, not gzip</Invoice>"])
    try:
        out = build(pki)
    finally:
        um.gzip_stream = real
    await assert_rejected(gw, engine, pki, out.read_bytes(), out.content_type, "EBMS:0303", ref=out.message_id)


async def test_decompression_bomb(gw, engine, pki, settings):
    settings.as4.max_decompressed_bytes = 1_000_000
    out = build(pki, make_sbd(b"A" * 5_000_000))
    assert out.blob.size < 100_000
    await assert_rejected(gw, engine, pki, out.read_bytes(), out.content_type, "EBMS:0303", ref=out.message_id)


async def test_gzip_of_garbage_bytes_is_an_sbdh_error(gw, engine, pki):
    out = build(pki, b"\xff\xfe\x80garbage not xml")
    await assert_rejected(gw, engine, pki, out.read_bytes(), out.content_type, "EBMS:0004")


# --- parties, certificates ------------------------------------------------------------------------------

async def test_participant_not_hosted(gw, engine, pki):
    out = build(pki, make_sbd(receiver="0192:974760673"), final_recipient="0192:974760673")
    resp, raw = await post(gw, out.read_bytes(), out.content_type)
    assert resp.status == 200
    signal = parse_signal(raw, check_certificate=check_certificate_of(pki))
    assert signal.errors[0].code == "EBMS:0004" and signal.errors[0].is_not_serviced
    assert signal.errors[0].detail == "PEPPOL:NOT_SERVICED"
    assert count(engine, messages) == 0 and count(engine, evidence) == 0


async def test_expired_sender_certificate(gw, engine, pki):
    old = make_ap_cert("PNO000001", pki.ca, now=NOW, not_before=NOW - dt.timedelta(days=60),
                       not_after=NOW - dt.timedelta(days=1))
    out = build(pki, signer=old)
    await assert_rejected(gw, engine, pki, out.read_bytes(), out.content_type, "EBMS:0101", ref=out.message_id)


async def test_certificate_from_a_non_peppol_ca(gw, engine, pki):
    rogue_ca = make_ca("ROGUE CA", now=NOW)
    rogue = make_ap_cert("PNO000001", rogue_ca, now=NOW)
    out = build(pki, signer=rogue)
    await assert_rejected(gw, engine, pki, out.read_bytes(), out.content_type, "EBMS:0101", ref=out.message_id)


async def test_from_party_not_the_signer(gw, engine, pki):
    out = build(pki, from_party="PNO000777")
    await assert_rejected(gw, engine, pki, out.read_bytes(), out.content_type, "EBMS:0101")


async def test_addressed_to_another_access_point(gw, engine, pki):
    out = build(pki, to_party="PNO000777")
    await assert_rejected(gw, engine, pki, out.read_bytes(), out.content_type, "EBMS:0010")


# --- duplicates ----------------------------------------------------------------------------------------------

async def test_duplicate_message_id_with_a_different_payload(gw, engine, pki):
    first = build(pki, make_sbd(b"first"))
    resp, receipt = await post(gw, first.read_bytes(), first.content_type)
    assert resp.status == 200
    second = build(pki, make_sbd(b"second, other content"), message_id=first.message_id)
    resp, raw = await post(gw, second.read_bytes(), second.content_type)
    signal = parse_signal(raw, check_certificate=check_certificate_of(pki))
    assert not signal.is_receipt, "a conflicting reuse of a MessageId must not be acknowledged"
    assert signal.errors[0].code == "EBMS:0004" and signal.errors[0].detail == "DUPLICATE_MESSAGE_ID"
    assert resp.status == 500
    assert count(engine, messages) == 1
    # the genuine retry still gets the original receipt
    resp, again = await post(gw, first.read_bytes(), first.content_type)
    assert resp.status == 200 and again == receipt


# --- ebMS test service ------------------------------------------------------------------------------------------

async def test_test_service_message_gets_a_receipt_and_is_not_delivered(gw, engine, pki):
    out = build(pki, service=TEST_SERVICE, action=TEST_ACTION, service_type=None)
    resp, raw = await post(gw, out.read_bytes(), out.content_type)
    signal = parse_signal(raw, check_certificate=check_certificate_of(pki))
    assert resp.status == 200 and signal.is_receipt, signal.errors
    assert signal.ref_to_message_id == out.message_id
    assert count(engine, messages) == 0


# --- values that do not fit the store ---------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [
    dict(message_id="m" * 300 + "@sender.test"),
    dict(conversation_id="c" * 300),
])
async def test_overlong_header_values_are_refused_not_a_server_error(gw, engine, pki, kw):
    """The store keeps at most 255 characters (PostgreSQL enforced it with a 500 before)."""
    out = build(pki, **kw)
    await assert_rejected(gw, engine, pki, out.read_bytes(), out.content_type, "EBMS:0009")


async def test_overlong_sender_is_refused_not_a_server_error(gw, engine, pki):
    sender = "9915:" + "s" * 300
    out = build(pki, make_sbd(sender=sender), original_sender=sender)
    await assert_rejected(gw, engine, pki, out.read_bytes(), out.content_type, "EBMS:0003", ref=out.message_id)


# --- HTTP transport tricks --------------------------------------------------------------------------------------

async def test_http_content_encoding_gzip_bomb_hits_the_size_cap(gw, engine, pki, settings):
    """aiohttp inflates Content-Encoding: gzip; the inflated bytes count against the cap."""
    import gzip
    settings.as4.max_message_bytes = 1_000_000
    bomb = gzip.compress(b"\0" * 50_000_000)
    assert len(bomb) < 100_000
    await assert_rejected(gw, engine, pki, bomb, 'multipart/related; boundary="b"; type="application/soap+xml"',
                          "EBMS:0007", status=413, **{"Content-Encoding": "gzip"})


async def test_broken_chunked_encoding_is_no_server_error(gw, engine):
    """A body whose chunked framing breaks mid-way: a client error, never a 500 from the handler."""
    import asyncio
    host, port = gw.server.host, gw.server.port
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"POST /as4 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                 b'Content-Type: multipart/related; boundary="b"; type="application/soap+xml"\r\n\r\n'
                 b"10\r\n--b\r\nContent-Type\r\nZZ-not-a-chunk-size\r\n\r\n")
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    assert status_line.split()[1] == b"400", status_line
    assert count(engine, messages) == 0


async def test_deeply_nested_soap(gw, engine, pki):
    soap = (b'<S12:Envelope xmlns:S12="http://www.w3.org/2003/05/soap-envelope"><S12:Header>' + b"<a>" * 50_000
            + b"</a>" * 50_000 + b"</S12:Header><S12:Body/></S12:Envelope>")
    mime = b"--b\r\nContent-Type: application/soap+xml\r\n\r\n" + soap + b"\r\n--b--\r\n"
    await assert_rejected(gw, engine, pki, mime, 'multipart/related; boundary="b"; type="application/soap+xml"',
                          "EBMS:0009")


# --- size ------------------------------------------------------------------------------------------------------

async def test_large_message_memory(gw, engine, pki, tmp_path):
    """A 20 MB (poorly compressible) SBD POSTed from a file: the request body spills to a temp file,
    the AS4 core streams, and the file payload store copies the raw message, the SBD and the
    document from their temp files (it held all three in memory before: 2.8x the SBD size)."""
    import tracemalloc
    src = tmp_path / "sbd.xml"
    import base64
    src.write_bytes(make_sbd(base64.b64encode(os.urandom(15_000_000))))  # a 20 MB SBD
    out = build(pki, src, tmp_dir=tmp_path)
    body = out.save_to(tmp_path / "body.mime")
    size = body.stat().st_size
    assert size > 15_000_000
    tracemalloc.start()
    try:
        with open(body, "rb") as fh:
            resp = await gw.post("/as4", data=fh, headers={"Content-Type": out.content_type})
            raw = await resp.read()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert resp.status == 200, raw[:300]
    assert parse_signal(raw, check_certificate=check_certificate_of(pki)).is_receipt
    sbd_size = src.stat().st_size
    assert peak < 10_000_000, f"peak {peak} for a {sbd_size} byte SBD"
    assert count(engine, messages) == 1


# --- WS-Security Timestamp ----------------------------------------------------------------------------------------

async def test_unsigned_expired_wsu_timestamp_is_ignored(gw, engine, pki):
    """The Peppol AS4 profile (CEF eDelivery AS4) does not use wsu:Timestamp; an extra, unsigned and
    long expired one changes nothing (it is neither required nor checked)."""
    from lxml import etree
    m = Mutable(build(pki))
    wsu = NSMAP["wsu"]
    ts = etree.Element("{%s}Timestamp" % wsu, {"{%s}Id" % wsu: "TS-1"})
    etree.SubElement(ts, "{%s}Created" % wsu).text = "2001-01-01T00:00:00Z"
    etree.SubElement(ts, "{%s}Expires" % wsu).text = "2001-01-01T00:05:00Z"
    m.security.insert(0, ts)
    resp, raw = await post(gw, *m.pack())
    signal = parse_signal(raw, check_certificate=check_certificate_of(pki))
    assert resp.status == 200 and signal.is_receipt, signal.errors
    assert count(engine, messages) == 1


# --- SBD variants the byte-based unwrap must survive ---------------------------------------------------------------

async def test_utf16_sbd_is_refused_not_a_server_error(gw, engine, pki):
    """Well-formed UTF-16 XML passes the SBDH parser; the byte-based cut-out cannot use it."""
    sbd = make_sbd().replace(b'encoding="UTF-8"', b'encoding="UTF-16"').decode().encode("utf-16")
    out = build(pki, sbd)
    await assert_rejected(gw, engine, pki, out.read_bytes(), out.content_type, "EBMS:0004", ref=out.message_id)


async def test_sbd_with_an_end_tag_quoted_in_a_header_comment(gw, engine, pki, tenant):
    """The document handed to the customer is the SBD's business document, not what follows a
    quoted end tag inside a comment."""
    _, auth = tenant
    end = b"</StandardBusinessDocumentHeader>"
    sbd = make_sbd(b"the real one").replace(
        b"<HeaderVersion>", b"<!-- " + end + b"<Invoice xmlns='urn:evil'>forged</Invoice> --><HeaderVersion>")
    out = build(pki, sbd + b"<!-- trailing -->")
    resp, raw = await post(gw, out.read_bytes(), out.content_type)
    assert resp.status == 200, raw[:300]
    items = (await (await gw.get("/api/v1/inbox", headers=auth)).json())["items"]
    doc = await (await gw.get(f"/api/v1/inbox/{items[0]['id']}/document", headers=auth)).read()
    assert b"the real one" in doc and b"forged" not in doc


async def test_concurrent_conflicting_messages_with_one_message_id(gw, engine, pki):
    """Two different messages under one MessageId at once: one receipt, one DUPLICATE_MESSAGE_ID."""
    import asyncio
    mid = f"{uuid.uuid4()}@sender.test"
    outs = [build(pki, make_sbd(note), message_id=mid) for note in (b"one", b"two")]
    results = await asyncio.gather(*(post(gw, o.read_bytes(), o.content_type) for o in outs))
    signals = [parse_signal(raw, check_certificate=check_certificate_of(pki)) for _, raw in results]
    assert sorted(s.is_receipt for s in signals) == [False, True]
    refused = next(s for s in signals if not s.is_receipt)
    assert refused.errors[0].code == "EBMS:0004" and refused.errors[0].detail == "DUPLICATE_MESSAGE_ID"
    assert count(engine, messages) == 1


async def test_certificate_from_the_smp_ca_of_the_same_root(make_client, engine, tenant):
    """Peppol-like hierarchy: root -> AP CA and root -> SMP CA, AP trust = root + AP CA. A leaf of
    the SMP CA (same root, CN looks like a seat id) must not sign AS4 messages."""
    root = make_ca("TEST ROOT CA", now=NOW)
    ap_ca = make_ca("TEST AP CA", now=NOW, issuer=root)
    smp_ca = make_ca("TEST SMP CA", now=NOW, issuer=root)
    trust = TrustStore((root.cert, ap_ca.cert))
    us = make_ap_cert("PNO000002", ap_ca, now=NOW)
    local = Pki(ap_ca, make_ap_cert("PNO000001", ap_ca, now=NOW), us, trust)
    t, _ = tenant
    add_participant(engine, ParticipantId.parse(C4), t.name)
    client = await make_client(identity=ApIdentity("PNO000002", us.key, us.cert, trust))
    smp_signed = build(local, signer=make_ap_cert("PNO000001", smp_ca, now=NOW))
    err = await assert_rejected(client, engine, local, smp_signed.read_bytes(), smp_signed.content_type, "EBMS:0101",
                                ref=smp_signed.message_id)
    assert "trusted" in err.description
    good = build(local)  # the same sender with its AP CA certificate is received
    resp, raw = await post(client, good.read_bytes(), good.content_type)
    assert resp.status == 200 and parse_signal(raw, check_certificate=check_certificate_of(local)).is_receipt


async def test_replay_with_a_comment_in_the_message_id_is_a_duplicate(gw, engine, pki):
    """A captured message re-posted with a comment slipped into its signed MessageId: the signature
    still verifies (exc-c14n drops comments), so it must still be the same MessageId (the stored
    receipt again), not a new message that bypasses duplicate detection."""
    out = build(pki)
    body = out.read_bytes()
    resp, receipt = await post(gw, body, out.content_type)
    assert resp.status == 200
    local, domain = out.message_id.split("@")
    replay = body.replace(f">{out.message_id}<".encode(), f">{local}<!-- -->@{domain}<".encode(), 1)
    assert replay != body
    resp, raw = await post(gw, replay, out.content_type)
    assert resp.status == 200 and raw == receipt
    assert count(engine, messages) == 1
