"""Neural codec speed on this machine, and what a fixed CPU budget buys on the demo clip.

1. training: CPU seconds per step and steps/s of the real loop (`train_decoder`) on the demo clip;
2. inflate: frames/s of the default decoder as the exported inflate.py runs it, and the projected
   time of the full clip's 1,200 frames beside the official 30-minute limit (4 cores);
3. 0.bin bytes against latent_dim for the full clip's 600 pairs (an untrained decoder: lzma finds
   less to squeeze in random weights than in trained ones, so these are upper bounds);
4. on the demo clip: a neural run whose steps fit --budget CPU seconds of training, its exact
   score and bytes beside the demo's first svt-av1 run (the floor a new lab starts from).
Prints figures only; run it niced on a shared machine and read the CPU seconds, not the wall.

    python benchmarks/neural_speed.py [--work DIR] [--frames 60] [--budget 300] [--probe-steps 4]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from comma_tui.demo import FIRST_RUN
from engine.codecs.neural.keys import NeuralKeys
from engine.codecs.neural.model import Trainable
from engine.codecs.neural.runtime import Arch, inflate_frames, pack
from engine.codecs.neural.targets import make_targets
from engine.codecs.neural.train import train_decoder
from engine.demo.assets import make_demo_assets
from engine.runs.pipeline import run_spec
from engine.runs.spec import SourceSpec, parse_spec
from engine.scoring.scorer import Scorer

OFFICIAL_LIMIT_S = 30 * 60
FULL_FRAMES = 1200
SMALL = {"latent_dim": 16, "channels": 16, "upsample": 5, "batch": 2, "lr": 0.005}  # what a CPU budget can train


def training_speed(clip: Path, frames: int, models: Path, work: Path, steps: int) -> float:
    """CPU seconds per training step of the SMALL decoder (printed with steps/s)."""
    scorer = Scorer(models, device="cpu")
    targets = make_targets(clip, frames, scorer, work, 8, None)
    keys = NeuralKeys(**SMALL, steps=steps, checkpoint_every=10**6)  # type: ignore[arg-type]
    cpu, wall = time.process_time(), time.monotonic()
    train_decoder(keys, targets, frames, scorer, work, clip.stat().st_size, None, lambda *a: None, lambda m: None)
    per_step, wall_rate = (time.process_time() - cpu) / steps, steps / (time.monotonic() - wall)
    print(f"training  {SMALL}: {per_step:.2f} CPU s/step, {wall_rate:.3f} steps/s wall (incl. probe measurements)")
    return per_step


def inflate_speed(pairs: int) -> None:
    """Frames/s of the default decoder at up to 4 threads, and the full clip's projected inflate time."""
    threads = min(4, os.cpu_count() or 1)
    torch.set_num_threads(threads)
    keys = NeuralKeys()
    arch = Arch(keys.latent_dim, keys.channels, keys.upsample)
    packed = Trainable(arch, pairs, 0).packed(8, 8, 2 * pairs)
    next(inflate_frames(replace(packed, frames=2), torch.device("cpu")))  # warm-up
    cpu, wall = time.process_time(), time.monotonic()
    count = sum(1 for _ in inflate_frames(packed, torch.device("cpu")))
    fps, cpu_per = count / (time.monotonic() - wall), (time.process_time() - cpu) / count
    projected = FULL_FRAMES / fps
    print(
        f"inflate   default decoder (latent {keys.latent_dim}, channels {keys.channels}, upsample {keys.upsample}), "
        f"{threads} threads: {fps:.2f} frames/s, {cpu_per:.2f} CPU s/frame; {FULL_FRAMES} frames in "
        f"{projected / 60:.1f} min at this wall rate, {FULL_FRAMES * cpu_per / 60:.1f} CPU min "
        f"(target < {OFFICIAL_LIMIT_S // 60} min on 4 cores)"
    )


def bytes_by_latent_dim() -> None:
    """0.bin bytes for 600 pairs, default decoder, by latent_dim (untrained: upper bounds)."""
    keys = NeuralKeys()
    pairs = FULL_FRAMES // 2
    for dim in (8, 16, 28, 48):
        packed = Trainable(Arch(dim, keys.channels, keys.upsample), pairs, 0).packed(8, 8, FULL_FRAMES)
        size = len(pack(packed, keys.entropy))
        print(f"bytes     latent_dim {dim:>3}: {size:,} bytes of 0.bin for {pairs} pairs (untrained decoder, lzma)")


def budget_run(clip: Path, models: Path, work: Path, budget: float, per_step: float) -> None:
    """The demo floor's and a budgeted neural run's exact scores, side by side."""
    source = SourceSpec(clip=str(clip), models=str(models))
    steps = max(1, int(budget / per_step))
    neural = parse_spec({"encode": {"codec": "neural"}, "neural": SMALL | {"steps": steps}}, source)
    for name, spec in (("demo floor", parse_spec(FIRST_RUN, source)), (f"neural {steps} steps", neural)):
        result = run_spec(spec, work / name.replace(" ", "-"), log=lambda m: None)
        m = result.metrics
        print(
            f"demo clip {name:<18}: score {m.score:.4f} (segnet {m.segnet:.5f}, posenet {m.posenet:.6f}), "
            f"{m.archive_bytes:,} bytes"
        )


def main() -> None:
    """Print the four figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None, help="a folder for the demo assets and runs")
    parser.add_argument("--frames", type=int, default=60, help="demo clip frames")
    parser.add_argument("--budget", type=float, default=300.0, help="CPU seconds of training for the budget run")
    parser.add_argument("--probe-steps", type=int, default=4, help="steps timed for the training speed")
    parser.add_argument("--inflate-pairs", type=int, default=8, help="frame pairs inflated for the speed")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="neural-speed-"))
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, load {os.getloadavg()[0]:.1f}")
    inflate_speed(args.inflate_pairs)
    bytes_by_latent_dim()
    demo = make_demo_assets(work / "demo", frames=args.frames)
    torch.set_num_threads(min(4, os.cpu_count() or 1))
    probe = work / "probe"
    probe.mkdir(parents=True, exist_ok=True)
    per_step = training_speed(demo.clip, args.frames, demo.models, probe, args.probe_steps)
    budget_run(demo.clip, demo.models, work, args.budget, per_step)


if __name__ == "__main__":
    main()
