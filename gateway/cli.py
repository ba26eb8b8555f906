"""`sendgw`: the one console command. Sub-commands live in `gateway.commands.*`.

Each module in `gateway/commands/` exposes `register(subparsers)`, which adds its parser and sets
`func=run` where `run(args) -> int` returns the process exit code. Modules are discovered, so adding
a command never means editing this file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from gateway import __version__, commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sendgw",
        description="SEND gateway: Peppol AS4 access point, EHF validation and B2C invoice delivery.",
    )
    parser.add_argument("--version", action="version", version=f"sendgw {__version__}")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML configuration file (default: ./sendgw.toml if present); SENDGW_* variables override it",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"gateway.commands.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # a missing COMMAND or ACTION is a usage error (exit 2)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `sendgw artefacts list | head`
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
