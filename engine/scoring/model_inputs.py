"""The networks' inputs, built one frame pair at a time, bit-identical to the evaluator's.

The evaluator converts a whole batch of full-size frames to float (about 390 MB at 16 pairs),
resizes every frame to 384x512, and derives PoseNet's YUV6 planes and SegNet's last frame from
that. Resizing and the YUV6 planes treat every frame on its own, so doing it pair by pair gives
the same values while only one pair is ever float at full size.

One subtlety decides whether the values are really the same: on CPU, ATen picks its bilinear
kernel by the calling thread's torch thread count. With one thread and three channels it takes
a channels-last kernel; otherwise (the evaluator's case on any multi-core machine) a generic
one, and the two round differently. The generic kernel gives the same value for a pixel however
the work is split, so we can get exactly the evaluator's multi-threaded numbers from a
single-threaded background thread by handing the kernel the pair's six colour planes as one
planar image (six channels always take the generic kernel). Tests check both thread counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from engine.scoring import networks

_POSE_PLANES = 12  # six YUV6 planes for each of the two frames


@dataclass
class NetworkInputs:
    """A batch of pairs as the networks take it, without the full-size float frames behind it."""

    pose: torch.Tensor  # (B, 12, 192, 256) float32 YUV6 planes, contiguous
    seg: torch.Tensor  # (B, 3, 384, 512) float32 last frames, channels_last as the evaluator's permute leaves them

    @property
    def pairs(self) -> int:
        return self.pose.shape[0]


def evaluator_takes_generic_resize(device: torch.device, threads: int) -> bool:
    """Whether the evaluator's resize, run on `device` with `threads` torch threads, uses ATen's generic kernel."""
    return device.type == "cpu" and threads > 1


class InputBuilder:
    """Fills a batch's `NetworkInputs` one pair at a time.

    `threads` is the torch thread count of the thread that runs the networks (the one the
    evaluator would resize on); by default, the calling thread's. The SegNet buffer is
    channels_last because that is the layout the evaluator's permuted input hands to SegNet,
    and convolutions may round differently per layout.
    """

    def __init__(self, pairs: int, device: torch.device, threads: int | None = None) -> None:
        self.device = device
        self._planar = evaluator_takes_generic_resize(device, threads or torch.get_num_threads())
        h, w = networks.MODEL_H, networks.MODEL_W
        self._pose = torch.empty((pairs, _POSE_PLANES, h // 2, w // 2), device=device)
        self._seg = torch.empty((pairs, 3, h, w), device=device, memory_format=torch.channels_last)
        self._filled = 0

    def _resized(self, pair: torch.Tensor) -> torch.Tensor:
        """Both frames of a uint8 pair (2, H, W, 3) as float (2, 3, 384, 512), resized as the evaluator does."""
        size = (networks.MODEL_H, networks.MODEL_W)
        if self._planar:
            _, h, w, _ = pair.shape
            planes = pair.permute(0, 3, 1, 2).reshape(1, 6, h, w).float()
            return F.interpolate(planes, size=size, mode="bilinear").view(2, 3, *size)
        return F.interpolate(networks.to_model_input(pair.unsqueeze(0))[0], size=size, mode="bilinear")

    @torch.inference_mode()
    def add(self, pair: np.ndarray) -> None:
        """Convert one uint8 pair (2, H, W, 3) into the next slot."""
        pair = np.asarray(pair)
        if not pair.flags.writeable:
            pair = pair.copy()  # a read-only memmap slice: torch.from_numpy warns about those
        frames = self._resized(torch.from_numpy(pair).to(self.device))
        self._pose[self._filled] = networks.rgb_to_yuv6(frames).reshape(self._pose.shape[1:])
        # SegNet's input is the last frame, resized exactly as it was for PoseNet just now.
        self._seg[self._filled] = frames[-1]
        self._filled += 1

    def finish(self) -> NetworkInputs:
        """The filled batch; every slot must have been filled."""
        if self._filled != self._pose.shape[0]:
            raise ValueError(f"batch has {self._filled} of {self._pose.shape[0]} pairs filled")
        return NetworkInputs(pose=self._pose, seg=self._seg)


def prepare_inputs(batch: np.ndarray, device: torch.device, threads: int | None = None) -> NetworkInputs:
    """A uint8 batch of pairs (B, 2, H, W, 3) as `NetworkInputs` on `device` (see `InputBuilder`)."""
    builder = InputBuilder(len(batch), device, threads)
    for pair in batch:
        builder.add(pair)
    return builder.finish()
