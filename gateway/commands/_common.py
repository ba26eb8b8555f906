"""Helpers shared by the sub-commands: settings and engine from the command line, error printing."""

from __future__ import annotations

import argparse
import sys

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from gateway.config import ConfigError, Settings, load_settings
from gateway.store.db import make_engine


class CommandError(Exception):
    """Ends a command with a one-line message on stderr and the given exit code."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


def seconds(value: str) -> float:
    """An argparse type for durations: a negative or non-finite one is a usage error, not a no-op."""
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 <= number < float("inf"):
        raise argparse.ArgumentTypeError(f"not a number of seconds (0 or more): {value!r}")
    return number


def settings_from(args: argparse.Namespace) -> Settings:
    try:
        return load_settings(getattr(args, "config", None))
    except ConfigError as exc:
        raise CommandError(f"configuration: {exc}") from exc


def engine_from(settings: Settings) -> Engine:
    """The configured engine; a URL SQLAlchemy cannot use is a configuration error, not a traceback."""
    url = settings.database.url
    shown = _masked(url)
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
            # each connection would see its own empty database, and nothing would be kept
            raise CommandError(f"configuration: [database] url {shown!r} is an in-memory SQLite database; "
                               "give a file: sqlite:///FILE")
        return make_engine(url, base_dir=settings.base_dir,
                           pool_size=settings.database.pool_size, echo=settings.database.echo)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise CommandError(f"configuration: [database] url {shown!r} is not usable ({exc}); expected "
                           "sqlite:///FILE or postgresql://user@host/db") from exc
    except OSError as exc:  # the SQLite file's folder cannot be created
        raise CommandError(f"configuration: [database] url {shown!r}: cannot create {exc.filename}: "
                           f"{exc.strerror or exc}") from exc


def _masked(url: str) -> str:
    """The URL with its password hidden, also when SQLAlchemy could not make sense of it."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url.split("@")[-1] if "@" in url else url
    return parsed.render_as_string() if parsed.password else url  # rendering would quote ':' in paths


def connected(engine: Engine) -> Engine:
    """Connect once, so an unreachable database is one line naming it instead of a driver traceback."""
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        raise CommandError(f"database {engine.url.render_as_string()} unreachable: {_first_line(exc)}") from exc
    return engine


def _first_line(exc: DBAPIError) -> str:
    return (str(exc.orig or exc).strip().splitlines() or [type(exc).__name__])[0]


def current_engine(args: argparse.Namespace) -> Engine:
    """The configured database, refusing one whose schema is not current."""
    from gateway.store.migrate import SchemaOutOfDate, check_schema

    engine = connected(engine_from(settings_from(args)))
    try:
        check_schema(engine)
    except SchemaOutOfDate as exc:
        raise CommandError(str(exc)) from exc
    return engine


def fail(message: str, code: int = 2) -> int:
    print(f"sendgw: {message}", file=sys.stderr)
    return code


def guarded(run):
    """Wrap a `run(args)` so CommandError becomes its message on stderr and its exit code."""

    def wrapper(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except CommandError as exc:
            return fail(str(exc), exc.exit_code)
        except DBAPIError as exc:  # the database went away or refused mid-command
            return fail(f"database error: {_first_line(exc)}")

    wrapper.__doc__ = run.__doc__
    return wrapper
