"""`comma-tui --demo`: a demo lab in the user's data folder, with runs already queued.

Made once: demo assets (a 60-frame synthetic clip and the calibrated demo scorer, about a minute),
a lab on them, a first svt-av1 run, and a small crf and film-grain sweep around it whose parent
is the first run. Opening the demo again reuses the lab and its history.

The making runs in a child process (`python -m comma_tui.demo DIR`), with its progress bars on
the terminal: it loads torch to calibrate the scorer, and the console that opens next must not
keep those 1.4 GB.

The folder is `platformdirs.user_data_dir("comma-tui")/demo-lab`, or `$COMMA_TUI_DATA/demo-lab`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from engine.defaults import DEMO_FRAMES
from engine.demo.layout import DemoAssets
from ledger import Lab, Ledger
from ledger.errors import UserError

DATA_ENV = "COMMA_TUI_DATA"
FIRST_RUN = {
    "preprocess": {"width": 524, "height": 394, "scaler": "lanczos"},
    "encode": {"codec": "libsvtav1", "crf": 35, "preset": "10", "film_grain": 22},
    "inflate": {"scaler": "lanczos"},
}
SWEEPS: tuple[dict[str, list[int]], ...] = ({"crf": [31, 33, 37, 39]}, {"film_grain": [0, 10, 30]})


def data_dir() -> Path:
    """Where comma-tui keeps its own files (the demo lab): `$COMMA_TUI_DATA`, else the platform's."""
    override = os.environ.get(DATA_ENV)
    if override:
        return Path(override).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("comma-tui"))


def demo_lab_dir() -> Path:
    """The demo lab's folder."""
    return data_dir() / "demo-lab"


def demo_ready(root: Path) -> bool:
    """Whether the demo lab in `root` is made: its lab file and its first runs."""
    return (root / "lab.toml").is_file() and bool(Ledger(Lab.open(root)).all())


def make_assets(root: Path, frames: int, progress: Callable[[str, int, int], None]) -> DemoAssets:
    """Make the demo clip and scorer in `root` (loads torch: only in the child that makes the lab)."""
    from engine.demo.assets import make_demo_assets

    return make_demo_assets(root, frames=frames, progress=progress)


def ensure_demo_lab(stream: TextIO | None = None, frames: int = DEMO_FRAMES) -> Lab:
    """The demo lab, made the first time by a child process that shows its progress on `stream`."""
    stream = stream or sys.stderr
    root = demo_lab_dir()
    if not demo_ready(root):
        print(f"comma-tui: making the demo lab in {root} (once; progress below)", file=stream, flush=True)
        made = subprocess.run([sys.executable, "-m", "comma_tui.demo", str(root), "--frames", str(frames)])
        if made.returncode != 0:
            raise UserError(f"the demo lab in {root} was not made (the reason is above): run comma-tui --demo again")
    return Lab.open(root)


def make_demo_lab(root: Path, frames: int = DEMO_FRAMES, stream: TextIO | None = None) -> Lab:
    """Make what is missing of the demo lab in `root`: assets, lab, first runs (the child's work)."""
    from comma_tui.cli.progress_bar import ProgressBar, stage_progress

    stream = stream or sys.stderr

    assets = DemoAssets(root / "assets")
    if not assets.exist():
        print(
            f"comma-tui: making the demo clip and scorer in {assets.root} (once, about a minute)",
            file=stream,
            flush=True,
        )
        make_assets(assets.root, frames, stage_progress(ProgressBar(stream, enabled=True)))
    lab = Lab.open(root) if (root / "lab.toml").is_file() else Lab.create(root, assets.clip, assets.models)
    if not Ledger(lab).all():
        queue_demo_runs(lab)
        print(f"comma-tui: demo lab {lab.root}: queued a first run and a crf and film-grain sweep", file=stream)
    return lab


def queue_demo_runs(lab: Lab) -> None:
    """Queue the first svt-av1 run and the sweeps around it (their parent is the first run)."""
    from comma_tui.lab_client import LabClient
    from engine.runs.spec import parse_spec

    client = LabClient(lab)
    spec = parse_spec(FIRST_RUN, client.source())
    first = client.queue_run(spec, "main", "first svt-av1", None, priority=1)
    for sweep in SWEEPS:
        client.queue_sweep(spec, dict(sweep), first.id, "main")


def main(argv: list[str] | None = None) -> int:
    """`python -m comma_tui.demo DIR [--frames N]`: make the demo lab in DIR."""
    parser = argparse.ArgumentParser(description="Make comma-tui's demo lab.")
    parser.add_argument("root", type=Path)
    parser.add_argument("--frames", type=int, default=DEMO_FRAMES)
    args = parser.parse_args(argv)
    try:
        make_demo_lab(args.root, args.frames)
    except UserError as exc:
        print(f"comma-tui: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
