"""Trust-store handling (Peppol CA certificates pinned by fingerprint) and the dev-PKI generator."""
