"""Encoding through PyAV: every codec round-trips, crf trades bytes for error, output is reproducible."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from engine.demo.synthetic import SyntheticDrive
from engine.media.codecs import CODECS, EncodeSettings, VideoEncoder, params_problem
from engine.media.inflate_runtime import decode_rgb, inflate_video, make_postfilter
from engine.media.video import HEIGHT, WIDTH, count_frames, open_raw

FRAMES = 4
SMALL = (256, 192)


@pytest.fixture(scope="module")
def small_frames() -> list[np.ndarray]:
    from engine.media.inflate_runtime import resize_rgb

    drive = SyntheticDrive(3)
    return [resize_rgb(drive.render(i)[0], *SMALL, "area") for i in range(FRAMES)]


def _encode(frames: list[np.ndarray], path: Path, settings: EncodeSettings) -> Path:
    with VideoEncoder(path, settings, frames[0].shape[1], frames[0].shape[0]) as encoder:
        for frame in frames:
            encoder.write(frame)
    return path


FAST = {"libsvtav1": "12", "libx265": "ultrafast", "libx264": "ultrafast", "libvpx-vp9": "8"}


@pytest.mark.parametrize("codec", CODECS)
def test_each_codec_round_trips_to_a_raw_of_the_right_shape(codec: str, small_frames, tmp_path: Path) -> None:
    video = _encode(small_frames, tmp_path / "v.mkv", EncodeSettings(codec, crf=30, preset=FAST[codec]))
    assert count_frames(video) == FRAMES
    raw = tmp_path / "v.raw"
    assert inflate_video(video, raw, "bicubic", make_postfilter("none", tmp_path)) == FRAMES
    frames = open_raw(raw)
    assert frames.shape == (FRAMES, HEIGHT, WIDTH, 3)
    assert frames.dtype == np.uint8


@pytest.mark.parametrize("codec", CODECS)
def test_lower_crf_gives_more_bytes_and_less_error(codec: str, small_frames, tmp_path: Path) -> None:
    results = {}
    for crf in (20, 50):
        video = _encode(small_frames, tmp_path / f"{crf}.mkv", EncodeSettings(codec, crf=crf, preset=FAST[codec]))
        decoded = list(decode_rgb(video))
        error = np.mean([np.abs(a.astype(int) - b).mean() for a, b in zip(decoded, small_frames, strict=True)])
        results[crf] = (video.stat().st_size, error)
    assert results[20][0] > results[50][0]
    assert results[20][1] < results[50][1]


@pytest.mark.parametrize("codec", ["libsvtav1", "libx265"])
def test_the_same_settings_give_the_same_bytes(codec: str, small_frames, tmp_path: Path) -> None:
    settings = EncodeSettings(codec, crf=35, preset=FAST[codec], film_grain=10 if codec == "libsvtav1" else 0)
    digests = {
        hashlib.sha256(_encode(small_frames, tmp_path / f"{i}.mkv", settings).read_bytes()).hexdigest()
        for i in range(2)
    }
    assert len(digests) == 1


def test_ten_bit_output_decodes_by_the_same_colour_rule(small_frames, tmp_path: Path) -> None:
    video = _encode(
        small_frames, tmp_path / "10.mkv", EncodeSettings("libsvtav1", crf=20, preset="12", pix_fmt="yuv420p10le")
    )
    decoded = list(decode_rgb(video))
    assert np.mean([np.abs(a.astype(int) - b).mean() for a, b in zip(decoded, small_frames, strict=True)]) < 6


def test_an_encode_that_fills_the_disk_leaves_no_file(small_frames, mount) -> None:
    disk = mount(0.03)  # less than one lossless frame
    with (
        pytest.raises(OSError, match="No space left on device"),
        VideoEncoder(disk / "0.mkv", EncodeSettings("libx264", crf=0, preset="ultrafast"), *SMALL) as encoder,
    ):
        for frame in small_frames:
            encoder.write(frame)
    assert list(disk.iterdir()) == []


@pytest.mark.parametrize(
    ("codec", "params", "says"),
    [
        ("libx264", "nonsense-key=5", "Error parsing option 'nonsense-key = 5'"),
        ("libx265", "nonsense-key=5", "Unknown option: nonsense-key"),
        ("libsvtav1", "film-grain=lots", "Error parsing option film-grain: lots"),
    ],
)
def test_params_a_codec_refuses_are_found_before_encoding(codec: str, params: str, says: str) -> None:
    problem = params_problem(codec, params)
    assert problem is not None and says in problem


@pytest.mark.parametrize(
    ("codec", "params"),
    [("libx264", "ref=2:bframes=1"), ("libx265", "aq-mode=1:log-level=warning"), ("libsvtav1", "tune=0:scd=0")],
)
def test_params_a_codec_takes_pass(codec: str, params: str) -> None:
    assert params_problem(codec, params) is None
