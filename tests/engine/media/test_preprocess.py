"""Before and after the codec, on both paths: filter chains, denoise, resize, unsharp, the inflate command."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from engine.media import inflate_runtime
from engine.media.codecs import EncodeSettings, VideoEncoder, encode_frames
from engine.media.inflate_runtime import filter_frames, frame_to_rgb, inflate_chain, inflate_video, resize_rgb, unsharp
from engine.media.preprocess import Denoiser, Preprocess, preprocess_frames, preprocessed
from engine.media.video import HEIGHT, WIDTH, iter_decoded, open_raw
from tests.engine.media.pattern_clip import write_pattern_clip

FRAMES = 8


@pytest.fixture(scope="module")
def pattern(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pattern_clip(tmp_path_factory.mktemp("pattern") / "0.mkv", FRAMES)


@pytest.fixture(scope="module")
def small_encode(pattern: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pattern clip at 384x288 through the yuv path, nearly lossless."""
    video = tmp_path_factory.mktemp("small") / "0.mkv"
    frames = preprocessed(pattern, Preprocess(width=384, height=288), "yuv420p")
    encode_frames(video, frames, EncodeSettings("libx264", crf=10, preset="ultrafast"), 20)
    return video


def _luma(frames) -> list[np.ndarray]:
    return [f.to_ndarray()[: f.height].astype(int) for f in frames]


