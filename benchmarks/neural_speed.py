"""Neural codec speed on this machine, and what a fixed CPU budget buys on the demo clip.

1. training: CPU seconds per step and steps/s of the real loop (`train_decoder`) on the demo clip,
   for the small decoder a CPU budget trains (`--probe-default`: the default one too, minutes a
   step on a CPU); steps only, as the ten probe measurements of a run show in the budget run's wall;
2. inflate: frames/s of the default decoder as the exported inflate.py runs it, and the projected
   time of the full clip's 1,200 frames beside the official 30-minute limit (4 cores);
3. 0.bin bytes against latent_dim for the full clip's 600 pairs (an untrained decoder: lzma finds
   less to squeeze in random weights than in trained ones, so these are upper bounds);
4. on the demo clip: a neural run whose steps fit --budget CPU seconds of training, its exact
   score and bytes beside the demo floor: the best of the demo lab's classical runs (its first
   svt-av1 run and the crf and film-grain sweeps around it; `--floor first` runs the first only).
Prints figures only, each with the load average beside it; run it niced on a shared machine and
read the CPU seconds, not the wall. `--work DIR` keeps the demo assets for the next time.

    python benchmarks/neural_speed.py [--work DIR] [--frames 60] [--budget 300] [--probe-steps 4]
                                      [--probe-default] [--floor first]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from comma_tui.demo import FIRST_RUN, SWEEPS
from engine.codecs.neural.keys import NeuralKeys
from engine.codecs.neural.model import Trainable
from engine.codecs.neural.runtime import Arch, inflate_frames, pack
from engine.codecs.neural.targets import Targets, make_targets
from engine.codecs.neural.train import train_decoder
from engine.defaults import SCORE_BATCH_SIZE
from engine.demo.assets import make_demo_assets
from engine.demo.layout import DemoAssets
from engine.runs.pipeline import run_spec
from engine.runs.spec import SourceSpec, parse_spec
from engine.scoring.scorer import Scorer
from ledger.records import Metrics

OFFICIAL_LIMIT_S = 30 * 60
FULL_FRAMES = 1200
SMALL = {"latent_dim": 16, "channels": 16, "upsample": 5, "batch": 2, "lr": 0.005}  # what a CPU budget can train


class _Enough(Exception):
    """Raised from the progress callback once the probe has timed its steps."""


def load() -> str:
    """The 1-minute load average, to print beside a figure."""
    return f"[load {os.getloadavg()[0]:.1f}]"


def training_speed(name: str, keys: NeuralKeys, targets: Targets, frames: int, scorer: Scorer, work: Path) -> float:
    """CPU seconds per training step of `keys`' decoder (printed with steps/s), the first step left out as warm-up.

    The loop is told of many steps, so that it neither measures its probe batch nor checkpoints
    while timed, and is stopped from its progress callback.
    """
    probe = replace(keys, steps=10**6, checkpoint_every=10**6)
    times: list[tuple[float, float]] = []

    def step(done: int, *_: object) -> None:
        times.append((time.process_time(), time.monotonic()))
        if done > keys.steps:
            raise _Enough

    with contextlib.suppress(_Enough):
        train_decoder(probe, targets, frames, scorer, work, 1, None, step, lambda m: None)
    (cpu0, wall0), (cpu1, wall1) = times[0], times[-1]
    steps = len(times) - 1
    per_step = (cpu1 - cpu0) / steps
    print(
        f"training  {name} (latent {keys.latent_dim}, channels {keys.channels}, upsample {keys.upsample}, "
        f"batch {keys.batch}), {torch.get_num_threads()} threads: {per_step:.2f} CPU s/step, "
        f"{steps / (wall1 - wall0):.3f} steps/s wall {load()}"
    )
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
        f"(target < {OFFICIAL_LIMIT_S // 60} min on 4 cores) {load()}"
    )


def bytes_by_latent_dim() -> None:
    """0.bin bytes for 600 pairs, default decoder, by latent_dim (untrained: upper bounds)."""
    keys = NeuralKeys()
    pairs = FULL_FRAMES // 2
    for dim in (8, 16, 28, 48):
        packed = Trainable(Arch(dim, keys.channels, keys.upsample), pairs, 0).packed(8, 8, FULL_FRAMES)
        size = len(pack(packed, keys.entropy))
        print(f"bytes     latent_dim {dim:>3}: {size:,} bytes of 0.bin for {pairs} pairs (untrained, lzma) {load()}")


def demo_runs(first_only: bool) -> list[tuple[str, dict]]:
    """The demo lab's classical runs: its first run and, unless `first_only`, the sweeps around it."""
    first: dict[str, Any] = FIRST_RUN
    runs: list[tuple[str, dict]] = [("first svt-av1", first)]
    if not first_only:
        for sweep in SWEEPS:
            for key, values in sweep.items():
                runs += [(f"{key}={v}", first | {"encode": first["encode"] | {key: v}}) for v in values]
    return runs


