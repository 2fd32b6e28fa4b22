"""Shared fixtures: demo assets are made once per test session, on a short clip."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.demo.assets import DemoAssets, make_demo_assets
from engine.media.codecs import EncodeSettings, VideoEncoder
from engine.media.video import HEIGHT, WIDTH, RawWriter, iter_frames
from tests.ledger.fixtures import end

TEST_FRAMES = 12


@pytest.fixture(scope="session")
def demo_assets(tmp_path_factory: pytest.TempPathFactory) -> DemoAssets:
    """A 12-frame synthetic clip and a demo scorer calibrated on it."""
    return make_demo_assets(tmp_path_factory.mktemp("demo"), frames=TEST_FRAMES)


def encode_and_inflate(clip: Path, out_dir: Path, settings: EncodeSettings) -> tuple[Path, Path]:
    """Encode a clip with `settings` and decode it back to a .raw; returns (encoded, raw)."""
    encoded = out_dir / f"{settings.codec}-crf{settings.crf}.mkv"
    with VideoEncoder(encoded, settings, WIDTH, HEIGHT) as encoder:
        for frame in iter_frames(clip):
            encoder.write(frame)
    raw = out_dir / f"{settings.codec}-crf{settings.crf}.raw"
    with RawWriter(raw) as writer:
        for frame in iter_frames(encoded):
            writer.write(frame)
    return encoded, raw


@pytest.fixture(scope="session")
def reference_raw(demo_assets: DemoAssets, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo clip decoded to a .raw: a candidate identical to the reference."""
    raw = tmp_path_factory.mktemp("raw") / "0.raw"
    with RawWriter(raw) as writer:
        for frame in iter_frames(demo_assets.clip):
            writer.write(frame)
    return raw


@pytest.fixture(scope="session")
def light_and_heavy(demo_assets: DemoAssets, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """The demo clip through a light and a heavy svt-av1 encode: {name: (encoded, raw)}."""
    out = tmp_path_factory.mktemp("encodes")
    return {
        "light": encode_and_inflate(demo_assets.clip, out, EncodeSettings("libsvtav1", crf=20, preset="12")),
        "heavy": encode_and_inflate(demo_assets.clip, out, EncodeSettings("libsvtav1", crf=60, preset="12")),
    }


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    """Child processes a test starts (append them): each is ended at teardown, so none outlives it."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        end(proc)
