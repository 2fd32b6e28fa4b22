"""Before encoding: filters and the downscale, by one of two paths.

`yuv` (FFmpeg's way, the default): the decoded frames stay in their pixel format and go through
one libavfilter graph, `filters,scale=W:H:flags=SCALER,format=PIX_FMT`, as `ffmpeg -vf` would
run them; frames leave YUV only inside a filter that needs RGB.

`rgb` (how comma-tui did it before): every frame is converted to RGB by the evaluator's rule,
denoised by our own hqdn3d-style filter if asked, resized in RGB, and converted back by our
BT.601 rule in the encoder. Specs recorded before the yuv path existed keep it, so their archives
come out the same, byte for byte.

PyAV's FFmpeg build leaves out hqdn3d (a GPL filter), so the rgb path's denoiser is our own
implementation of its idea: edge-preserving recursive low-pass filters across each row, down
each column and through time, where a neighbour pulls a pixel towards it by
`(1 - |d|/255) ** gamma` of their difference d, and gamma is chosen so that a difference equal to
the strength keeps a quarter of its pull. Strength 0 turns it off.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from engine.media.inflate_runtime import filter_frames, resize_rgb
from engine.media.video import iter_clip_frames, iter_decoded


@dataclass(frozen=True)
class Preprocess:
    """What happens to the source frames before the encoder: validated at the edge (the spec), trusted here."""

    path: str = "yuv"
    width: int = 0  # 0 = the clip's own size
    height: int = 0
    scaler: str = "lanczos"
    denoise: float = 0.0  # the rgb path's own denoiser
    filters: str = ""  # a libavfilter chain before the resize (yuv path)


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


def preprocess_chain(p: Preprocess, pix_fmt: str) -> str:
    """The yuv path's libavfilter chain: the spec's filters, the resize, the encoder's pixel format."""
    resize = f"scale={p.width}:{p.height}:flags={p.scaler}" if p.width else ""
    return ",".join(part for part in (p.filters, resize, f"format={pix_fmt}") if part)


FrameStep = Callable[[Iterable[av.VideoFrame]], Iterator[av.VideoFrame]]


def preprocessed(
    clip: Path, p: Preprocess, pix_fmt: str, steps: Sequence[FrameStep] = ()
) -> Iterator[av.VideoFrame | np.ndarray]:
    """The clip's frames ready for the encoder: yuv frames in `pix_fmt`, or RGB arrays on the rgb path.

    `steps` (preprocess plug-ins, yuv path) change the decoded frames before the filter graph.
    """
    if p.path == "rgb":
        return preprocess_frames(iter_clip_frames(clip), p.width, p.height, p.scaler, p.denoise)
    frames: Iterable[av.VideoFrame] = iter_decoded(clip)
    for step in steps:
        frames = step(frames)
    return filter_frames(frames, preprocess_chain(p, pix_fmt))
