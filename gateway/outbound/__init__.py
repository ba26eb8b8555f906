"""The sending pipeline (corner 2): outbox worker."""
