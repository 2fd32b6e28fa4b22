"""`comma-tui demo-assets DIR`: the synthetic clip and demo scorer, made offline."""

from __future__ import annotations

import argparse

from comma_tui.cli.progress_bar import ProgressBar, stage_progress
from engine.defaults import DEMO_FRAMES
from ledger.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo-assets", help="write a synthetic clip and a calibrated demo scorer")
    p.add_argument("dir", help="folder to write videos/0.mkv and models/ into")
    p.add_argument("--frames", type=int, default=DEMO_FRAMES, help=f"clip length (default {DEMO_FRAMES})")
    p.add_argument("--seed", type=int, default=0, help="scene and weight seed (default 0)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.frames < 2:
        raise UserError(f"--frames {args.frames} is too short: a clip needs at least 2 frames (one pair)")
    from engine.demo.assets import make_demo_assets  # torch: only when there is work to do

    progress = stage_progress(ProgressBar())
    assets = make_demo_assets(args.dir, frames=args.frames, seed=args.seed, progress=progress)
    print(f"clip:   {assets.clip}")
    print(f"models: {assets.models} (demo scorer: random weights calibrated on the clip)")
    return 0
