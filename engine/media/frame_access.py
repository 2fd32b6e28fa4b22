"""Frame pairs of a clip or a `.raw` by index, so batches can be scored in any order.

Neither reader holds the clip: a `.raw` is flat (pair i is two frames at offset 2*i*FRAME_BYTES),
so a batch is one seek and one read. An encoded clip is decoded forward, and converted to RGB
only where a frame is wanted; to go back, or to skip past a keyframe, the decoder restarts at the
keyframe at or before the wanted frame. Its frames come out exactly as a decode from the start
gives them: a picture that follows a keyframe in display order references nothing before that
keyframe (an IDR or CRA in HEVC; leading pictures, which would, come before it and are skipped
by timestamp). Frames are told apart by their timestamps, read once from the packets without
decoding; a stream without usable timestamps (a raw .hevc bitstream) is decoded again from
its start instead, which is slower and just as exact.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import av
import numpy as np

from engine.media.container import open_clip
from engine.media.video import (
    FRAME_BYTES,
    HEIGHT,
    SEQ_LEN,
    WIDTH,
    as_rgb,
    count_frames,
    is_raw,
    iter_decoded,
    open_raw,
    segnet_frame,
)
from ledger.errors import UserError


class PairReader(Protocol):
    """Frame pairs (2, H, W, 3) uint8 by pair index."""

    pairs: int

    def read(self, first: int, count: int) -> Iterator[np.ndarray]:
        """Pairs `first` .. `first + count - 1`, one fresh array at a time."""
        ...

    def last_frame(self, pair: int) -> np.ndarray:
        """The last frame (H, W, 3) of pair `pair`: SegNet's; the first is skipped, never converted."""
        ...

    def close(self) -> None:
        """Let go of the file or decoder."""
        ...


def open_pairs(path: Path) -> PairReader:
    """A pair reader of a `.raw` or an encoded clip (a last odd frame is not part of any pair)."""
    return RawPairs(path) if is_raw(path) else ClipPairs(path)


class RawPairs:
    """Pairs of a `.raw`, read at their offsets (plain reads: a map would grow resident memory)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pairs = len(open_raw(path)) // SEQ_LEN  # checks the size too
        self._file = open(path, "rb")  # noqa: SIM115 (closed by close())

    def read(self, first: int, count: int) -> Iterator[np.ndarray]:
        """Pairs `first` .. `first + count - 1`."""
        self._file.seek(SEQ_LEN * first * FRAME_BYTES)
        for _ in range(count):
            pair = np.empty((SEQ_LEN, HEIGHT, WIDTH, 3), dtype=np.uint8)
            if self._file.readinto(pair.data.cast("B")) != pair.nbytes:
                raise UserError(f"{self.path} shrank while being read: let inflate finish before scoring")
            yield pair

    def last_frame(self, pair: int) -> np.ndarray:
        """The last frame of pair `pair`."""
        self._file.seek(segnet_frame(pair) * FRAME_BYTES)
        frame = np.empty((HEIGHT, WIDTH, 3), dtype=np.uint8)
        if self._file.readinto(frame.data.cast("B")) != frame.nbytes:
            raise UserError(f"{self.path} shrank while being read: let inflate finish before scoring")
        return frame

    def close(self) -> None:
        """Close the file."""
        self._file.close()


def _timestamps(path: Path) -> tuple[list[int], list[int]] | None:
    """(pts of every frame in display order, display index of every keyframe), or None if unusable."""
    pts: list[int] = []
    keyframe_pts: list[int] = []
    with open_clip(path) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            if packet.pts is None:
                return None
            pts.append(packet.pts)
            if packet.is_keyframe:
                keyframe_pts.append(packet.pts)
    pts.sort()
    if len(set(pts)) != len(pts) or not keyframe_pts:
        return None
    where = {p: i for i, p in enumerate(pts)}
    return pts, sorted(where[p] for p in keyframe_pts)


class ClipPairs:
    """Pairs of an encoded clip, decoded forward; a jump back or past a keyframe restarts at a keyframe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._index = None if path.suffix == ".hevc" else _timestamps(path)
        self._frames: Iterator[av.VideoFrame] | None = None
        self._next = 0  # display index of the frame `_frames` gives next
        self._seeked = False  # decoding from a keyframe: each frame's timestamp is checked against the index
        self.pairs = (len(self._index[0]) if self._index else count_frames(path)) // SEQ_LEN

    def read(self, first: int, count: int) -> Iterator[np.ndarray]:
        """Pairs `first` .. `first + count - 1`."""
        self._move_to(SEQ_LEN * first)
        for _ in range(count):
            yield np.stack([as_rgb(self._take()) for _ in range(SEQ_LEN)])

    def last_frame(self, pair: int) -> np.ndarray:
        """The last frame of pair `pair` (pairs asked for in clip order decode the clip once)."""
        self._move_to(segnet_frame(pair))
        return as_rgb(self._take())

    def _take(self) -> av.VideoFrame:
        assert self._frames is not None
        frame = next(self._frames, None)
        if frame is None:
            raise UserError(f"clip {self.path} ended early: it holds fewer frames than its packets say")
        if self._seeked and self._index is not None and frame.pts != self._index[0][self._next]:
            raise UserError(
                f"clip {self.path} decodes frames out of its timestamp order (frame {self._next}): "
                "remux it (ffmpeg -i CLIP -c copy OUT.mkv) or re-encode it"
            )
        self._next += 1
        return frame

    def _move_to(self, target: int) -> None:
        """Make the next frame taken be frame `target`, decoding as little as it can."""
        keyframe = self._keyframe_before(target)
        if self._frames is None or target < self._next or keyframe > self._next:
            self._restart(keyframe)
        while self._next < target:
            self._take()  # decoded, never converted

    def _keyframe_before(self, target: int) -> int:
        if self._index is None:
            return 0
        keyframes = self._index[1]
        return keyframes[max(0, bisect.bisect_right(keyframes, target) - 1)]

    def _restart(self, keyframe: int) -> None:
        self.close()
        if keyframe and self._index is not None:
            frames = _decode_from(self.path, self._index[0][keyframe])
            first = next(frames, None)
            if first is not None and first.pts == self._index[0][keyframe]:
                self._frames, self._next, self._seeked = _chain(first, frames), keyframe, True
                return
            frames.close()  # type: ignore[attr-defined]  # the seek landed elsewhere: start over
        self._frames, self._next, self._seeked = iter_decoded(self.path), 0, False

    def close(self) -> None:
        """Close the decoder."""
        if self._frames is not None:
            self._frames.close()  # type: ignore[attr-defined]
            self._frames = None


def _decode_from(path: Path, start_pts: int) -> Iterator[av.VideoFrame]:
    """Decode from the keyframe at `start_pts` on; an open GOP's leading pictures (earlier pts) are skipped."""
    container = open_clip(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        container.seek(start_pts, stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            if frame.pts is not None and frame.pts >= start_pts:
                yield frame
    except av.error.FFmpegError as exc:
        raise UserError(f"clip {path} is damaged: {exc}; re-export or re-download it") from None
    finally:
        container.close()


def _chain(first: av.VideoFrame, rest: Iterator[av.VideoFrame]) -> Iterator[av.VideoFrame]:
    try:
        yield first
        yield from rest
    finally:
        rest.close()  # type: ignore[attr-defined]
