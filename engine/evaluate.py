"""Score a candidate (a `.raw` or a clip) against a reference clip, as the official evaluator does."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.errors import UserError
from engine.scorer import (
    DEFAULT_BATCH_SIZE,
    Distortions,
    ProgressFn,
    Scorer,
    ScoreReport,
    reference_and_candidate,
    score_batches,
)
from engine.video import count_frames, iter_pair_batches


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
    items = reference_and_candidate(
        scorer, iter_pair_batches(reference, batch_size), iter_pair_batches(candidate, batch_size)
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
