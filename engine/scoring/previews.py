"""Previews kept while scoring: what the networks saw on a few pairs, for the console's compare view.

While `evaluate` scores, a `PreviewKeeper` watches each batch go by (it never runs a network and
moves no number). It keeps the SegNet class maps of both sides for
- a fixed list of evenly spaced pairs, which depends only on the clip's pair count, so every
  run of a clip previews the same pairs and two runs compare pair for pair;
- this run's worst pairs by the SegNet term and by the PoseNet term, as a bounded running top-k
  (the worst are only known at the end, so at most `worst` candidates per term are held).
Once scoring is over, `write_previews` reads just those pairs' frames back from the reference
and the candidate (decoding, not networks; in clip order, so each side is decoded once),
resizes them as SegNet saw them (the last frame of each pair, 512x384) and writes them into the
run's `previews/` folder
(layout: `ledger.previews`; frames as JPEG, since a lossless 512x384 photo is ~300 KB and the
whole set must stay within a few hundred; class maps as exact PNG), the index last. Every file
is written atomically.
"""

from __future__ import annotations

import heapq
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from engine.defaults import DEFAULT_PREVIEW_PAIRS
from engine.media.frame_access import open_pairs
from engine.media.video import segnet_frame
from engine.scoring import networks
from ledger.files import atomic_write
from ledger.previews import INDEX_NAME, preview_name

#: The whole folder stays under this; frames give up JPEG quality, in steps, to fit.
PREVIEW_BUDGET_BYTES = 500_000
_INDEX_RESERVE = 4096  # index.json: well under this for 16 pairs
_QUALITIES = (90, 80, 70, 60, 45, 30)


