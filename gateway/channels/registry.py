"""Which adapter class serves which channel name, built from a tenant's per-channel settings."""

from __future__ import annotations

import importlib
from typing import Any

from gateway.channels.base import ChannelAdapter, ChannelError

# name -> (module, adapter class, config class); imported lazily so one broken or heavy channel
# never slows down or breaks the others.
ADAPTERS: dict[str, tuple[str, str, str]] = {
    "efaktura": ("gateway.channels.efaktura.adapter", "EfakturaAdapter", "EfakturaConfig"),
    "avtalegiro": ("gateway.channels.avtalegiro.adapter", "AvtaleGiroAdapter", "AvtaleGiroConfig"),
    "digipost": ("gateway.channels.digipost.adapter", "DigipostAdapter", "DigipostConfig"),
    "email": ("gateway.channels.email.adapter", "EmailAdapter", "EmailConfig"),
    "sms": ("gateway.channels.sms.adapter", "SmsAdapter", "SmsConfig"),
    "print": ("gateway.channels.print.adapter", "PrintAdapter", "PrintConfig"),
}
PEPPOL = "peppol"  # not an adapter: the AS4 path itself, listed so priority lists can name it
CHANNELS = (PEPPOL, *ADAPTERS)


def _classes(name: str) -> tuple[type, type]:
    if name not in ADAPTERS:
        raise ChannelError("unknown-channel", f"unknown channel {name!r} (known: {', '.join(CHANNELS)})")
    module_name, adapter_name, config_name = ADAPTERS[name]
    module = importlib.import_module(module_name)
    return getattr(module, adapter_name), getattr(module, config_name)


def parse_config(name: str, settings: dict[str, Any]) -> Any:
    """The channel's typed config from a plain dict; ChannelError("invalid-config") on bad values."""
    _, config_cls = _classes(name)
    try:
        return config_cls.from_dict(dict(settings))
    except ChannelError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:  # wrong JSON types
        raise ChannelError("invalid-config", f"{name}: {exc}") from exc


def build_adapter(name: str, settings: dict[str, Any], session: Any = None) -> ChannelAdapter:
    adapter_cls, _ = _classes(name)
    return adapter_cls(parse_config(name, settings), session=session)
