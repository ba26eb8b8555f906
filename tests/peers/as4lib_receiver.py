"""A receiving Peppol access point built on the independent PyPI `as4` library, served over real
HTTP by aiohttp, with failure injection for retry tests. It counts every MessageId it accepts."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import hashlib
import uuid

from aiohttp import web

from as4 import AS4LocalPrivateKey
from as4.peppol import create_peppol_internal_party, parse_peppol_message, peppol_security_policy
from gateway.as4 import EbmsError, build_error_signal


class As4LibReceiver:
    """`script` is a list of behaviours for the first requests: "503", "timeout", "drop",
    "error" (a signed EBMS:0101 error signal), "forged-error" (the same with a signature that no
    longer verifies), "not-serviced", "bad-receipt" (a receipt whose signature no longer verifies);
    after the script every request gets a real receipt."""

    def __init__(self, seat_id: str, key, cert, ca_cert, script: list[str] | None = None, delay: float = 0.0):
        self.seat_id, self.key, self.cert, self.ca_cert = seat_id, key, cert, ca_cert
        self.script = list(script or [])
        self.delay = delay
        self.stall_seconds = 2.0  # "timeout": longer than the sender's HTTP timeout in the tests
        self.requests = 0
        self.accepted: collections.Counter[str] = collections.Counter()
        self.message_ids: list[str] = []  # every request's MessageId, in order
        self.body_hashes: list[str] = []  # SHA-256 of every request body, in order
        self.payloads: dict[str, bytes] = {}
        self.runner: web.AppRunner | None = None
        self.url = ""

    def _party(self):
        return create_peppol_internal_party(self.seat_id, self.cert, AS4LocalPrivateKey(self.key))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests += 1
        self.body_hashes.append(hashlib.sha256(body).hexdigest())
        action = self.script.pop(0) if self.script else "ok"
        ex = parse_peppol_message({"Content-Type": request.headers["Content-Type"]}, body, self._party(),
                                  security_policy=peppol_security_policy(self.ca_cert))
        self.message_ids.append(ex.message_id)
        if action == "503":
            return web.Response(status=503, text="busy")
        if action == "timeout":
            await asyncio.sleep(self.stall_seconds)
        if action == "drop":
            request.transport.close()
            return web.Response(status=500)
        if action in ("error", "forged-error", "not-serviced"):
            err = (EbmsError("EBMS:0004", "not here", detail="PEPPOL:NOT_SERVICED") if action == "not-serviced"
                   else EbmsError("EBMS:0101", "signature rejected by the receiver"))
            signal = build_error_signal(err, message_id=f"{uuid.uuid4()}@peer", timestamp=dt.datetime.now(dt.UTC),
                                        signing_key=self.key, signing_cert=self.cert, ref_to_message_id=ex.message_id)
            if action == "forged-error":
                signal = signal.replace(b"<ds:SignatureValue>", b"<ds:SignatureValue>AAAA", 1)
            return web.Response(status=200 if action == "not-serviced" else 500, body=signal,
                                headers={"Content-Type": "application/soap+xml"})
        assert ex.message.parse_error is None, ex.message.parse_error
        if self.delay:
            await asyncio.sleep(self.delay)
        self.accepted[ex.message_id] += 1
        self.payloads[ex.message_id] = list(ex.message.decrypted_data.values())[0]
        headers, receipt = ex.build_signal()
        if action == "bad-receipt":
            receipt = receipt.replace(b"<ds:SignatureValue>", b"<ds:SignatureValue>AAAA", 1)
        return web.Response(body=receipt, headers={"Content-Type": headers.get("Content-Type", "application/soap+xml")})

    async def start(self, path: str = "/as4") -> str:
        app = web.Application(client_max_size=512 * 1024 * 1024)
        app.router.add_post(path, self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}{path}"
        return self.url

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()
