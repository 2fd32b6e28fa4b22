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
  is read, not mapped, so resident memory stays flat in clip length.
Per-pair values are identical with and without the cache at the same batch size, and identical
to the evaluator's.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np
import torch

from engine.defaults import SCORE_BATCH_SIZE
from engine.media.video import SEQ_LEN, count_frames, is_raw, iter_frames, iter_raw
from engine.scoring.model_inputs import InputBuilder, NetworkInputs
from engine.scoring.reference_cache import (
    CacheCorrupt,
    CachedReference,
    CacheKey,
    CacheWriter,
    ReferenceCache,
    batch_sizes,
)
from engine.scoring.report import ScoreReport
from engine.scoring.scorer import Distortions, ProgressFn, ReferenceOutputs, Scorer, score_batches
from ledger.errors import UserError

# Far beyond any codec's error at any sane setting, well below what a planar/yuv444p or
# channel-order slip produces on a real clip.
SANITY_MAX_MEAN_ABS_DIFF = 40.0
PREFETCH_DEPTH = 1

T = TypeVar("T")


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


class Prefetch(Generic[T]):
    """Runs an iterator in a background thread, making at most `depth` items ahead of the consumer.

    The thread starts on an item only once the consumer has taken the one before it, so with
    depth 1 at most two items exist at a time: the one in use and the next. An exception in the
    thread reaches the consumer as itself, where the item it was making would have arrived.
    Closing (or leaving the `with` block) stops the thread at its next item and closes the source
    iterator there, so nothing keeps decoding behind the consumer's back.
    """

    def __init__(
        self,
        items: Iterator[T],
        depth: int = PREFETCH_DEPTH,
        name: str = "prefetch",
        thread_init: Callable[[], None] | None = None,
    ) -> None:
        """Start the thread; `thread_init` runs in it first, and has run when this returns."""
        self._items = items
        self._queue: queue.SimpleQueue[tuple[str, object]] = queue.SimpleQueue()
        self._permits = threading.Semaphore(max(1, depth))
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread_init = thread_init
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()

    def _wait_for_permit(self) -> bool:
        while not self._stop.is_set():
            if self._permits.acquire(timeout=0.05):
                return True
        return False

    def _run(self) -> None:
        try:
            try:
                if self._thread_init is not None:
                    self._thread_init()
            finally:
                self._ready.set()
            with torch.inference_mode():
                while self._wait_for_permit():
                    try:
                        item = next(self._items)
                    except StopIteration:
                        self._queue.put(("end", None))
                        return
                    self._queue.put(("item", item))
        except BaseException as exc:  # handed to the consumer, who re-raises it as itself
            self._queue.put(("error", exc))
        finally:
            close = getattr(self._items, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._stop.is_set():
            raise StopIteration
        kind, value = self._queue.get()
        if kind == "item":
            self._permits.release()  # the consumer holds this one now: the thread may make the next
            return value  # type: ignore[return-value]
        self.close()
        if kind == "error":
            raise value  # type: ignore[misc]
        raise StopIteration

    def close(self) -> None:
        """Stop the thread and wait for it (it finishes the item it is making first)."""
        self._stop.set()
        self._thread.join()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> Prefetch[T]:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def iter_pairs(path: Path) -> Iterator[np.ndarray]:
    """Frame pairs (2, H, W, 3) uint8 of a clip or `.raw`, one at a time; a last odd frame is dropped."""
    if is_raw(path):
        yield from iter_raw(path, SEQ_LEN)
        return
    decoded = iter_frames(path)
    try:
        for first in decoded:
            second = next(decoded, None)
            if second is None:
                return
            yield np.stack([first, second])
    finally:
        decoded.close()  # type: ignore[attr-defined]


def _first_pair(path: Path) -> np.ndarray:
    pairs = iter_pairs(path)
    try:
        return next(pairs)
    finally:
        pairs.close()  # type: ignore[attr-defined]


@dataclass
class Work:
    """One batch ready for the networks: the candidate's inputs, and the reference's inputs or outputs."""

    candidate: NetworkInputs
    reference_inputs: NetworkInputs | None
    reference_outputs: ReferenceOutputs | None


def _next_candidate(pairs: Iterator[np.ndarray], candidate: Path) -> np.ndarray:
    pair = next(pairs, None)
    if pair is None:
        raise UserError(f"candidate {candidate} ended before the reference: inflate must write every frame")
    return pair


def prepared_batches(
    reference: Path,
    candidate: Path,
    batch_sizes: list[int],
    device: torch.device,
    cached: CachedReference | None = None,
    on_corrupt: Callable[[CacheCorrupt], None] | None = None,
    threads: int | None = None,
) -> Iterator[Work]:
    """Decode, check and convert both sides batch by batch (meant to run in a `Prefetch` thread).

    `threads` is the torch thread count of the thread that runs the networks (see `InputBuilder`).

    Plausibility is checked on the first pair (a layout or colour slip shows on every frame), so
    a warm run decodes only that pair of the reference. Should a cached batch turn out damaged
    mid-run, the reference is decoded from that batch on instead, which gives the same numbers.
    """
    opened: list[Iterator[np.ndarray]] = []  # generators holding decoders, closed on the way out

    def open_pairs(path: Path) -> Iterator[np.ndarray]:
        opened.append(iter_pairs(path))
        return opened[-1]

    try:
        cand_pairs = open_pairs(candidate)
        cand_first = _next_candidate(cand_pairs, candidate)
        cand_pairs = itertools.chain([cand_first], cand_pairs)
        ref_pairs: Iterator[np.ndarray] | None = None
        if cached is None:
            ref_pairs = open_pairs(reference)
            ref_first = next(ref_pairs)
            ref_pairs = itertools.chain([ref_first], ref_pairs)
        else:
            ref_first = _first_pair(reference)
        if cand_first.shape != ref_first.shape:
            raise UserError(f"candidate pair {cand_first.shape} does not match reference pair {ref_first.shape}")
        check_plausible(ref_first, cand_first, candidate)

        cached_batches = iter(cached) if cached is not None else None
        for index, size in enumerate(batch_sizes):
            ref_out = None
            if cached_batches is not None:
                try:
                    pose, seg = next(cached_batches)
                    ref_out = ReferenceOutputs(torch.from_numpy(pose).to(device), torch.from_numpy(seg).to(device))
                except CacheCorrupt as exc:
                    if on_corrupt is not None:
                        on_corrupt(exc)
                    cached_batches = None
                    ref_pairs = itertools.islice(open_pairs(reference), sum(batch_sizes[:index]), None)
            ref_builder = InputBuilder(size, device, threads) if ref_out is None else None
            cand_builder = InputBuilder(size, device, threads)
            for _ in range(size):
                cand = _next_candidate(cand_pairs, candidate)
                if cand.shape != ref_first.shape:
                    raise UserError(f"candidate pair {cand.shape} does not match reference pair {ref_first.shape}")
                if ref_builder is not None:
                    ref_builder.add(next(ref_pairs))  # type: ignore[arg-type]
                cand_builder.add(cand)
            work = Work(cand_builder.finish(), ref_builder.finish() if ref_builder else None, ref_out)
            yield work
            # Drop this batch's buffers now: the consumer frees them as soon as it is done with them.
            work = ref_builder = cand_builder = ref_out = None  # type: ignore[assignment]
    finally:
        for pairs in opened:
            pairs.close()  # type: ignore[attr-defined]


def _with_reference(
    scorer: Scorer, batches: Iterable[Work], writer: CacheWriter | None
) -> Iterator[tuple[ReferenceOutputs, NetworkInputs]]:
    """Reference outputs beside each candidate batch, computed (and cached) where none came along."""
    for work in batches:
        ref = work.reference_outputs
        if ref is None:
            assert work.reference_inputs is not None
            ref = scorer.reference(work.reference_inputs)
            work.reference_inputs = None  # done with: let its memory go before the candidate runs
            if writer is not None:
                writer.add(ref)
        yield ref, work.candidate


def _discard(cache: ReferenceCache, entry: CachedReference, exc: CacheCorrupt) -> None:
    cache.discard(entry.folder, str(exc))


def _one_thread() -> None:
    torch.set_num_threads(1)  # this thread only, but it also sets the process default (restored by the caller)


def _score(
    scorer: Scorer,
    reference: Path,
    candidate: Path,
    pairs: int,
    batch_size: int,
    progress: ProgressFn | None,
    cache: ReferenceCache | None,
) -> Distortions:
    if batch_size < 1:
        raise UserError(f"batch size {batch_size} must be at least 1")
    sizes = batch_sizes(pairs, batch_size)
    cached: CachedReference | None = None
    writer: CacheWriter | None = None
    on_corrupt: Callable[[CacheCorrupt], None] | None = None
    if cache is not None:
        key = CacheKey.for_run(reference, scorer, batch_size, pairs)
        cached = cache.open(key)
        if cached is None:
            writer = cache.writer(key)
        else:
            on_corrupt = partial(_discard, cache, cached)

    # On CPU the networks keep every core busy, so the background thread runs on one torch
    # thread; on a GPU run the cores are free and it keeps the default.
    threads, one_thread = torch.get_num_threads(), scorer.device.type == "cpu"
    producer = prepared_batches(reference, candidate, sizes, scorer.device, cached, on_corrupt, threads)
    try:
        with Prefetch(producer, name="score-prefetch", thread_init=_one_thread if one_thread else None) as batches:
            if one_thread:
                torch.set_num_threads(threads)  # set_num_threads also moved the default new threads get
            distortions = score_batches(scorer, _with_reference(scorer, batches, writer), pairs, progress)
        if writer is not None:
            writer.commit()
    finally:
        if writer is not None:
            writer.abort()  # a no-op after a commit: the partial folder has been renamed away
    return distortions


def evaluate(
    scorer: Scorer,
    reference: str | Path,
    candidate: str | Path,
    archive_bytes: int,
    original_bytes: int | None = None,
    batch_size: int = SCORE_BATCH_SIZE,
    progress: ProgressFn | None = None,
    cache: ReferenceCache | None = None,
) -> Evaluation:
    """Score `candidate` against `reference`; original bytes default to the reference's size.

    With `cache`, reference outputs are read from it when it holds them for this clip, scorer
    and batch size, and written to it otherwise.
    """
    reference, candidate = Path(reference), Path(candidate)
    pairs = check_frame_counts(reference, candidate)
    if original_bytes is None:
        original_bytes = reference.stat().st_size
    if original_bytes <= 0:
        raise UserError(f"original bytes must be positive, got {original_bytes}")
    distortions = _score(scorer, reference, candidate, pairs, batch_size, progress, cache)
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
