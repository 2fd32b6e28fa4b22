"""Video I/O exactly as the challenge evaluator sees it.

Clips are decoded with PyAV and turned into RGB the way NVDEC does it (bilinear chroma
upsampling, BT.601 limited range), whatever the container claims about colour. `.raw` files are
flat uint8 RGB24 dumps of shape (N, 874, 1164, 3). Everything streams: a clip is never held in
memory whole, only a batch of frame pairs at a time.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import av
import numpy as np

from engine.media.container import count_clip_frames, open_clip
from engine.media.inflate_runtime import FRAME_BYTES, HEIGHT, WIDTH, RawWriter, frame_to_rgb, yuv420_planes_to_rgb
from ledger.errors import UserError

__all__ = [
    "FRAME_BYTES",
    "HEIGHT",
    "WIDTH",
    "RawWriter",
    "as_rgb",
    "batch_pairs",
    "count_frames",
    "frame_to_rgb",
    "iter_clip_frames",
    "iter_frames",
    "iter_frames_unconverted",
    "iter_pair_batches",
    "iter_raw",
    "open_raw",
    "yuv420_planes_to_rgb",
]

SEQ_LEN = 2  # frames per scored sample: the evaluator scores consecutive pairs (0,1), (2,3), ...


def segnet_frame(pair: int) -> int:
    """The frame of pair `pair` that SegNet scores: the pair's last (PoseNet sees both)."""
    return SEQ_LEN * pair + SEQ_LEN - 1


CLIP_FPS = 20  # the challenge clip's frame rate: encodes are stamped with it


def iter_decoded(path: str | os.PathLike[str]) -> Iterator[av.VideoFrame]:
    """Decode a clip (mkv, mp4, raw .hevc, ...) frame by frame, leaving the frames in their own format."""
    path = Path(path)
    container = open_clip(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            yield from container.decode(stream)
        except av.error.FFmpegError as exc:
            raise UserError(f"clip {path} is damaged: {exc}; re-export or re-download it") from None
    finally:
        container.close()


def iter_clip_frames(path: str | os.PathLike[str]) -> Iterator[np.ndarray]:
    """Decode a clip frame by frame into (H, W, 3) uint8 RGB."""
    for frame in iter_decoded(path):
        yield frame_to_rgb(frame)


def open_raw(path: str | os.PathLike[str]) -> np.memmap:
    """Map a `.raw` file read-only as (N, 874, 1164, 3) uint8, checking its size first."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"raw file not found: {path}: inflate must write <name>.raw")
    size = path.stat().st_size
    if size == 0 or size % FRAME_BYTES:
        raise UserError(
            f"{path} is {size:,} bytes, not a whole number of {HEIGHT}x{WIDTH}x3 RGB24 frames "
            f"({FRAME_BYTES:,} bytes each): write packed uint8 RGB, frame after frame"
        )
    return np.memmap(path, dtype=np.uint8, mode="r", shape=(size // FRAME_BYTES, HEIGHT, WIDTH, 3))


def iter_raw(path: str | os.PathLike[str], group: int = 1) -> Iterator[np.ndarray]:
    """Frames of a `.raw` file, `group` at a time as fresh (group, H, W, 3) uint8 arrays; a short last group is dropped.

    Plain reads rather than `open_raw`'s map: pages of a map that have been read count in the
    process's resident memory until it is unmapped, so a mapped 1200-frame file would grow it by
    3.6 GB over a scoring run; read, it stays at one group.
    """
    frames = open_raw(path)  # checks the size, and gives the count
    count = len(frames) // group
    del frames
    with open(path, "rb") as f:
        for _ in range(count):
            chunk = np.empty((group, HEIGHT, WIDTH, 3), dtype=np.uint8)
            if f.readinto(chunk.data.cast("B")) != chunk.nbytes:
                raise UserError(f"{path} shrank while being read: let inflate finish before scoring")
            yield chunk


def is_raw(path: str | os.PathLike[str]) -> bool:
    """Whether a path names a `.raw` RGB24 dump rather than an encoded clip."""
    return Path(path).suffix == ".raw"


def iter_frames(path: str | os.PathLike[str]) -> Iterator[np.ndarray]:
    """Frames of a clip or a `.raw` file, one (H, W, 3) uint8 array at a time."""
    for frame in iter_frames_unconverted(path):
        yield as_rgb(frame)


def iter_frames_unconverted(path: str | os.PathLike[str]) -> Iterator[av.VideoFrame | np.ndarray]:
    """Like `iter_frames`, but a clip's frames come as decoded: `as_rgb` converts the ones wanted.

    Converting to RGB costs more than decoding, so a reader that keeps a few frames skips it
    for the rest.
    """
    if is_raw(path):
        for group in iter_raw(path):
            yield group[0]
    else:
        yield from iter_decoded(path)


def as_rgb(frame: av.VideoFrame | np.ndarray) -> np.ndarray:
    """A frame from `iter_frames_unconverted` as (H, W, 3) uint8 RGB."""
    return frame if isinstance(frame, np.ndarray) else frame_to_rgb(frame)


def count_frames(path: str | os.PathLike[str]) -> int:
    """Number of frames in a clip or `.raw` file, without decoding pixels."""
    return len(open_raw(path)) if is_raw(path) else count_clip_frames(Path(path))


def batch_pairs(frames: Iterable[np.ndarray], batch_size: int) -> Iterator[np.ndarray]:
    """Group frames into consecutive pairs (0,1), (2,3), ... and pairs into batches.

    Yields uint8 arrays of shape (B, 2, H, W, 3); the last batch may be short and a last odd
    frame is dropped, as in the evaluator.
    """
    batch: list[np.ndarray] = []
    pending: np.ndarray | None = None
    for frame in frames:
        if pending is None:
            pending = frame
            continue
        batch.append(np.stack([pending, frame]))
        pending = None
        if len(batch) == batch_size:
            yield np.stack(batch)
            batch = []
    if batch:
        yield np.stack(batch)


def iter_pair_batches(path: str | os.PathLike[str], batch_size: int) -> Iterator[np.ndarray]:
    """Batches of frame pairs (B, 2, H, W, 3) uint8 from a clip or a `.raw` file."""
    return batch_pairs(iter_frames(path), batch_size)
