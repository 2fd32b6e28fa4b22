"""Learned post-filter speed on this machine: training steps/s and inflate frames/s for h16/h32/h64.

Training runs the real loop (QAT, EMA, clipping, probe checkpoints) on synthetic frame pairs at
the spec's default batch and crop; inflate filters full 1164x874 frames as `inflate.py` does.
Prints figures only; the CPU seconds beside each figure show how much a busy machine held it back.

    python benchmarks/postfilter_speed.py [--steps 30] [--frames 3] [--widths 16,32,64] [--device cpu]
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import time

import numpy as np
import torch

from engine.media.inflate_runtime import HEIGHT, WIDTH, LearnedFilter
from engine.runs.postfilter import FramePairs, train_filter
from engine.runs.spec import InflateSpec


def synthetic_pairs(count: int, seed: int = 0) -> FramePairs:
    """Smooth random frames as references, the same plus noise as candidates."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (count, 2, HEIGHT // 8 + 1, WIDTH // 8 + 1, 3), dtype=np.uint8)
    ref = np.ascontiguousarray(coarse.repeat(8, axis=2).repeat(8, axis=3)[:, :, :HEIGHT, :WIDTH])
    noise = rng.integers(-12, 13, ref.shape, dtype=np.int16)
    cand = np.clip(ref.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return FramePairs(cand, ref)


def main() -> None:
    """Time training and inflate for each hidden width and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="training steps timed per width")
    parser.add_argument("--frames", type=int, default=3, help="full frames filtered per width")
    parser.add_argument("--widths", default="16,32,64", help="hidden widths, comma separated")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    pairs = synthetic_pairs(4)
    frame = pairs.cand[0, 0]
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    defaults = InflateSpec()
    print(f"training: batch {defaults.batch}, crop {defaults.crop}, depth {defaults.depth}, pixel loss")
    for hidden in (int(w) for w in args.widths.split(",")):
        spec = dataclasses.replace(defaults, postfilter="learned", hidden=hidden, steps=args.steps)
        cpu = time.process_time()
        trained = train_filter(pairs, spec, seed=0, device=args.device)
        train_cpu = time.process_time() - cpu
        shipped = LearnedFilter(trained.packed, args.device)
        shipped(frame)  # warm-up: first-call allocations
        start, cpu = time.monotonic(), time.process_time()
        for _ in range(args.frames):
            shipped(frame)
        fps = args.frames / (time.monotonic() - start)
        inflate_cpu = (time.process_time() - cpu) / args.frames
        steps_per_s = trained.summary()["steps_per_s"]
        size = sum(w.size for w in trained.packed.weights)
        print(
            f"h{hidden:<3} train {steps_per_s:6.2f} steps/s ({1000 / steps_per_s / 60:5.1f} min for 1000, "
            f"{train_cpu / args.steps:.2f} cpu-s/step)   inflate {fps:5.2f} frames/s "
            f"({1200 / fps / 60:5.1f} min for 1200, {inflate_cpu:.2f} cpu-s/frame)   {size:,} int8 weights"
        )


if __name__ == "__main__":
    main()
