"""Where demo assets lie, as in the challenge repo (`videos/0.mkv`, `models/*.safetensors`), without loading torch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.scoring.weights import POSENET_FILE, SEGNET_FILE

CLIP_NAME = "0.mkv"


@dataclass(frozen=True)
class DemoAssets:
    """Where the demo clip and weights are."""

    root: Path

    @property
    def clip(self) -> Path:
        return self.root / "videos" / CLIP_NAME

    @property
    def models(self) -> Path:
        return self.root / "models"

    def exist(self) -> bool:
        """Whether the clip and both weight files are already there."""
        return self.clip.is_file() and all((self.models / f).is_file() for f in (POSENET_FILE, SEGNET_FILE))
