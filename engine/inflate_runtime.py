"""What a submission needs at inflate time, and nothing else: torch, av and numpy only.

This one file serves twice. The lab imports it to decode and rebuild frames, and `comma-tui
export` copies it verbatim into a submission as `inflate.py`, so the exported inflate is the lab's
inflate, byte for byte. It must therefore never import anything from comma-tui.

Command line (what inflate.sh runs):
    python inflate.py ARCHIVE_DIR INFLATED_DIR NAMES_FILE [--scaler lanczos]
        [--postfilter none|unsharp|learned] [--unsharp-size 5] [--unsharp-amount 0.5]
For every line `name.ext` of NAMES_FILE it decodes ARCHIVE_DIR/<name>.mkv and writes
INFLATED_DIR/<name>.raw: packed uint8 RGB24 frames of 874x1164, frame after frame.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F

WIDTH, HEIGHT = 1164, 874
CHANNELS = 3
FRAME_BYTES = WIDTH * HEIGHT * CHANNELS
VIDEO_SUFFIX = ".mkv"
LEARNED_FILTER_FILE = "postfilter.bin"
# swscale's names for the scalers a spec may ask for.
SCALER_FLAGS = {"lanczos": "LANCZOS", "bicubic": "BICUBIC", "bilinear": "BILINEAR", "area": "AREA", "spline": "SPLINE"}


def _plane(plane: av.video.plane.VideoPlane, rows: int, cols: int) -> np.ndarray:
    """One plane as (rows, cols) uint8, dropping the line-size padding on the right."""
    flat = np.frombuffer(plane, dtype=np.uint8)
    return flat.reshape(rows, plane.line_size)[:, :cols]


def yuv420_planes_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Convert yuv420p planes to (H, W, 3) uint8 RGB like NVDEC.

    The arithmetic is done in float32 torch ops in the evaluator's order so that every pixel
    rounds the same way as the official CPU path.
    """
    height, width = y.shape
    y_t = torch.from_numpy(np.ascontiguousarray(y)).float()
    u_t = torch.from_numpy(np.ascontiguousarray(u)).float()[None, None]
    v_t = torch.from_numpy(np.ascontiguousarray(v)).float()[None, None]
    u_up = F.interpolate(u_t, size=(height, width), mode="bilinear", align_corners=False)[0, 0]
    v_up = F.interpolate(v_t, size=(height, width), mode="bilinear", align_corners=False)[0, 0]
    yf = (y_t - 16.0) * (255.0 / 219.0)
    uf = (u_up - 128.0) * (255.0 / 224.0)
    vf = (v_up - 128.0) * (255.0 / 224.0)
    r = (yf + 1.402 * vf).clamp(0, 255)
    g = (yf - 0.344136 * uf - 0.714136 * vf).clamp(0, 255)
    b = (yf + 1.772 * uf).clamp(0, 255)
    return torch.stack([r, g, b], dim=-1).round().to(torch.uint8).numpy()


