"""One pair of a finished run at full size, rebuilt from its kept archive: for `comma-tui frames`.

Only what the pair needs is made: the archive's video is inflated frame by frame up to the pair's
last frame and no further, the reference pair is read from the clip at its offset, and SegNet
runs once on each side's last frame (the frame it scores) for the class maps.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np

from engine.media.frame_access import open_pairs
from engine.media.inflate_runtime import VIDEO_SUFFIX, as_array, inflate_frames, make_postfilter
from engine.media.video import SEQ_LEN, count_frames, segnet_frame
from engine.runs.archive import unpack_archive
from engine.runs.pipeline import kept_archive
from engine.runs.spec import RunSpec
from engine.scoring.scorer import Scorer
from ledger.errors import UserError


@dataclass(frozen=True)
class PairFrames:
    """A pair's last frame (the one SegNet sees) on both sides at 874x1164, and SegNet's classes (384x512)."""

    pair: int
    frame: int
    reference: np.ndarray
    candidate: np.ndarray
    reference_classes: np.ndarray
    candidate_classes: np.ndarray


def check_pair(pair: int, pairs: int, run: str) -> None:
    """A pair index within the clip, or a one-line error naming the valid range."""
    if not 0 <= pair < pairs:
        raise UserError(f"pair {pair} is out of range: {run}'s clip has pairs 0..{pairs - 1}")


def inflated_pair(spec: RunSpec, run_dir: Path, pair: int) -> np.ndarray:
    """Pair `pair` of the run's kept archive, inflated as the run inflated it (2, 874, 1164, 3)."""
    archive = kept_archive(run_dir)
    if spec.run.submission:
        raise UserError(
            f"{run_dir.name} is an external submission: only its own inflate.sh rebuilds its frames, "
            "so frames are drawn for native and learned-filter runs"
        )
    i = spec.inflate
    with tempfile.TemporaryDirectory(prefix="frames-") as tmp:
        unpacked = Path(tmp)
        unpack_archive(archive, unpacked)
        postfilter = make_postfilter(i.postfilter, unpacked, i.unsharp_size, i.unsharp_amount)
        frames = inflate_frames(unpacked / ("0" + VIDEO_SUFFIX), i.scaler, postfilter, i.path, i.filters)
        wanted = [as_array(f) for f in islice(frames, pair * SEQ_LEN, (pair + 1) * SEQ_LEN)]
    if len(wanted) != SEQ_LEN:
        raise UserError(f"{archive} inflates to fewer frames than pair {pair} needs: the archive is damaged")
    return np.stack(wanted)


def pair_frames(spec: RunSpec, run_dir: Path, pair: int, scorer: Scorer) -> PairFrames:
    """Pair `pair` of a finished run at full size with both sides' SegNet classes."""
    clip = Path(spec.source.clip)
    check_pair(pair, count_frames(clip) // SEQ_LEN, run_dir.name)  # a run's folder is named by its id
    candidate = inflated_pair(spec, run_dir, pair)
    reader = open_pairs(clip)
    try:
        reference = next(iter(reader.read(pair, 1)))
    finally:
        reader.close()
    ref_out, cand_out = scorer.reference(reference[None]), scorer.reference(candidate[None])
    return PairFrames(
        pair,
        segnet_frame(pair),
        reference[-1],
        candidate[-1],
        ref_out.seg[0].cpu().numpy(),
        cand_out.seg[0].cpu().numpy(),
    )