def _noisy(seed: int, shape: tuple[int, int] = (64, 80)) -> tuple[np.ndarray, np.ndarray]:
    clean = np.zeros((*shape, 3), np.uint8)
    clean[:, : shape[1] // 2] = (60, 120, 180)
    clean[:, shape[1] // 2 :] = (200, 90, 40)
    noise = np.random.default_rng(seed).normal(0, 8, clean.shape)
    return clean, np.clip(clean + noise, 0, 255).astype(np.uint8)


def test_denoiser_removes_noise_and_keeps_edges() -> None:
    denoise = Denoiser(12.0)
    for seed in range(3):
        clean, noisy = _noisy(seed)
        out = denoise(noisy)
    err_before = np.abs(noisy.astype(int) - clean).mean()
    err_after = np.abs(out.astype(int) - clean).mean()
    assert err_after < 0.6 * err_before
    # The colour edge in the middle survives: columns either side keep their own colours.
    assert np.abs(out[:, 30].astype(int) - clean[:, 30]).mean() < 10
    assert np.abs(out[:, 50].astype(int) - clean[:, 50]).mean() < 10


def test_no_denoise_and_native_size_pass_frames_through() -> None:
    _, noisy = _noisy(0)
    assert np.array_equal(next(preprocess_frames([noisy], 0, 0, "lanczos", 0.0)), noisy)
    small = next(preprocess_frames([noisy], 40, 32, "area", 0.0))
    assert small.shape == (32, 40, 3)


def test_resize_kernels_differ_but_keep_flat_colour() -> None:
    flat = np.full((40, 60, 3), 77, np.uint8)
    for scaler in inflate_runtime.SCALER_FLAGS:
        assert np.array_equal(resize_rgb(flat, 120, 80, scaler), np.full((80, 120, 3), 77, np.uint8))


def test_unsharp_sharpens_edges_and_zero_amount_is_identity() -> None:
    img = np.zeros((32, 32, 3), np.uint8)
    img[:, 16:] = 200
    img = resize_rgb(resize_rgb(img, 16, 16, "area"), 32, 32, "bilinear")  # a soft edge
    assert np.array_equal(unsharp(img, 5, 0.0), img)
    sharp = unsharp(img, 5, 1.0).astype(int)
    assert np.abs(np.diff(sharp[16], axis=0)).max() > np.abs(np.diff(img[16].astype(int), axis=0)).max()


def test_inflate_command_follows_the_official_contract(tmp_path: Path) -> None:
    archive_dir, inflated = tmp_path / "archive", tmp_path / "inflated"
    archive_dir.mkdir()
    with VideoEncoder(archive_dir / "0.mkv", EncodeSettings("libx264", crf=20, preset="ultrafast"), 128, 96) as enc:
        for value in (50, 150):
            enc.write(np.full((96, 128, 3), value, np.uint8))
    names = tmp_path / "names.txt"
    names.write_text("0.mkv\n")
    assert inflate_runtime.main([str(archive_dir), str(inflated), str(names), "--postfilter", "unsharp"]) == 0
    frames = open_raw(inflated / "0.raw")
    assert frames.shape == (2, HEIGHT, WIDTH, 3)
    assert abs(int(frames[1].mean()) - 150) <= 2
    names.write_text("1.mkv\n")
    assert inflate_runtime.main([str(archive_dir), str(inflated), str(names)]) == 1


def test_the_yuv_path_runs_its_filters_before_the_resize_in_yuv(pattern: Path) -> None:
    plain = _luma(preprocessed(pattern, Preprocess(width=384, height=288), "yuv420p"))
    flipped_frames = list(preprocessed(pattern, Preprocess(width=384, height=288, filters="hflip"), "yuv420p"))
    assert {(f.width, f.height, f.format.name) for f in flipped_frames} == {(384, 288, "yuv420p")}
    flipped = _luma(flipped_frames)
    assert len(flipped) == len(plain) == FRAMES
    mirrored = np.mean([np.abs(a - b[:, ::-1]).mean() for a, b in zip(flipped, plain, strict=True)])
    unmirrored = np.mean([np.abs(a - b).mean() for a, b in zip(flipped, plain, strict=True)])
    assert mirrored < 0.5 and unmirrored > 20


def test_a_temporal_filter_gives_back_every_frame(pattern: Path) -> None:
    denoised = list(preprocessed(pattern, Preprocess(filters="atadenoise"), "yuv420p10le"))
    assert len(denoised) == FRAMES  # atadenoise holds frames back; the end of the stream releases them
    assert {(f.width, f.height, f.format.name) for f in denoised} == {(WIDTH, HEIGHT, "yuv420p10le")}


def test_the_yuv_path_makes_rgb_by_the_evaluators_rule(pattern: Path) -> None:
    """What inflate writes is read as BT.601 limited range with bilinear chroma, within one level of the rule."""
    ours = [f.to_ndarray() for f in filter_frames(iter_decoded(pattern), inflate_chain("lanczos"))]
    rule = [frame_to_rgb(f) for f in iter_decoded(pattern)]
    diffs = [np.abs(a.astype(int) - b) for a, b in zip(ours, rule, strict=True)]
    assert max(d.max() for d in diffs) <= 1 and np.mean([d.mean() for d in diffs]) < 0.05


def _high_frequency(raw: Path) -> float:
    frames = open_raw(raw).astype(np.float32)
    return float(np.abs(np.diff(frames, axis=2)).mean())


def test_the_inflate_chain_runs_after_the_upscale(small_encode: Path, tmp_path: Path) -> None:
    plain, sharp, soft = (tmp_path / f"{name}.raw" for name in ("plain", "sharp", "soft"))
    assert inflate_video(small_encode, plain, "lanczos", None) == FRAMES
    assert inflate_video(small_encode, sharp, "lanczos", None, filters="unsharp=5:5:1.5") == FRAMES
    assert inflate_video(small_encode, soft, "lanczos", None, filters="gblur=sigma=2") == FRAMES
    assert open_raw(sharp).shape == (FRAMES, HEIGHT, WIDTH, 3)
    assert _high_frequency(soft) < _high_frequency(plain) < _high_frequency(sharp)


def test_both_inflate_paths_rebuild_the_same_picture(small_encode: Path, tmp_path: Path) -> None:
    yuv, rgb = tmp_path / "yuv.raw", tmp_path / "rgb.raw"
    inflate_video(small_encode, yuv, "lanczos", None)
    inflate_video(small_encode, rgb, "lanczos", None, path="rgb")
    assert np.abs(open_raw(yuv).astype(int) - open_raw(rgb)).mean() < 1.5


def test_the_inflate_command_takes_a_path_and_a_chain(small_encode: Path, tmp_path: Path, capsys) -> None:
    archive_dir, inflated = small_encode.parent, tmp_path / "inflated"
    names = tmp_path / "names.txt"
    names.write_text("0.mkv\n")
    args = [str(archive_dir), str(inflated), str(names)]
    assert inflate_runtime.main([*args, "--filters", "unsharp=5:5:0.6"]) == 0
    assert open_raw(inflated / "0.raw").shape == (FRAMES, HEIGHT, WIDTH, 3)
    assert inflate_runtime.main([*args, "--path", "rgb"]) == 0
    assert inflate_runtime.main([*args, "--filters", "unsharp=foo=1"]) == 1
    assert "inflate: " in capsys.readouterr().err
    assert not (inflated / "0.raw.partial").exists()


def test_encoded_frames_take_the_size_the_chain_gives(pattern: Path, tmp_path: Path) -> None:
    frames = preprocessed(pattern, Preprocess(filters="crop=640:480"), "yuv420p")
    video = tmp_path / "crop.mkv"
    assert encode_frames(video, frames, EncodeSettings("libx264", crf=30, preset="ultrafast"), 20) == FRAMES
    with av.open(str(video)) as container:
        assert (container.streams.video[0].width, container.streams.video[0].height) == (640, 480)