def frame_to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """A decoded frame as (H, W, 3) uint8 RGB, by the evaluator's BT.601 limited-range rule.

    Frames in another pixel format (10-bit, 4:4:4) are first brought to 8-bit yuv420p by
    swscale, which is what an 8-bit NVDEC output would hold.
    """
    if frame.format.name != "yuv420p":
        frame = frame.reformat(format="yuv420p")
    h, w = frame.height, frame.width
    return yuv420_planes_to_rgb(
        _plane(frame.planes[0], h, w),
        _plane(frame.planes[1], h // 2, w // 2),
        _plane(frame.planes[2], h // 2, w // 2),
    )


def resize_rgb(rgb: np.ndarray, width: int, height: int, scaler: str) -> np.ndarray:
    """Resize (H, W, 3) uint8 RGB with swscale's `scaler` kernel; a no-op at the same size."""
    if rgb.shape[1] == width and rgb.shape[0] == height:
        return rgb
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    return frame.reformat(width=width, height=height, interpolation=SCALER_FLAGS[scaler]).to_ndarray()


def _gaussian_kernel(size: int) -> torch.Tensor:
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8  # the usual sigma for a kernel of this size
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def unsharp(rgb: np.ndarray, size: int, amount: float) -> np.ndarray:
    """Unsharp mask: x + amount * (x - gaussian_blur(x)), per channel, edges replicated."""
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float()
    k = _gaussian_kernel(size)
    pad = size // 2
    blurred = F.pad(x, (pad, pad, 0, 0), mode="replicate")
    blurred = F.conv2d(blurred, k.view(1, 1, 1, size).repeat(3, 1, 1, 1), groups=3)
    blurred = F.pad(blurred, (0, 0, pad, pad), mode="replicate")
    blurred = F.conv2d(blurred, k.view(1, 1, size, 1).repeat(3, 1, 1, 1), groups=3)
    out = (x + amount * (x - blurred)).clamp(0, 255).round()
    return out[0].permute(1, 2, 0).to(torch.uint8).numpy()


PostFilter = Callable[[np.ndarray], np.ndarray]


def make_postfilter(name: str, archive_dir: Path, unsharp_size: int = 5, unsharp_amount: float = 0.5) -> PostFilter:
    """The post-filter an inflate applies after upscaling, built from its arguments and the archive."""
    if name == "none":
        return lambda rgb: rgb
    if name == "unsharp":
        return lambda rgb: unsharp(rgb, unsharp_size, unsharp_amount)
    raise ValueError(f"unknown post-filter {name!r}")


def decode_rgb(path: Path) -> Iterator[np.ndarray]:
    """Frames of an encoded video as RGB at their coded size, by the evaluator's colour rule."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            yield frame_to_rgb(frame)


def inflate_frames(video: Path, scaler: str, postfilter: PostFilter) -> Iterator[np.ndarray]:
    """Decode, upscale to 1164x874 and post-filter, one frame at a time."""
    for rgb in decode_rgb(video):
        yield postfilter(resize_rgb(rgb, WIDTH, HEIGHT, scaler))


class RawWriter:
    """Append RGB24 frames to a `.raw` file, streaming; the file is complete once closed.

    Frames go to `<path>.partial` and are renamed into place on a clean close, so a crash
    never leaves a truncated `.raw` that looks finished.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._partial = self.path.with_name(self.path.name + ".partial")
        self._file = open(self._partial, "wb")  # noqa: SIM115 - closed in close()
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        """Append one (874, 1164, 3) uint8 frame."""
        if frame.shape != (HEIGHT, WIDTH, 3) or frame.dtype != np.uint8:
            raise ValueError(f"frame must be ({HEIGHT}, {WIDTH}, 3) uint8, got {frame.shape} {frame.dtype}")
        self._file.write(np.ascontiguousarray(frame).tobytes())
        self.frames += 1

    def close(self) -> None:
        """Flush and move the finished file into place."""
        self._file.close()
        os.replace(self._partial, self.path)

    def abort(self) -> None:
        """Drop a half-written file."""
        self._file.close()
        self._partial.unlink(missing_ok=True)

    def __enter__(self) -> RawWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def inflate_video(
    video: Path, raw: Path, scaler: str, postfilter: PostFilter, progress: Callable[[int], None] | None = None
) -> int:
    """Write the inflated frames of `video` to `raw`; returns the number of frames."""
    with RawWriter(raw) as writer:
        for frame in inflate_frames(video, scaler, postfilter):
            writer.write(frame)
            if progress:
                progress(writer.frames)
    return writer.frames


def main(argv: list[str] | None = None) -> int:
    """The official inflate contract: ARCHIVE_DIR INFLATED_DIR NAMES_FILE."""
    parser = argparse.ArgumentParser(description="Inflate a comma-tui archive into .raw files.")
    parser.add_argument("archive_dir", type=Path)
    parser.add_argument("inflated_dir", type=Path)
    parser.add_argument("names_file", type=Path)
    parser.add_argument("--scaler", default="lanczos", choices=sorted(SCALER_FLAGS))
    parser.add_argument("--postfilter", default="none", choices=["none", "unsharp", "learned"])
    parser.add_argument("--unsharp-size", type=int, default=5)
    parser.add_argument("--unsharp-amount", type=float, default=0.5)
    args = parser.parse_args(argv)
    postfilter = make_postfilter(args.postfilter, args.archive_dir, args.unsharp_size, args.unsharp_amount)
    args.inflated_dir.mkdir(parents=True, exist_ok=True)
    for line in args.names_file.read_text().splitlines():
        name = line.strip()
        if not name:
            continue
        stem = Path(name).stem
        video = args.archive_dir / (stem + VIDEO_SUFFIX)
        if not video.is_file():
            print(f"inflate: {video} is missing from the archive", file=sys.stderr)
            return 1
        inflate_video(video, args.inflated_dir / (stem + ".raw"), args.scaler, postfilter)
    return 0


if __name__ == "__main__":
    sys.exit(main())
