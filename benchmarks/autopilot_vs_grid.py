"""The autopilot against a grid sweep and random search, at the same budget, on demo assets.

Usage: nice python benchmarks/autopilot_vs_grid.py [--frames 16] [--budget 12] [--seeds 3] [--assets DIR]

Every method starts from the same measured base run (the floor of a fresh lab) and may run
`--budget` points of one space: crf 24..48 (step 2) x film grain {0, 10, 20} on svt-av1 at 524x394
(39 points: small, so that the comparison runs in minutes on a shared two-core box).
- autopilot: the product's own search and study code (`engine.sched.search`, `engine.sched.study`):
  TPE on a journal file, seeded from the ledger, the floor's neighbours enqueued first;
- grid: the 12-point grid a person would queue (`crf=26..44:6` x `film_grain=0,10,20`), in a
  seeded random order (a grid's best after all of it is the same for every seed);
- random: Optuna's RandomSampler over the same space.
Each point is a real run (encode, archive, inflate, score with the demo scorer). A point's score
does not depend on who asks for it (encodes are deterministic), so each is run once and reused.

It prints the best score after each run for each method and seed, the final bests side by side,
and the goal: the autopilot's best at or below the grid's in most seeds. The load average is
printed before and after: this box is shared.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.demo.assets import make_demo_assets
from engine.demo.layout import DemoAssets
from engine.runs.pipeline import run_spec
from engine.runs.spec import RunSpec, lab_source, parse_spec
from engine.sched import study
from engine.sched.search import Search, parse_search
from ledger import Lab, Ledger

BASE = {
    "preprocess": {"width": 524, "height": 394},
    "encode": {"codec": "libsvtav1", "preset": "10", "crf": 36, "film_grain": 0},
}
AXES = {"encode.crf": {"low": 24, "high": 48, "step": 2}, "encode.film_grain": {"choices": [0, 10, 20]}}
GRID = [{"encode.crf": c, "encode.film_grain": g} for c in (26, 32, 38, 44) for g in (0, 10, 20)]

Point = dict[str, Any]


class Runs:
    """Real runs of points of the space, each run once."""

    def __init__(self, search: Search, root: Path) -> None:
        self.search = search
        self.root = root
        self.scores: dict[tuple[Any, ...], float] = {}
        self.seconds = 0.0

    def score(self, point: Point) -> float:
        """The score of `point`, running it the first time it is asked for."""
        key = tuple(sorted(point.items()))
        if key not in self.scores:
            began = time.monotonic()
            run_dir = self.root / f"run{len(self.scores):03d}"
            spec = self.search.spec_at(point)
            self.scores[key] = run_spec(
                spec, run_dir, log=lambda _line: None, cache_dir=self.root / "cache"
            ).metrics.score
            self.seconds += time.monotonic() - began
        return self.scores[key]


def best_so_far(scores: list[float]) -> list[float]:
    """The running minimum."""
    out: list[float] = []
    for s in scores:
        out.append(min(s, out[-1]) if out else s)
    return out


def with_optuna(search: Search, runs: Runs, ledger: Ledger, journal: Path, neighbours: bool) -> list[float]:
    """Ask/tell `search.budget` points with the product's study code; the score of each."""
    st = study.open_study(search, journal, "bench")
    study.seed(st, search, ledger.records(ledger.all()))
    if neighbours:
        floor = ledger.floors()[search.track]
        center = search.params_of(ledger.get(floor.id).spec)
        assert center is not None
        study.enqueue_neighbours(st, search, center)
    scores: list[float] = []
    while len(scores) < search.budget:
        trial = study.ask(st, search)
        if trial is None:
            break
        score = runs.score(dict(trial.params))
        trial.set_user_attr("run", f"bench-{len(scores)}")  # what the duty records, so it counts as a proposal
        st.tell(trial, [score])
        scores.append(score)
    return scores


def grid(runs: Runs, seed: int, budget: int) -> list[float]:
    """The grid in a seeded order."""
    order = GRID[:budget]
    random.Random(seed).shuffle(order)
    return [runs.score(p) for p in order]


def measure_base(lab: Lab, spec: RunSpec, root: Path) -> float:
    """Run the base spec and record it: it becomes the lab's floor, where every method starts."""
    ledger = Ledger(lab)
    record = ledger.add_run(spec.to_dict(), label="base")
    ledger.update(record.id, status="running", pid=os.getpid(), slot=0)
    result = run_spec(spec, root / "base", log=lambda _line: None, cache_dir=root / "cache")
    ledger.record_result(record.id, result)
    return result.metrics.score


def table(curves: dict[str, list[list[float]]], budget: int) -> list[str]:
    """Best score after each run, one column per method and seed."""
    names = [(m, s) for m in curves for s in range(len(curves[m]))]
    lines = ["run  " + " ".join(f"{m[:4]}#{s:<3}" for m, s in names)]
    for i in range(budget):
        cells = []
        for m, s in names:
            curve = curves[m][s]
            cells.append(f"{curve[min(i, len(curve) - 1)]:8.4f}" if curve else "       -")
        lines.append(f"{i + 1:>3}  " + " ".join(cells))
    return lines


def main() -> None:
    """Run the comparison and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16, help="frames of the demo clip (default 16)")
    parser.add_argument("--budget", type=int, default=12, help="runs per method (default 12, the grid's size)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per method (default 3)")
    parser.add_argument("--assets", type=Path, help="demo assets to reuse (else made, with --frames, in a temp folder)")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="autopilot-bench-") as tmp:
        root = Path(tmp)
        assets = DemoAssets(args.assets) if args.assets else make_demo_assets(root / "demo", frames=args.frames)
        lab = Lab.create(root / "lab", assets.clip, assets.models)
        base_spec = parse_spec(BASE, lab_source(lab))
        base = measure_base(lab, base_spec, root)
        ledger = Ledger(lab)
        search = parse_search({"track": "main", "budget": args.budget, "axes": AXES}, ledger)
        runs = Runs(search, root)
        curves: dict[str, list[list[float]]] = {"autopilot": [], "grid": [], "random": []}
        methods: dict[str, Callable[[int], list[float]]] = {
            "autopilot": lambda s: with_optuna(replace(search, seed=s), runs, ledger, root / f"ap{s}.log", True),
            "grid": lambda s: grid(runs, s, args.budget),
            "random": lambda s: with_optuna(
                replace(search, seed=s, sampler="random"), runs, ledger, root / f"rnd{s}.log", False
            ),
        }
        for seed in range(args.seeds):
            for name, method in methods.items():
                curves[name].append(best_so_far(method(seed)))
                print(f"seed {seed} {name:<9} best {curves[name][-1][-1]:.4f}  ({len(runs.scores)} points run so far)")
    print(f"\nbase run (the floor every method starts from): {base:.4f}; {args.frames}-frame demo clip")
    print(f"best score after each run ({args.budget} runs, {args.seeds} seeds):")
    print("\n".join(table(curves, args.budget)))
    wins = sum(a[-1] <= g[-1] for a, g in zip(curves["autopilot"], curves["grid"], strict=True))
    finals = {m: " ".join(f"{c[-1]:.4f}" for c in cs) for m, cs in curves.items()}
    for m, f in finals.items():
        print(f"final best {m:<9} {f}")
    print(f"autopilot at or below the grid in {wins} of {args.seeds} seeds (goal: most seeds)")
    print(
        f"{len(runs.scores)} distinct points run, {runs.seconds:.0f} s of runs, {time.monotonic() - began:.0f} s in all"
    )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
