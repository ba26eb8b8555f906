"""SML lookup by U-NAPTR (Peppol SML 1.3, Policy for use of Identifiers 4.4; CNAME is dead since 2026-02).

    label = base32(sha256(utf8(lower(participant value)))) without "=" padding
    qname = label + "." + participant scheme + "." + SML zone
    SMP   = regexp of the best NAPTR with flags "U" and service "Meta:SMP", applied to the qname

Only the participant *value* (`0192:991825827`) is hashed, not `scheme::value`. The label is emitted
in lower case (DNS is case-insensitive; peppol-commons emits upper case).

The pure part (label, qname, NAPTR selection, regexp application) is separate from the one async
function that talks to DNS through dnspython, so tests can point it at their own server.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver

from gateway.discovery.errors import DiscoveryError, DiscoveryUnavailable, NotRegistered
from gateway.identifiers import ParticipantId

PROD_ZONE = "participant.sml.prod.tech.peppol.org"
TEST_ZONE = "participant.sml.test.tech.peppol.org"
SMP_SERVICE = "meta:smp"
MAX_REGEXP = 1024
_MATCH_ALL = {".*", "^.*$", "^.*", ".*$", "^(.*)$"}
_NESTED_QUANTIFIER = re.compile(r"\)[*+?{]")  # a quantified group, e.g. (a+)+


def naptr_label(participant: ParticipantId | str) -> str:
    """base32(sha256(lower(value))) without padding, lower case. Accepts a ParticipantId or a value."""
    value = participant.value if isinstance(participant, ParticipantId) else participant.strip()
    digest = hashlib.sha256(value.lower().encode("utf-8")).digest()
    return base64.b32encode(digest).decode("ascii").rstrip("=").lower()


def naptr_qname(participant: ParticipantId, zone: str) -> str:
    """The DNS name to query, without the trailing dot."""
    zone = zone.strip().strip(".")
    if not zone:
        raise ValueError("empty SML zone")
    return f"{naptr_label(participant)}.{participant.scheme}.{zone}"


@dataclass(frozen=True)
class NaptrRecord:
    order: int
    preference: int
    flags: str
    service: str
    regexp: str
    replacement: str = "."


def apply_naptr_regexp(regexp: str, subject: str) -> str:
    """Apply a NAPTR substitution expression `<d>ERE<d>replacement<d>[i]` (RFC 3402 §3.2) to `subject`."""
    if not regexp or len(regexp) > MAX_REGEXP:
        raise DiscoveryError("sml-bad-regexp", f"NAPTR regexp empty or too long ({len(regexp)} characters)")
    delim = regexp[0]
    if delim.isalnum() or delim == "\\":
        raise DiscoveryError("sml-bad-regexp", f"NAPTR regexp {regexp!r} uses an invalid delimiter")
    parts = regexp[1:].split(delim)
    if len(parts) != 3 or parts[2] not in ("", "i"):
        raise DiscoveryError("sml-bad-regexp", f"NAPTR regexp {regexp!r} is not <d>pattern<d>replacement<d>[i]")
    pattern, replacement, flags = parts
    if pattern in _MATCH_ALL and "\\" not in replacement:
        return replacement  # the U-NAPTR/BDXL form "!.*!<URI>!": the whole subject becomes the URI
    if len(pattern) > 256 or _NESTED_QUANTIFIER.search(pattern):
        # DNS data is not authenticated here: refuse patterns that can backtrack catastrophically
        raise DiscoveryError("sml-bad-regexp", f"NAPTR regexp pattern {pattern!r} is too complex")
    try:
        compiled = re.compile(pattern, re.IGNORECASE if flags == "i" else 0)
    except re.error as exc:
        raise DiscoveryError("sml-bad-regexp", f"NAPTR regexp pattern {pattern!r}: {exc}") from exc
    match = compiled.search(subject)
    if match is None:
        raise DiscoveryError("sml-bad-regexp", f"NAPTR regexp {regexp!r} does not match {subject!r}")

    def backref(m: re.Match[str]) -> str:
        n = int(m.group(1))
        if n > compiled.groups:
            raise DiscoveryError("sml-bad-regexp", f"NAPTR replacement refers to missing group \\{n}")
        return match.group(n) or ""

    # Backreferences \1..\9 are the only escapes; the whole subject is replaced (U-NAPTR: result is a URI).
    return re.sub(r"\\([0-9])", backref, replacement)


def select_smp_url(records: Iterable[NaptrRecord], qname: str, allow_http: bool = False) -> str:
    """Pick the SMP base URL: lowest order, then preference, among terminal "U" / "Meta:SMP" records.

    Records are tried in that order and the first one whose regexp applies and yields a usable
    URL wins (DDDS, RFC 3402; peppol-commons NaptrResolver does the same); when none does, the
    problem of the best-ranked record is raised."""
    candidates = sorted(
        (r for r in records if r.flags.lower() == "u" and r.service.lower() == SMP_SERVICE),
        key=lambda r: (r.order, r.preference),
    )
    if not candidates:
        raise NotRegistered("sml-no-smp-record", f"{qname} has NAPTR records but none with flags U and service Meta:SMP")
    first_problem: DiscoveryError | None = None
    for record in candidates:
        try:
            return _smp_url_of(record, qname, allow_http)
        except DiscoveryError as exc:
            first_problem = first_problem or exc
    assert first_problem is not None
    raise first_problem


def _smp_url_of(record: NaptrRecord, qname: str, allow_http: bool) -> str:
    url = apply_naptr_regexp(record.regexp, qname.rstrip("."))
    lowered = url.lower()
    if lowered.startswith("https://") or (allow_http and lowered.startswith("http://")):
        host = url.split("://", 1)[1].split("/", 1)[0]
        if host and not any(c.isspace() for c in url):
            return url.rstrip("/")
    raise DiscoveryError("sml-bad-url", f"NAPTR for {qname} yields {url!r}, not an https:// SMP URL")


@dataclass(frozen=True)
class SmlAnswer:
    smp_url: str
    qname: str
    ttl: int


def parse_nameserver(entry: str) -> tuple[str, int]:
    """`host:port`, `[v6]:port`, or a bare IP (port 53). Hosts must be IP addresses."""
    entry = entry.strip()
    host, port = entry, 53
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"bad nameserver {entry!r}")
            port = int(rest[1:])
    elif entry.count(":") == 1:
        host, port_text = entry.split(":")
        port = int(port_text)
    ipaddress.ip_address(host)  # raises ValueError for names
    if not 0 < port < 65536:
        raise ValueError(f"bad nameserver port in {entry!r}")
    return host, port


def make_resolver(nameservers: Sequence[str], timeout: float) -> dns.asyncresolver.Resolver:
    """A resolver on the given `host:port` servers (or the system's when empty) with a hard lifetime."""
    if nameservers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(*parse_nameserver(ns)) for ns in nameservers]
    else:
        try:
            resolver = dns.asyncresolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            resolver = dns.asyncresolver.Resolver(configure=False)  # lookups fail as dns-servfail
    resolver.lifetime = timeout
    resolver.timeout = timeout
    resolver.cache = None  # our own cache honours TTLs and negative answers
    return resolver


