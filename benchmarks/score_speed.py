"""Scoring speed and peak memory on generated clips of growing length.

Usage: python benchmarks/score_speed.py [--frames 20 40] [--batch-size 16] [--threads N]

For each length it scores a light svt-av1 encode of the synthetic clip against the clip in a
fresh process (so each peak-RSS figure is that run's own) and prints pairs/s, frames/s and the
peak resident memory. Flat memory across lengths shows that scoring streams.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from engine.codecs import EncodeSettings, VideoEncoder
from engine.demo_assets import make_demo_assets
from engine.video import HEIGHT, WIDTH, RawWriter, iter_frames


def _child(reference: str, candidate: str, models: str, batch_size: int, threads: int | None) -> None:
    from engine.evaluate import evaluate
    from engine.scorer import Scorer

    scorer = Scorer(models, device="cpu", threads=threads)
    start = time.perf_counter()
    result = evaluate(scorer, reference, candidate, archive_bytes=1, batch_size=batch_size)
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"pairs": result.report.pairs, "seconds": seconds, "peak_mib": peak_mib}))


def _prefix_clip(src: Path, dst: Path, frames: int, settings: EncodeSettings) -> None:
    with VideoEncoder(dst, settings, WIDTH, HEIGHT) as encoder:
        for i, frame in enumerate(iter_frames(src)):
            if i == frames:
                break
            encoder.write(frame)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[20, 40])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child, batch_size=args.batch_size, threads=args.threads)
        return

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        longest = max(args.frames)
        print(f"making a {longest}-frame demo clip and scorer ...", flush=True)
        assets = make_demo_assets(root / "assets", frames=longest)
        print(f"{'frames':>6} {'pairs/s':>8} {'frames/s':>9} {'peak MiB':>9}")
        for n in args.frames:
            reference = root / f"ref{n}.mkv"
            _prefix_clip(assets.clip, reference, n, EncodeSettings("libx265", crf=16, preset="faster"))
            encoded = root / f"cand{n}.mkv"
            _prefix_clip(reference, encoded, n, EncodeSettings("libsvtav1", crf=30, preset="12"))
            candidate = root / f"cand{n}.raw"
            with RawWriter(candidate) as writer:
                for frame in iter_frames(encoded):
                    writer.write(frame)
            cmd = [sys.executable, __file__, "--child", str(reference), str(candidate), str(assets.models)]
            cmd += ["--batch-size", str(args.batch_size)] + (["--threads", str(args.threads)] if args.threads else [])
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            figures = json.loads(out)
            pairs_s = figures["pairs"] / figures["seconds"]
            print(f"{n:>6} {pairs_s:>8.3f} {2 * pairs_s:>9.3f} {figures['peak_mib']:>9.0f}", flush=True)


if __name__ == "__main__":
    main()
