"""`sendgw lookup`: ask the SML/SMP where a participant receives a document type.

Exit codes: 0 found, 1 not registered (SML, SMP 404, doctype/process not served, no active AS4
endpoint), 2 technical failure (DNS/SMP unavailable, bad or untrusted answer, bad configuration).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from certs.trust import TrustError
from gateway.config import ConfigError, load_settings
from gateway.discovery.errors import DiscoveryFailure, NotRegistered
from gateway.identifiers import (
    DocumentTypeId,
    IdentifierError,
    ParticipantId,
    ProcessId,
)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "lookup", help="find a participant's Peppol AS4 endpoint (SML + SMP)",
        description="Resolve PARTICIPANT in the SML (U-NAPTR) and read its signed SMP metadata. With "
                    "--doctype: print the AS4 endpoint URL, certificate and activation window. Without: "
                    "list the document types the participant registered. Exit 0 found, 1 not "
                    "registered, 2 technical failure.")
    parser.add_argument("participant", metavar="PARTICIPANT",
                        help="e.g. 0192:923609016 or iso6523-actorid-upis::0192:923609016")
    parser.add_argument("--doctype", metavar="ID", help="document type identifier (busdox-docid-qns::... or a bare value)")
    parser.add_argument("--process", metavar="ID", help="process identifier (default: any process with an AS4 endpoint)")
    net = parser.add_mutually_exclusive_group()
    net.add_argument("--test", dest="mode", action="store_const", const="test", help="use the Peppol test network")
    net.add_argument("--prod", dest="mode", action="store_const", const="prod", help="use the Peppol production network")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=run, mode=None)


def _emit(args: argparse.Namespace, data: dict, lines: list[str], stream=None) -> None:
    stream = stream or sys.stdout
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True), file=stream)
    else:
        for line in lines:
            print(line, file=stream)


def _failure(args: argparse.Namespace, exc: Exception, code: str, kind: str) -> None:
    message = getattr(exc, "message", str(exc))
    data = {"found": False, "result": kind, "code": code, "reason": message,
            "retryable": bool(getattr(exc, "retryable", False))}
    _emit(args, data, [f"{kind}: {code}: {message}"], stream=sys.stdout if args.json else sys.stderr)


def run(args: argparse.Namespace) -> int:
    try:
        participant = ParticipantId.parse(args.participant)
        doctype = DocumentTypeId.parse(args.doctype) if args.doctype is not None else None
        process = ProcessId.parse(args.process) if args.process is not None else None
    except IdentifierError as exc:
        _failure(args, exc, exc.code, "invalid identifier")
        return 2
    try:
        settings = load_settings(args.config)
        from gateway.discovery.lookup import Discovery

        discovery = Discovery.from_settings(settings, mode=args.mode)
    except (ConfigError, TrustError) as exc:
        _failure(args, exc, "config", "configuration error")
        return 2
    try:
        return asyncio.run(_run(args, discovery, participant, doctype, process))
    except NotRegistered as exc:
        _failure(args, exc, exc.code, "not registered")
        return 1
    except DiscoveryFailure as exc:
        _failure(args, exc, exc.code, "unavailable" if exc.retryable else "discovery error")
        return 2


async def _run(args, discovery, participant, doctype, process) -> int:
    async with discovery:
        if doctype is None:
            smp_url = await discovery.smp_url(participant)
            group = await discovery.service_group(participant)
            data = {"found": True, "participant": str(participant), "smp_url": smp_url,
                    "document_types": [str(d) for d in group.document_types]}
            lines = [f"participant:    {participant}", f"SMP URL:        {smp_url}",
                     f"document types: {len(group.document_types)}"]
            lines += [f"  {d}" for d in group.document_types]
            _emit(args, data, lines)
            return 0
        endpoint = await discovery.lookup(participant, doctype, process)
        info = endpoint.describe()
        info["found"] = True
        cert = info["certificate"]
        lines = [
            f"participant:       {info['participant']}",
            f"document type:     {info['document_type']}",
            f"process:           {info['process']}",
            f"SMP URL:           {info['smp_url'] or '(static route from [routes])'}",
        ]
        if endpoint.redirected_from:
            lines.append(f"redirected from:   {endpoint.redirected_from}")
        lines += [
            f"endpoint URL:      {info['endpoint_url']}",
            f"transport profile: {info['transport_profile']}",
            f"AP seat id:        {info['seat_id']}",
            f"certificate:       {cert['subject']}",
            f"  issuer:          {cert['issuer']}",
            f"  valid:           {cert['not_before']} .. {cert['not_after']}",
            f"activation window: {info['activation'] or '-'} .. {info['expiration'] or '-'}",
            f"SMP signed by:     {info['smp_signer'] or '-'}",
        ]
        _emit(args, info, lines)
        return 0
