"""Score a candidate (a `.raw` or a clip) against a reference clip, as the official evaluator does.

The numbers are the evaluator's; the work is arranged to cost less:
- frames stay uint8 until the networks need them, and become float one pair at a time;
- decoding and preparing the next batch (reference and candidate) runs in a background thread
  while the networks run on the current one (`Prefetch`, one batch ahead); on CPU that thread
  uses one torch thread, which moves no number (see `engine.scoring.model_inputs`) and spares it the
  waits for a second core that make multi-threaded elementwise ops slow on a busy machine;
- with a `ReferenceCache`, the reference side's network outputs are computed once per clip,
  scorer and batch layout and read back afterwards, so a warm run decodes only the candidate;
- on CPU, SegNet makes its largest maps two frames at a time (`networks.SegNet`), and a `.raw`
  is read, not mapped, so resident memory stays flat in clip length;
- a `PreviewKeeper` watches each scored batch and keeps the class maps of the pairs to preview
  (`engine.scoring.previews`): it only reads what the networks already made;
- with an `EarlyPlan` (a floor to beat), whole batches are visited in a seeded random order and
  a run that has lost for sure stops early (`engine.scoring.early`). Each batch is still the
  evaluator's batch, and the means are summed in clip order once all are in (`Tally`), so a run
  scored in full gets the same digits in any order.
Per-pair values are identical with and without the cache at the same batch size, and identical
to the evaluator's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import accumulate
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from engine.defaults import SCORE_BATCH_SIZE
from engine.media.frame_access import PairReader, open_pairs
from engine.media.video import SEQ_LEN, count_frames
from engine.scoring.early import EarlyPlan, EarlyRule, EarlyVerdict, Look, visiting_order
from engine.scoring.model_inputs import InputBuilder, NetworkInputs
from engine.scoring.prefetch import Prefetch
from engine.scoring.previews import PreviewKeeper
from engine.scoring.reference_cache import (
    CacheCorrupt,
    CachedReference,
    CacheKey,
    CacheWriter,
    ReferenceCache,
    batch_sizes,
)
from engine.scoring.report import ScoreReport, score_terms
from engine.scoring.scorer import Distortions, ReferenceOutputs, Scorer, Tally
from ledger.errors import UserError

# Far beyond any codec's error at any sane setting, well below what a planar/yuv444p or
# channel-order slip produces on a real clip.
SANITY_MAX_MEAN_ABS_DIFF = 40.0


class ProgressFn(Protocol):
    """Told `done` of `total` batches after each, with a few words on where the verdict stands."""

    def __call__(self, done: int, total: int, detail: str = "") -> None: ...


@dataclass(frozen=True)
class Evaluation:
    """A report plus the per-pair distortions behind it (NaN for pairs an early verdict never scored)."""

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
    return ref_frames // SEQ_LEN


def check_plausible(reference: np.ndarray, candidate: np.ndarray, name: Path) -> float:
    """A huge mean absolute difference between frames means a layout or colour bug, not a codec."""
    diff = float(np.abs(reference.astype(np.int16) - candidate.astype(np.int16)).mean())
    if diff > SANITY_MAX_MEAN_ABS_DIFF:
        raise UserError(
            f"inflated frames in {name} look nothing like the reference (mean abs diff {diff:.1f} > "
            f"{SANITY_MAX_MEAN_ABS_DIFF:.0f}): write packed RGB24 (not planar or yuv444p), BT.601 limited range"
        )
    return diff


def _first_pair(path: Path) -> np.ndarray:
    reader = open_pairs(path)
    try:
        return next(iter(reader.read(0, 1)))
    finally:
        reader.close()


@dataclass
class Work:
    """One batch ready for the networks: its index, the candidate's inputs, the reference's inputs or outputs."""

    index: int
    candidate: NetworkInputs
    reference_inputs: NetworkInputs | None
    reference_outputs: ReferenceOutputs | None


def prepared_batches(
    reference: Path,
    candidate: Path,
    batch_sizes: list[int],
    device: torch.device,
    cached: CachedReference | None = None,
    on_corrupt: Callable[[CacheCorrupt], None] | None = None,
    threads: int | None = None,
    order: Sequence[int] | None = None,
) -> Iterator[Work]:
    """Decode, check and convert both sides batch by batch, in `order` (default: the clip's).

    Meant to run in a `Prefetch` thread. `threads` is the torch thread count of the thread that
    runs the networks (see `InputBuilder`). A batch out of order is read at its offset in the
    `.raw` and decoded from the nearest keyframe of a clip (`engine.media.frame_access`).

    Plausibility is checked on the first pair (a layout or colour slip shows on every frame), so
    a warm run decodes only that pair of the reference. Should a cached batch turn out damaged
    mid-run, the reference is decoded from that batch on instead, which gives the same numbers.
    """
    starts = [0, *accumulate(batch_sizes)]
    readers: list[PairReader] = []  # holding files and decoders, closed on the way out

    def reader_of(path: Path) -> PairReader:
        readers.append(open_pairs(path))
        return readers[-1]

    try:
        cand = reader_of(candidate)
        ref = reader_of(reference) if cached is None else None
        ref_first = next(iter(ref.read(0, 1))) if ref is not None else _first_pair(reference)
        cand_first = next(iter(cand.read(0, 1)))
        if cand_first.shape != ref_first.shape:
            raise UserError(f"candidate pair {cand_first.shape} does not match reference pair {ref_first.shape}")
        check_plausible(ref_first, cand_first, candidate)

        for index in range(len(batch_sizes)) if order is None else order:
            first, size = starts[index], batch_sizes[index]
            ref_out = None
            if cached is not None:
                try:
                    pose, seg = cached.batch(index)
                    ref_out = ReferenceOutputs(torch.from_numpy(pose).to(device), torch.from_numpy(seg).to(device))
                except CacheCorrupt as exc:
                    if on_corrupt is not None:
                        on_corrupt(exc)
                    cached, ref = None, reader_of(reference)
            ref_builder = InputBuilder(size, device, threads) if ref_out is None else None
            cand_builder = InputBuilder(size, device, threads)
            ref_pairs = iter(ref.read(first, size)) if ref_builder is not None and ref is not None else None
            for cand_pair in cand.read(first, size):
                if ref_builder is not None and ref_pairs is not None:
                    ref_builder.add(next(ref_pairs))
                cand_builder.add(cand_pair)
            work = Work(index, cand_builder.finish(), ref_builder.finish() if ref_builder else None, ref_out)
            yield work
            # Drop this batch's buffers now: the consumer frees them as soon as it is done with them.
            work = ref_builder = cand_builder = ref_out = None  # type: ignore[assignment]
    finally:
        for reader in readers:
            reader.close()


def _with_reference(
    scorer: Scorer, batches: Iterable[Work], writer: CacheWriter | None
) -> Iterator[tuple[int, ReferenceOutputs, NetworkInputs]]:
    """(batch index, reference outputs, candidate inputs); missing reference outputs are made (and cached)."""
    for work in batches:
        ref = work.reference_outputs
        if ref is None:
            assert work.reference_inputs is not None
            ref = scorer.reference(work.reference_inputs)
            work.reference_inputs = None  # done with: let its memory go before the candidate runs
            if writer is not None:
                writer.add(work.index, ref)
        yield work.index, ref, work.candidate


def _discard(cache: ReferenceCache, entry: CachedReference, exc: CacheCorrupt) -> None:
    cache.discard(entry.folder, str(exc))


def _one_thread() -> None:
    torch.set_num_threads(1)  # this thread only, but it also sets the process default (restored by the caller)


def _detail(look: Look | None, rule: EarlyRule | None) -> str:
    """`batches · bound 23.91 vs floor 23.08`: the unit, and where an early verdict stands."""
    if rule is None:
        return "batches"
    floor = f"floor {rule.plan.floor.score:.2f}"
    if look is None or not np.isfinite(look.bound):
        return f"batches · estimate {look.estimate:.2f} vs {floor}" if look else f"batches · {floor}"
    return f"batches · bound {look.bound:.2f} vs {floor}"


def _score(
    scorer: Scorer,
    reference: Path,
    candidate: Path,
    sizes: list[int],
    batch_size: int,
    progress: ProgressFn | None,
    cache: ReferenceCache | None,
    rule: EarlyRule | None,
    previews: PreviewKeeper | None = None,
) -> tuple[Tally, Look | None]:
    """Score batch by batch; returns what was scored, and the look that stopped it early (None: scored in full)."""
    cached: CachedReference | None = None
    writer: CacheWriter | None = None
    on_corrupt: Callable[[CacheCorrupt], None] | None = None
    if cache is not None:
        key = CacheKey.for_run(reference, scorer, batch_size, sum(sizes))
        cached = cache.open(key)
        if cached is None:
            writer = cache.writer(key)
        else:
            on_corrupt = partial(_discard, cache, cached)

    # With nothing to decide early, the clip's own order: no seeking, and the cache fills in order.
    order = visiting_order(len(sizes), rule.plan.seed) if rule is not None else None
    # On CPU the networks keep every core busy, so the background thread runs on one torch
    # thread; on a GPU run the cores are free and it keeps the default.
    threads, one_thread = torch.get_num_threads(), scorer.device.type == "cpu"
    producer = prepared_batches(reference, candidate, sizes, scorer.device, cached, on_corrupt, threads, order)
    tally, look = Tally(sizes, scorer.device), None
    starts = [0, *accumulate(sizes)]
    try:
        with Prefetch(producer, name="score-prefetch", thread_init=_one_thread if one_thread else None) as batches:
            if one_thread:
                torch.set_num_threads(threads)  # set_num_threads also moved the default new threads get
            if progress is not None:
                progress(0, len(sizes), _detail(None, rule))  # scoring has begun: a first batch is long on CPU
            for done, (index, ref, cand) in enumerate(_with_reference(scorer, batches, writer), start=1):
                pose_d, seg_d, cand_classes = scorer.measure(ref, cand)
                tally.add(index, pose_d, seg_d)
                if previews is not None:
                    previews.observe(starts[index], ref.seg, cand_classes, pose_d, seg_d)
                if rule is not None:
                    look = rule.add(index, float(pose_d.double().sum()), float(seg_d.double().sum()))
                if progress is not None:
                    progress(done, len(sizes), _detail(look, rule))
                if look is not None and look.reject:
                    return tally, look
        if writer is not None:
            writer.commit()
    finally:
        if writer is not None:
            writer.abort()  # a no-op after a commit; an early stop leaves an entry unfinished, dropped here
    return tally, None


def _estimated(tally: Tally, look: Look) -> Distortions:
    """The rule's estimates of the clip's means, beside per-pair values with NaN for the pairs not scored."""
    posenet, segnet = tally.per_pair()
    return Distortions(posenet=look.posenet, segnet=look.segnet, posenet_per_pair=posenet, segnet_per_pair=segnet)


def evaluate(
    scorer: Scorer,
    reference: str | Path,
    candidate: str | Path,
    archive_bytes: int,
    original_bytes: int | None = None,
    batch_size: int = SCORE_BATCH_SIZE,
    progress: ProgressFn | None = None,
    cache: ReferenceCache | None = None,
    early: EarlyPlan | None = None,
    previews: PreviewKeeper | None = None,
) -> Evaluation:
    """Score `candidate` against `reference`; original bytes default to the reference's size.

    With `cache`, reference outputs are read from it when it holds them for this clip, scorer
    and batch size, and written to it otherwise. With `early`, batches are visited in a random
    order and scoring stops once the run has lost to the plan's floor for sure: the report then
    holds estimates (`report.early` says how far it got). With `previews`, it is shown every
    scored batch (for the pairs it scored only, after an early stop).
    """
    reference, candidate = Path(reference), Path(candidate)
    if batch_size < 1:
        raise UserError(f"batch size {batch_size} must be at least 1")
    pairs = check_frame_counts(reference, candidate)
    if original_bytes is None:
        original_bytes = reference.stat().st_size
    if original_bytes <= 0:
        raise UserError(f"original bytes must be positive, got {original_bytes}")
    sizes = batch_sizes(pairs, batch_size)
    rule = None
    if early is not None:
        rule = EarlyRule(early, sizes, score_terms(0.0, 0.0, early.charged_bytes / original_bytes)[2])
    tally, stop = _score(scorer, reference, candidate, sizes, batch_size, progress, cache, rule, previews)
    distortions = tally.distortions() if stop is None else _estimated(tally, stop)
    report = ScoreReport(
        posenet=distortions.posenet,
        segnet=distortions.segnet,
        pairs=pairs,
        archive_bytes=archive_bytes,
        original_bytes=original_bytes,
        fingerprint=scorer.fingerprint.short,
        device=scorer.device.type,
        early=None if stop is None or early is None else EarlyVerdict(stop, early),
    )
    return Evaluation(report, distortions)
