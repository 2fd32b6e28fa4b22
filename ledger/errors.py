"""User-facing errors, at the bottom of the house so that every layer can raise them.

A `UserError` names the thing that is wrong and the fix. The CLI prints one as a single line and
exits with status 2; the console shows it in one line. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import errno
from pathlib import Path


class UserError(Exception):
    """A mistake the user can fix (bad input, missing file); never a bug."""

    exit_code = 2


class LedgerError(UserError):
    """A ledger or lab problem the user can fix: the message names the file or run and the fix."""


class MachineFault(UserError):
    """The machine stopped the work (a full disk, a read-only or vanished folder): not a bug, and the fix is named."""


def machine_fault(exc: OSError, where: Path | None = None) -> MachineFault | None:
    """The fault of the machine behind `exc` in one line naming the path, or None when it is not one.

    `where`, the folder the work was writing in, names the place when the error names no file (a
    write to a full disk names none).
    """
    path = exc.filename or where or "the lab's folder"
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return MachineFault(f"the disk holding {path} is full: free space there, or put the lab on a bigger disk")
    if code == errno.EROFS:
        return MachineFault(
            f"{path} is on a read-only filesystem: remount it read-write, or put the lab on a writable disk"
        )
    if code in (errno.EACCES, errno.EPERM):
        return MachineFault(
            f"no permission to write {path}: change its owner or mode, or use a lab folder you can write"
        )
    if code == errno.EFBIG:
        return MachineFault(
            f"{path} outgrew the largest file allowed here (ulimit -f, or the filesystem's): raise the limit"
        )
    return None
