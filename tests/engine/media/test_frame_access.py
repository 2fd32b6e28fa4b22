"""Frame pairs by index: any order gives exactly the frames a decode from the start gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.media.codecs import EncodeSettings, VideoEncoder
from engine.media.frame_access import ClipPairs, RawPairs, open_pairs
from engine.media.video import HEIGHT, WIDTH, iter_frames
from ledger.errors import UserError

# Short GOPs, so that reading out of order must seek: x265 makes open GOPs (CRA keyframes with
# leading pictures), x264 closed ones with B-frames, vp9 hidden alt-ref frames.
GOPS = {
    "x265-open-gop": EncodeSettings("libx265", crf=30, preset="ultrafast", keyint=4, params={"open-gop": "1"}),
    "x264-bframes": EncodeSettings("libx264", crf=30, preset="ultrafast", keyint=4, params={"bframes": "2"}),
    "vp9": EncodeSettings("libvpx-vp9", crf=40, preset="8", keyint=4),
}


def _encode(clip: Path, out: Path, settings: EncodeSettings) -> Path:
    path = out / f"{settings.codec}.mkv"
    with VideoEncoder(path, settings, WIDTH, HEIGHT) as encoder:
        for frame in iter_frames(clip):
            encoder.write(frame)
    return path


def _pairs_from_the_start(path: Path) -> list[np.ndarray]:
    frames = list(iter_frames(path))
    return [np.stack(frames[i : i + 2]) for i in range(0, len(frames) - 1, 2)]


@pytest.mark.parametrize("name", sorted(GOPS))
def test_clip_pairs_in_any_order_equal_a_decode_from_the_start(demo_assets, tmp_path: Path, name: str) -> None:
    clip = _encode(demo_assets.clip, tmp_path, GOPS[name])
    expected = _pairs_from_the_start(clip)
    reader = ClipPairs(clip)
    try:
        assert reader.pairs == len(expected) == 6
        assert len(reader._index[1]) > 1  # several keyframes: the reads below really seek
        for first, count in [(4, 2), (1, 2), (5, 1), (0, 3), (3, 1), (2, 2), (0, 1)]:
            got = list(reader.read(first, count))
            for offset, pair in enumerate(got):
                np.testing.assert_array_equal(pair, expected[first + offset], err_msg=f"{name} pair {first + offset}")
        for pair in (3, 1, 4):  # SegNet's frame alone (what previews read), here too after seeks
            np.testing.assert_array_equal(reader.last_frame(pair), expected[pair][-1], err_msg=f"{name} pair {pair}")
    finally:
        reader.close()


def test_raw_pairs_are_read_at_their_offsets(reference_raw: Path, demo_assets) -> None:
    expected = _pairs_from_the_start(demo_assets.clip)
    reader = open_pairs(reference_raw)
    try:
        assert isinstance(reader, RawPairs) and reader.pairs == 6
        for first in (5, 0, 3):
            (pair,) = reader.read(first, 1)
            np.testing.assert_array_equal(pair, expected[first])
            np.testing.assert_array_equal(reader.last_frame(first), expected[first][-1])
    finally:
        reader.close()


def test_a_raw_that_shrinks_while_read_is_a_clear_error(reference_raw: Path, tmp_path: Path) -> None:
    raw = tmp_path / "0.raw"
    raw.write_bytes(reference_raw.read_bytes())
    reader = RawPairs(raw)
    try:
        with open(raw, "r+b") as f:
            f.truncate(raw.stat().st_size // 2)
        with pytest.raises(UserError, match="shrank while being read"):
            list(reader.read(4, 2))
    finally:
        reader.close()
