"""Typed settings from one TOML file plus `SENDGW_*` environment overrides.

Every setting has a default, so an empty configuration starts a working gateway on the embedded
SQLite database. Each TOML table maps to one section dataclass below; an environment variable
`SENDGW_<SECTION>_<KEY>` (upper case) overrides `[section] key`. Unknown keys are errors, so a
typo never silently falls back to a default. Every key is documented in docs/configuration.md.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

DEFAULT_CONFIG_FILE = "sendgw.toml"
ENV_PREFIX = "SENDGW_"


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file, section and key."""


@dataclass
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    processes: int = 1  # server processes sharing the port (SO_REUSEPORT); 0 = one per CPU core
    tls_certificate: str = ""  # PEM; when set with tls_key the server speaks HTTPS itself
    tls_key: str = ""
    as4_path: str = "/as4"
    public_url: str = ""  # how others reach us, e.g. https://ap.example.no (used in links)
    max_request_bytes: int = 100 * 1024 * 1024
    run_worker: bool = True  # run the outbound/webhook workers inside `sendgw serve`


@dataclass
class DatabaseSettings:
    url: str = "sqlite:///var/sendgw.db"
    echo: bool = False
    pool_size: int = 10


@dataclass
class StorageSettings:
    payloads: str = "file"  # "file" (content-addressed directory) or "database"
    directory: str = "var/payloads"


@dataclass
class DiscoverySettings:
    """[discovery]: SML/SMP lookup of receiving access points (docs/discovery.md)."""

    mode: str = "test"  # "test" or "prod": default SML zone, and default trust when [trust] is left default
    sml_zone: str = ""  # override the SML DNS zone (default by mode: participant.sml.{test,prod}.tech.peppol.org)
    nameservers: list[str] = field(default_factory=list)  # "host:port" DNS servers; empty = system resolver
    dns_timeout: float = 5.0
    smp_timeout: float = 10.0
    smp_cache_ttl: float = 900.0  # seconds a verified SMP answer is reused (SML answers use the DNS TTL)
    negative_cache_ttl: float = 60.0  # seconds "not registered" answers are remembered
    cache_size: int = 10000  # entries per cache (LRU)
    allow_http: bool = False  # plain-HTTP SMPs: only for tests
    allow_sha1: bool = False  # accept rsa-sha1/sha1 SMP signatures (pre SMP 1.3 data)
    max_response_bytes: int = 1024 * 1024
    tls_ca_file: str = ""  # extra PEM CA bundle for SMP HTTPS (tests, private SMPs); default: system Web PKI


@dataclass
class ArtefactSettings:
    cache: str = "var/artefacts"  # where synced, hash-verified official artefacts live
    mirror: str = ""  # a local mirror directory to sync from instead of the official sources


@dataclass
class ValidationSettings:
    workers: int = 0  # validation worker processes; 0 = number of CPU cores
    max_bytes: int = 100 * 1024 * 1024
    timeout_seconds: float = 120.0
    default_rules: str = ""  # a rule set id to force; empty = choose by document
    schematron_after_xsd_error: bool = True


@dataclass
class ApSettings:
    seat_id: str = ""
    key: str = ""
    certificate: str = ""
    pkcs12: str = ""
    password: str = ""


@dataclass
class TrustSettings:
    ap_anchors: list[str] = field(default_factory=lambda: ["peppol-test"])
    smp_anchors: list[str] = field(default_factory=lambda: ["peppol-test"])
    cache: str = "var/trust"  # where `sendgw certs sync` installs the pinned Peppol CA certificates
    mirror: str = ""  # a local folder holding the Peppol CA PEMs to sync from


@dataclass
class RevocationSettings:
    """[revocation]: CRL/OCSP checks of AP and SMP certificates (docs/configuration.md)."""

    mode: str = "crl-ocsp"  # "crl-ocsp", "ocsp-crl", "crl", "ocsp" or "off"
    soft_fail: bool = True  # accept a certificate whose status no source can give (a revoked one never)
    timeout_seconds: float = 5.0  # per CRL download or OCSP request
    max_crl_bytes: int = 10 * 1024 * 1024
    cache_size: int = 1000  # CRLs, OCSP answers and remembered failures kept (each)


@dataclass
class As4Settings:
    max_message_bytes: int = 256 * 1024 * 1024  # whole inbound MIME body
    max_soap_bytes: int = 1024 * 1024  # the SOAP envelope part
    max_parts: int = 16  # MIME parts, SOAP part included
    max_decompressed_bytes: int = 512 * 1024 * 1024  # per payload after gunzip (decompression bombs)
    spill_bytes: int = 1024 * 1024  # parts and bodies above this go through temporary files
    tmp_dir: str = "var/tmp"  # where those temporary files live
    not_serviced_http_status: int = 200  # HTTP status sent with a PEPPOL:NOT_SERVICED error signal
    error_http_status: int = 500  # HTTP status sent with every other error signal


@dataclass
class WebhookSettings:
    timeout_seconds: float = 10.0
    first_retry_seconds: float = 5.0
    max_retry_seconds: float = 3600.0
    give_up_hours: float = 72.0
    allow_private: bool = False  # allow webhook URLs on loopback/private addresses (tests, on-prem)


