"""SEND gateway: a Peppol access point and EHF gateway for Norwegian invoice issuers."""

__version__ = "0.1.0"
