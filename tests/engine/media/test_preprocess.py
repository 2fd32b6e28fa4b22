"""Before and after the codec: denoise, resize, unsharp, and the standalone inflate command."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.media import inflate_runtime
from engine.media.codecs import EncodeSettings, VideoEncoder
from engine.media.inflate_runtime import resize_rgb, unsharp
from engine.media.preprocess import Denoiser, preprocess_frames
from engine.media.video import HEIGHT, WIDTH, open_raw


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
