"""Faults of the machine told apart from bugs, each in one line that names the path and the fix."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from ledger.errors import MachineFault, machine_fault


@pytest.mark.parametrize(
    ("code", "says"),
    [
        (errno.ENOSPC, "the disk holding {path} is full: free space there"),
        (errno.EDQUOT, "the disk holding {path} is full: free space there"),
        (errno.EROFS, "{path} is on a read-only filesystem: remount it read-write"),
        (errno.EACCES, "no permission to write {path}: change its owner or mode"),
        (errno.EFBIG, "{path} outgrew the largest file allowed here (ulimit -f"),
    ],
)
def test_a_fault_names_the_file_or_else_the_folder_worked_in(tmp_path: Path, code: int, says: str) -> None:
    named = machine_fault(OSError(code, os.strerror(code), str(tmp_path / "a.raw")), tmp_path)
    assert isinstance(named, MachineFault) and says.format(path=tmp_path / "a.raw") in str(named)
    # A write to a full disk names no file: the folder the work was in stands for it.
    unnamed = machine_fault(OSError(code, os.strerror(code)), tmp_path)
    assert unnamed is not None and says.format(path=tmp_path) in str(unnamed) and "\n" not in str(unnamed)


def test_other_errors_are_not_faults_of_the_machine(tmp_path: Path) -> None:
    # A missing file may be a bug; the run's work folder tells a vanished folder apart itself.
    assert machine_fault(OSError(errno.ENOENT, "No such file or directory", str(tmp_path / "x")), tmp_path) is None
    assert machine_fault(OSError(errno.EPIPE, "Broken pipe")) is None
    assert machine_fault(OSError(errno.EINVAL, "Invalid argument", "/x")) is None