def split_count(count: int) -> tuple[int, int]:
    """(evenly spaced pairs, worst pairs per term) for `count` preview pairs: a quarter worst per term."""
    worst = max(1, count // 4)
    return count - 2 * worst, worst


def fixed_pairs(pairs: int, count: int) -> tuple[int, ...]:
    """`count` evenly spaced pair indices of a clip of `pairs` pairs (each the middle of its stretch)."""
    count = min(count, pairs)
    return tuple(int((2 * i + 1) * pairs // (2 * count)) for i in range(count))


@dataclass
class _Kept:
    """One pair's class maps (384x512 uint8, on the CPU) and distortions."""

    reference: np.ndarray
    candidate: np.ndarray
    posenet: float
    segnet: float


@dataclass
class PreviewKeeper:
    """Watches scored batches and keeps the class maps of the pairs to preview (bounded)."""

    pairs: int
    count: int = DEFAULT_PREVIEW_PAIRS
    fixed: tuple[int, ...] = field(init=False)
    worst: int = field(init=False)
    kept: dict[int, _Kept] = field(init=False, default_factory=dict)
    _heaps: dict[str, list[tuple[float, int]]] = field(init=False)

    def __post_init__(self) -> None:
        spaced, self.worst = split_count(self.count)
        self.fixed = fixed_pairs(self.pairs, spaced)
        self._heaps = {"segnet": [], "posenet": []}

    def observe(
        self,
        first: int,
        ref_classes: torch.Tensor,
        cand_classes: torch.Tensor,
        pose_d: torch.Tensor,
        seg_d: torch.Tensor,
    ) -> None:
        """A batch whose first pair is `first` was scored: keep what belongs to the previews."""
        pose, seg = pose_d.detach().cpu().numpy(), seg_d.detach().cpu().numpy()
        wanted = set()
        for offset in range(len(seg)):
            pair = first + offset
            values = {"segnet": float(seg[offset]), "posenet": float(pose[offset])}
            if pair in self.fixed:
                wanted.add(offset)
            for term, heap in self._heaps.items():
                # Ties go to the earlier pair, as argmax does.
                entry = (values[term], -pair)
                if len(heap) < self.worst:
                    heapq.heappush(heap, entry)
                    wanted.add(offset)
                elif entry > heap[0]:
                    heapq.heapreplace(heap, entry)
                    wanted.add(offset)
        for offset in sorted(wanted):
            self.kept[first + offset] = _Kept(
                ref_classes[offset].cpu().numpy().astype(np.uint8),
                cand_classes[offset].cpu().numpy().astype(np.uint8),
                float(pose[offset]),
                float(seg[offset]),
            )
        keep = set(self.fixed) | {-p for heap in self._heaps.values() for _, p in heap}
        for pair in [p for p in self.kept if p not in keep]:
            del self.kept[pair]  # fell out of the top-k: its maps go now, so memory stays bounded

    def reasons(self, pair: int) -> list[str]:
        """Why `pair` is previewed: fixed, worst-segnet, worst-posenet."""
        why = ["fixed"] if pair in self.fixed else []
        return why + [f"worst-{term}" for term, heap in self._heaps.items() if any(-p == pair for _, p in heap)]


def seen_frames(path: Path, pairs: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
    """(pair, its last frame resized as SegNet saw it: 384x512x3 uint8), one pair at a time, in clip order.

    In clip order a clip is decoded once, forward. Only the last frame of each pair is converted
    and resized by the evaluator's own SegNet preprocessing (`networks.segnet_input`; the JPEG it
    goes into loses far more than the kernels' last-bit differences, so the scorer's bit-exact
    path, `InputBuilder`, is not needed here).
    """
    reader = open_pairs(path)
    try:
        for pair in sorted(pairs):
            frame = torch.from_numpy(reader.last_frame(pair)).permute(2, 0, 1).float()
            seen = networks.segnet_input(frame[None, None])[0]
            yield pair, seen.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    finally:
        reader.close()


def _png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG", optimize=True)
    return out.getvalue()


def _jpeg(array: np.ndarray, quality: int) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()


def _fitting_jpeg(array: np.ndarray, budget: int) -> bytes:
    """The best of the quality steps that fits `budget` bytes (the lowest when none does)."""
    payload = b""
    for quality in _QUALITIES:
        payload = _jpeg(array, quality)
        if len(payload) <= budget:
            break
    return payload


def _priority(keeper: PreviewKeeper, pair: int) -> tuple[int, int]:
    """Worst pairs first (they say why the run lost), then the evenly spaced ones, each in clip order."""
    return (0 if any(w.startswith("worst") for w in keeper.reasons(pair)) else 1, pair)


def write_previews(
    keeper: PreviewKeeper, folder: Path, reference: Path, candidate: Path, budget: int = PREVIEW_BUDGET_BYTES
) -> int:
    """Write the kept pairs' previews into `folder` (index.json last); returns the bytes written.

    One pair's frames are in memory at a time (and the compressed files, within the budget).
    Each frame gets an even share of what the class maps leave of `budget`, giving up JPEG
    quality to fit; a pair that would still overflow the budget is left out (worst pairs go
    first), so the folder never exceeds it.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*"):
        stale.unlink()  # a rescore's previews replace the first score's
    pairs = sorted(keeper.kept)
    maps = {p: (_png(keeper.kept[p].reference), _png(keeper.kept[p].candidate)) for p in pairs}
    map_bytes = sum(len(a) + len(b) for a, b in maps.values())
    room = budget - _INDEX_RESERVE
    frame_budget = max(1, (room - map_bytes) // max(1, 2 * len(pairs)))
    # Frames are read in clip order (one forward decode of each side) and compressed as they come;
    # what fits the budget is then chosen in priority order from the compressed files.
    encoded: dict[int, dict[str, bytes]] = {}
    both = zip(seen_frames(reference, pairs), seen_frames(candidate, pairs), strict=True)
    for (pair, ref_frame), (_, cand_frame) in both:
        encoded[pair] = {
            "reference": _fitting_jpeg(ref_frame, frame_budget),
            "candidate": _fitting_jpeg(cand_frame, frame_budget),
            "reference-classes": maps[pair][0],
            "candidate-classes": maps[pair][1],
        }
    written, entries = 0, list[dict[str, Any]]()
    for pair in sorted(pairs, key=lambda p: _priority(keeper, p)):
        files = encoded[pair]
        size = sum(len(payload) for payload in files.values())
        if written + size > room:
            continue  # over the budget: this pair is left out, a smaller one may still fit
        for kind, payload in files.items():
            atomic_write(folder / preview_name(pair, kind), payload, durable=False)
        written += size
        kept = keeper.kept[pair]
        entries.append(
            {
                "pair": pair,
                "frame": segnet_frame(pair),
                "why": keeper.reasons(pair),
                "posenet": kept.posenet,
                "segnet": kept.segnet,
            }
        )
    entries.sort(key=lambda e: int(e["pair"]))
    index = {"version": 1, "pairs": keeper.pairs, "fixed": list(keeper.fixed), "kept": entries}
    payload = (json.dumps(index, indent=1) + "\n").encode()
    atomic_write(folder / INDEX_NAME, payload, durable=False)
    return written + len(payload)
