"""eFaktura 2.0 (Mastercard Payment Services) channel, with Vipps as a delivery flag.

``client`` speaks the SOAP protocol (identifier lookup, blocked consumers, addInvoices, status),
``adapter`` implements the routing engine's `ChannelAdapter`, ``simulator`` is a faithful local
SOAP service for tests, ``schema`` holds the message structure both sides agree on and
``wssecurity`` the WS-Security UsernameToken header.
"""
