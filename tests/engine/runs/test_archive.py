"""archive.zip: deterministic bytes, and unpacking that cannot escape its folder."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import pytest

from engine.runs.archive import unpack_archive, write_archive
from ledger.errors import UserError


def _files(tmp_path: Path) -> dict[str, Path]:
    a, b = tmp_path / "a.bin", tmp_path / "b.mkv"
    a.write_bytes(os.urandom(1000))
    b.write_bytes(b"video" * 500)
    return {"postfilter.bin": a, "0.mkv": b}


@pytest.mark.parametrize("compression", ["stored", "deflated"])
def test_same_files_same_bytes_whatever_the_file_times(compression: str, tmp_path: Path) -> None:
    files = _files(tmp_path)
    first = tmp_path / "one.zip"
    write_archive(first, files, compression)
    for path in files.values():
        os.utime(path, (1_000_000, 1_000_000))
    second = tmp_path / "two.zip"
    write_archive(second, dict(reversed(files.items())), compression)
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as zf:
        assert zf.namelist() == ["0.mkv", "postfilter.bin"]
        method = zipfile.ZIP_DEFLATED if compression == "deflated" else zipfile.ZIP_STORED
        assert {i.compress_type for i in zf.infolist()} == {method}


def test_deflated_is_smaller_for_compressible_data(tmp_path: Path) -> None:
    files = _files(tmp_path)
    assert write_archive(tmp_path / "d.zip", files, "deflated") < write_archive(tmp_path / "s.zip", files, "stored")


def test_an_archive_that_fills_the_disk_leaves_nothing_behind(tmp_path: Path, mount) -> None:
    disk = mount(0.1)
    big = tmp_path / "0.mkv"
    big.write_bytes(os.urandom(200_000))
    with pytest.raises(OSError, match="No space left on device"):
        write_archive(disk / "archive.zip", {"0.mkv": big})
    assert list(disk.iterdir()) == []


def test_unpack_round_trip(tmp_path: Path) -> None:
    files = _files(tmp_path)
    write_archive(tmp_path / "x.zip", files)
    written = unpack_archive(tmp_path / "x.zip", tmp_path / "out")
    assert sorted(p.name for p in written) == ["0.mkv", "postfilter.bin"]
    assert (tmp_path / "out" / "0.mkv").read_bytes() == files["0.mkv"].read_bytes()


def _zip_with(tmp_path: Path, name: str, data: bytes = b"x", mode: int = stat.S_IFREG | 0o644) -> Path:
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo(name)
        info.external_attr = mode << 16
        zf.writestr(info, data)
    return path


@pytest.mark.parametrize(
    ("name", "mode", "message"),
    [
        ("/etc/passwd", stat.S_IFREG | 0o644, "absolute path"),
        ("../../escape.txt", stat.S_IFREG | 0o644, "escapes its folder"),
        ("sub/../../escape.txt", stat.S_IFREG | 0o644, "escapes its folder"),
        ("link", stat.S_IFLNK | 0o777, "holds a link"),
    ],
)
def test_hostile_members_are_refused_and_nothing_is_written(tmp_path: Path, name: str, mode: int, message: str) -> None:
    evil = _zip_with(tmp_path, name, mode=mode)
    with pytest.raises(UserError, match=message):
        unpack_archive(evil, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path.parent / "escape.txt").exists()


def test_unpacked_size_is_capped(tmp_path: Path) -> None:
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bin", b"\0" * 2_000_000)
    with pytest.raises(UserError, match="over the 1,000,000-byte cap"):
        unpack_archive(path, tmp_path / "out", cap_bytes=1_000_000)


def test_missing_or_broken_archives(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        unpack_archive(tmp_path / "none.zip", tmp_path / "out")
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    with pytest.raises(UserError, match="is not a zip file"):
        unpack_archive(junk, tmp_path / "out")
