"""The `comma-tui` command line: one module per command group, one parser.

Every user mistake surfaces as an `engine.errors.UserError`, printed here as one line with exit
status 2; no traceback reaches the user for those.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from comma_tui.cli import assets, ledger, run, score
from engine import __version__
from engine.errors import UserError

COMMANDS = (assets, score, run, ledger)


def build_parser() -> argparse.ArgumentParser:
    """The full parser: global options plus every command group's subcommands."""
    parser = argparse.ArgumentParser(
        prog="comma-tui",
        description="The lab console for the comma.ai video compression challenge.",
    )
    parser.add_argument("--version", action="version", version=f"comma-tui {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `comma-tui` script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    try:
        return int(handler(args) or 0)
    except UserError as exc:
        print(f"comma-tui: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("comma-tui: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
