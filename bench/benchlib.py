"""Plumbing the benchmarks share: identifiers, synthetic invoices, a throw-away database, ports,
percentiles."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import sqlalchemy as sa

from gateway.store.db import make_engine, normalise_url
from gateway.store.migrate import upgrade
from gateway.store.schema import messages

# Peppol BIS Billing 3.0 invoice: document type and process values (without their schemes), and
# the sender (C1) and receiver (C4) participants (ICD 0192, without the scheme)
DOC = ("urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##urn:cen.eu:en16931:2017#compliant"
       "#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1")
PROC = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
C1, C4 = "0192:991825827", "0192:987654325"
PG_DEFAULT = os.environ.get("SENDGW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def invoice(size: int, n: int, tag: str = "BENCH") -> bytes:
    """A distinct UBL-like invoice of about `size` bytes (number `n`)."""
    head = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Invoice xmlns="urn:oasis:names:specification:ubl:schema:'
            b'xsd:Invoice-2" xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2" '
            b'xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">'
            b'<cbc:CustomizationID>urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0'
            b'</cbc:CustomizationID><cbc:ID>%s-%d</cbc:ID>' % (tag.encode(), n))
    parts, total, i = [head], len(head), 0
    while total < size - 20:
        line = (b"<cac:InvoiceLine><cbc:ID>%d</cbc:ID><cbc:InvoicedQuantity unitCode=\"EA\">%d</cbc:InvoicedQuantity>"
                b"<cbc:LineExtensionAmount currencyID=\"NOK\">%d.%02d</cbc:LineExtensionAmount><cac:Item>"
                b"<cbc:Name>Article %d-%d</cbc:Name></cac:Item></cac:InvoiceLine>\n"
                % (i, i % 17 + 1, (i * 7919 + n) % 100000, i % 100, n, i))
        parts.append(line)
        total += len(line)
        i += 1
    parts.append(b"</Invoice>")
    return b"".join(parts)


class Database:
    """A fresh, migrated database per run: a SQLite file, or a throw-away PostgreSQL schema."""

    def __init__(self, kind: str, workdir: Path, pg_url: str, name: str = "bench"):
        self.kind, self.schema, self.admin = kind, None, None
        if kind == "sqlite":
            self.url = f"sqlite:///{workdir}/{name}.db"
        else:
            self.admin = sa.create_engine(normalise_url(pg_url), isolation_level="AUTOCOMMIT")
            self.schema = f"{name}_" + uuid.uuid4().hex[:12]
            with self.admin.connect() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA "{self.schema}"'))
            sep = "&" if "?" in pg_url else "?"
            self.url = f"{pg_url}{sep}options=-csearch_path%3D{self.schema}"
        self.engine = make_engine(self.url)
        upgrade(self.engine)

    def message_counts(self) -> tuple[int, int]:
        """(messages, distinct AS4 MessageIds) stored."""
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(messages)).scalar()
            distinct = conn.execute(sa.select(sa.func.count(sa.distinct(messages.c.as4_message_id)))).scalar()
        return total, distinct

    def states(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return dict(conn.execute(sa.select(messages.c.state, sa.func.count()).group_by(messages.c.state)).all())

    def latencies(self) -> list[float]:
        """Milliseconds from submission to the delivered state, per delivered document."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(messages.c.created_at, messages.c.updated_at)
                                .where(messages.c.state == "delivered")).all()
        return [(u - c).total_seconds() * 1000 for c, u in rows]

    def close(self) -> None:
        self.engine.dispose()
        if self.admin is not None:
            with self.admin.connect() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{self.schema}" CASCADE'))
            self.admin.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (p in 0..100) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]
