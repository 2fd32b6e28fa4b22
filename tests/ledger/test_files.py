"""Whole-or-absent files, on filesystems that cannot fsync a folder too."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.files import atomic_write, fsync_folder


def test_atomic_write_replaces_the_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    atomic_write(path, b"one")
    first = path.stat().st_ino
    atomic_write(path, b"two")
    assert path.read_bytes() == b"two" and path.stat().st_ino != first
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


@pytest.mark.usefixtures("no_folder_fsync")
def test_a_folder_that_cannot_be_fsynced_is_no_error(tmp_path: Path) -> None:
    fsync_folder(tmp_path)
    atomic_write(tmp_path / "state.json", b"{}")
    assert (tmp_path / "state.json").read_bytes() == b"{}"
