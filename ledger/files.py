"""Files that are whole or absent: the one way comma-tui replaces a file on disk.

A process killed at any instant (SIGKILL, OOM, power loss) leaves a reader the old file or the
new one, never a mixture: the new content goes to a temporary file in the same folder, is
fsynced, renamed over the old one (atomic on POSIX), and the folder is fsynced so that the rename
itself survives. The ledger's files, the reference cache and the scheduler's state all write this way.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

TEMP_SUFFIX = ".tmp"


def temp_name(path: Path) -> Path:
    """A fresh temporary name beside `path`, hidden and unique to this writer."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


def atomic_write(path: Path, payload: bytes, durable: bool = True) -> None:
    """Replace `path` with `payload` all at once: temp file, fsync, rename, fsync the folder."""
    tmp = temp_name(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(payload)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        _drop(tmp)
        # Name the file it was for: a write to a full disk names none, the others the temporary.
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    except BaseException:
        _drop(tmp)
        raise
    if durable:
        fsync_folder(path.parent)


def _drop(tmp: Path) -> None:
    """Remove a temporary that may not exist, on a disk that may refuse even that (read-only)."""
    with contextlib.suppress(OSError):
        tmp.unlink(missing_ok=True)


def fsync_folder(folder: Path) -> None:
    """Make a rename or a new file in `folder` durable; a filesystem that cannot fsync a folder is let be."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems cannot fsync a folder; the files themselves are already on disk
    finally:
        os.close(fd)


def write_synced(path: Path, payload: bytes) -> None:
    """Write a new file and fsync it (for files inside a folder that is renamed into place whole)."""
    with open(path, "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
