"""`sendgw render`: turn a UBL invoice or credit note into a PDF/A-3b (or HTML) file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.invoice import InvoiceError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "render", help="render a UBL invoice/credit note as PDF/A-3b (or HTML)",
        description="Render a UBL 2.1 Invoice or CreditNote (bare or SBDH-wrapped) as an A4 PDF/A-3b "
                    "with the UBL embedded, in a Norwegian layout. Exit 0 on success, 2 when the "
                    "input is not a usable invoice, 1 when OUT cannot be written (reason on one "
                    "line on stderr).")
    parser.add_argument("file", metavar="FILE", help="UBL XML file ('-' for standard input)")
    parser.add_argument("-o", "--output", metavar="OUT", required=True,
                        help="output file ('-' for standard output)")
    parser.add_argument("--html", action="store_true", help="write standalone HTML instead of PDF")
    parser.add_argument("--print", dest="print_ready", action="store_true",
                        help="print-provider variant: black on white, return address in the window, "
                             "no embedded XML")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        data = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        print(f"sendgw render: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    try:
        if args.html:
            from gateway.render.html import render_html
            out = render_html(data, print_ready=args.print_ready).encode("utf-8")
        else:
            from gateway.render.pdf import render_pdf
            out = render_pdf(data, print_ready=args.print_ready)
    except InvoiceError as exc:
        reason = " ".join(exc.message.split())
        print(f"sendgw render: {args.file}: {reason} ({exc.code})", file=sys.stderr)
        return 2
    try:
        if args.output == "-":
            sys.stdout.buffer.write(out)
            sys.stdout.buffer.flush()
        else:
            Path(args.output).write_bytes(out)
    except OSError as exc:
        print(f"sendgw render: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0
