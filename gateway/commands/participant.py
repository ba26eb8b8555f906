"""`sendgw participant`: the participants this access point receives for, per tenant."""

from __future__ import annotations

import argparse

from gateway.commands._common import CommandError, current_engine, guarded
from gateway.identifiers import DocumentTypeId, IdentifierError, ParticipantId
from gateway.store.participants import (
    ParticipantExists,
    ParticipantNotFound,
    add_participant,
    list_participants,
    remove_participant,
)
from gateway.store.tenants import TenantNotFound


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("participant", help="hosted participants (receiving side)",
                            description="Manage the Peppol participants this access point receives for.")
    psub = parser.add_subparsers(dest="participant_command", metavar="ACTION", required=True)
    p = psub.add_parser("add", help="host a participant for a tenant",
                        description="Host a participant (e.g. 0192:923609016) for a tenant. Messages for "
                                    "it are accepted and handed to the tenant's inbox. Without --doctype "
                                    "every document type is accepted.")
    p.add_argument("participant", help="participant id, e.g. 0192:923609016 or iso6523-actorid-upis::0192:923609016")
    p.add_argument("--tenant", required=True, help="tenant name")
    p.add_argument("--doctype", action="append", default=[], metavar="ID",
                   help="accepted document type id (repeatable)")
    p.set_defaults(func=guarded(run_add))
    p = psub.add_parser("remove", help="stop hosting a participant", description="Stop hosting a participant.")
    p.add_argument("participant")
    p.set_defaults(func=guarded(run_remove))
    p = psub.add_parser("list", help="list hosted participants", description="List hosted participants.")
    p.add_argument("--tenant", help="only this tenant's participants")
    p.set_defaults(func=guarded(run_list))


def _participant(text: str) -> ParticipantId:
    try:
        return ParticipantId.parse(text)
    except IdentifierError as exc:
        raise CommandError(f"invalid participant id {text!r}: {exc}") from exc


def run_add(args: argparse.Namespace) -> int:
    participant = _participant(args.participant)
    try:
        doctypes = [DocumentTypeId.parse(d) for d in args.doctype]
    except IdentifierError as exc:
        raise CommandError(f"invalid document type id: {exc}") from exc
    try:
        hosted = add_participant(current_engine(args), participant, args.tenant, doctypes)
    except (TenantNotFound, ParticipantExists) as exc:
        raise CommandError(str(exc), 1) from exc
    print(f"hosting {hosted.participant} for tenant {hosted.tenant_name}"
          + (f" ({len(hosted.doctypes)} document types)" if hosted.doctypes else " (all document types)"))
    return 0


def run_remove(args: argparse.Namespace) -> int:
    try:
        remove_participant(current_engine(args), _participant(args.participant))
    except ParticipantNotFound as exc:
        raise CommandError(str(exc), 1) from exc
    print(f"removed {args.participant}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    for p in list_participants(current_engine(args), args.tenant):
        print(f"{p.participant}\t{p.tenant_name}\t{','.join(p.doctypes) or '*'}")
    return 0
