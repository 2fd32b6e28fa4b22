"""What a run needs, checked in a moment before anything is made or recorded.

The clip, the weights, a submission folder, and the disk space its files take.

`comma-tui init`, a lab made on first use and `comma-tui run` ask here, so an un-pulled LFS
checkout, a missing weight file or a submission folder that is not there is one line naming it,
not a lab that cannot run or a failed run in the ledger. Nothing here loads torch.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from engine.media.container import count_clip_frames
from engine.scoring.weights import check_weights
from ledger.errors import MachineFault, UserError


def check_source(clip: Path, models: Path) -> int:
    """Check the clip (a video of at least one pair) and both weight files; returns the clip's frame count."""
    if not clip.is_file():
        raise UserError(f"source clip {clip} not found: point [source] clip (or init's --clip) at videos/0.mkv")
    frames = count_clip_frames(clip)
    if frames < 2:
        raise UserError(f"source clip {clip} has {frames} frame(s): a run needs at least one pair")
    check_weights(models)
    return frames


def check_submission(folder: Path) -> Path:
    """An official-layout submission folder (one holding inflate.sh), resolved."""
    folder = folder.resolve()
    if not folder.is_dir():
        raise UserError(f"submission {folder} is not a folder: pass the folder holding inflate.sh")
    if not (folder / "inflate.sh").is_file():
        raise UserError(f"{folder} has no inflate.sh: the official layout needs one")
    return folder


def _size(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


def check_space(folder: Path, need: int) -> None:
    """Refuse a run whose files (`need` bytes) would not fit on the disk holding `folder` (made or not yet)."""
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    if free < need:
        raise MachineFault(
            f"a run here needs {_size(need)} free on the disk holding {existing} (its inflated frames, whole) "
            f"and {_size(free)} are: free space there, or put the lab on a bigger disk"
        )
