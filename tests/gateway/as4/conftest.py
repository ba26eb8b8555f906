"""Fixtures for the AS4 core tests: a dev CA, sender/receiver AP certificates, sample SBDs, and
helpers to mutate and re-sign built messages (for negative tests)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree

from certs.devpki import Issued, make_ap_cert, make_ca
from certs.trust import TrustStore
from gateway.as4 import build_user_message
from gateway.as4.blob import Blob
from gateway.as4.constants import NSMAP
from gateway.as4.mime import parse_multipart, write_multipart
from gateway.sbdh import build_sbd

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
DOC = ("urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##urn:cen.eu:en16931:2017#compliant"
       "#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1")
PROC = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
ACTION = "busdox-docid-qns::" + DOC
C1 = "0192:991825827"
C4 = "0192:987654325"

INVOICE = b"""<?xml version="1.0" encoding="UTF-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
  xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <cbc:CustomizationID>urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0</cbc:CustomizationID>
  <cbc:ID>INV-1</cbc:ID>
  <cbc:Note>%s</cbc:Note>
</Invoice>"""


@dataclass
class Pki:
    ca: Issued
    sender: Issued
    receiver: Issued
    trust: TrustStore


@pytest.fixture(scope="session")
def pki() -> Pki:
    ca = make_ca(now=NOW)
    return Pki(ca, make_ap_cert("PNO000001", ca, now=NOW), make_ap_cert("PNO000002", ca, now=NOW),
               TrustStore.from_pem(ca.cert_pem()))


@pytest.fixture(scope="session")
def other_ca() -> Issued:
    return make_ca("UNTRUSTED CA", now=NOW)


def make_sbd(note: bytes = b"hello", *, sender: str = C1, receiver: str = C4, **kw) -> bytes:
    return build_sbd(INVOICE % note, sender=sender, receiver=receiver, document_id=DOC, process_id=PROC,
                     country_c1="NO", creation_date_time=NOW, **kw)


@pytest.fixture(scope="session")
def sbd() -> bytes:
    return make_sbd()


def build(pki: Pki, payload: bytes, *, signer: Issued | None = None, **overrides):
    signer = signer or pki.sender
    args = dict(message_id="msg-1@sendgw.test", timestamp=NOW, from_party="PNO000001", to_party="PNO000002",
                service=PROC, action=ACTION, original_sender=C1, final_recipient=C4,
                signing_key=signer.key, signing_cert=signer.cert, receiver_cert=pki.receiver.cert)
    args.update(overrides)
    return build_user_message(payload, **args)


class Mutable:
    """A built message opened up for mutation: SOAP tree + raw attachments."""

    def __init__(self, out):
        mime = parse_multipart(out.read_bytes(), out.content_type)
        self.root = etree.fromstring(mime.soap)
        self.attachments = [(a.content_id, a.blob.read_bytes()) for a in mime.attachments]
        self.boundary = "mutated-boundary-123"

    def find(self, path: str) -> etree._Element:
        el = self.root.find(path, NSMAP)
        assert el is not None, path
        return el

    @property
    def header(self):
        return self.find("S12:Header")

    @property
    def security(self):
        return self.find("S12:Header/wsse:Security")

    @property
    def messaging(self):
        return self.find("S12:Header/eb:Messaging")

    def resign(self, key) -> None:
        """Recompute every #id digest and the SignatureValue (an attacker or a buggy peer with a key)."""
        ids = {}
        for el in self.root.iter():
            for k, v in el.attrib.items():
                if k.rsplit("}", 1)[-1] == "Id":
                    ids.setdefault(v, el)
        si = self.find(".//ds:SignedInfo")
        for ref in si.findall("ds:Reference", NSMAP):
            uri = ref.get("URI")
            if uri.startswith("#") and uri[1:] in ids:
                c = etree.tostring(ids[uri[1:]], method="c14n", exclusive=True)
                ref.find("ds:DigestValue", NSMAP).text = base64.b64encode(hashlib.sha256(c).digest()).decode()
        c = etree.tostring(si, method="c14n", exclusive=True)
        sig = key.sign(c, padding.PKCS1v15(), hashes.SHA256())
        self.find(".//ds:SignatureValue").text = base64.b64encode(sig).decode()

    def pack(self) -> tuple[bytes, str]:
        class Sink(bytearray):
            def write(self, b):
                self.extend(b)
        sink = Sink()
        write_multipart(sink, self.boundary, etree.tostring(self.root, xml_declaration=True, encoding="UTF-8"),
                        [(cid, Blob.from_bytes(data)) for cid, data in self.attachments])
        return bytes(sink), f'multipart/related; boundary="{self.boundary}"; type="application/soap+xml"'
