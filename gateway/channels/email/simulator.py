"""A real SMTP submission server for tests (aiosmtpd), behaving like a strict port-587 relay.

It listens on 127.0.0.1 (random port) in the caller's event loop and enforces what a provider's
submission service enforces: STARTTLS before anything else (or implicit TLS), AUTH required (only
over TLS), a message size limit (552), per-recipient refusals (550 5.1.1 for fixture addresses,
451 for "deferred" ones). It captures every accepted message, verifies DKIM signatures when public
keys are seeded, can stall in DATA (to exercise client timeouts), and produces RFC 3464 DSN bounces
for recipients that are accepted now but fail later (as a real MX behind the relay would).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import ssl
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    authenticated_as: str | None
    tls: bool
    dkim_valid: bool | None = None

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]


@dataclass
class SmtpSimulator:
    users: dict[str, str] = field(default_factory=lambda: {"sendgw": "secret"})
    refused: set[str] = field(default_factory=set)  # 550 at RCPT
    deferred: set[str] = field(default_factory=set)  # 451 at RCPT
    bounce_later: set[str] = field(default_factory=set)  # accepted, then a DSN "failed"
    tls_context: ssl.SSLContext | None = None  # server certificate; None → plain (not allowed with AUTH)
    implicit_tls: bool = False  # port-465 style instead of STARTTLS
    data_delay: float = 0.0  # stall before answering DATA
    size_limit: int = 10 * 1024 * 1024
    dkim_keys: dict[tuple[str, str], bytes] = field(default_factory=dict)  # (selector, domain) → DNS TXT
    hostname: str = "smtp.sim.test"

    def __post_init__(self) -> None:
        self.received: list[ReceivedMail] = []
        self.bounces: list[bytes] = []  # DSNs delivered to the envelope sender's mailbox
        self.auth_failures = 0
        self.port: int | None = None
        self._server: asyncio.base_events.Server | None = None

    # -------------------------------------------------------------- lifecycle

    async def start(self) -> "SmtpSimulator":
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, "127.0.0.1", 0,
                                                ssl=self.tls_context if self.implicit_tls else None)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> "SmtpSimulator":
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    def _protocol(self) -> SMTP:
        starttls = self.tls_context is not None and not self.implicit_tls
        return SMTP(
            _Handler(self), hostname=self.hostname, data_size_limit=self.size_limit,
            tls_context=self.tls_context if starttls else None, require_starttls=starttls,
            # aiosmtpd only recognises STARTTLS as TLS; with implicit TLS every connection is encrypted
            auth_required=True, auth_require_tls=not self.implicit_tls, authenticator=self._authenticate,
        )

    # -------------------------------------------------------------- behaviour

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            user, password = auth_data.login.decode(), auth_data.password.decode()
            if self.users.get(user) == password:
                return AuthResult(success=True, auth_data=user)
        self.auth_failures += 1
        return AuthResult(success=False, handled=False)

    def _verify_dkim(self, data: bytes) -> bool | None:
        if not self.dkim_keys or b"DKIM-Signature" not in data.split(b"\r\n\r\n", 1)[0]:
            return None if not self.dkim_keys else False
        import dkim

        def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
            selector, _, rest = name.decode().rstrip(".").partition("._domainkey.")
            return self.dkim_keys.get((selector, rest), b"")

        return bool(dkim.verify(data, dnsfunc=dnsfunc))

    def make_dsn(self, original: bytes, mail_from: str, recipient: str) -> bytes:
        """An RFC 3464 failure report for `recipient`, with the original headers returned."""
        headers = original.split(b"\r\n\r\n", 1)[0]
        boundary = f"dsn-{uuid.uuid4().hex}"
        now = format_datetime(dt.datetime.now(dt.timezone.utc))
        lines = [
            f"From: Mail Delivery System <MAILER-DAEMON@{self.hostname}>",
            f"To: {mail_from}",
            "Subject: Undelivered Mail Returned to Sender",
            f"Date: {now}",
            f"Message-ID: <{uuid.uuid4().hex}@{self.hostname}>",
            "Auto-Submitted: auto-replied",
            "MIME-Version: 1.0",
            f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
            "",
            f"--{boundary}",
            "Content-Type: text/plain; charset=us-ascii",
            "",
            f"Your message could not be delivered to {recipient}.",
            "",
            f"--{boundary}",
            "Content-Type: message/delivery-status",
            "",
            f"Reporting-MTA: dns; {self.hostname}",
            f"Arrival-Date: {now}",
            "",
            f"Final-Recipient: rfc822; {recipient}",
            "Action: failed",
            "Status: 5.1.1",
            f"Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected: User unknown",
            "",
            f"--{boundary}",
            "Content-Type: text/rfc822-headers",
            "",
        ]
        return ("\r\n".join(lines)).encode() + b"\r\n" + headers + f"\r\n\r\n--{boundary}--\r\n".encode()


class _Handler:
    def __init__(self, sim: SmtpSimulator):
        self.sim = sim

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        lowered = address.lower()
        if lowered in {a.lower() for a in self.sim.refused}:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown in virtual mailbox table"
        if lowered in {a.lower() for a in self.sim.deferred}:
            return f"451 4.3.0 <{address}>: Temporary lookup failure"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session: Session, envelope: Envelope):
        if self.sim.data_delay:
            await asyncio.sleep(self.sim.data_delay)
        data = envelope.original_content or envelope.content
        mail = ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), bytes(data),
                            session.auth_data if session.authenticated else None,
                            self.sim.implicit_tls or session.ssl is not None,
                            self.sim._verify_dkim(bytes(data)))
        self.sim.received.append(mail)
        for rcpt in envelope.rcpt_tos:
            if rcpt.lower() in {a.lower() for a in self.sim.bounce_later}:
                self.sim.bounces.append(self.sim.make_dsn(bytes(data), envelope.mail_from, rcpt))
        return f"250 2.0.0 Ok: queued as {uuid.uuid4().hex[:10].upper()}"
