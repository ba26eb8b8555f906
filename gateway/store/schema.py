"""Table definitions (SQLAlchemy Core). Alembic migrations in `migrations/` create them.

Conventions: ids are UUID strings; timestamps are timezone-aware UTC; JSON columns hold small
structured detail only (payload bytes live in the payload store, addressed by SHA-256).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)



class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite has no time zones: store naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


UTC = UTCDateTime()

tenants = Table(
    "tenants",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created_at", UTC, nullable=False),
    Column("webhook_url", Text, nullable=True),
    Column("webhook_secret", String(128), nullable=True),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("label", String(200), nullable=True),
    Column("created_at", UTC, nullable=False),
    Column("revoked_at", UTC, nullable=True),
)

participants = Table(
    "participants",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("scheme", String(64), nullable=False),  # iso6523-actorid-upis
    Column("value", String(200), nullable=False),  # lower-cased, e.g. 0192:923609016
    Column("doctypes", JSON, nullable=False),  # accepted document type ids; [] = all
    Column("created_at", UTC, nullable=False),
    UniqueConstraint("scheme", "value", name="uq_participants_scheme_value"),
)

payloads = Table(
    "payloads",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=True),  # set when [storage] payloads = "database"
    Column("created_at", UTC, nullable=False),
)

messages = Table(
    "messages",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("direction", String(3), nullable=False),  # "in" | "out"
    Column("state", String(32), nullable=False),
    Column("as4_message_id", String(255), nullable=True),
    Column("conversation_id", String(255), nullable=True),
    Column("instance_id", String(255), nullable=True),  # SBDH InstanceIdentifier
    Column("sender", String(255), nullable=True),
    Column("receiver", String(255), nullable=True),
    Column("document_type", Text, nullable=True),
    Column("process", Text, nullable=True),
    Column("document_sha256", String(64), ForeignKey("payloads.sha256"), nullable=True),
    Column("valid", Boolean, nullable=True),  # null until validated
    Column("duplicate_of", String(36), nullable=True),  # same SBDH InstanceIdentifier seen before
    Column("created_at", UTC, nullable=False),
    Column("updated_at", UTC, nullable=False),
    Column("acked_at", UTC, nullable=True),
    # outbound queue
    Column("idempotency_key", String(255), nullable=True),
    Column("request_sha256", String(64), nullable=True),  # what the tenant submitted
    Column("options", JSON, nullable=True),
    Column("endpoint_url", Text, nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTC, nullable=True),
    Column("deadline_at", UTC, nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires_at", UTC, nullable=True),
    Column("last_error", Text, nullable=True),
    UniqueConstraint("direction", "as4_message_id", name="uq_messages_direction_as4_message_id"),
    UniqueConstraint("tenant_id", "idempotency_key", name="uq_messages_tenant_id_idempotency_key"),
    Index("ix_messages_tenant_dir_created", "tenant_id", "direction", "created_at"),
    Index("ix_messages_instance", "direction", "instance_id"),
    Index("ix_messages_queue", "direction", "state", "next_attempt_at"),
)

evidence = Table(
    "evidence",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("message_id", String(36), ForeignKey("messages.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("kind", String(40), nullable=False),
    Column("payload_sha256", String(64), ForeignKey("payloads.sha256"), nullable=False),
    Column("media_type", String(255), nullable=False),
    Column("created_at", UTC, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(36), ForeignKey("messages.id", ondelete="CASCADE"), nullable=True, index=True),
    Column("at", UTC, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("detail", JSON, nullable=True),
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(36), ForeignKey("messages.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("number", Integer, nullable=False),
    Column("started_at", UTC, nullable=False),
    Column("finished_at", UTC, nullable=True),
    Column("outcome", String(32), nullable=True),  # delivered | transient | permanent | not-serviced
    Column("endpoint_url", Text, nullable=True),
    Column("http_status", Integer, nullable=True),
    Column("error", Text, nullable=True),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("message_id", String(36), ForeignKey("messages.id", ondelete="CASCADE"), nullable=True, index=True),
    Column("event", String(64), nullable=False),
    Column("body", Text, nullable=False),  # the exact JSON bytes that are signed and sent
    Column("state", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTC, nullable=True),
    Column("lease_expires_at", UTC, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("created_at", UTC, nullable=False),
    Column("delivered_at", UTC, nullable=True),
    Index("ix_webhook_deliveries_queue", "state", "next_attempt_at"),
)

tenant_routing = Table(
    "tenant_routing",
    metadata,
    Column("tenant_id", String(36), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
    Column("config", JSON, nullable=False),  # see gateway/routing.py: RoutingConfig
    Column("updated_at", UTC, nullable=False),
)

channel_deliveries = Table(
    "channel_deliveries",
    metadata,
    Column("id", String(36), primary_key=True),  # also the idempotency key towards the channel
    Column("message_id", String(36), ForeignKey("messages.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("tenant_id", String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),  # index in the tenant's priority list
    Column("channel", String(32), nullable=False),
    # skipped | submitting | accepted | delivered | opened | paid | failed | returned
    Column("state", String(16), nullable=False),
    Column("reason", String(64), nullable=True),  # machine-readable: not-registered, no-email, ...
    Column("detail", Text, nullable=True),
    Column("channel_ref", String(255), nullable=True),
    Column("cost_nok", String(16), nullable=True),  # decimal as text: exact on every backend
    Column("summary", JSON, nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("created_at", UTC, nullable=False),
    Column("updated_at", UTC, nullable=False),
    Column("tracked_at", UTC, nullable=True),
    Index("ix_channel_deliveries_tracking", "channel", "state"),
    Index("ix_channel_deliveries_tenant_created", "tenant_id", "created_at"),
)
