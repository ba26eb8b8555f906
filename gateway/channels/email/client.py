"""SMTP submission with aiosmtplib: STARTTLS or implicit TLS, AUTH, timeouts, and error classification.

`classify_smtp_error` is the pure part: it turns aiosmtplib's exceptions into `ChannelError`s with
the routing engine's semantics — 5xx on a recipient (550 mailbox unavailable) is final and the
engine falls through to the next channel; 4xx, refused/failed connections and timeouts are
transient and the same channel is retried later; authentication refused (535) is final (a
configuration problem that retrying will not fix).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Literal

import aiosmtplib

from gateway.channels.base import ChannelError

Security = Literal["starttls", "tls", "none"]


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 587
    security: Security = "starttls"
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0
    tls_ca_file: str | None = None  # extra CA (e.g. a private relay); system CAs otherwise
    tls_verify: bool = True
    local_hostname: str | None = None  # EHLO name


@dataclass(frozen=True)
class SmtpOutcome:
    accepted: tuple[str, ...]
    response: str  # the server's reply to DATA, e.g. "250 2.0.0 Ok: queued as 4F2A"


def tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=settings.tls_ca_file)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if not settings.tls_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _code(exc: aiosmtplib.SMTPResponseException) -> int:
    return int(getattr(exc, "code", 0) or 0)


def classify_smtp_error(exc: BaseException) -> ChannelError:
    """Map an SMTP/network failure to a ChannelError (code, transient)."""
    if isinstance(exc, ChannelError):
        return exc
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [_code(r) for r in exc.recipients]
        detail = "; ".join(f"{r.recipient}: {_code(r)} {r.message}" for r in exc.recipients)
        if codes and all(400 <= c < 500 for c in codes):
            return ChannelError("recipient-deferred", f"recipient temporarily refused: {detail}", transient=True)
        return ChannelError("recipient-refused", f"recipient refused: {detail}")
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return ChannelError("auth-refused", f"SMTP authentication refused: {_code(exc)} {exc.message}")
    if isinstance(exc, aiosmtplib.SMTPTimeoutError) or isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return ChannelError("timeout", f"SMTP server did not answer in time: {exc}", transient=True)
    if isinstance(exc, aiosmtplib.SMTPConnectError) or isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return ChannelError("connection-failed", f"SMTP connection failed: {exc}", transient=True)
    if isinstance(exc, aiosmtplib.SMTPException) and "not supported" in str(exc):
        # e.g. no STARTTLS offered, or AUTH not offered on an unencrypted connection: configuration
        return ChannelError("smtp-config", f"server does not offer what the configuration needs: {exc}")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        code = _code(exc)
        which = "sender refused" if isinstance(exc, aiosmtplib.SMTPSenderRefused) else "SMTP error"
        if 400 <= code < 500:
            return ChannelError("smtp-deferred", f"{which}: {code} {exc.message}", transient=True)
        if code == 530:  # 5.7.0 authentication required: our configuration lacks credentials
            return ChannelError("auth-required", f"{which}: {code} {exc.message}")
        return ChannelError("smtp-rejected", f"{which}: {code} {exc.message}")
    if isinstance(exc, ssl.SSLError):
        return ChannelError("tls-failed", f"TLS handshake failed: {exc}")
    if isinstance(exc, aiosmtplib.SMTPException):
        return ChannelError("smtp-error", f"SMTP error: {exc}", transient=True)
    if isinstance(exc, OSError):  # connection refused, unreachable, reset
        return ChannelError("connection-failed", f"cannot reach SMTP server: {exc}", transient=True)
    return ChannelError("smtp-error", f"unexpected SMTP failure: {exc!r}", transient=True)


class SmtpClient:
    """One connection per message: invoices are sent one at a time from the durable queue."""

    def __init__(self, settings: SmtpSettings):
        self.settings = settings

    async def send(self, message: EmailMessage, *, envelope_from: str, recipients: list[str]) -> SmtpOutcome:
        return await self._send(message, envelope_from, recipients)

    async def send_raw(self, data: bytes, *, envelope_from: str, recipients: list[str]) -> SmtpOutcome:
        """Send pre-serialised bytes (e.g. after DKIM signing, which must not be re-folded)."""
        return await self._send(data, envelope_from, recipients)

    async def _send(self, message: EmailMessage | bytes, envelope_from: str, recipients: list[str]) -> SmtpOutcome:
        s = self.settings
        smtp = aiosmtplib.SMTP(
            hostname=s.host, port=s.port, timeout=s.timeout, local_hostname=s.local_hostname,
            use_tls=s.security == "tls", start_tls=False,
            tls_context=tls_context(s) if s.security != "none" else None,
        )
        try:
            await smtp.connect()
            if s.security == "starttls":
                await smtp.starttls(tls_context=tls_context(s))
            if s.username:
                await smtp.login(s.username, s.password or "")
            if isinstance(message, bytes):
                errors, response = await smtp.sendmail(envelope_from, recipients, message)
            else:
                errors, response = await smtp.send_message(message, sender=envelope_from, recipients=recipients)
            accepted = tuple(r for r in recipients if r not in errors)
            return SmtpOutcome(accepted, response)
        except BaseException as exc:  # noqa: BLE001 - everything is classified for the routing engine
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise classify_smtp_error(exc) from exc
        finally:
            if smtp.is_connected:
                try:
                    await asyncio.wait_for(smtp.quit(), timeout=min(s.timeout, 5.0))
                except Exception:  # noqa: BLE001 - the message outcome is already decided
                    smtp.close()
