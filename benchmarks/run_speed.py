"""Wall time per stage of a native run on demo assets of N frames.

Usage: python benchmarks/run_speed.py [--frames 60] [--crf 35] [--width 524 --height 394]

Makes demo assets and a lab in a temporary folder, runs a floor-like svt-av1 spec (film grain
22, lanczos both ways) through the same code as `comma-tui run`, and prints seconds per stage
and frames per second.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from engine.demo.assets import make_demo_assets
from engine.runs.spec import lab_source, parse_spec
from engine.sched.worker import execute_run
from ledger import Lab, Ledger


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--crf", type=int, default=35)
    parser.add_argument("--preset", default="10")
    parser.add_argument("--width", type=int, default=524)
    parser.add_argument("--height", type=int, default=394)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        assets = make_demo_assets(Path(tmp) / "assets", frames=args.frames)
        print(f"demo assets ({args.frames} frames): {time.perf_counter() - start:.1f} s")
        lab = Lab.create(Path(tmp) / "lab", assets.clip, assets.models)
        spec = parse_spec(
            {
                "preprocess": {"width": args.width, "height": args.height, "scaler": "lanczos"},
                "encode": {"codec": "libsvtav1", "crf": args.crf, "preset": args.preset, "film_grain": 22},
                "inflate": {"scaler": "lanczos"},
            },
            lab_source(lab),
        )
        ledger = Ledger(lab)
        record = ledger.add_run(spec.to_dict(), label="benchmark", status="running")
        start = time.perf_counter()
        done = execute_run(ledger, record.id)
        wall = time.perf_counter() - start
        assert done.metrics is not None, done.failure_reason
        print(f"{'stage':<8} {'seconds':>8} {'frames/s':>9}")
        for stage, seconds in done.stage_timings.items():
            fps = args.frames / seconds if seconds else float("inf")
            print(f"{stage:<8} {seconds:>8.2f} {fps:>9.1f}")
        print(f"{'total':<8} {wall:>8.2f} {args.frames / wall:>9.1f}")
        print(f"score {done.metrics.score:.3f}, archive {done.metrics.archive_bytes:,} bytes")


if __name__ == "__main__":
    main()