@dataclass
class OutboundSettings:
    deadline_hours: float = 24.0  # keep retrying transient failures this long, then `failed`
    first_retry_seconds: float = 30.0  # first backoff; doubles per attempt, with jitter
    max_retry_seconds: float = 3600.0
    lease_seconds: float = 300.0  # a claimed document is resumed by another worker after this
    concurrency: int = 32  # documents in flight per worker process
    per_endpoint_concurrency: int = 8
    breaker_failures: int = 5  # consecutive failures that open an endpoint's circuit breaker
    breaker_seconds: float = 60.0  # how long an open breaker holds sends to that endpoint
    http_timeout_seconds: float = 60.0
    allow_http: bool = False  # plain-HTTP AS4 endpoints (tests, private networks only)
    tls_ca_file: str = ""  # extra CA bundle for endpoint TLS (tests, private networks)


@dataclass
class RoutingSettings:
    track_seconds: float = 300.0  # how often each open B2C delivery is polled for news (opened, paid...)


@dataclass
class CallbackSettings:
    sms_dlr_token: str = ""  # shared secret LINK Mobility presents (query `token` or X-Sendgw-Dlr-Token)
    sms_dlr_networks: list[str] = field(default_factory=list)  # source networks allowed to post DLRs; empty = any


@dataclass
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    discovery: DiscoverySettings = field(default_factory=DiscoverySettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    artefacts: ArtefactSettings = field(default_factory=ArtefactSettings)
    validation: ValidationSettings = field(default_factory=ValidationSettings)
    ap: ApSettings = field(default_factory=ApSettings)
    trust: TrustSettings = field(default_factory=TrustSettings)
    revocation: RevocationSettings = field(default_factory=RevocationSettings)
    as4: As4Settings = field(default_factory=As4Settings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    outbound: OutboundSettings = field(default_factory=OutboundSettings)
    callbacks: CallbackSettings = field(default_factory=CallbackSettings)
    routing: RoutingSettings = field(default_factory=RoutingSettings)
    # free-form tables keyed by participant id, e.g. [routes."0192:923609016"]
    routes: dict[str, dict[str, Any]] = field(default_factory=dict)
    base_dir: Path = field(default_factory=Path.cwd)

    def path(self, value: str) -> Path:
        """Resolve a configured path: relative paths are relative to the config file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p


_FREEFORM = {"routes"}


def _sections() -> dict[str, type]:
    hints = typing.get_type_hints(Settings)
    return {
        f.name: hints[f.name]
        for f in dataclasses.fields(Settings)
        if dataclasses.is_dataclass(hints[f.name])
    }


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"1", "true", "yes", "on"}:
            return True
        if isinstance(value, str) and value.lower() in {"0", "false", "no", "off"}:
            return False
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif hint is str:
        if isinstance(value, str):
            return value
    elif origin is list:
        if isinstance(value, str):  # from the environment: comma-separated
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
    elif origin is dict or hint is dict:
        if isinstance(value, dict):
            return dict(value)
    raise ConfigError(f"{where}: expected {getattr(hint, '__name__', hint)}, got {value!r}")


# Accepted range per numeric key: (lowest, highest or None), POSITIVE (above 0) or None (checked
# elsewhere); any other number must be finite and >= 0. A negative size, a zero timeout or an
# impossible port would otherwise fail later, far from its cause.
POSITIVE = "positive"
_LIMITS: dict[tuple[str, str], tuple[int, int | None] | str | None] = {
    ("server", "port"): (0, 65535),
    ("server", "processes"): None,  # checked by `sendgw serve`, after its --processes
    ("server", "max_request_bytes"): POSITIVE,
    ("database", "pool_size"): POSITIVE,
    ("validation", "max_bytes"): POSITIVE,
    ("validation", "timeout_seconds"): POSITIVE,
    ("discovery", "dns_timeout"): POSITIVE,
    ("discovery", "smp_timeout"): POSITIVE,
    ("discovery", "cache_size"): POSITIVE,
    ("discovery", "max_response_bytes"): POSITIVE,
    ("revocation", "timeout_seconds"): POSITIVE,
    ("revocation", "max_crl_bytes"): POSITIVE,
    ("revocation", "cache_size"): POSITIVE,
    ("as4", "max_message_bytes"): POSITIVE,
    ("as4", "max_soap_bytes"): POSITIVE,
    ("as4", "max_parts"): POSITIVE,
    ("as4", "max_decompressed_bytes"): POSITIVE,
    ("as4", "not_serviced_http_status"): (200, 599),
    ("as4", "error_http_status"): (200, 599),
    ("webhooks", "timeout_seconds"): POSITIVE,
    ("outbound", "concurrency"): POSITIVE,
    ("outbound", "per_endpoint_concurrency"): POSITIVE,
    ("outbound", "breaker_failures"): POSITIVE,
    ("outbound", "http_timeout_seconds"): POSITIVE,
    ("routing", "track_seconds"): POSITIVE,
}


# Keys with a fixed set of values (the modes are accepted in any case).
_CHOICES = {("storage", "payloads"): ("file", "database"), ("discovery", "mode"): ("test", "prod"),
            ("revocation", "mode"): ("crl-ocsp", "ocsp-crl", "crl", "ocsp", "off")}


def _check(section: str, key: str, value: Any, where: str) -> Any:
    """Refuse numbers out of range, values outside their choices, an AS4 path without its leading
    slash and a public_url that is not an http(s) address: each would fail only later, or never."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        limit = _LIMITS.get((section, key), (0, None))
        if not math.isfinite(value):
            raise ConfigError(f"{where}: must be a finite number, got {value!r}")
        if limit == POSITIVE and value <= 0:
            raise ConfigError(f"{where}: must be more than 0, got {value!r}")
        if isinstance(limit, tuple) and value < limit[0]:
            raise ConfigError(f"{where}: must be at least {limit[0]}, got {value!r}")
        if isinstance(limit, tuple) and limit[1] is not None and value > limit[1]:
            raise ConfigError(f"{where}: must be at most {limit[1]}, got {value!r}")
    choices = _CHOICES.get((section, key))
    if choices and str(value).lower() not in choices:
        raise ConfigError(f"{where}: must be one of {', '.join(choices)}, got {value!r}")
    if (section, key) == ("server", "as4_path") and not value.startswith("/"):
        raise ConfigError(f"{where}: must start with '/', got {value!r}")
    if (section, key) == ("server", "public_url") and value:
        try:
            parts = urlsplit(value)
            usable = (parts.scheme in ("http", "https") and bool(parts.hostname)
                      and (parts.port is None or parts.port > 0))
        except ValueError:  # e.g. "https://[::1" or a port that is not a number
            usable = False
        if not usable:
            raise ConfigError(f"{where}: must be an http:// or https:// address, got {value!r}")
    return value


def _apply(section: str, section_obj: Any, values: Mapping[str, Any], where: str) -> None:
    hints = typing.get_type_hints(type(section_obj))
    for key, value in values.items():
        if key not in hints:
            known = ", ".join(sorted(hints))
            raise ConfigError(f"{where}: unknown key {key!r} (known: {known})")
        value = _coerce(value, hints[key], f"{where}.{key}")
        setattr(section_obj, key, _check(section, key, value, f"{where}.{key}"))


def load_settings(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Load settings: defaults, then the TOML file, then `SENDGW_*` environment variables."""
    env = os.environ if env is None else env
    settings = Settings()
    sections = _sections()

    file: Path | None = None
    origin = ""
    if path is None:
        path = env.get(ENV_PREFIX + "CONFIG") or None
        origin = f" (from ${ENV_PREFIX}CONFIG)"  # say where a path the command line never showed came from
    if path is not None:
        file = Path(path)
        if file.is_dir():
            raise ConfigError(f"configuration file {file}{origin} is a directory")
        if not file.is_file():
            raise ConfigError(f"configuration file {file}{origin} not found")
    elif Path(DEFAULT_CONFIG_FILE).is_file():
        file = Path(DEFAULT_CONFIG_FILE)

    if file is not None:
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8-sig"))  # a BOM some editors add is no error
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{file}: {exc}") from exc
        settings.base_dir = file.resolve().parent
        for name, table in data.items():
            if name in _FREEFORM:
                setattr(settings, name, _coerce(table, dict, f"{file}: [{name}]"))
            elif name in sections and isinstance(table, dict):
                _apply(name, getattr(settings, name), table, f"{file}: [{name}]")
            elif name in sections:
                raise ConfigError(f"{file}: [{name}] must be a table, got {name} = {table!r}")
            else:
                raise ConfigError(f"{file}: unknown section [{name}] (known: {', '.join(sorted(sections))})")

    # Longest section names first so that e.g. SENDGW_TRUST_AP_ANCHORS finds [trust] ap_anchors.
    # A variable naming a section but no key of it is a typo (SENDGW_SERVER_PROT), not someone
    # else's variable: refused like an unknown key in the file.
    for name in sorted(sections, key=len, reverse=True):
        prefix = f"{ENV_PREFIX}{name.upper()}_"
        section_obj = getattr(settings, name)
        hints = typing.get_type_hints(type(section_obj))
        for var, value in env.items():
            if var.startswith(prefix):
                key = var[len(prefix):].lower()
                if key not in hints:
                    known = ", ".join(f"{prefix}{k.upper()}" for k in sorted(hints))
                    raise ConfigError(f"${var}: unknown setting (known: {known})")
                value = _coerce(value, hints[key], f"${var}")
                setattr(section_obj, key, _check(name, key, value, f"${var}"))
    return settings


def describe(settings: Settings) -> dict[str, dict[str, Any]]:
    """The effective settings as plain tables, secrets masked, so they can be printed or logged."""
    out: dict[str, dict[str, Any]] = {}
    for name in _sections():
        table = dataclasses.asdict(getattr(settings, name))
        for key in table:
            if any(s in key for s in ("password", "secret", "token")) and table[key]:
                table[key] = "********"
        out[name] = table
    if settings.routes:
        out["routes"] = settings.routes
    return out
