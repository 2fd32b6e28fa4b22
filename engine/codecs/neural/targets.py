"""What the decoder learns to match, made once per run (the `train-data` stage).

For every frame pair of the clip: both frames as the evaluator sees them (resized to 384x512,
bilinear, from the decoded uint8 frames; float16 is a tenth of a grey level from them), and the
reference's network outputs the score compares with (PoseNet's 12 values, SegNet's classes).
The frames go to files in the run's work folder, mapped rather than held, so a full clip
(600 pairs: 1.4 GB of frames, 118 MB of classes) never sits in memory; on a GPU they are read
into its memory once. The network outputs come from the lab's reference cache when it holds
them for this clip and scorer (the score stage writes it), else from the scorer here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.codecs.neural.runtime import OUT_H, OUT_W
from engine.media.frame_access import open_pairs
from engine.scoring.model_inputs import prepare_inputs
from engine.scoring.networks import POSE_OUT
from engine.scoring.reference_cache import CacheCorrupt, CacheKey, ReferenceCache
from engine.scoring.scorer import Scorer

Progress = Callable[[int, int], None]


@dataclass
class Targets:
    """Per pair: the evaluator's view of both frames, PoseNet's outputs and SegNet's classes."""

    frames: np.ndarray | torch.Tensor  # (P, 2, 3, 384, 512) float16
    pose: torch.Tensor  # (P, 12) float32
    seg: np.ndarray | torch.Tensor  # (P, 384, 512) uint8

    @property
    def pairs(self) -> int:
        return int(self.pose.shape[0])

    def batch(self, index: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(frames float32, pose, classes) of the pairs `index` on `device`."""
        picks = np.asarray(index, dtype=np.int64)

        def take(source: np.ndarray | torch.Tensor) -> torch.Tensor:
            if isinstance(source, torch.Tensor):
                return source[torch.from_numpy(picks).to(source.device)].to(device)
            return torch.from_numpy(np.asarray(source[picks])).to(device)

        return take(self.frames).float(), take(self.pose), take(self.seg)

    def to(self, device: torch.device) -> Targets:
        """The targets in `device`'s memory (a GPU's), or as they are on the CPU."""
        if device.type == "cpu":
            return self
        frames = torch.from_numpy(np.asarray(self.frames)).to(device)
        seg = torch.from_numpy(np.asarray(self.seg)).to(device)
        return Targets(frames, self.pose.to(device), seg)


def evaluator_view(pair: np.ndarray) -> torch.Tensor:
    """A uint8 pair (2, H, W, 3) as the networks see it: (2, 3, 384, 512) float, resized bilinearly."""
    frames = torch.from_numpy(np.ascontiguousarray(pair)).permute(0, 3, 1, 2).float()
    return F.interpolate(frames, size=(OUT_H, OUT_W), mode="bilinear", align_corners=False)


def _cached_outputs(
    scorer: Scorer, clip: Path, pairs: int, batch_size: int, cache_dir: Path | None
) -> tuple[np.ndarray, np.ndarray] | None:
    if cache_dir is None:
        return None
    entry = ReferenceCache(cache_dir).open(CacheKey.for_run(clip, scorer, batch_size, pairs))
    if entry is None:
        return None
    try:
        poses, segs = zip(*entry, strict=True)
    except CacheCorrupt:  # a batch damaged since it was checked: computing the outputs is the way round it
        return None
    return np.concatenate(poses), np.concatenate(segs)


def make_targets(
    clip: Path,
    frames: int,
    scorer: Scorer,
    work: Path,
    batch_size: int,
    cache_dir: Path | None,
    progress: Progress | None = None,
) -> Targets:
    """Decode the clip once into the targets (files under `work`); `progress` counts frames."""
    pairs = frames // 2
    views = np.lib.format.open_memmap(work / "targets.npy", "w+", np.float16, (pairs, 2, 3, OUT_H, OUT_W))
    cached = _cached_outputs(scorer, clip, pairs, batch_size, cache_dir)
    pose = np.empty((pairs, POSE_OUT), np.float32) if cached is None else cached[0]
    seg = np.lib.format.open_memmap(work / "classes.npy", "w+", np.uint8, (pairs, OUT_H, OUT_W))
    batch: list[np.ndarray] = []
    reader = open_pairs(clip)
    try:
        for index, pair in enumerate(reader.read(0, min(pairs, reader.pairs))):
            views[index] = evaluator_view(pair).numpy().astype(np.float16)
            batch.append(pair)
            if len(batch) == batch_size or index == pairs - 1:
                if cached is None:
                    out = scorer.reference(prepare_inputs(np.stack(batch), scorer.device))
                    start = index + 1 - len(batch)
                    pose[start : index + 1] = out.pose.cpu().numpy()
                    seg[start : index + 1] = out.seg.cpu().numpy()
                batch.clear()
            if progress:
                progress(2 * (index + 1), frames)
    finally:
        reader.close()
    if cached is not None:
        seg[:] = cached[1]
    views.flush()
    seg.flush()
    return Targets(views, torch.from_numpy(pose), seg)
