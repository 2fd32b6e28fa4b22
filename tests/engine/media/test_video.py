"""Video I/O: the evaluator's colour rule, pairing, .raw files, frame counts."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from engine.media.codecs import rgb_to_yuv420_frame
from engine.media.video import (
    FRAME_BYTES,
    HEIGHT,
    WIDTH,
    RawWriter,
    batch_pairs,
    count_frames,
    frame_to_rgb,
    iter_clip_frames,
    iter_frames,
    open_raw,
    yuv420_planes_to_rgb,
)
from ledger.errors import UserError
from tests.sources import lfs_pointer


def _bt601(y: float, u: float, v: float) -> tuple[int, int, int]:
    """The evaluator's rule in plain double arithmetic, for hand-checkable pixels."""
    yf, uf, vf = (y - 16) * 255 / 219, (u - 128) * 255 / 224, (v - 128) * 255 / 224
    rgb = (yf + 1.402 * vf, yf - 0.344136 * uf - 0.714136 * vf, yf + 1.772 * uf)
    return tuple(round(min(max(c, 0), 255)) for c in rgb)  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("y", "u", "v"),
    [(16, 128, 128), (235, 128, 128), (100, 128, 128), (81, 90, 240), (145, 54, 34), (210, 16, 146), (0, 255, 0)],
)
def test_limited_range_pixels_match_hand_computation(y: int, u: int, v: int) -> None:
    planes = (np.full((2, 2), y, np.uint8), np.full((1, 1), u, np.uint8), np.full((1, 1), v, np.uint8))
    rgb = yuv420_planes_to_rgb(*planes)
    assert rgb.dtype == np.uint8
    assert tuple(rgb[0, 0]) == _bt601(y, u, v)


def test_black_and_white_are_limited_range_ends() -> None:
    black = yuv420_planes_to_rgb(np.full((2, 2), 16, np.uint8), *(np.full((1, 1), 128, np.uint8),) * 2)
    white = yuv420_planes_to_rgb(np.full((2, 2), 235, np.uint8), *(np.full((1, 1), 128, np.uint8),) * 2)
    assert black.max() == 0 and white.min() == 255


def test_chroma_is_upsampled_bilinearly_with_centred_samples() -> None:
    # One chroma row [a, b] covers four luma columns; centred bilinear gives a, .75a+.25b, .25a+.75b, b.
    a, b = 100.0, 200.0
    y = np.full((2, 4), 126, np.uint8)
    u = np.array([[a, b]], np.uint8)
    v = np.full((1, 2), 128, np.uint8)
    rgb = yuv420_planes_to_rgb(y, u, v)
    expected_u = [a, 0.75 * a + 0.25 * b, 0.25 * a + 0.75 * b, b]
    blue = [_bt601(126, eu, 128)[2] for eu in expected_u]
    assert list(rgb[0, :, 2]) == blue
    assert list(rgb[1, :, 2]) == blue


def test_padded_line_sizes_are_cropped() -> None:
    # Width 10 gives planes whose line size is padded past the width.
    h, w = 4, 10
    rng = np.random.default_rng(1)
    flat = rng.integers(16, 236, size=h * w * 3 // 2, dtype=np.uint8)
    frame = av.VideoFrame.from_ndarray(flat.reshape(h * 3 // 2, w), format="yuv420p")
    assert frame.planes[0].line_size > w and frame.planes[1].line_size > w // 2
    y = flat[: h * w].reshape(h, w)
    u = flat[h * w : h * w + h * w // 4].reshape(h // 2, w // 2)
    v = flat[h * w + h * w // 4 :].reshape(h // 2, w // 2)
    assert np.array_equal(frame_to_rgb(frame), yuv420_planes_to_rgb(y, u, v))


def test_encode_side_conversion_inverts_the_decode_rule() -> None:
    for colour in [(10, 200, 30), (128, 128, 128), (0, 0, 0), (255, 255, 255), (30, 60, 170)]:
        rgb = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        rgb[:] = colour
        back = frame_to_rgb(rgb_to_yuv420_frame(rgb))
        assert np.abs(back.astype(int) - rgb).max() <= 1


def test_pairs_are_consecutive_and_a_last_odd_frame_is_dropped() -> None:
    frames = [np.full((2, 3, 3), i, np.uint8) for i in range(7)]
    batches = list(batch_pairs(frames, batch_size=2))
    assert [b.shape for b in batches] == [(2, 2, 2, 3, 3), (1, 2, 2, 3, 3)]
    firsts = [int(b[i, 0, 0, 0, 0]) for b in batches for i in range(len(b))]
    seconds = [int(b[i, 1, 0, 0, 0]) for b in batches for i in range(len(b))]
    assert firsts == [0, 2, 4] and seconds == [1, 3, 5]


def test_raw_round_trip_and_frame_count(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    frames = [rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8) for _ in range(3)]
    path = tmp_path / "x.raw"
    with RawWriter(path) as writer:
        for f in frames:
            writer.write(f)
    assert path.stat().st_size == 3 * FRAME_BYTES
    assert count_frames(path) == 3
    mapped = open_raw(path)
    assert mapped.shape == (3, HEIGHT, WIDTH, 3)
    assert all(np.array_equal(a, b) for a, b in zip(mapped, frames, strict=True))


def test_a_failed_raw_write_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "x.raw"
    with pytest.raises(RuntimeError), RawWriter(path) as writer:
        writer.write(np.zeros((HEIGHT, WIDTH, 3), np.uint8))
        raise RuntimeError("inflate crashed")
    assert list(tmp_path.iterdir()) == []


def test_raw_of_wrong_size_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.raw"
    path.write_bytes(b"\0" * (FRAME_BYTES + 7))
    with pytest.raises(UserError, match="not a whole number of 874x1164x3"):
        open_raw(path)


def test_missing_and_unreadable_clips_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="clip not found"):
        list(iter_clip_frames(tmp_path / "nope.mkv"))
    junk = tmp_path / "junk.mkv"
    junk.write_bytes(b"this is not a video" * 100)
    with pytest.raises(UserError, match="cannot read clip"):
        count_frames(junk)


def test_clip_decodes_frame_by_frame_and_counts(demo_assets, tmp_path: Path) -> None:
    frames = list(iter_frames(demo_assets.clip))
    assert len(frames) == count_frames(demo_assets.clip) == 12
    assert frames[0].shape == (HEIGHT, WIDTH, 3) and frames[0].dtype == np.uint8
    # A raw .hevc bitstream (as DALI would be fed) decodes to the same pixels.
    hevc = tmp_path / "0.hevc"
    with av.open(str(demo_assets.clip)) as src, av.open(str(hevc), "w", format="hevc") as dst:
        in_stream = src.streams.video[0]
        out_stream = dst.add_stream_from_template(in_stream)
        for packet in src.demux(in_stream):
            if not packet.size:
                continue
            packet.stream = out_stream
            dst.mux(packet)
    assert count_frames(hevc) == 12
    assert all(np.array_equal(a, b) for a, b in zip(iter_frames(hevc), frames, strict=True))


def test_a_git_lfs_pointer_in_place_of_the_clip_says_git_lfs_pull(tmp_path: Path) -> None:
    clip = lfs_pointer(tmp_path / "videos" / "0.mkv")
    for read in (count_frames, lambda path: next(iter_frames(path))):
        with pytest.raises(UserError, match=r"0\.mkv is a Git LFS pointer, not a video: run git lfs pull in the"):
            read(clip)
