"""A small deterministic source clip for tests that pin bytes: seeded numpy planes, stored lossless (FFV1).

It depends on nothing that other work might change (not the synthetic drive, not demo assets), so
an archive made from it can be compared byte for byte with one made by an older comma-tui.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from engine.media.inflate_runtime import HEIGHT, WIDTH


def pattern_planes(index: int, width: int = WIDTH, height: int = HEIGHT) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame `index` as yuv420p planes: gradients, a moving bright box and seeded grain."""
    rng = np.random.default_rng([7, index])
    yy, xx = np.mgrid[0:height, 0:width]
    luma = 40 + 120 * xx / width + 40 * np.sin(yy / 37.0 + index / 3.0)
    top, left = 100 + 9 * index, 200 + 23 * index
    luma[top : top + 120, left : left + 180] = 200
    luma += rng.normal(0, 6, luma.shape)
    cy, cx = np.mgrid[0 : height // 2, 0 : width // 2]
    u = 128 + 30 * np.cos(cx / 50.0 + index / 5.0)
    v = 128 + 30 * np.sin(cy / 40.0)
    return tuple(np.clip(np.rint(p), 16, 235).astype(np.uint8) for p in (luma, u, v))  # type: ignore[return-value]


def write_pattern_clip(path: Path, frames: int, width: int = WIDTH, height: int = HEIGHT) -> Path:
    """Write `frames` pattern frames to `path` (Matroska, FFV1, yuv420p, 20 fps)."""
    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("ffv1", rate=20)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, 20)
        for i in range(frames):
            y, u, v = pattern_planes(i, width, height)
            frame = av.VideoFrame.from_ndarray(
                np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(-1, width), format="yuv420p"
            )
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path
