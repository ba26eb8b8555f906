"""Durable state of the AvtaleGiro channel: one SQLite file in the configured state directory.

Why SQLite and not loose JSON files: a claim hand-over touches several facts at once (the
transmission and assignment numbers it consumed, the delivery's idempotency record, the bytes we
wrote) and an incoming Nets file updates the mandate register, the payments and the invoice events
together. SQLite gives us all-or-nothing transactions that survive a crash and are safe when
several gateway workers share the directory (``BEGIN IMMEDIATE`` serialises writers), and it stays
fast when a tenant has hundreds of thousands of claims. The file is plain SQLite: inspect it with
``sqlite3 <state_dir>/avtalegiro.sqlite3``.

Tables: ``counters``/``numbers`` (7-digit transmission and assignment numbers, never reused within
12 months + 1 day), ``deliveries`` (idempotency index: one claim file per delivery id, with the
exact bytes), ``events`` (what tracking reports), ``mandates`` (the register built from Nets'
mandate records), ``files`` (incoming files already processed, by SHA-256), ``payments`` (every
settled OCR transaction, matched or not: never dropped). ``payments.routed`` tracks the offer of a
payment no claim explained to the documents delivered on other channels (see
``AvtaleGiroAdapter.routed_payments``): NULL not offered yet, ``none`` offered and nothing matched,
``assigned`` matched to a routed delivery (its ``delivery_id``) whose ``paid`` is not confirmed yet,
``applied`` the document was marked paid.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

MAX_NUMBER = 9_999_999  # 7 digits; 0000000 is not a valid number
STATE_FILE = "avtalegiro.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (series TEXT PRIMARY KEY, next INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS numbers (
    series TEXT NOT NULL, number TEXT NOT NULL, used_on TEXT NOT NULL, delivery_id TEXT,
    PRIMARY KEY (series, number, used_on));
CREATE TABLE IF NOT EXISTS deliveries (
    delivery_id TEXT PRIMARY KEY, file_name TEXT NOT NULL, transmission_number TEXT NOT NULL,
    assignment_number TEXT NOT NULL, kid TEXT NOT NULL, amount_ore INTEGER NOT NULL, due_date TEXT NOT NULL,
    channel_ref TEXT NOT NULL, data BLOB NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL,
    written_at TEXT);
CREATE INDEX IF NOT EXISTS deliveries_ref ON deliveries (channel_ref);
CREATE INDEX IF NOT EXISTS deliveries_tn ON deliveries (transmission_number);
CREATE INDEX IF NOT EXISTS deliveries_kid ON deliveries (kid);
CREATE TABLE IF NOT EXISTS events (
    delivery_id TEXT NOT NULL, state TEXT NOT NULL, at TEXT NOT NULL, detail TEXT NOT NULL,
    amount_ore INTEGER, source TEXT NOT NULL, PRIMARY KEY (delivery_id, state, source));
CREATE TABLE IF NOT EXISTS mandates (
    kid TEXT PRIMARY KEY, active INTEGER NOT NULL, notify INTEGER NOT NULL, registration_type INTEGER NOT NULL,
    serial_number INTEGER NOT NULL, source TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    sha256 TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL, detail TEXT NOT NULL,
    processed_at TEXT NOT NULL, archived_as TEXT);
CREATE TABLE IF NOT EXISTS payments (
    id INTEGER PRIMARY KEY AUTOINCREMENT, identity TEXT NOT NULL, kid TEXT NOT NULL, amount_ore INTEGER NOT NULL,
    settlement_date TEXT NOT NULL, transaction_type INTEGER NOT NULL, account TEXT NOT NULL,
    source_file TEXT NOT NULL, status TEXT NOT NULL, reason TEXT, detail TEXT NOT NULL, delivery_id TEXT,
    data TEXT NOT NULL, routed TEXT);
CREATE INDEX IF NOT EXISTS payments_identity ON payments (identity);
"""


