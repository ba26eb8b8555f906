"""Claiming due rows from a work queue table with leases, safely across processes and machines.

PostgreSQL: `SELECT ... FOR UPDATE SKIP LOCKED`, so concurrent workers never pick the same row.
SQLite: every transaction starts with BEGIN IMMEDIATE (see gateway.store.db), so claims are
serialised by the database's single writer lock and the select-then-update is atomic.
A lease that expires (a worker died mid-task) makes the row claimable again.
"""

from __future__ import annotations

import datetime as dt
from typing import Sequence

from sqlalchemy import Connection, Table, and_, or_, select, update


def claim_due(conn: Connection, table: Table, *, states: Sequence[str], now: dt.datetime, owner: str | None,
              lease: dt.timedelta, limit: int, extra_where=None) -> list[str]:
    """Lease up to `limit` rows in `states` whose next_attempt_at has come; returns their ids.

    Must run inside the caller's transaction, which it leaves holding the lease update.
    """
    c = table.c
    where = [c.state.in_(list(states)),
             or_(c.next_attempt_at.is_(None), c.next_attempt_at <= now),
             or_(c.lease_expires_at.is_(None), c.lease_expires_at < now)]
    if extra_where is not None:
        where.append(extra_where)
    query = select(c.id).where(and_(*where)).order_by(c.next_attempt_at).limit(limit)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    ids = [r.id for r in conn.execute(query)]
    if ids:
        values = {"lease_expires_at": now + lease}
        if "lease_owner" in c:
            values["lease_owner"] = owner
        conn.execute(update(table).where(c.id.in_(ids)).values(**values))
    return ids
