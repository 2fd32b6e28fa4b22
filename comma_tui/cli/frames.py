"""`comma-tui frames`: a full-resolution PNG of one pair of a run, for viewing outside the terminal.

Reference | candidate | disagreement (the pixels whose SegNet class differs, tinted, over the
candidate dimmed); with `--vs RUN2`, reference | RUN | RUN2. The frames are the pair's last, the
one SegNet scores, rebuilt from the runs' kept archives (`engine.runs.frames`).
"""

from __future__ import annotations

import argparse
import io
import math
from pathlib import Path

import numpy as np

from comma_tui.widgets.panel_images import disagreement
from ledger import Lab, Ledger, RunRecord, load_per_pair
from ledger.errors import UserError
from ledger.files import atomic_write


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("frames", help="write a full-size PNG of one pair of a run (reference | candidate | SegNet)")
    p.add_argument("run_id", metavar="RUN", help="run id, e.g. r0042")
    p.add_argument("--pair", type=int, help="pair index (default: the run's worst pair by SegNet)")
    p.add_argument("--vs", metavar="RUN2", help="draw RUN2's frame of the same pair beside RUN's")
    p.add_argument("--png", required=True, type=Path, metavar="OUT.png", help="the PNG to write")
    p.add_argument("--lab", type=Path, help="lab folder (default: the lab holding the current folder)")
    p.set_defaults(handler=run)


def drawable(ledger: Ledger, run_id: str) -> RunRecord:
    """A run whose frames can be drawn: finished and scored; else a one-line error saying why not."""
    run = ledger.get(run_id)
    if not run.measured:
        raise UserError(f"{run.id} is {run.status}: it kept no scored archive to draw frames from")
    return run


def worst_pair(lab: Lab, run: RunRecord) -> int:
    """The run's pair with the largest SegNet distortion (0 when its per-pair values are gone)."""
    found = load_per_pair(lab, run.id, run.artifacts)
    if found is None:
        return 0
    values = [v if math.isfinite(v) else -1.0 for v in found.segnet.tolist()]
    return int(np.argmax(values))


def side_by_side(panels: list[np.ndarray]) -> np.ndarray:
    """Frames of one size, left to right, with a 4-pixel black gap."""
    gap = np.zeros((panels[0].shape[0], 4, 3), dtype=np.uint8)
    parts: list[np.ndarray] = []
    for panel in panels:
        parts += [panel, gap]
    return np.concatenate(parts[:-1], axis=1)


def _full_size(classes: np.ndarray, height: int, width: int) -> np.ndarray:
    """A 384x512 class map stretched (nearest) over a full-size frame."""
    ys = np.arange(height) * classes.shape[0] // height
    xs = np.arange(width) * classes.shape[1] // width
    return classes[ys][:, xs]


def run(args: argparse.Namespace) -> int:
    from PIL import Image

    from engine.runs.frames import pair_frames
    from engine.runs.spec import lab_source, parse_spec
    from engine.scoring.scorer import Scorer

    if args.png.suffix.lower() != ".png":
        raise UserError(f"--png {args.png} must name a .png file")
    lab = Lab.locate(args.lab)
    ledger = Ledger(lab)
    runs = [drawable(ledger, args.run_id)] + ([drawable(ledger, args.vs)] if args.vs else [])
    pair = worst_pair(lab, runs[0]) if args.pair is None else args.pair
    source = lab_source(lab)
    scorer = Scorer(source.models)
    seen = [pair_frames(parse_spec(r.spec, source), Path(r.artifacts), pair, scorer) for r in runs]
    first = seen[0]
    if args.vs:
        panels = [first.reference, first.candidate, seen[1].candidate]
    else:
        h, w = first.candidate.shape[:2]
        ref_classes, cand_classes = (_full_size(c, h, w) for c in (first.reference_classes, first.candidate_classes))
        panels = [first.reference, first.candidate, disagreement(first.candidate, ref_classes, cand_classes)]
    image = side_by_side(panels)
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG")
    atomic_write(args.png, out.getvalue(), durable=False)
    names = " | ".join(["reference", *(r.id for r in runs)] if args.vs else ["reference", runs[0].id, "disagreement"])
    size = f"{image.shape[1]}x{image.shape[0]}"
    print(f"{args.png}: pair {pair} (frame {first.frame}, the one SegNet sees), {size}: {names}")
    return 0
