"""The `comma-tui` command line: one module per command group, one parser.

Every user mistake surfaces as an `ledger.errors.UserError`, printed here as one line with exit
status 2; no traceback reaches the user for those.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from comma_tui.cli import assets, ledger, run, sched, score, spec
from engine import __version__
from ledger.errors import UserError, machine_fault

COMMANDS = (assets, score, run, ledger, sched, spec)


def build_parser() -> argparse.ArgumentParser:
    """The full parser: global options plus every command group's subcommands."""
    parser = argparse.ArgumentParser(
        prog="comma-tui",
        description="The lab console for the comma.ai video compression challenge.",
    )
    parser.add_argument("--version", action="version", version=f"comma-tui {__version__}")
    # dest app_lab: the subcommands' own --lab would otherwise overwrite it with their default.
    parser.add_argument("--lab", dest="app_lab", metavar="DIR", help="the lab to open (default: the lab here)")
    parser.add_argument(
        "--demo", action="store_true", help="use the demo lab (made on first use), for the console or any command"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `comma-tui` script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.app_lab and hasattr(args, "lab") and args.lab is None:
        args.lab = Path(args.app_lab)  # `comma-tui --lab DIR ledger list` means that lab too
    handler = getattr(args, "handler", None) or open_console
    try:
        if args.demo and args.app_lab:
            raise UserError("pass --lab DIR or --demo, not both")
        if args.demo and hasattr(args, "lab") and args.lab is None:
            from comma_tui.demo import ensure_demo_lab

            args.lab = ensure_demo_lab().root  # `comma-tui --demo ledger list` means the demo lab
        return int(handler(args) or 0)
    except UserError as exc:
        return _one_line(exc)
    except KeyboardInterrupt:
        print("comma-tui: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into `head` or a pager that quit early: not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        # A full disk or a read-only lab is the machine's doing, not a bug: one line, like a user error.
        fault = machine_fault(exc)
        if fault is None:
            raise
        return _one_line(fault)


def _one_line(exc: UserError) -> int:
    print(f"comma-tui: error: {exc}", file=sys.stderr)
    return exc.exit_code


def open_console(args: argparse.Namespace) -> int:
    """No command: open the console on `--lab`, the lab here, or the demo lab."""
    from ledger import Lab

    if args.demo:
        from comma_tui.demo import ensure_demo_lab

        lab = ensure_demo_lab()
    else:
        lab = Lab.locate(args.app_lab)
    from comma_tui.app import CommaApp

    CommaApp(lab).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
