"""Calibrating random networks on the demo clip, so they respond to degradation like the real ones.

A scorer with random weights is useless as it comes: its PoseNet's outputs barely move (every
distortion reads 0) and its SegNet sits on near-ties (a third of the pixels flip for any encode).
Two calibrations on the clip fix that:
(a) every BatchNorm's running statistics are recomputed on the clip;
(b) SegNet's decoder tail (its last three blocks and the head) is fitted to the clip's known
    class maps with Adam, the encoder and the first decoder blocks frozen. A net that really
    segments the scene is sure of itself inside each region, so a light encode moves only
    pixels along class boundaries, as the real SegNet does, instead of tipping near-ties all
    over the frame. Only the weights' values change: names and shapes stay the official ones.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from engine.scoring import networks

FIRST_FITTED_BLOCK = 2  # decoder blocks 2-4 and the head are fitted; the encoder and blocks 0-1 stay
_CELL = 8  # the first fitted block reads 1/8-resolution features: crops are cut on that grid
_CROP_CELLS = 16  # 128x128 model pixels per crop
_MARGIN_CELLS = 2  # 16 pixels: the fitted blocks' reach, where a crop's zero padding shows
_STEPS_PER_PAIR = 12
_LEARNING_RATE = 3e-3

Progress = Callable[[int, int], None]


def calibrate_batchnorm(model: nn.Module, inputs: list[torch.Tensor]) -> None:
    """Recompute every BatchNorm's running mean/var as a plain average over the inputs."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None
    model.train()
    with torch.no_grad():
        for x in inputs:
            model(x)
    model.eval()


def frozen_features(segnet: networks.SegNet, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    """What the fitted tail reads, for all inputs: the first fitted block's input, then its skips.

    Computed once, in eval mode, before the fit: nothing upstream of the tail changes.
    """
    segnet.eval()
    per_batch = []
    with torch.no_grad():
        for x in inputs:
            skips = segnet.encoder(x)[1:][::-1]  # the decoder reads the encoder's features deepest first
            y = segnet.decoder.center(skips[0])
            for i, block in enumerate(segnet.decoder.blocks[:FIRST_FITTED_BLOCK]):
                y = _decoder_block(block, y, skips[i + 1])
            per_batch.append([y, *skips[FIRST_FITTED_BLOCK + 1 :]])
    return [torch.cat(level) for level in zip(*per_batch, strict=True)]


def tail_logits(segnet: networks.SegNet, features: list[torch.Tensor]) -> torch.Tensor:
    """SegNet's logits from `frozen_features`: the fitted decoder blocks, then the head."""
    y, skips = features[0], features[1:]
    for i, block in enumerate(segnet.decoder.blocks[FIRST_FITTED_BLOCK:]):
        y = _decoder_block(block, y, skips[i] if i < len(skips) else None)
    return segnet.segmentation_head(y)


def _decoder_block(block: nn.Module, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
    # smp's Unet block, by the submodule names the weights fix (its forward's signature changed
    # across smp versions): nearest 2x upsampling, the skip concatenated, two conv-BN-ReLUs.
    x = F.interpolate(x, scale_factor=2, mode="nearest")
    if skip is not None:
        x = torch.cat([x, skip], dim=1)
    return block.get_submodule("conv2")(block.get_submodule("conv1")(x))


def fit_steps(pairs: int) -> int:
    """How many Adam steps the SegNet fit takes for a clip of `pairs` calibration pairs."""
    return _STEPS_PER_PAIR * pairs


def fit_segnet_tail(
    segnet: networks.SegNet, features: list[torch.Tensor], maps: np.ndarray, seed: int, progress: Progress | None = None
) -> None:
    """Fit SegNet's decoder tail to the class maps (N, 384, 512): seeded random crops, Adam.

    BatchNorm stays in eval mode, so the function fitted is exactly the one the scorer runs.
    Cross entropy is taken inside each crop only, where its values equal the whole frame's.
    """
    targets = torch.from_numpy(maps).long()
    fitted = (*segnet.decoder.blocks[FIRST_FITTED_BLOCK:], segnet.segmentation_head)
    params = [p for module in fitted for p in module.parameters()]
    segnet.eval()
    segnet.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    steps = fit_steps(len(targets))
    optimizer = torch.optim.Adam(params, lr=_LEARNING_RATE)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    rng = torch.Generator().manual_seed(seed)
    cells_h, cells_w = features[0].shape[2:]
    inner = slice(_MARGIN_CELLS * _CELL, (_CROP_CELLS - _MARGIN_CELLS) * _CELL)
    for step in range(steps):
        frame, top, left = (
            int(torch.randint(n, (1,), generator=rng))
            for n in (len(targets), cells_h - _CROP_CELLS + 1, cells_w - _CROP_CELLS + 1)
        )
        crop = [_crop(f[frame : frame + 1], top, left, f.shape[2] // cells_h) for f in features]
        target = _crop(targets[frame : frame + 1], top, left, _CELL)
        loss = F.cross_entropy(tail_logits(segnet, crop)[..., inner, inner], target[..., inner, inner])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if progress:
            progress(step + 1, steps)
    segnet.requires_grad_(False)


def _crop(x: torch.Tensor, top: int, left: int, scale: int) -> torch.Tensor:
    """The crop of `_CROP_CELLS` cells at (top, left) of a map `scale` pixels per cell."""
    size = _CROP_CELLS * scale
    return x[..., top * scale : top * scale + size, left * scale : left * scale + size]
