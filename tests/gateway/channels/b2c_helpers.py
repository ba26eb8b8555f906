"""Shared test helpers for the notice channels (e-mail, SMS, print): invoices, requests, certificates."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

from gateway.channels.base import DeliveryRequest, PostalAddress, Reachability, Recipient
from gateway.invoice import extract_invoice_facts

EXAMPLE = "ehf-billing-3/examples/ehf-3-faktura-1.xml"


def tiny_pdf(text: str = "Faktura") -> bytes:
    """A small valid one-page A4 PDF (pikepdf), for channels that only carry the PDF."""
    import io

    import pikepdf

    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(595.28, 841.89))
    pdf.docinfo["/Title"] = text
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def make_request(shared_dir: Path, *, delivery_id: str = "dlv-0001", recipient: Recipient | None = None,
                 reachability: Reachability | None = None, pdf: bytes | None = None,
                 example: str = EXAMPLE, options: dict | None = None) -> DeliveryRequest:
    ubl = (shared_dir / "conformance" / example).read_bytes()
    facts = extract_invoice_facts(ubl)
    recipient = recipient or Recipient(name="Kari Nordmann", email="kari@example.no", phone="+4791234567",
                                       address=PostalAddress(("Storgata 1",), "0155", "Oslo"))
    return DeliveryRequest(delivery_id, facts.seller.orgnr, facts, ubl, pdf if pdf is not None else tiny_pdf(),
                           recipient, reachability or Reachability.ok(), options or {})


def make_tls_files(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost (certificate, key) written to `directory`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx
