"""`sendgw report`: reports for a tenant (channel usage, cost and savings)."""

from __future__ import annotations

import argparse
import json

from gateway.api.errors import ApiError
from gateway.api.routing import parse_period
from gateway.commands._common import CommandError, current_engine, guarded
from gateway.routing import channel_report
from gateway.store.tenants import TenantNotFound, get_tenant_by_name


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("report", help="reports (channel usage and savings)",
                            description="Reports for a tenant.")
    rsub = parser.add_subparsers(dest="report_command", metavar="REPORT", required=True)
    p = rsub.add_parser("channels", help="per channel: invoices, delivery rate, cost, saving vs print",
                        description="Per channel: invoices attempted and delivered, delivery rate, cost and "
                                    "the saving against sending everything by print, for a period "
                                    "(default: the last 30 days). The same as GET /api/v1/reports/channels.")
    p.add_argument("--tenant", required=True)
    p.add_argument("--from", dest="start", metavar="DATE", help="YYYY-MM-DD or ISO timestamp")
    p.add_argument("--to", dest="end", metavar="DATE", help="YYYY-MM-DD (inclusive) or ISO timestamp")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=guarded(run_channels))


def run_channels(args: argparse.Namespace) -> int:
    engine = current_engine(args)
    query = {k: v for k, v in (("from", args.start), ("to", args.end)) if v}
    try:
        start, end = parse_period(query)
    except ApiError as exc:
        raise CommandError(exc.message) from exc
    with engine.connect() as conn:
        try:
            tenant = get_tenant_by_name(conn, args.tenant)
        except TenantNotFound as exc:
            raise CommandError(str(exc), 1) from exc
    report = channel_report(engine, tenant.id, start, end)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{args.tenant}: {start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} UTC (print baseline "
          f"{report['print_cost_nok']} NOK)")
    print(f"{'channel':<11}{'invoices':>9}{'delivered':>10}{'rate':>7}{'cost NOK':>11}{'saving NOK':>12}")
    for r in report["channels"]:
        rate = f"{r['delivery_rate'] * 100:.0f}%" if r["delivery_rate"] is not None else "-"
        print(f"{r['channel']:<11}{r['invoices']:>9}{r['delivered']:>10}{rate:>7}{r['cost_nok']:>11}"
              f"{r['saving_vs_print_nok']:>12}")
    t = report["total"]
    print(f"{'total':<11}{'':>9}{t['delivered']:>10}{'':>7}{t['cost_nok']:>11}{t['saving_vs_print_nok']:>12}")
    return 0
