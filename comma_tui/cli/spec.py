"""`comma-tui spec from-ffmpeg "ffmpeg ..."`: an ffmpeg command line as a run spec.

    comma-tui spec from-ffmpeg "ffmpeg -i videos/0.mkv -vf scale=524:394:flags=lanczos -c:v libsvtav1 ..." [--out FILE]

The spec goes to stdout (or FILE); what it cannot say goes to stderr, one option per line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add `spec` with its subcommand `from-ffmpeg`."""
    group = sub.add_parser("spec", help="make run specs (from an ffmpeg command line)")
    group.set_defaults(handler=lambda args: group.print_help() or 0)
    leaves = group.add_subparsers(dest="spec_command", metavar="COMMAND")
    p = leaves.add_parser("from-ffmpeg", help="print the spec an ffmpeg command line comes to")
    p.add_argument("command", help='the whole command line, quoted: "ffmpeg -i in.mkv -c:v libsvtav1 ... out.mkv"')
    p.add_argument("--out", type=Path, metavar="FILE", help="write the spec to FILE instead of printing it")
    p.set_defaults(handler=from_ffmpeg)


def from_ffmpeg(args: argparse.Namespace) -> int:
    from engine.runs.from_ffmpeg import spec_from_ffmpeg, spec_text  # av, torch: only when there is work

    translation = spec_from_ffmpeg(args.command)
    text = spec_text(translation, args.command)
    for note in translation.notes:
        print(note, file=sys.stderr)
    if args.out:
        args.out.write_text(text)
        print(f"wrote {args.out}")
    else:
        print(text, end="")
    return 0
