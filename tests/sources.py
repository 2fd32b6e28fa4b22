"""Real source files for tests, made without torch: weights of the official format, LFS pointers, a small clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from engine.media.codecs import EncodeSettings, VideoEncoder

LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 55846856\n"


def official_format_weights(demo_models: Path, dest: Path, *names: str) -> Path:
    """A models folder holding the named demo weight files re-saved as the challenge ships them: no demo metadata."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        save_file(load_file(str(demo_models / name)), str(dest / name))
    return dest


def lfs_pointer(path: Path) -> Path:
    """What an un-pulled Git LFS checkout holds at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(LFS_POINTER)
    return path


def small_source(root: Path, frames: int = 4) -> tuple[Path, Path]:
    """A real (small) clip and a models folder with both weight files of the official format: (clip, models).

    Enough for everything that checks a source without scoring it (`init`, a lab made on first use).
    """
    clip = root / "videos" / "0.mkv"
    clip.parent.mkdir(parents=True, exist_ok=True)
    with VideoEncoder(clip, EncodeSettings("libx264", crf=30, preset="ultrafast"), 64, 48) as encoder:
        for i in range(frames):
            encoder.write(np.full((48, 64, 3), 40 * i, np.uint8))
    models = root / "models"
    models.mkdir(parents=True, exist_ok=True)
    for name in ("posenet.safetensors", "segnet.safetensors"):
        save_file({"weight": np.zeros((2, 2), np.float32)}, str(models / name))
    return clip, models
