"""Per-pair distortions, kept in a run's artifacts folder rather than in the ledger.

The engine writes `per_pair.npz` (arrays `posenet` and `segnet`) into `runs/<run_id>/`. They
are 600 numbers each per run: in the ledger they would multiply its size for a plot only the
detail screen draws. A run rejected early has NaN for the pairs it never scored.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ledger.errors import LedgerError
from ledger.records import run_id, run_number

if TYPE_CHECKING:
    import numpy as np

    from ledger.lab import Lab

PER_PAIR_NAME = "per_pair.npz"
ARCHIVE_NAME = "archive.zip"  # the run's archive, kept in its folder: what export ships and rescore inflates


@dataclass(frozen=True)
class PerPair:
    """PoseNet and SegNet distortion of every frame pair of the clip, in clip order."""

    posenet: np.ndarray
    segnet: np.ndarray
    path: Path


def per_pair_path(lab: Lab, run: str, artifacts: str | Path | None = None) -> Path | None:
    """Where a run's per-pair file is: in `runs/<run_id>/`, else in `artifacts`; None if nowhere."""
    folders = [lab.run_dir(run_id(run_number(run)))]
    if artifacts:
        folders.append(Path(artifacts))
    return next((folder / PER_PAIR_NAME for folder in folders if (folder / PER_PAIR_NAME).is_file()), None)


def load_per_pair(lab: Lab, run: str, artifacts: str | Path | None = None) -> PerPair | None:
    """A run's per-pair distortions, or None when it has none (not measured, or files removed)."""
    import numpy as np

    path = per_pair_path(lab, run, artifacts)
    if path is None:
        return None
    try:
        with np.load(path) as data:
            posenet, segnet = np.asarray(data["posenet"]), np.asarray(data["segnet"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise LedgerError(
            f"{path} cannot be read ({exc}): the run's per-pair file is damaged; rescore the run"
        ) from None
    return PerPair(posenet.astype(np.float64), segnet.astype(np.float64), path)


CURVE_NAME = "curve.jsonl"


def load_curve(folder: str | Path) -> list[dict[str, float]]:
    """A training run's curve (`curve.jsonl`: one point per line, by step), [] when it has none.

    It is read while the run appends to it, so a last line still being written is skipped.
    """
    import json

    try:
        lines = (Path(folder) / CURVE_NAME).read_text().splitlines()
    except OSError:
        return []
    points = []
    for line in lines:
        try:
            point = json.loads(line)
        except ValueError:
            continue
        if isinstance(point, dict) and isinstance(point.get("step"), int | float):
            points.append({k: float(v) for k, v in point.items() if isinstance(v, int | float)})
    return points
