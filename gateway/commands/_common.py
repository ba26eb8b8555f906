"""Helpers shared by the sub-commands: settings and engine from the command line, error printing."""

from __future__ import annotations

import argparse
import sys

from sqlalchemy import Engine

from gateway.config import ConfigError, Settings, load_settings
from gateway.store.db import make_engine


class CommandError(Exception):
    """Ends a command with a one-line message on stderr and the given exit code."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


def settings_from(args: argparse.Namespace) -> Settings:
    try:
        return load_settings(getattr(args, "config", None))
    except ConfigError as exc:
        raise CommandError(f"configuration: {exc}") from exc


def engine_from(settings: Settings) -> Engine:
    return make_engine(settings.database.url, base_dir=settings.base_dir,
                       pool_size=settings.database.pool_size, echo=settings.database.echo)


def current_engine(args: argparse.Namespace) -> Engine:
    """The configured database, refusing one whose schema is not current."""
    from gateway.store.migrate import SchemaOutOfDate, check_schema

    engine = engine_from(settings_from(args))
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

    wrapper.__doc__ = run.__doc__
    return wrapper
