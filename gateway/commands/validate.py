"""`sendgw validate FILE...`: validate EHF / Peppol documents with the official rules."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from gateway.config import ConfigError, load_settings

EXIT_VALID, EXIT_INVALID, EXIT_UNUSABLE = 0, 1, 2


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "validate",
        help="validate EHF / Peppol UBL documents (XSD + official Schematron)",
        description=(
            "Validate each FILE with the official rule set chosen from its root element and "
            "CustomizationID (ProfileID where needed): the UBL XSD, then the Schematron layers "
            "(CEN, Peppol or EHF). Documents inside an SBDH envelope are unwrapped first. Exit "
            "status: 0 all valid, 1 any invalid (a fatal rule or an XSD error), 2 unusable input "
            "(unreadable file, not XML, unknown document type, unknown rule set, too large, DTD) "
            "with a one-line reason per file on stderr."
        ),
        epilog="Rule sets and their validity dates: `sendgw artefacts list`.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="document to validate ('-' reads stdin)")
    parser.add_argument("--rules", metavar="ID",
                        help="use this rule set (e.g. peppol-billing-invoice@3.0.19) or family "
                             "(e.g. peppol-billing-invoice) instead of choosing by document")
    parser.add_argument("--at", metavar="YYYY-MM-DD", type=_date,
                        help="use the rules that were in force on this date (default: today)")
    parser.add_argument("--format", choices=("text", "json", "svrl"),
                        help="report format (default: text on a terminal, json otherwise). With several "
                             "files, json prints one report object per line with an extra \"file\" key")
    parser.set_defaults(func=run)


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def _read(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    return Path(name).read_bytes()


def run(args: argparse.Namespace) -> int:
    from validation.engine import Validator
    from validation.errors import ArtefactError, ValidationInputError

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"sendgw validate: configuration: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    fmt = args.format or ("text" if sys.stdout.isatty() else "json")
    rules = args.rules or settings.validation.default_rules or None
    try:
        validator = Validator(settings.path(settings.artefacts.cache),
                              max_bytes=settings.validation.max_bytes,
                              schematron_after_xsd_error=settings.validation.schematron_after_xsd_error)
    except ArtefactError as exc:
        print(f"sendgw validate: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE

    status = EXIT_VALID
    several = len(args.files) > 1
    out = sys.stdout
    for name in args.files:
        try:
            data = _read(name)
        except OSError as exc:
            print(f"sendgw validate: {name}: cannot read: {exc.strerror or exc}", file=sys.stderr)
            status = EXIT_UNUSABLE
            continue
        try:
            report = validator.validate(data, rules=rules, at=args.at, svrl=fmt == "svrl")
        except ValidationInputError as exc:
            reason = " ".join(exc.message.split())  # one line per problem, whatever the parser said
            print(f"sendgw validate: {name}: {exc.code}: {reason}", file=sys.stderr)
            status = EXIT_UNUSABLE
            continue
        except ArtefactError as exc:
            print(f"sendgw validate: {exc}", file=sys.stderr)
            return EXIT_UNUSABLE
        if not report.valid and status == EXIT_VALID:
            status = EXIT_INVALID
        if fmt == "json":
            obj = report.to_dict()
            if several:
                obj["file"] = name
                out.write(json.dumps(obj, ensure_ascii=False) + "\n")
            else:
                out.write(json.dumps(obj, ensure_ascii=False, indent=2) + "\n")
        elif fmt == "svrl":
            out.flush()
            sys.stdout.buffer.write(report.to_svrl())
            sys.stdout.buffer.flush()
        else:
            out.write(report.to_text(name))
        out.flush()
    return status
