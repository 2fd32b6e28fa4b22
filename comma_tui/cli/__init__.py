"""The `comma-tui` command line: one module per command group, one parser.

Every user mistake surfaces as an `ledger.errors.UserError`, printed here as one line with exit
status 2; no traceback reaches the user for those.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from engine import __version__
from ledger.errors import UserError, machine_fault

#: Each command, and the module of this package that defines it. Only the module of the command
#: being run is imported: `ledger show` has no need of the codecs or the scheduler, whose imports
#: would cost more than the command itself.
COMMANDS = {
    "demo-assets": "assets",
    "score": "score",
    "run": "run",
    "export": "run",
    "frames": "frames",
    "init": "ledger",
    "ledger": "ledger",
    "sched": "sched",
    "queue": "sched",
    "autopilot": "autopilot",
    "spec": "spec",
}


def command_of(argv: Sequence[str]) -> str | None:
    """The command `argv` runs (None when it names none, or asks for help)."""
    args = iter(argv)
    for arg in args:
        if arg == "--lab":
            next(args, None)
        elif arg in COMMANDS:
            return arg
        elif not arg.startswith("--lab=") and arg not in ("--demo", "--graphics"):
            return None
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser: global options plus the subcommands of every group, or only of the command `argv` runs."""
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
    parser.add_argument(
        "--graphics", action="store_true", help="offer kitty/sixel images in the compare view (key g) where supported"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    command = command_of(argv) if argv is not None else None
    for name in dict.fromkeys(COMMANDS.values()):
        if command is None or COMMANDS[command] == name:
            importlib.import_module(f"comma_tui.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `comma-tui` script."""
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args, unknown = parser.parse_known_args(argv)
    if "--demo" in unknown:  # a global option typed after the command (`sched stop --now --demo`) means the same
        args.demo = True
        unknown = [arg for arg in unknown if arg != "--demo"]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
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

    if args.graphics:
        from comma_tui.widgets.graphics import load_graphics

        load_graphics()  # before the app takes the terminal: textual-image asks it what it speaks
    CommaApp(lab).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
