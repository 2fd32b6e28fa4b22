"""Git LFS pointers: what a challenge checkout holds in place of its clip and weights until `git lfs pull`.

A pointer is a short text file that starts with the LFS spec line. Every place that opens the
clip or the weights asks here first, so an un-pulled checkout is named as such instead of
failing later as a damaged video or weight file.
"""

from __future__ import annotations

from pathlib import Path

from ledger.errors import UserError

_MAGIC = b"version https://git-lfs"


def refuse_lfs_pointer(path: Path, what: str) -> None:
    """Raise a user error naming the file `path` (holding `what`: a video, weights) when it is a Git LFS pointer."""
    with open(path, "rb") as f:
        head = f.read(len(_MAGIC))
    if head == _MAGIC:
        raise UserError(f"{path} is a Git LFS pointer, not {what}: run git lfs pull in the challenge checkout")
