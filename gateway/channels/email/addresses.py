"""Is an e-mail address usable? Syntax (RFC 5321/5322 addr-spec as mail servers accept it) and, optionally, MX.

The routing engine falls through to the next channel when this says no, so it is strict enough to
catch typos from ERP contact fields (missing '@', spaces, no dot in the domain) yet does not reject
valid internationalised domains.
"""

from __future__ import annotations

import re

_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def normalize_address(address: str) -> str:
    return address.strip()


def address_problem(address: str | None) -> str | None:
    """None when `address` is a syntactically valid mailbox, else a short reason."""
    if not address:
        return "no e-mail address"
    address = normalize_address(address)
    if len(address) > 254:
        return "address longer than 254 characters"
    local, sep, domain = address.rpartition("@")
    if not sep or not local or not domain:
        return "address has no local part and domain separated by '@'"
    if len(local) > 64:
        return "local part longer than 64 characters"
    if not _LOCAL.match(local):
        return f"invalid local part {local!r}"
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return f"invalid domain {domain!r}"
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return f"invalid domain {domain!r}"
    if labels[-1].isdigit():
        return f"invalid top-level domain in {domain!r}"
    return None


def ascii_address(address: str) -> str:
    """The address with an internationalised domain in IDNA (punycode) form, for the SMTP envelope
    and headers (local parts stay as given; we do not require SMTPUTF8 from the relay)."""
    local, _, domain = normalize_address(address).rpartition("@")
    return f"{local}@{domain.encode('idna').decode('ascii')}"


def domain_of(address: str) -> str:
    return normalize_address(address).rpartition("@")[2].encode("idna").decode("ascii").lower()


async def has_mail_exchanger(domain: str, *, timeout: float = 5.0) -> bool | None:
    """True if `domain` has MX (or, per RFC 5321 §5.1, an A/AAAA fallback); False if it cannot receive
    mail (NXDOMAIN, null MX "."); None when DNS did not answer (caller decides; we do not block on it)."""
    import dns.asyncresolver
    import dns.exception
    import dns.resolver

    resolver = dns.asyncresolver.Resolver()
    resolver.lifetime = timeout
    try:
        answer = await resolver.resolve(domain, "MX")
        hosts = [str(r.exchange).rstrip(".") for r in answer]
        return any(hosts) and hosts != [""]
    except dns.resolver.NXDOMAIN:
        return False
    except dns.resolver.NoAnswer:
        for rtype in ("A", "AAAA"):
            try:
                await resolver.resolve(domain, rtype)
                return True
            except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
                continue
            except dns.exception.DNSException:
                return None
        return False
    except dns.exception.DNSException:
        return None
