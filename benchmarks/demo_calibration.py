"""Does the demo look like the challenge? The demo scorer's figures beside the real scorer's.

Usage: python benchmarks/demo_calibration.py [--frames 60] [--seed 0] [--crf 20 35 45] [--assets DIR]

It makes the demo assets (timed: the first start of `comma-tui --demo` waits for them), then
scores the demo clip through full-size svt-av1 encodes (preset 10) at each crf, and runs the
demo lab's first run (comma_tui.demo.FIRST_RUN) end to end as `comma-tui run` would. Each line
shows the distortions and the three score terms; the targets come from the real scorer on the
real clip (../shared/SCORER.md): scores ~1.7-4, a SegNet term ~1 for a light encode, a
PoseNet term and a rate term of a few tenths to about one. `--assets DIR` reuses (or keeps)
assets in DIR instead of a temporary folder.
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import tempfile
import time
from pathlib import Path

from comma_tui.demo import FIRST_RUN
from engine.defaults import DEMO_FRAMES
from engine.demo.assets import make_demo_assets
from engine.demo.layout import DemoAssets
from engine.media.codecs import EncodeSettings, VideoEncoder
from engine.media.video import HEIGHT, WIDTH, RawWriter, iter_frames
from engine.runs.pipeline import run_spec
from engine.runs.spec import SourceSpec, parse_spec
from engine.scoring.evaluate import evaluate
from engine.scoring.report import ScoreReport, score_terms
from engine.scoring.scorer import Scorer
from ledger import Metrics

LIGHT_SEGNET_TARGET = 0.03  # a light encode (crf 20) flips a few percent of pixels at most
FIRST_RUN_SCORE_TARGET = (1.7, 4.0)  # what the real scorer gives this kind of run


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (svt-av1 runs in-process)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def _line(name: str, report: ScoreReport | Metrics) -> str:
    seg, pose, rate = score_terms(report.posenet, report.segnet, report.rate)
    return (
        f"{name:<22} segnet {report.segnet:.5f}  posenet {report.posenet:.6f}  rate {report.rate:.4f}  |  "
        f"terms seg {seg:6.3f}  pose {pose:.3f}  rate {rate:.3f}  |  score {seg + pose + rate:6.3f}"
    )


def _encode_and_score(assets: DemoAssets, scorer: Scorer, crf: int, work: Path) -> ScoreReport:
    encoded = work / f"crf{crf}.mkv"
    with VideoEncoder(encoded, EncodeSettings("libsvtav1", crf=crf, preset="10"), WIDTH, HEIGHT) as encoder:
        for frame in iter_frames(assets.clip):
            encoder.write(frame)
    raw = work / f"crf{crf}.raw"
    with RawWriter(raw) as writer:
        for frame in iter_frames(encoded):
            writer.write(frame)
    report = evaluate(scorer, assets.clip, raw, encoded.stat().st_size).report
    raw.unlink()
    return report


def _first_run(assets: DemoAssets, work: Path) -> Metrics:
    spec = parse_spec(FIRST_RUN, SourceSpec(clip=str(assets.clip), models=str(assets.models)))
    return run_spec(spec, work / "first-run", log=lambda _line: None).metrics


def measure(assets: DemoAssets, crfs: list[int], work: Path) -> None:
    """Print the full-size encodes' figures and the first run's, with the targets beside them."""
    scorer = Scorer(assets.models, device="cpu")
    reports = {}
    for crf in crfs:
        reports[crf] = _encode_and_score(assets, scorer, crf, work)
        print(_line(f"svt-av1 crf {crf} full size", reports[crf]), flush=True)
    lightest = reports[min(crfs)]
    verdict = "ok" if lightest.segnet <= LIGHT_SEGNET_TARGET else "TOO HIGH"
    print(f"  lightest encode's SegNet {lightest.segnet:.4f}  (target <= {LIGHT_SEGNET_TARGET}: {verdict})")
    ordered = [reports[c] for c in sorted(crfs)]
    monotonic = all(a.segnet < b.segnet and a.posenet < b.posenet for a, b in itertools.pairwise(ordered))
    print(f"  both distortions grow with crf: {'yes' if monotonic else 'NO'}")
    first = _first_run(assets, work)
    print(_line("demo lab's first run", first))
    lo, hi = FIRST_RUN_SCORE_TARGET
    print(
        f"  first run score {first.score:.2f} (real runs of this kind: {lo}-{hi}); "
        f"SegNet term {first.terms['segnet']:.2f} (real: ~0.5-1.5)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=DEMO_FRAMES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--crf", type=int, nargs="+", default=[20, 35, 45])
    parser.add_argument("--assets", type=Path, help="reuse the demo assets in DIR, or make them there")
    args = parser.parse_args()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        assets = DemoAssets(args.assets or Path(tmp) / "assets")
        if assets.exist():
            print(f"reusing the demo assets in {assets.root}")
        else:
            cpu0, start = _cpu_seconds(), time.perf_counter()
            make_demo_assets(assets.root, frames=args.frames, seed=args.seed)
            wall, cpu = time.perf_counter() - start, _cpu_seconds() - cpu0
            print(f"demo assets, {args.frames} frames: {wall:.1f} s wall, {cpu:.1f} s CPU (target: about a minute)")
        measure(assets, args.crf, Path(tmp))
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
