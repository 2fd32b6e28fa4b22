"""`comma-tui --demo`: a demo lab in the user's data folder, with runs already queued.

Made once: demo assets (a 60-frame synthetic clip and the calibrated demo scorer, about a minute),
a lab on them, a first svt-av1 run, and a small crf and film-grain sweep around it whose parent
is the first run. Opening the demo again reuses the lab and its history.

The folder is `platformdirs.user_data_dir("comma-tui")/demo-lab`, or `$COMMA_TUI_DATA/demo-lab`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from comma_tui.cli.progress_bar import ProgressBar, stage_progress
from engine.defaults import DEMO_FRAMES
from engine.demo.layout import DemoAssets
from engine.runs.spec import RunSpec, parse_spec
from ledger import Lab, Ledger

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


def make_assets(root: Path, frames: int, progress: Callable[[str, int, int], None]) -> DemoAssets:
    """Make the demo clip and scorer in `root` (loads torch: only when the demo lab has none yet)."""
    from engine.demo.assets import make_demo_assets

    return make_demo_assets(root, frames=frames, progress=progress)


def ensure_demo_lab(stream: TextIO = sys.stderr, frames: int = DEMO_FRAMES) -> Lab:
    """The demo lab, made (assets, lab, first run and sweeps) the first time; progress on `stream`."""
    root = demo_lab_dir()
    assets = DemoAssets(root / "assets")
    if not assets.exist():
        print(f"comma-tui: making the demo clip and scorer in {assets.root} (once, about a minute)", file=stream)
        make_assets(assets.root, frames, stage_progress(ProgressBar(stream, enabled=True)))
    lab = Lab.open(root) if (root / "lab.toml").is_file() else Lab.create(root, assets.clip, assets.models)
    if not Ledger(lab).all():
        queue_demo_runs(lab)
        print(f"comma-tui: demo lab {lab.root}: queued a first run and a crf and film-grain sweep", file=stream)
    return lab


def queue_demo_runs(lab: Lab) -> None:
    """Queue the first svt-av1 run and the sweeps around it (their parent is the first run)."""
    from comma_tui.lab_client import LabClient

    client = LabClient(lab)
    spec: RunSpec = parse_spec(FIRST_RUN, client.source())
    first = client.queue_run(spec, "main", "first svt-av1", None, priority=1)
    for sweep in SWEEPS:
        client.queue_sweep(spec, dict(sweep), first.id, "main")
