"""`sendgw send FILE`: submit a document through the HTTP API of a local or remote gateway.

It goes through the same `POST /api/v1/documents` as every other client (validation, tenant
checks, the durable outbox), so the command line needs nothing but a URL and an API token.
Exit codes: 0 delivered (or queued, without --wait); 1 rejected (invalid document, sender not
yours, ...), failed or undeliverable; 2 usage, connection, authentication or server errors;
3 --wait gave up before the document reached a final state.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from gateway.commands._common import CommandError, guarded, seconds, settings_from

FINAL = {"delivered": 0, "failed": 1, "undeliverable": 1}
EXIT_TIMEOUT = 3


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("send", help="submit a document for sending (through the HTTP API)",
                       description="Submit a UBL document to a gateway's POST /api/v1/documents and print "
                                   "its id and state. With --wait, follow it until delivered, failed or "
                                   "undeliverable and print the attempts. Exit 0 delivered (or queued "
                                   "without --wait), 1 rejected/failed/undeliverable, 2 usage, connection "
                                   "or authentication error, 3 --wait timed out.")
    p.add_argument("file", metavar="FILE", help="the UBL document (Invoice, CreditNote, ...)")
    p.add_argument("--url", help="gateway base URL (default $SENDGW_URL, else [server] host/port of the "
                                 "configuration, e.g. http://127.0.0.1:8080)")
    p.add_argument("--token", help="API token (default $SENDGW_TOKEN)")
    p.add_argument("--cacert", metavar="FILE",
                   help="PEM CA bundle to trust for an https:// gateway (default: the system's CAs)")
    p.add_argument("--idempotency-key", metavar="KEY",
                   help="a resubmission with the same key and file returns the same document (no second send)")
    p.add_argument("--receiver", metavar="ID", help="override the receiver participant id, e.g. 0192:987654325")
    p.add_argument("--wait", action="store_true", help="wait for a final state and print the attempts")
    p.add_argument("--timeout", type=seconds, default=600.0, metavar="SECONDS",
                   help="give up waiting after this long (default 600; exit 3)")
    p.add_argument("--json", action="store_true", help="print the API's JSON answer instead of text")
    p.set_defaults(func=guarded(run))


def default_url(args: argparse.Namespace) -> str:
    if os.environ.get("SENDGW_URL"):
        return os.environ["SENDGW_URL"]
    server = settings_from(args).server
    if server.public_url:
        return server.public_url
    host = server.host if server.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if server.tls_certificate else "http"
    return f"{scheme}://{host}:{server.port}"


class _Http:
    def __init__(self, base: str, token: str, cacert: str | None = None):
        import ssl

        import aiohttp

        self.aiohttp = aiohttp
        self.base = base.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}", "User-Agent": "sendgw-send"}
        try:
            context = ssl.create_default_context(cafile=cacert) if cacert else True
        except (OSError, ssl.SSLError) as exc:
            raise CommandError(f"--cacert {cacert}: {exc}") from exc
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120),
                                             connector=aiohttp.TCPConnector(ssl=context))

    async def request(self, method: str, path: str, **kw) -> tuple[int, Any]:
        headers = {**self.headers, **kw.pop("headers", {})}
        try:
            async with self.session.request(method, self.base + path, headers=headers, **kw) as resp:
                raw = await resp.read()
                status = resp.status
        except (self.aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise CommandError(f"cannot reach {self.base}: {type(exc).__name__}: {exc}") from exc
        try:
            return status, json.loads(raw)
        except ValueError:
            raise CommandError(f"{method} {path}: HTTP {status} with a non-JSON answer: "
                               f"{raw[:200].decode('utf-8', 'replace')!r}") from None

    async def close(self) -> None:
        await self.session.close()


def _print_error(status: int, body: Any) -> None:
    err = body.get("error", {}) if isinstance(body, dict) else {}
    print(f"sendgw send: HTTP {status} {err.get('code', '?')}: {err.get('message', body)}", file=sys.stderr)
    details = err.get("details")
    if isinstance(details, dict) and details.get("errors"):
        for e in details["errors"]:
            where = e.get("location") or ""
            line = f" line {e['line']}" if e.get("line") else ""
            print(f"  [{e.get('severity', 'fatal')}] {e.get('rule', '?')}: {e.get('message', '')}"
                  f" ({where}{line})", file=sys.stderr)


def _print_details(d: dict) -> None:
    print(f"{d['id']}\t{d['state']}")
    print(f"  receiver   {d.get('receiver')}")
    print(f"  endpoint   {d.get('endpoint') or '-'}")
    print(f"  message id {d.get('as4_message_id')}")
    for a in d.get("attempts", []):
        http = f"HTTP {a['http_status']}" if a.get("http_status") else "-"
        print(f"  attempt {a['number']}  {a['started_at']}  {a.get('outcome') or 'in flight'}  {http}"
              + (f"  {a['error']}" if a.get("error") else ""))
    if d.get("last_error") and d["state"] != "delivered":
        print(f"  reason     {d['last_error']}")


async def _send(args: argparse.Namespace, base: str, token: str, data: bytes, name: str) -> int:
    import aiohttp

    http = _Http(base, token, args.cacert)
    try:
        headers = {}
        if args.idempotency_key:
            headers["Idempotency-Key"] = args.idempotency_key
        if args.receiver:
            form = aiohttp.FormData()
            form.add_field("file", data, filename=name, content_type="application/xml")
            form.add_field("options", json.dumps({"receiver": args.receiver}), content_type="application/json")
            status, body = await http.request("POST", "/api/v1/documents", data=form, headers=headers)
        else:
            headers["Content-Type"] = "application/xml"
            status, body = await http.request("POST", "/api/v1/documents", data=data, headers=headers)
        if status == 401:
            raise CommandError(f"authentication refused by {base}: {body.get('error', {}).get('message', body)}")
        if status != 202:
            if args.json:
                print(json.dumps(body, indent=2))
            _print_error(status, body)
            return 1 if 400 <= status < 500 else 2
        if not args.wait:
            print(json.dumps(body, indent=2) if args.json else f"{body['id']}\t{body['state']}")
            return 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + args.timeout
        delay = 0.1
        while True:
            status, details = await http.request("GET", body["links"]["self"])
            if status != 200:
                _print_error(status, details)
                return 2
            if details["state"] in FINAL or loop.time() >= deadline:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 2.0)
        if args.json:
            print(json.dumps(details, indent=2))
        else:
            _print_details(details)
        if details["state"] not in FINAL:
            print(f"sendgw send: still {details['state']} after {args.timeout:g} s", file=sys.stderr)
            return EXIT_TIMEOUT
        return FINAL[details["state"]]
    finally:
        await http.close()


def run(args: argparse.Namespace) -> int:
    """Submit FILE; see the module docstring for exit codes."""
    token = args.token or os.environ.get("SENDGW_TOKEN")
    if not token:
        raise CommandError("no API token: pass --token or set SENDGW_TOKEN (sendgw tenant token NAME)")
    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from exc
    if not data:
        raise CommandError(f"{path} is empty")
    base = args.url or default_url(args)
    if not base.startswith(("http://", "https://")):
        raise CommandError(f"gateway URL must start with http:// or https://, got {base!r}")
    return asyncio.run(_send(args, base, token, data, path.name))
