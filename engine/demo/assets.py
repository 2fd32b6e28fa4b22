"""Demo assets: a synthetic clip and a calibrated random-weight scorer, made offline.

The layout mirrors the challenge repo (`videos/0.mkv`, `models/*.safetensors`), so every command
takes demo assets and a real checkout the same way.

A scorer with random weights is useless as it comes: its PoseNet's outputs barely move (every
distortion reads 0) and its SegNet sits on near-ties (a third of the pixels flip for any
encode). Two calibrations on the clip make it respond to degradation like the real one:
(a) every BatchNorm's running statistics are recomputed on the clip, and (b) SegNet's final 3x3
head is fitted by ridge least squares to the clip's known class map. The weights are tagged as
demo weights in their safetensors metadata, and every fingerprint of them says "demo".
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn
from torch.nn import functional as F

from engine.defaults import DEMO_FRAMES
from engine.demo.layout import DemoAssets
from engine.demo.synthetic import FPS, SyntheticDrive
from engine.media.codecs import EncodeSettings, VideoEncoder
from engine.media.video import HEIGHT, WIDTH, iter_pair_batches
from engine.scoring import networks
from engine.scoring.weights import DEMO_METADATA_KEY, POSENET_FILE, SEGNET_FILE

_CLIP_SETTINGS = EncodeSettings(codec="libx265", crf=16, preset="faster")
_CALIBRATION_PAIRS = 24
_BATCH = 4
_RIDGE = 1e-2
_PIXELS_PER_FRAME = 40_000

Progress = Callable[[str, int, int], None]


def _nearest_rows_cols() -> tuple[np.ndarray, np.ndarray]:
    """Source pixel of each 384x512 model pixel, for sampling a class map."""
    rows = np.minimum(((np.arange(networks.MODEL_H) + 0.5) * HEIGHT / networks.MODEL_H).astype(int), HEIGHT - 1)
    cols = np.minimum(((np.arange(networks.MODEL_W) + 0.5) * WIDTH / networks.MODEL_W).astype(int), WIDTH - 1)
    return rows, cols


def write_clip(path: Path, frames: int, seed: int, progress: Progress | None = None) -> np.ndarray:
    """Render and encode the synthetic clip; return the model-size class map of each frame."""
    path.parent.mkdir(parents=True, exist_ok=True)
    drive = SyntheticDrive(seed)
    rows, cols = _nearest_rows_cols()
    maps = np.empty((frames, networks.MODEL_H, networks.MODEL_W), np.uint8)
    partial = path.with_name(path.name + ".partial.mkv")
    with VideoEncoder(partial, _CLIP_SETTINGS, WIDTH, HEIGHT, FPS) as encoder:
        for i, (rgb, cls) in enumerate(drive.frames(frames)):
            encoder.write(rgb)
            maps[i] = cls[rows][:, cols]
            if progress:
                progress("clip", i + 1, frames)
    partial.replace(path)
    return maps


def _calibrate_batchnorm(model: nn.Module, inputs: list[torch.Tensor]) -> None:
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


def _fit_segnet_head(segnet: networks.SegNet, inputs: list[torch.Tensor], maps: list[np.ndarray], seed: int) -> None:
    """Ridge-fit the final 3x3 conv so the decoder's features predict the known classes."""
    head = segnet.segmentation_head[0]
    assert isinstance(head, nn.Conv2d)
    captured: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda _m, args, _out: captured.append(args[0]))
    rng = np.random.default_rng(seed)
    dim = head.in_channels * 9 + 1
    gram = torch.zeros(dim, dim, dtype=torch.float64)
    cross = torch.zeros(dim, networks.SEG_CLASSES, dtype=torch.float64)
    try:
        with torch.no_grad():
            for x, classes in zip(inputs, maps, strict=True):
                captured.clear()
                segnet(x)
                patches = F.unfold(captured[0], kernel_size=3, padding=1)  # (B, C*9, H*W)
                for b in range(patches.shape[0]):
                    idx = torch.from_numpy(rng.choice(patches.shape[2], _PIXELS_PER_FRAME, replace=False))
                    feats = patches[b][:, idx].T.double()
                    feats = torch.cat([feats, torch.ones(len(idx), 1, dtype=torch.float64)], dim=1)
                    target = F.one_hot(torch.from_numpy(classes[b].ravel()[idx.numpy()]).long(), networks.SEG_CLASSES)
                    gram += feats.T @ feats
                    cross += feats.T @ target.double()
    finally:
        hook.remove()
    scale = gram.diagonal().mean()
    solution = torch.linalg.solve(gram + _RIDGE * scale * torch.eye(dim, dtype=torch.float64), cross)
    weight = solution[:-1].T.reshape(networks.SEG_CLASSES, head.in_channels, 3, 3)
    head.weight.data.copy_(weight.float())
    assert head.bias is not None
    head.bias.data.copy_(solution[-1].float())


def write_demo_scorer(models: Path, clip: Path, maps: np.ndarray, seed: int, progress: Progress | None = None) -> None:
    """Build seeded random networks, calibrate them on the clip, and save them as safetensors."""
    torch.manual_seed(seed)
    posenet, segnet = networks.PoseNet(), networks.SegNet()
    pose_inputs: list[torch.Tensor] = []
    seg_inputs: list[torch.Tensor] = []
    seg_maps: list[np.ndarray] = []
    pair = 0
    for batch in iter_pair_batches(clip, _BATCH):
        x = networks.to_model_input(torch.from_numpy(batch))
        pose_inputs.append(networks.posenet_input(x))
        seg_inputs.append(networks.segnet_input(x))
        seg_maps.append(maps[2 * pair + 1 : 2 * (pair + len(batch)) : 2])
        pair += len(batch)
        if pair >= _CALIBRATION_PAIRS:
            break
    steps = 3
    if progress:
        progress("calibrate", 0, steps)
    _calibrate_batchnorm(posenet, pose_inputs)
    if progress:
        progress("calibrate", 1, steps)
    _calibrate_batchnorm(segnet, seg_inputs)
    if progress:
        progress("calibrate", 2, steps)
    _fit_segnet_head(segnet, seg_inputs, seg_maps, seed)
    if progress:
        progress("calibrate", 3, steps)
    models.mkdir(parents=True, exist_ok=True)
    metadata = {DEMO_METADATA_KEY: "1", "seed": str(seed)}
    for model, name in ((posenet, POSENET_FILE), (segnet, SEGNET_FILE)):
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        partial = models / (name + ".partial")
        save_file(state, str(partial), metadata=metadata)
        partial.replace(models / name)


def make_demo_assets(
    root: str | Path, frames: int = DEMO_FRAMES, seed: int = 0, progress: Progress | None = None
) -> DemoAssets:
    """Write the synthetic clip and the calibrated demo scorer under `root`."""
    assets = DemoAssets(Path(root))
    maps = write_clip(assets.clip, frames, seed, progress)
    write_demo_scorer(assets.models, assets.clip, maps, seed, progress)
    return assets
