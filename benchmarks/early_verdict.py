"""Early verdicts, measured: no false early rejection, and how soon clear losers get their verdict.

Usage: python benchmarks/early_verdict.py [--frames 168] [--batch-size 4] [--orders 50]
                                          [--timing-runs 4] [--work DIR]

1. Demo assets of `--frames` frames and a lab on them (in `--work`, reused when run again).
2. A sweep of 24 runs through the real worker (codecs, crf, film grain, sizes, a denoise, an
   unsharp inflate, 10-bit), every one scored in full (`[score] early = "off"`), reviewed by the
   lab as usual, so each run has the floor it was judged against and its per-pair distortions.
   Runs already done in the lab are reused, so an interrupted benchmark picks up where it was.
3. Replay: each run's per-pair values go through the early rule (`engine.scoring.early`) in
   `--orders` random batch orders, against the floor the lab judged it by; and, as a stress test
   of the bound, against every other run's score as a floor. It prints false early rejections (a
   run rejected early whose full score was promoted or within epsilon of the floor: must be 0),
   bound misses (a bound above the run's full score), and the mean fraction of pairs scored before
   the verdict for runs that lose by more than 2% (target: at most 25%).
4. Time to verdict: for the first `--timing-runs` runs that lose by more than 2%, the run's
   candidate is inflated again and scored twice, side by side: in full (early=off) and in its own
   seeded order against the floor it was judged by (early=auto), both with the lab's warm cache.
5. What reading batches out of order costs: the reference clip decoded in clip order and in a
   visiting order (as made, and with a keyframe every 16 frames), and the `.raw` read both ways.

A full-length challenge clip has 600 pairs, 38 batches of 16. A CPU here scores about a pair a
second (more when the machine is busy), so the default is a 168-frame clip in batches of 4: 21
batches, the same number of looks as a 336-pair clip; smaller batches are noisier than the
evaluator's 16, which makes this a harder test for the rule, not an easier one.

How soon a loser is stopped depends on how many batches the rule has seen, not on what fraction
of the clip they are: the bound needs about eight batches to pin down the spread between them
(Student's t at few degrees of freedom, at 99.9% shared by every look, is wide). So the same
per-pair values are also replayed in batches of 2 (`--replay-batch-sizes`): 42 batches, as many
looks as a full clip's 38, each batch noisier than the evaluator's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from engine.demo.assets import DemoAssets, make_demo_assets
from engine.sched.floors import as_floor
from engine.scoring.early import EarlyPlan, EarlyRule, Floor, replay, visiting_order
from engine.scoring.reference_cache import batch_sizes
from engine.scoring.report import score_terms
from ledger import Lab, Ledger, RunRecord, load_per_pair

TARGET_FRACTION = 0.25
LOSS_MARGIN = 0.02  # "losers": a full score more than 2% above the floor
CONFIDENCE = 0.999
SMALL = {"width": 524, "height": 394}


def _run(label: str, encode: dict[str, Any], preprocess: dict[str, Any] | None = None, **more: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"run": {"label": label}, "encode": encode, "preprocess": preprocess or SMALL}
    return spec | more


SWEEP: tuple[dict[str, Any], ...] = (
    _run("svt crf35 fg22", {"codec": "libsvtav1", "crf": 35, "preset": "10", "film_grain": 22}),
    _run("svt crf30", {"codec": "libsvtav1", "crf": 30, "preset": "10"}),
    _run("svt crf40", {"codec": "libsvtav1", "crf": 40, "preset": "10"}),
    _run("svt crf45", {"codec": "libsvtav1", "crf": 45, "preset": "10"}),
    _run("svt crf50", {"codec": "libsvtav1", "crf": 50, "preset": "10"}),
    _run("svt crf35", {"codec": "libsvtav1", "crf": 35, "preset": "10"}),
    _run("svt crf35 fg10", {"codec": "libsvtav1", "crf": 35, "preset": "10", "film_grain": 10}),
    _run("svt crf35 fg40", {"codec": "libsvtav1", "crf": 35, "preset": "10", "film_grain": 40}),
    _run("svt crf35 full size", {"codec": "libsvtav1", "crf": 35, "preset": "12"}, {}),
    _run("svt crf35 698x524", {"codec": "libsvtav1", "crf": 35, "preset": "10"}, {"width": 698, "height": 524}),
    _run("svt crf35 388x292", {"codec": "libsvtav1", "crf": 35, "preset": "10"}, {"width": 388, "height": 292}),
    _run("svt crf32 10-bit", {"codec": "libsvtav1", "crf": 32, "preset": "10", "pix_fmt": "yuv420p10le"}),
    _run("svt crf35 denoise", {"codec": "libsvtav1", "crf": 35, "preset": "10"}, SMALL | {"filters": "atadenoise"}),
    _run("svt crf35 bicubic", {"codec": "libsvtav1", "crf": 35, "preset": "10"}, inflate={"scaler": "bicubic"}),
    _run("svt crf35 unsharp", {"codec": "libsvtav1", "crf": 35, "preset": "10"}, inflate={"postfilter": "unsharp"}),
    _run("x265 crf26", {"codec": "libx265", "crf": 26, "preset": "veryfast"}),
    _run("x265 crf32", {"codec": "libx265", "crf": 32, "preset": "veryfast"}),
    _run("x265 crf38", {"codec": "libx265", "crf": 38, "preset": "veryfast"}),
    _run("x264 crf23", {"codec": "libx264", "crf": 23, "preset": "veryfast"}),
    _run("x264 crf30", {"codec": "libx264", "crf": 30, "preset": "veryfast"}),
    _run("x264 crf37", {"codec": "libx264", "crf": 37, "preset": "veryfast"}),
    _run("vp9 crf32", {"codec": "libvpx-vp9", "crf": 32, "preset": "8"}),
    _run("vp9 crf40", {"codec": "libvpx-vp9", "crf": 40, "preset": "8"}),
    _run("vp9 crf48", {"codec": "libvpx-vp9", "crf": 48, "preset": "8"}),
)


@dataclass(frozen=True)
class Measured:
    """A run scored in full: its batch totals, the exact rate term, its score and the floor it faced."""

    run: RunRecord
    sizes: list[int]
    pose_totals: list[float]
    seg_totals: list[float]
    rate_term: float
    floor: Floor | None  # the floor the lab judged it against (its per-pair values included)

    @property
    def score(self) -> float:
        assert self.run.score is not None
        return self.run.score

    def margin(self, floor: float) -> float:
        """How far above the floor, as a fraction of the floor."""
        return (self.score - floor) / floor


def load_measured(ledger: Ledger, record: RunRecord, batch_size: int) -> Measured:
    """A done run's per-pair values grouped into the scorer's batches, and the floor the lab judged it by."""
    per_pair = load_per_pair(ledger.lab, record.id, record.artifacts)
    assert per_pair is not None and record.metrics is not None
    sizes = batch_sizes(len(per_pair.posenet), batch_size)
    edges = np.cumsum([0, *sizes])
    pose = [float(per_pair.posenet[a:b].sum()) for a, b in pairwise(edges)]
    seg = [float(per_pair.segnet[a:b].sum()) for a, b in pairwise(edges)]
    m = record.metrics
    rate_term = score_terms(0.0, 0.0, m.total_bytes / m.original_bytes)[2]
    floor = as_floor(ledger, ledger.get(record.compared_with)) if record.compared_with else None
    return Measured(record, sizes, pose, seg, rate_term, floor)


def verdicts(m: Measured, floor: Floor, orders: int) -> list[tuple[bool, int]]:
    """(rejected early, pairs scored at the verdict) for each of `orders` random batch orders."""
    out = []
    for seed in range(orders):
        plan = EarlyPlan(floor, CONFIDENCE, seed, 0)
        look = replay(
            EarlyRule(plan, m.sizes, m.rate_term), visiting_order(len(m.sizes), seed), m.pose_totals, m.seg_totals
        )
        out.append((look.reject, look.pairs if look.reject else sum(m.sizes)))
    return out


def run_sweep(ledger: Ledger, batch_size: int) -> None:
    """Run every spec of the sweep not yet done in the lab, each scored in full."""
    from engine.runs.spec import lab_source, parse_spec
    from engine.sched.worker import execute_run

    done = {r.label for r in ledger.all() if r.status == "done"}
    for number, spec in enumerate(SWEEP, start=1):
        label = spec["run"]["label"]
        if label in done:
            continue
        full = parse_spec(spec | {"score": {"early": "off", "batch_size": batch_size}}, lab_source(ledger.lab))
        record = ledger.add_run(full.to_dict(), label=label, status="running")
        started = time.monotonic()
        record = execute_run(ledger, record.id)
        print(
            f"  {number:>2}/{len(SWEEP)} {record.id} {label:<22} {record.status} score {record.score or 0:.3f} "
            f"{record.verdict or '-'} in {time.monotonic() - started:.0f} s",
            flush=True,
        )


def time_losers(ledger: Ledger, batch_size: int, count: int, path: Path) -> dict[str, dict[str, float]]:
    """Time to verdict with early verdicts off and on, side by side, for the first `count` runs losing by > 2%.

    Each candidate is inflated again from the run's archive and scored twice as its worker would
    (the lab's warm reference cache): in full, then with its own seeded order against the floor it
    was judged by. Wall and CPU seconds (all threads of this process) for each.
    """
    from engine.runs.pipeline import early_plan, inflate_stage
    from engine.runs.spec import lab_source, parse_spec
    from engine.scoring.evaluate import evaluate
    from engine.scoring.reference_cache import ReferenceCache
    from engine.scoring.scorer import Scorer

    timings: dict[str, dict[str, float]] = json.loads(path.read_text()) if path.is_file() else {}
    for record in ledger.records(ledger.all()):
        if len(timings) >= count:
            break
        floor = ledger.get(record.compared_with) if record.compared_with else None
        if record.id in timings or floor is None or floor.score is None or record.metrics is None:
            continue
        if record.status != "done" or (record.score or 0) <= floor.score * (1 + LOSS_MARGIN):
            continue
        spec = parse_spec(record.spec, lab_source(ledger.lab))
        scorer = Scorer(spec.source.models, device=spec.score.device)
        m, archive = record.metrics, Path(record.artifacts) / "archive.zip"
        raw = inflate_stage(spec, archive, path.parent / "inflated", 2 * (m.pairs or 0), lambda done, total: None)
        judged = as_floor(ledger, floor)  # the floor it was judged by: the lab's floor now may be a later one
        plan = early_plan(spec, scorer, record.clip_fingerprint or "", lambda *_, f=judged: f, m.total_bytes, archive)
        seconds: dict[str, float] = {}
        for mode, early in (("off", None), ("auto", plan)):
            wall, cpu = time.monotonic(), time.process_time()
            result = evaluate(
                scorer,
                Path(spec.source.clip),
                raw,
                m.archive_bytes,
                spec.source.original_bytes or None,
                batch_size,
                cache=ReferenceCache(ledger.lab.cache_dir),
                early=early,
            )
            seconds |= {mode: time.monotonic() - wall, f"{mode}_cpu": time.process_time() - cpu}
        raw.unlink()
        scored = result.report.early.look.pairs if result.report.early else m.pairs or 0
        timings[record.id] = seconds | {"pairs": scored, "of": m.pairs or 0, "load": os.getloadavg()[0]}
        path.write_text(json.dumps(timings, indent=1))
        print(
            f"  {record.id} early=off {seconds['off']:.0f} s ({seconds['off_cpu']:.0f} s CPU), early=auto "
            f"{seconds['auto']:.0f} s ({seconds['auto_cpu']:.0f} s CPU) for {scored} of {m.pairs} pairs, "
            f"load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    return timings


def report(ledger: Ledger, batch_size: int, orders: int) -> None:
    """Replay every run through the rule and print the figures with their targets."""
    runs = [
        load_measured(ledger, r, batch_size) for r in ledger.records(ledger.all()) if r.status == "done" and r.label
    ]
    as_floors = {m.run.id: as_floor(ledger, m.run) for m in runs}
    eps = ledger.epsilon
    print(
        f"\n{len(runs)} runs, {len(runs[0].sizes)} batches of {batch_size} pairs each, {orders} orders per run, "
        f"confidence {CONFIDENCE}, epsilon {eps}"
    )
    print(f"{'run':<6} {'label':<22} {'score':>8} {'floor':>8} {'vs floor':>9} {'early':>6} {'pairs scored':>13}")
    false_early = misses = looks = 0
    loser_fractions: list[float] = []
    for m in runs:
        if m.floor is None:
            print(f"{m.run.id:<6} {m.run.label:<22} {m.score:>8.3f} {'-':>8} {'first':>9} {'never':>6}")
            continue
        results = verdicts(m, m.floor, orders)
        rejected = [r for r, _ in results if r]
        fractions = [pairs / sum(m.sizes) for _, pairs in results]
        margin = m.margin(m.floor.score)
        if rejected and m.score <= m.floor.score + eps:
            false_early += len(rejected)
        if margin > LOSS_MARGIN:
            loser_fractions.extend(fractions)
        print(
            f"{m.run.id:<6} {m.run.label:<22} {m.score:>8.3f} {m.floor.score:>8.3f} {margin:>+9.1%} "
            f"{len(rejected):>3}/{orders} {statistics.mean(fractions):>12.0%}"
        )
    # The stress test: every other run's score as the floor, every order.
    for m in runs:
        for other in runs:
            if other is m:
                continue
            floor = as_floors[other.run.id]
            assert floor is not None
            for stopped, _ in verdicts(m, floor, orders):
                looks += 1
                if stopped and m.score <= floor.score + eps:
                    misses += 1
    print(f"\nfalse early rejections (promoted or within epsilon of the lab's floor): {false_early}   target 0")
    print(
        f"bound misses against every other run's score as a floor: {misses} of {looks} verdicts   "
        f"target 0 (allowed by the confidence: {looks * (1 - CONFIDENCE):.1f})"
    )
    if loser_fractions:
        mean = statistics.mean(loser_fractions)
        print(
            f"mean fraction of pairs scored before the verdict, runs losing by > {LOSS_MARGIN:.0%}: {mean:.1%} "
            f"({len(loser_fractions) // orders} runs)   target <= {TARGET_FRACTION:.0%}"
        )


def print_timings(timings: dict[str, dict[str, float]]) -> None:
    """Wall and CPU time to verdict of the timed losers, early=auto against early=off."""
    if timings:
        total = {k: sum(t[k] for t in timings.values()) for k in ("off", "auto", "off_cpu", "auto_cpu")}
        scored = sum(t["pairs"] for t in timings.values()) / sum(t["of"] for t in timings.values())
        print(
            f"time to verdict on {len(timings)} losing runs, side by side: early=off {total['off']:.0f} s wall "
            f"({total['off_cpu']:.0f} s CPU), early=auto {total['auto']:.0f} s wall ({total['auto_cpu']:.0f} s CPU): "
            f"{total['auto'] / total['off']:.0%} of the wall time, {total['auto_cpu'] / total['off_cpu']:.0%} of the "
            f"CPU, {scored:.0%} of their pairs scored"
        )


def decoding_out_of_order(clip: Path, work: Path, batch_size: int) -> None:
    """CPU seconds to read every batch of the reference in clip order and in a visiting order.

    Only a cold reference cache decodes the reference (a lab's first run fills the cache in clip
    order; later runs read the reference's network outputs back, batch by batch, in any order).
    A clip is measured as it is and re-encoded with a keyframe every 16 frames; the `.raw` is the
    candidate's side.
    """
    from engine.media.codecs import EncodeSettings, VideoEncoder
    from engine.media.frame_access import open_pairs
    from engine.media.video import HEIGHT, WIDTH, RawWriter, iter_frames

    gops = work / "keyint16.mkv"
    raw = work / "reference.raw"
    if not gops.is_file():
        with VideoEncoder(gops, EncodeSettings("libx265", crf=16, preset="faster", keyint=16), WIDTH, HEIGHT) as enc:
            for frame in iter_frames(clip):
                enc.write(frame)
    if not raw.is_file():
        with RawWriter(raw) as writer:
            for frame in iter_frames(clip):
                writer.write(frame)
    print("\nreading every batch of the reference, CPU seconds (in clip order / in a visiting order):")
    for name, path in (("the clip as made", clip), ("keyframe every 16", gops), (".raw", raw)):
        seconds = []
        for order in ("clip", "visiting"):
            reader = open_pairs(path)
            sizes = batch_sizes(reader.pairs, batch_size)
            starts = np.cumsum([0, *sizes])
            indexes = range(len(sizes)) if order == "clip" else visiting_order(len(sizes), 1)
            started = time.process_time()
            for index in indexes:
                for _ in reader.read(int(starts[index]), sizes[index]):
                    pass
            seconds.append(time.process_time() - started)
            reader.close()
        print(f"  {name:<18} {seconds[0]:6.1f} / {seconds[1]:6.1f}  ({seconds[1] / seconds[0]:.1f}x)")
    raw.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=168)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--orders", type=int, default=50)
    parser.add_argument("--timing-runs", type=int, default=4)
    parser.add_argument("--work", type=Path, default=Path("/tmp/comma-tui-early-verdict"))
    parser.add_argument("--retime", action="store_true", help="measure the times again")
    parser.add_argument(
        "--replay-batch-sizes",
        type=lambda text: [int(v) for v in text.split(",")],
        default=[2],
        help="also replay the same per-pair values in batches of these sizes (more batches, as a full clip has)",
    )
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the start")
    assets = DemoAssets(args.work / "assets")
    if not assets.exist():
        print(f"making demo assets of {args.frames} frames in {assets.root}", flush=True)
        make_demo_assets(assets.root, frames=args.frames)
    root = args.work / "lab"
    lab = Lab.open(root) if (root / "lab.toml").is_file() else Lab.create(root, assets.clip, assets.models)
    ledger = Ledger(lab)
    run_sweep(ledger, args.batch_size)
    timings_path = args.work / "timings.json"
    if args.retime:
        timings_path.unlink(missing_ok=True)
    timings = time_losers(ledger, args.batch_size, args.timing_runs, timings_path)
    for size in dict.fromkeys([args.batch_size, *args.replay_batch_sizes]):
        report(ledger, size, args.orders)
    print_timings(timings)
    decoding_out_of_order(assets.clip, args.work, args.batch_size)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
