"""Whether a cluster's jobs can work on this lab: a probe job looks for a word the scheduler left in it.

The scheduler writes a fresh word to `<lab>/scheduler/probe.txt` and submits
`python -m engine.sched.probe --lab LAB --word WORD` with this installation's interpreter. The job
succeeds only where the interpreter and this engine exist and the lab is the same folder (a
shared filesystem), which is what every run needs.

    python -m engine.sched.probe --lab DIR --word WORD   # exit 0: seen; 3: not this lab, or no lab
"""

from __future__ import annotations

import argparse
import secrets
import socket
import sys
from pathlib import Path

PROBE_NAME = "probe.txt"


def probe_file(lab_root: Path) -> Path:
    """Where the scheduler leaves the probe's word."""
    return lab_root / "scheduler" / PROBE_NAME


def leave_word(lab_root: Path) -> str:
    """Write a fresh word for a probe job to find; returns it."""
    word = secrets.token_hex(8)
    path = probe_file(lab_root)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(word + "\n", encoding="utf-8")
    return word


def main(argv: list[str] | None = None) -> int:
    """The probe job: say whether this node sees the lab the scheduler runs."""
    parser = argparse.ArgumentParser(description="Check that this node sees a comma-tui lab.")
    parser.add_argument("--lab", required=True, type=Path)
    parser.add_argument("--word", required=True)
    args = parser.parse_args(argv)
    path = probe_file(args.lab)
    try:
        found = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        print(f"{socket.gethostname()} cannot read {path} ({exc.strerror})", flush=True)
        return 3
    if found != args.word:
        print(f"{socket.gethostname()} sees another folder at {args.lab} (its probe word differs)", flush=True)
        return 3
    print(f"{socket.gethostname()} sees the lab {args.lab}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
