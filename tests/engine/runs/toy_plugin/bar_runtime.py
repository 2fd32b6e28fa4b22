"""The `[bar]` post-filter's inflate-side module, shipped beside inflate.py: numpy only.

It paints the bottom `rows` rows of every inflated frame one grey `level`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np


def make(archive_dir: Path, options: dict[str, int]) -> Callable[[np.ndarray], np.ndarray]:
    """The filter for these options (nothing is read from the archive)."""
    rows, level = int(options["rows"]), int(options["level"])

    def paint(rgb: np.ndarray) -> np.ndarray:
        out = rgb.copy()
        out[-rows:] = level
        return out

    return paint
