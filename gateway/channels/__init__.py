"""Delivery channels (B2C fallbacks); the adapter interface lives here."""
