"""Participants we host as a receiving access point, each owned by one tenant."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from gateway.identifiers import DocumentTypeId, ParticipantId
from gateway.store.schema import participants, tenants
from gateway.store.tenants import get_tenant_by_name


class ParticipantExists(Exception):
    """The participant is already hosted (by this or another tenant)."""


class ParticipantNotFound(Exception):
    """The participant is not hosted here."""


@dataclass(frozen=True)
class HostedParticipant:
    participant: ParticipantId
    tenant_id: str
    tenant_name: str
    doctypes: tuple[str, ...]  # empty = every document type

    def accepts(self, doctype: DocumentTypeId | str) -> bool:
        return not self.doctypes or str(doctype) in self.doctypes


def add_participant(engine: Engine, participant: ParticipantId, tenant_name: str,
                    doctypes: list[DocumentTypeId] | None = None) -> HostedParticipant:
    doctype_ids = sorted({str(d) for d in doctypes or []})
    with engine.begin() as conn:
        tenant = get_tenant_by_name(conn, tenant_name)
        try:
            conn.execute(insert(participants).values(
                id=str(uuid.uuid4()), tenant_id=tenant.id, scheme=participant.scheme, value=participant.value,
                doctypes=doctype_ids, created_at=dt.datetime.now(dt.timezone.utc)))
        except IntegrityError as exc:
            raise ParticipantExists(f"participant {participant} is already hosted") from exc
    return HostedParticipant(participant, tenant.id, tenant.name, tuple(doctype_ids))


def remove_participant(engine: Engine, participant: ParticipantId) -> None:
    with engine.begin() as conn:
        result = conn.execute(delete(participants).where(participants.c.scheme == participant.scheme,
                                                          participants.c.value == participant.value))
    if result.rowcount == 0:
        raise ParticipantNotFound(f"participant {participant} is not hosted here")


def _row(row) -> HostedParticipant:
    return HostedParticipant(ParticipantId(row.scheme, row.value), row.tenant_id, row.name, tuple(row.doctypes or ()))


def _query():
    return select(participants.c.scheme, participants.c.value, participants.c.tenant_id, participants.c.doctypes,
                  tenants.c.name).join(tenants, tenants.c.id == participants.c.tenant_id)


def find_participant(conn: Connection, participant: ParticipantId) -> HostedParticipant | None:
    row = conn.execute(_query().where(participants.c.scheme == participant.scheme,
                                      participants.c.value == participant.value)).first()
    return _row(row) if row else None


def list_participants(engine: Engine, tenant_name: str | None = None) -> list[HostedParticipant]:
    query = _query().order_by(tenants.c.name, participants.c.value)
    if tenant_name:
        query = query.where(tenants.c.name == tenant_name)
    with engine.connect() as conn:
        return [_row(r) for r in conn.execute(query)]