class NumbersExhausted(RuntimeError):
    """All 9 999 999 numbers of a series were used within the last 12 months + 1 day."""


def reuse_cutoff(today: dt.date) -> dt.date:
    """First day of the no-reuse window: a number used on or after it is still blocked.

    The spec: assignment numbers unique per agreement for 12 months + 1 day.
    """
    year, month = (today.year - 1, today.month)
    for day in (today.day, 30, 29, 28):
        try:
            return dt.date(year, month, day) - dt.timedelta(days=1)
        except ValueError:
            continue
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class DeliveryRecord:
    delivery_id: str
    file_name: str
    transmission_number: str
    assignment_number: str
    kid: str
    amount_ore: int
    due_date: dt.date
    channel_ref: str
    data: bytes
    status: str  # "pending" (numbers taken, file not yet confirmed written) or "written"
    created_at: str
    written_at: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> DeliveryRecord:
        return cls(row["delivery_id"], row["file_name"], row["transmission_number"], row["assignment_number"],
                   row["kid"], row["amount_ore"], dt.date.fromisoformat(row["due_date"]), row["channel_ref"],
                   bytes(row["data"]), row["status"], row["created_at"], row["written_at"])


class StateStore:
    """Connection-per-call access to the state file (safe from worker threads and processes)."""

    def __init__(self, state_dir: str | os.PathLike[str]):
        self.dir = os.fspath(state_dir)
        os.makedirs(self.dir, exist_ok=True)
        self.path = os.path.join(self.dir, STATE_FILE)
        with self.connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            if "routed" not in {r["name"] for r in db.execute("PRAGMA table_info(payments)")}:
                try:  # a state file from before payments were offered to routed documents
                    db.execute("ALTER TABLE payments ADD COLUMN routed TEXT")
                except sqlite3.OperationalError as exc:  # another worker added it first
                    if "duplicate column" not in str(exc):
                        raise

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA synchronous=FULL")
            yield db
        finally:
            db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One writer at a time across processes; commit on success, roll back on error."""
        with self.connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # -- numbers -----------------------------------------------------------------------------

    @staticmethod
    def allocate_number(db: sqlite3.Connection, series: str, today: dt.date, delivery_id: str | None,
                        start: int = 1) -> str:
        """The next 7-digit number of ``series`` not used within 12 months + 1 day; recorded as used.

        Numbers ascend from ``start`` and wrap after 9999999; a wrapped number still inside the
        reuse window is skipped. Call inside :meth:`transaction`.
        """
        cutoff = reuse_cutoff(today).isoformat()
        (in_window,) = db.execute("SELECT COUNT(DISTINCT number) FROM numbers WHERE series = ? AND used_on >= ?",
                                  (series, cutoff)).fetchone()
        if in_window >= MAX_NUMBER:
            raise NumbersExhausted(f"all {series} numbers were used since {cutoff}")
        row = db.execute("SELECT next FROM counters WHERE series = ?", (series,)).fetchone()
        n = row["next"] if row else max(1, min(start, MAX_NUMBER))
        while db.execute("SELECT 1 FROM numbers WHERE series = ? AND number = ? AND used_on >= ? LIMIT 1",
                         (series, f"{n:07d}", cutoff)).fetchone():
            n = n % MAX_NUMBER + 1
        number = f"{n:07d}"
        db.execute("INSERT OR REPLACE INTO counters (series, next) VALUES (?, ?)", (series, n % MAX_NUMBER + 1))
        db.execute("INSERT OR IGNORE INTO numbers (series, number, used_on, delivery_id) VALUES (?, ?, ?, ?)",
                   (series, number, today.isoformat(), delivery_id))
        # numbers older than two years can never block anything again
        db.execute("DELETE FROM numbers WHERE series = ? AND used_on < ?",
                   (series, (today - dt.timedelta(days=731)).isoformat()))
        return number

    def used_numbers(self, series: str, since: dt.date | None = None) -> list[str]:
        with self.connect() as db:
            rows = db.execute("SELECT number FROM numbers WHERE series = ? AND used_on >= ? ORDER BY rowid",
                              (series, (since or dt.date.min).isoformat())).fetchall()
        return [r["number"] for r in rows]

    # -- deliveries ------------------------------------------------------------------------

    @staticmethod
    def get_delivery_in(db: sqlite3.Connection, delivery_id: str) -> DeliveryRecord | None:
        row = db.execute("SELECT * FROM deliveries WHERE delivery_id = ?", (delivery_id,)).fetchone()
        return DeliveryRecord.from_row(row) if row else None

    def get_delivery(self, delivery_id: str) -> DeliveryRecord | None:
        with self.connect() as db:
            return self.get_delivery_in(db, delivery_id)

    def deliveries_by_ref(self, channel_ref: str) -> list[DeliveryRecord]:
        with self.connect() as db:
            rows = db.execute("SELECT * FROM deliveries WHERE channel_ref = ? OR delivery_id = ? ORDER BY created_at",
                              (channel_ref, channel_ref)).fetchall()
        return [DeliveryRecord.from_row(r) for r in rows]

    def mark_written(self, delivery_id: str, at: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE deliveries SET status = 'written', written_at = ? WHERE delivery_id = ?",
                       (at, delivery_id))

    # -- events ----------------------------------------------------------------------------

    @staticmethod
    def add_event(db: sqlite3.Connection, delivery_id: str, state: str, at: str, detail: str, source: str,
                  amount_ore: int | None = None) -> None:
        db.execute("INSERT OR IGNORE INTO events (delivery_id, state, at, detail, amount_ore, source) "
                   "VALUES (?, ?, ?, ?, ?, ?)", (delivery_id, state, at, detail, amount_ore, source))

    def events_for(self, delivery_ids: list[str]) -> list[sqlite3.Row]:
        if not delivery_ids:
            return []
        marks = ",".join("?" * len(delivery_ids))
        with self.connect() as db:
            return db.execute(f"SELECT * FROM events WHERE delivery_id IN ({marks}) ORDER BY at, rowid",
                              delivery_ids).fetchall()

    # -- mandates ----------------------------------------------------------------------------

    def mandate(self, kid: str) -> sqlite3.Row | None:
        with self.connect() as db:
            return db.execute("SELECT * FROM mandates WHERE kid = ?", (kid,)).fetchone()

    def mandates(self) -> list[sqlite3.Row]:
        with self.connect() as db:
            return db.execute("SELECT * FROM mandates ORDER BY kid").fetchall()

    # -- files and payments ---------------------------------------------------------------------

    @staticmethod
    def file_seen(db: sqlite3.Connection, sha256: str) -> sqlite3.Row | None:
        return db.execute("SELECT * FROM files WHERE sha256 = ?", (sha256,)).fetchone()

    def file_record(self, sha256: str) -> sqlite3.Row | None:
        with self.connect() as db:
            return self.file_seen(db, sha256)

    def set_archived(self, sha256: str, archived_as: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE files SET archived_as = ? WHERE sha256 = ?", (archived_as, sha256))

    def files(self, status: str | None = None) -> list[sqlite3.Row]:
        with self.connect() as db:
            if status is None:
                return db.execute("SELECT * FROM files ORDER BY processed_at, rowid").fetchall()
            return db.execute("SELECT * FROM files WHERE status = ? ORDER BY processed_at, rowid",
                              (status,)).fetchall()

    def payments(self, status: str | None = None) -> list[sqlite3.Row]:
        with self.connect() as db:
            if status is None:
                return db.execute("SELECT * FROM payments ORDER BY id").fetchall()
            return db.execute("SELECT * FROM payments WHERE status = ? ORDER BY id", (status,)).fetchall()


def identity_key(identity: tuple[Any, ...]) -> str:
    """A stable text form of ``Payment.identity`` (dates as ISO)."""
    return json.dumps([v.isoformat() if isinstance(v, dt.date) else v for v in identity])
