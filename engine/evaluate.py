"""Score a candidate (a `.raw` or a clip) against a reference clip, as the official evaluator does."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import UserError
from engine.scorer import (
    DEFAULT_BATCH_SIZE,
    Distortions,
    ProgressFn,
    ReferenceOutputs,
    Scorer,
    ScoreReport,
    score_batches,
)
from engine.video import count_frames, iter_pair_batches

# Far beyond any codec's error at any sane setting, well below what a planar/yuv444p or
# channel-order slip produces on a real clip.
SANITY_MAX_MEAN_ABS_DIFF = 40.0


@dataclass(frozen=True)
class Evaluation:
    """A report plus the per-pair distortions behind it."""

    report: ScoreReport
    distortions: Distortions


def check_frame_counts(reference: Path, candidate: Path) -> int:
    """Both sides must hold the same number of frames; returns the number of pairs."""
    ref_frames = count_frames(reference)
    cand_frames = count_frames(candidate)
    if ref_frames != cand_frames:
        raise UserError(
            f"candidate {candidate} has {cand_frames} frames but reference {reference} has {ref_frames}: "
            "inflate must write every frame of the clip"
        )
    if ref_frames < 2:
        raise UserError(f"reference {reference} has {ref_frames} frame(s): scoring needs at least one pair")
    return ref_frames // 2


def check_plausible(reference: np.ndarray, candidate: np.ndarray, name: Path) -> float:
    """A huge mean absolute difference between frames means a layout or colour bug, not a codec."""
    diff = float(np.abs(reference.astype(np.int16) - candidate.astype(np.int16)).mean())
    if diff > SANITY_MAX_MEAN_ABS_DIFF:
        raise UserError(
            f"inflated frames in {name} look nothing like the reference (mean abs diff {diff:.1f} > "
            f"{SANITY_MAX_MEAN_ABS_DIFF:.0f}): write packed RGB24 (not planar or yuv444p), BT.601 limited range"
        )
    return diff


def paired_batches(
    scorer: Scorer, ref_batches: Iterable[np.ndarray], cand_batches: Iterable[np.ndarray], candidate: Path
) -> Iterator[tuple[ReferenceOutputs, np.ndarray]]:
    """Reference outputs beside candidate batches; shapes checked per batch, plausibility on the first."""
    cand_iter = iter(cand_batches)
    for index, ref_batch in enumerate(ref_batches):
        cand_batch = next(cand_iter, None)
        if cand_batch is None or cand_batch.shape != ref_batch.shape:
            got = None if cand_batch is None else cand_batch.shape
            raise UserError(f"candidate batch {got} does not match reference batch {ref_batch.shape}")
        if index == 0:
            check_plausible(ref_batch, cand_batch, candidate)
        yield scorer.reference(ref_batch), cand_batch


def evaluate(
    scorer: Scorer,
    reference: str | Path,
    candidate: str | Path,
    archive_bytes: int,
    original_bytes: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: ProgressFn | None = None,
) -> Evaluation:
    """Score `candidate` against `reference`; original bytes default to the reference's size."""
    reference, candidate = Path(reference), Path(candidate)
    pairs = check_frame_counts(reference, candidate)
    if original_bytes is None:
        original_bytes = reference.stat().st_size
    if original_bytes <= 0:
        raise UserError(f"original bytes must be positive, got {original_bytes}")
    items = paired_batches(
        scorer, iter_pair_batches(reference, batch_size), iter_pair_batches(candidate, batch_size), candidate
    )
    distortions = score_batches(scorer, items, pairs, progress)
    report = ScoreReport(
        posenet=distortions.posenet,
        segnet=distortions.segnet,
        pairs=distortions.pairs,
        archive_bytes=archive_bytes,
        original_bytes=original_bytes,
        fingerprint=scorer.fingerprint.short,
        device=scorer.device.type,
    )
    return Evaluation(report, distortions)
