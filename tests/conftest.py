"""Shared fixtures: demo assets are made once per test session, on a short clip.

The engine is imported inside the fixtures that need it, so that the ledger's and the console's
tests run without loading torch.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.ledger.fixtures import end

if TYPE_CHECKING:
    from engine.demo.assets import DemoAssets
    from engine.media.codecs import EncodeSettings

TEST_FRAMES = 12


@pytest.fixture(scope="session")
def demo_assets(tmp_path_factory: pytest.TempPathFactory) -> DemoAssets:
    """A 12-frame synthetic clip and a demo scorer calibrated on it."""
    from engine.demo.assets import make_demo_assets

    return make_demo_assets(tmp_path_factory.mktemp("demo"), frames=TEST_FRAMES)


def encode_and_inflate(clip: Path, out_dir: Path, settings: EncodeSettings) -> tuple[Path, Path]:
    """Encode a clip with `settings` and decode it back to a .raw; returns (encoded, raw)."""
    from engine.media.codecs import VideoEncoder
    from engine.media.video import HEIGHT, WIDTH, RawWriter, iter_frames

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
    from engine.media.video import RawWriter, iter_frames

    raw = tmp_path_factory.mktemp("raw") / "0.raw"
    with RawWriter(raw) as writer:
        for frame in iter_frames(demo_assets.clip):
            writer.write(frame)
    return raw


@pytest.fixture(scope="session")
def light_and_heavy(demo_assets: DemoAssets, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """The demo clip through a light and a heavy svt-av1 encode: {name: (encoded, raw)}."""
    from engine.media.codecs import EncodeSettings

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


@pytest.fixture
def no_folder_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """A filesystem (some network and FUSE mounts) that refuses to fsync a folder."""
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(22, "Invalid argument")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Real small disks for the faults of a machine: `mount(megabytes)` is a folder on a fresh tmpfs of that size,
    `mount(megabytes, read_only=True)` a read-only one, `mount(folder=F)` F bound onto itself read-only.

    Mounting needs root (the test is skipped without it); every mount is undone at teardown.
    """
    mounted: list[Path] = []

    def run(*args: str) -> None:
        if os.geteuid() != 0:
            pytest.skip("mounting a small disk needs root")
        done = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"cannot mount here: {done.stderr.strip()}")

    def make(megabytes: float = 0, read_only: bool = False, folder: Path | None = None) -> Path:
        if folder is not None:
            run("--bind", str(folder), str(folder))
            mounted.append(folder)
            run("-o", "remount,bind,ro", str(folder))
            return folder
        point = tmp_path / f"disk{len(mounted)}"
        point.mkdir()
        options = f"size={int(megabytes * 2**20)}" + (",ro" if read_only else "")
        run("-t", "tmpfs", "-o", options, "tmpfs", str(point))
        mounted.append(point)
        return point

    yield make
    for point in reversed(mounted):
        subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)
