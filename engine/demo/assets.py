"""Demo assets: a synthetic clip and a calibrated random-weight scorer, made offline.

The layout mirrors the challenge repo (`videos/0.mkv`, `models/*.safetensors`), so every command
takes demo assets and a real checkout the same way. The scorer's networks are seeded random
ones calibrated on the clip (engine.demo.calibration). The weights are tagged as demo weights
in their safetensors metadata, and every fingerprint of them says "demo".
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from engine.defaults import DEMO_FRAMES
from engine.demo.calibration import calibrate_batchnorm, fit_segnet_tail, frozen_features
from engine.demo.layout import DemoAssets
from engine.demo.synthetic import FPS, SyntheticDrive
from engine.media.codecs import EncodeSettings, VideoEncoder
from engine.media.video import HEIGHT, WIDTH, iter_pair_batches
from engine.scoring import networks
from engine.scoring.weights import DEMO_METADATA_KEY, POSENET_FILE, SEGNET_FILE

_CLIP_SETTINGS = EncodeSettings(codec="libx265", crf=16, preset="faster")
_CALIBRATION_PAIRS = 24
_BATCH = 4

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
    report = progress or (lambda _stage, _done, _total: None)
    report("calibrate", 0, 3)
    calibrate_batchnorm(posenet, pose_inputs)
    report("calibrate", 1, 3)
    calibrate_batchnorm(segnet, seg_inputs)
    report("calibrate", 2, 3)
    features = frozen_features(segnet, seg_inputs)
    report("calibrate", 3, 3)
    fit_segnet_tail(segnet, features, np.concatenate(seg_maps), seed, lambda done, total: report("fit", done, total))
    models.mkdir(parents=True, exist_ok=True)
    # One key only: safetensors writes its metadata map in hash order, so a second key made the
    # bytes (and so the fingerprint and every cache keyed on it) differ between identical builds.
    metadata = {DEMO_METADATA_KEY: "1"}
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
