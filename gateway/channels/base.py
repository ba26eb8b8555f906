"""The one interface every delivery channel implements, and the values that cross it.

A channel adapter answers four questions, in this order, for the routing engine:

1. `reachability(recipient)`: can this recipient be reached here at all? (registry lookups such as
   the eFaktura identifier, a Digipost identification or an AvtaleGiro mandate, or local facts such
   as "has an e-mail address"; cached with a TTL by the adapter);
2. `render(request)`: the channel's payload for this invoice (pure, no I/O, so it can be tested and
   stored as evidence);
3. `submit(rendered)`: hand it over; idempotent on `rendered.delivery_id`, safe to retry;
4. `track(channel_ref)`: what happened since (delivered, opened, paid, failed, returned).

Errors are `ChannelError` with a machine-readable code and `transient` telling the engine whether
to retry the same channel later (timeouts, 5xx) or fall through to the next one (auth refused,
invalid data, recipient rejected).
"""

from __future__ import annotations

import abc
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, Literal

from gateway.invoice import InvoiceFacts

TrackState = Literal["accepted", "delivered", "opened", "paid", "failed", "returned"]


@dataclass(frozen=True)
class PostalAddress:
    lines: tuple[str, ...]  # street lines, in order
    postcode: str
    city: str
    country: str = "NO"  # ISO 3166-1 alpha-2


@dataclass(frozen=True)
class Recipient:
    """What we know about the payer: from the UBL's AccountingCustomerParty plus submit hints."""

    name: str | None = None
    orgnr: str | None = None  # 9 digits, MOD11-checked
    fodselsnummer: str | None = None  # 11 digits, checked
    birth_date: dt.date | None = None
    email: str | None = None
    phone: str | None = None  # E.164, e.g. +4791234567
    address: PostalAddress | None = None
    preferred_channel: str | None = None
    kid: str | None = None  # the invoice's KID: AvtaleGiro reachability is a mandate for it

    @property
    def is_consumer(self) -> bool:
        return self.orgnr is None


@dataclass(frozen=True)
class Reachability:
    reachable: bool
    reason: str  # machine-readable: "ok", "no-email", "not-registered", "blocked-issuer", ...
    detail: str = ""  # human text for the decision log
    reference: str | None = None  # channel address: eFaktura identifier, Digipost address, mandate KID...
    cached: bool = False

    @classmethod
    def ok(cls, detail: str = "", reference: str | None = None) -> "Reachability":
        return cls(True, "ok", detail, reference)

    @classmethod
    def no(cls, reason: str, detail: str = "") -> "Reachability":
        return cls(False, reason, detail)


@dataclass(frozen=True)
class DeliveryRequest:
    """One invoice to one recipient on one channel."""

    delivery_id: str  # stable across retries: the idempotency key towards the channel
    issuer_orgnr: str | None
    invoice: InvoiceFacts
    ubl: bytes
    pdf: bytes
    recipient: Recipient
    reachability: Reachability
    options: dict[str, Any] = field(default_factory=dict)  # e.g. {"vipps": True}


@dataclass(frozen=True)
class Rendered:
    delivery_id: str
    channel: str
    payload: Any  # channel-specific (a request body, a MIME message, file bytes...)
    summary: dict[str, Any] = field(default_factory=dict)  # what the decision log shows


@dataclass(frozen=True)
class SubmitResult:
    state: TrackState  # "accepted" (handed over, outcome later) or "delivered" (channel confirmed)
    channel_ref: str | None  # the channel's id for tracking
    detail: str = ""


@dataclass(frozen=True)
class TrackEvent:
    state: TrackState
    at: dt.datetime
    detail: str = ""
    amount: Decimal | None = None  # for "paid"


class ChannelError(Exception):
    """A channel refused or failed. `transient` → retry this channel later; else fall through."""

    def __init__(self, code: str, message: str, *, transient: bool = False):
        super().__init__(message)
        self.code, self.message, self.transient = code, message, transient


class ChannelAdapter(abc.ABC):
    name: ClassVar[str]

    @abc.abstractmethod
    async def reachability(self, recipient: Recipient) -> Reachability:
        ...

    @abc.abstractmethod
    def render(self, request: DeliveryRequest) -> Rendered:
        ...

    @abc.abstractmethod
    async def submit(self, rendered: Rendered) -> SubmitResult:
        ...

    async def track(self, channel_ref: str) -> list[TrackEvent]:
        """Channels without feedback report nothing further."""
        return []

    async def close(self) -> None:
        """Release connections."""