async def resolve_smp(
    participant: ParticipantId,
    zone: str,
    resolver: dns.asyncresolver.Resolver,
    allow_http: bool = False,
) -> SmlAnswer:
    """Query the NAPTR records of the participant and return the SMP base URL with the record TTL.

    NXDOMAIN / no NAPTR -> NotRegistered; timeout, SERVFAIL, refused -> DiscoveryUnavailable.
    """
    qname = naptr_qname(participant, zone)
    try:
        answer = await resolver.resolve(qname + ".", "NAPTR", search=False, raise_on_no_answer=True)
    except dns.resolver.NXDOMAIN as exc:
        raise NotRegistered("sml-not-registered", f"{participant} is not registered in the SML ({qname}: NXDOMAIN)") from exc
    except dns.resolver.NoAnswer as exc:
        raise NotRegistered("sml-no-naptr", f"{qname} exists but has no NAPTR record") from exc
    except (dns.resolver.LifetimeTimeout, dns.exception.Timeout) as exc:
        raise DiscoveryUnavailable("dns-timeout", f"DNS lookup of {qname} timed out") from exc
    except dns.resolver.NoNameservers as exc:
        raise DiscoveryUnavailable("dns-servfail", f"DNS lookup of {qname} failed on every server (SERVFAIL/REFUSED)") from exc
    except dns.exception.DNSException as exc:
        raise DiscoveryUnavailable("dns-error", f"DNS lookup of {qname} failed: {exc}") from exc
    except OSError as exc:
        raise DiscoveryUnavailable("dns-error", f"DNS lookup of {qname} failed: {exc}") from exc
    records = [
        NaptrRecord(
            order=rd.order, preference=rd.preference,
            flags=rd.flags.decode("ascii", "replace"), service=rd.service.decode("ascii", "replace"),
            regexp=rd.regexp.decode("utf-8", "replace"), replacement=rd.replacement.to_text(),
        )
        for rd in answer
        if rd.rdtype == dns.rdatatype.NAPTR
    ]
    url = select_smp_url(records, qname, allow_http=allow_http)
    ttl = answer.rrset.ttl if answer.rrset is not None else 0
    return SmlAnswer(smp_url=url, qname=qname, ttl=int(ttl))
