"""Mutated inputs never escape as anything but EbmsError (or parse cleanly)."""

from __future__ import annotations

import random

from lxml import etree

from gateway.as4 import EbmsError, parse_signal, receive_user_message, build_receipt
from gateway.as4.signals import certificate_checker

from .conftest import NOW, Mutable, build


def _receive(pki, body, ct):
    return receive_user_message(body, ct, pki.receiver.key, pki.receiver.cert, pki.trust, NOW)


def test_byte_mutations_of_a_message(pki, sbd):
    out = build(pki, sbd)
    raw = out.read_bytes()
    rng = random.Random(1234)
    outcomes = set()
    for _ in range(300):
        data = bytearray(raw)
        kind = rng.randrange(4)
        if kind == 0:
            for _ in range(rng.randrange(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif kind == 1:
            del data[rng.randrange(len(data)):]
        elif kind == 2:
            i = rng.randrange(len(data))
            del data[i:i + rng.randrange(1, 200)]
        else:
            i = rng.randrange(len(data))
            data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 50)))
        try:
            _receive(pki, bytes(data), out.content_type).close()
            outcomes.add("accepted")
        except EbmsError as e:
            outcomes.add(e.code)
    assert {"EBMS:0101", "EBMS:0007"} <= outcomes


def test_element_removal_and_duplication(pki, sbd):
    out = build(pki, sbd)
    base = Mutable(out)
    n = sum(1 for _ in base.root.iter())
    rng = random.Random(99)
    for i in range(1, n):
        for op in ("remove", "duplicate", "empty"):
            m = Mutable(out)
            el = list(m.root.iter())[i]
            parent = el.getparent()
            if op == "remove":
                parent.remove(el)
            elif op == "duplicate":
                parent.insert(parent.index(el), etree.fromstring(etree.tostring(el)))
            else:
                for c in list(el):
                    el.remove(c)
                el.text = None
                for k in list(el.attrib)[: rng.randrange(0, 3)]:
                    del el.attrib[k]
            try:
                _receive(pki, *m.pack()).close()
            except EbmsError:
                pass


def test_receipt_mutations(pki, sbd):
    out = build(pki, sbd)
    rec = _receive(pki, out.read_bytes(), out.content_type)
    receipt = build_receipt(rec.message_id, rec.reference_xml, message_id="r@x", timestamp=NOW,
                            signing_key=pki.receiver.key, signing_cert=pki.receiver.cert)
    check = certificate_checker(pki.receiver.cert)
    rng = random.Random(7)
    for _ in range(200):
        data = bytearray(receipt)
        i = rng.randrange(len(data))
        data[i] = rng.randrange(32, 127)
        try:
            parse_signal(bytes(data), check_certificate=check)
        except EbmsError as e:
            assert e.code == "EBMS:0302"


def test_base64_field_mutations(pki, sbd):
    """Corrupt the BST, CipherValue, DigestValues and SignatureValue character by character."""
    out = build(pki, sbd)
    rng = random.Random(5)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=*"
    paths = [".//wsse:BinarySecurityToken", ".//xenc:CipherValue", ".//ds:DigestValue", ".//ds:SignatureValue"]
    codes = set()
    for path in paths:
        for _ in range(40):
            m = Mutable(out)
            el = m.root.findall(path, {"wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
                                       "xenc": "http://www.w3.org/2001/04/xmlenc#",
                                       "ds": "http://www.w3.org/2000/09/xmldsig#"})
            target = rng.choice(el)
            t = list(target.text)
            i = rng.randrange(len(t))
            t[i] = rng.choice(alphabet)
            target.text = "".join(t)
            try:
                _receive(pki, *m.pack()).close()
                codes.add("ok")
            except EbmsError as e:
                codes.add(e.code)
    assert codes <= {"ok", "EBMS:0101", "EBMS:0102"}
    assert {"EBMS:0101", "EBMS:0102"} <= codes
