"""Database engines: the embedded SQLite default and PostgreSQL, behind one SQLAlchemy Engine.

The store is synchronous SQLAlchemy Core; async edges (aiohttp handlers, workers) call it through
`run_db`, a small thread pool, so one code path serves the server, the workers and the CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

T = TypeVar("T")


def normalise_url(url: str, base_dir: Path | None = None) -> str:
    """Pick our drivers and resolve a relative SQLite path against `base_dir`.

    `sqlite:///var/sendgw.db` is relative; `sqlite:////abs/path.db` absolute. `postgresql://` and
    `postgres://` select psycopg 3.
    """
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        db = u.database or ""
        if db and db != ":memory:" and not Path(db).is_absolute() and base_dir is not None:
            u = u.set(database=str(base_dir / db))
        return u.set(drivername="sqlite").render_as_string(hide_password=False)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, *, base_dir: Path | None = None, pool_size: int = 10, echo: bool = False) -> Engine:
    """Create an Engine. SQLite gets WAL, foreign keys and a busy timeout; its folder is created."""
    url = normalise_url(url, base_dir)
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, poolclass=NullPool if u.database == ":memory:" else None,
                               connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy issue BEGIN itself (IMMEDIATE for writers, see `begin_write`).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL is durable across process crashes
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # IMMEDIATE takes the write lock up front: no deadlock-prone lock upgrades between
            # processes, which makes SQLite a correct single-writer queue.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


_executor: ThreadPoolExecutor | None = None


def _db_executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="sendgw-db")
    return _executor


async def run_db(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking store call off the event loop.

    A thread cannot be interrupted, so a cancelled caller (shutdown, a dropped request) still
    waits for the call already running before it sees the cancellation: no transaction outlives
    the task that started it, and shutdown never closes the engine under a running query.
    """
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(_db_executor(), functools.partial(fn, *args, **kwargs))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await future
        raise
