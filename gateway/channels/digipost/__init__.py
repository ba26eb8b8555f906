"""Digipost (Posten): digital mailbox delivery with the invoice data type, print fallback and events.

`adapter.DigipostAdapter` is the channel; `client.DigipostClient` speaks the v8 REST API in both auth
modes; `simulator.DigipostSimulator` is the local stand-in tests run against.
"""

from gateway.channels.digipost.adapter import DigipostAdapter, DigipostConfig

__all__ = ["DigipostAdapter", "DigipostConfig"]
