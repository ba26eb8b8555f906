"""E-mail channel: the invoice PDF (and UBL) as a MIME message submitted over SMTP (STARTTLS/TLS + AUTH)."""

from gateway.channels.email.adapter import EmailAdapter, EmailConfig

__all__ = ["EmailAdapter", "EmailConfig"]