def _print_run(name: str, m: Metrics, note: str) -> None:
    print(
        f"demo clip {name:<18}: score {m.score:.4f} (segnet {m.segnet:.5f}, posenet {m.posenet:.6f}), "
        f"{m.archive_bytes:,} bytes, {note} {load()}"
    )


def budget_run(
    clip: Path, models: Path, work: Path, budget: float, per_step: float, first_only: bool, cache: Path
) -> None:
    """The demo floor's and a budgeted neural run's exact scores, side by side.

    The demo's first run goes first and the neural run next, so that the comparison is there early;
    the sweeps that complete the floor follow. `cache` keeps the reference side's network outputs.
    """
    source = SourceSpec(clip=str(clip), models=str(models))
    classical = demo_runs(first_only)
    floor: list[Metrics] = []
    for index, (name, tables) in enumerate(classical):
        wall = time.monotonic()
        result = run_spec(parse_spec(tables, source), work / "floor" / name, log=lambda m: None, cache_dir=cache)
        floor.append(result.metrics)
        _print_run(name, floor[-1], f"{time.monotonic() - wall:.0f} s wall")
        if index == 0:
            steps = max(1, int(budget / per_step))
            neural = parse_spec({"encode": {"codec": "neural"}, "neural": SMALL | {"steps": steps}}, source)
            cpu, wall = time.process_time(), time.monotonic()
            m = run_spec(neural, work / "neural", log=lambda m: None, cache_dir=cache).metrics
            note = f"the whole run {time.process_time() - cpu:.0f} CPU s, {time.monotonic() - wall:.0f} s wall"
            _print_run(f"neural {steps} steps", m, f"{note} (a budget of {budget:.0f} CPU s of training steps)")
    best = min(floor, key=lambda m: m.score)
    print(f"demo clip floor ({len(floor)} classical runs): score {best.score:.4f}, {best.archive_bytes:,} bytes")


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None, help="a folder for the demo assets and runs")
    parser.add_argument("--frames", type=int, default=60, help="demo clip frames")
    parser.add_argument("--budget", type=float, default=300.0, help="CPU seconds of training for the budget run")
    parser.add_argument("--probe-steps", type=int, default=4, help="steps timed for the training speed")
    parser.add_argument("--inflate-pairs", type=int, default=8, help="frame pairs inflated for the speed")
    parser.add_argument(
        "--probe-default", action="store_true", help="time the default decoder's steps too (minutes on a CPU)"
    )
    parser.add_argument("--floor", choices=("sweeps", "first"), default="sweeps", help="which demo runs make the floor")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="neural-speed-"))
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {os.cpu_count()} CPUs {load()}")
    inflate_speed(args.inflate_pairs)
    bytes_by_latent_dim()
    demo = DemoAssets(work / "demo")
    if not demo.exist():
        demo = make_demo_assets(work / "demo", frames=args.frames)
    torch.set_num_threads(min(4, os.cpu_count() or 1))
    scorer = Scorer(demo.models, device="cpu")
    probe = work / "probe"
    probe.mkdir(parents=True, exist_ok=True)
    cache = work / "cache"  # the reference side's network outputs, computed once for every run
    targets = make_targets(demo.clip, args.frames, scorer, probe, SCORE_BATCH_SIZE, cache)
    small = NeuralKeys(**SMALL, steps=args.probe_steps)  # type: ignore[arg-type]
    per_step = training_speed("small", small, targets, args.frames, scorer, probe)
    if args.probe_default:
        training_speed("default", NeuralKeys(steps=args.probe_steps), targets, args.frames, scorer, probe)
    budget_run(demo.clip, demo.models, work, args.budget, per_step, args.floor == "first", cache)


if __name__ == "__main__":
    main()
