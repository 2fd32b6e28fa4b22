"""Before encoding: an hqdn3d-style denoiser and the downscale, on RGB frames.

PyAV's FFmpeg build leaves out hqdn3d (a GPL filter), so the denoiser is our own
implementation of its idea: edge-preserving recursive low-pass filters across each row, down
each column and through time, where a neighbour pulls a pixel towards it by
`(1 - |d|/255) ** gamma` of their difference d, and gamma is chosen so that a difference equal to
the strength keeps a quarter of its pull. Strength 0 turns it off.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np

from engine.media.inflate_runtime import resize_rgb


def _gamma(strength: float) -> float:
    return math.log(0.25) / math.log(1.0 - min(strength, 252.0) / 255.0 - 0.00001)


def _pull(prev: np.ndarray, cur: np.ndarray, gamma: float) -> np.ndarray:
    diff = prev - cur
    return cur + diff * np.power(np.maximum(0.0, 1.0 - np.abs(diff) / 255.0), gamma)


class Denoiser:
    """Spatial (rows, then columns) and temporal recursive smoothing of RGB frames."""

    def __init__(self, strength: float) -> None:
        self.spatial = _gamma(strength)
        self.temporal = _gamma(strength * 1.5)  # hqdn3d's default temporal/spatial ratio
        self._previous: np.ndarray | None = None

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        x = rgb.astype(np.float32)
        for col in range(1, x.shape[1]):
            x[:, col] = _pull(x[:, col - 1], x[:, col], self.spatial)
        for row in range(1, x.shape[0]):
            x[row] = _pull(x[row - 1], x[row], self.spatial)
        if self._previous is not None:
            x = _pull(self._previous, x, self.temporal)
        self._previous = x
        return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def preprocess_frames(
    frames: Iterable[np.ndarray], width: int, height: int, scaler: str, denoise: float
) -> Iterator[np.ndarray]:
    """Denoise (if asked) then resize each frame to width x height (0 = keep the clip's size)."""
    denoiser = Denoiser(denoise) if denoise > 0 else None
    for rgb in frames:
        if denoiser:
            rgb = denoiser(rgb)
        if width and height:
            rgb = resize_rgb(rgb, width, height, scaler)
        yield rgb
