"""The scorer's weight files: their names, their checks and their fingerprint, without loading torch.

`comma-tui init`, a lab made on first use and the checks before a run is recorded read the
weights here in a fraction of a second; `engine.scoring.scorer` builds the networks from them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from safetensors import SafetensorError, safe_open

from engine.lfs import refuse_lfs_pointer
from ledger.errors import UserError
from ledger.records import short_fingerprint

POSENET_FILE = "posenet.safetensors"
SEGNET_FILE = "segnet.safetensors"
DEMO_METADATA_KEY = "comma_tui_demo"


@dataclass(frozen=True)
class Fingerprint:
    """Identity of a pair of weight files: sha256 of both, and whether they are the demo scorer."""

    posenet_sha256: str
    segnet_sha256: str
    demo: bool

    @property
    def full(self) -> str:
        """One hash over both files' hashes."""
        return hashlib.sha256(f"{self.posenet_sha256}:{self.segnet_sha256}".encode()).hexdigest()

    @property
    def short(self) -> str:
        """The form shown to users; the demo scorer says so, so nobody mistakes it."""
        return short_fingerprint(self.full, self.demo)


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_weight_file(path: Path) -> bool:
    """Raise a user error for anything but a readable safetensors file; return its demo flag."""
    if not path.is_file():
        raise UserError(
            f"{path} not found: point --models at the challenge repo's models/ folder "
            "(or make demo weights with `comma-tui demo-assets DIR`)"
        )
    refuse_lfs_pointer(path, "weights")
    try:
        # The numpy view reads the header alone, and keeps torch unloaded.
        with safe_open(str(path), framework="numpy") as weights:
            metadata = weights.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(
            f"{path} is not a readable safetensors file ({exc}): it is truncated or of another "
            "format; fetch it again (git lfs pull in the challenge checkout)"
        ) from None
    return metadata.get(DEMO_METADATA_KEY) == "1"


def check_weights(models_dir: str | Path) -> bool:
    """Check that both weight files are there and readable; returns whether they are the demo scorer's."""
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        raise UserError(
            f"models folder {models_dir} not found: point --models at the challenge repo's models/ "
            "folder (or make demo weights with `comma-tui demo-assets DIR`)"
        )
    # Both files are checked whatever the first one is: a missing second file is the user's to fix.
    demo = [_check_weight_file(models_dir / name) for name in (POSENET_FILE, SEGNET_FILE)]
    return all(demo)


def read_fingerprint(models_dir: str | Path) -> Fingerprint:
    """Check both weight files and hash them, without building the networks."""
    demo = check_weights(models_dir)
    models_dir = Path(models_dir)
    return Fingerprint(file_sha256(models_dir / POSENET_FILE), file_sha256(models_dir / SEGNET_FILE), demo)
