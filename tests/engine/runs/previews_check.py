"""What every scored run's previews folder must hold (shared by the native, learned and submission tests)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.scoring.previews import PREVIEW_BUDGET_BYTES
from ledger.previews import INDEX_NAME, PREVIEWS_FOLDER


def assert_previews(run_folder: Path) -> dict:
    """Previews whole, within the budget, the worst SegNet pair the per-pair argmax; returns the index."""
    folder = run_folder / PREVIEWS_FOLDER
    index = json.loads((folder / INDEX_NAME).read_text())
    assert sum(f.stat().st_size for f in folder.iterdir()) <= PREVIEW_BUDGET_BYTES
    names = {f.name for f in folder.iterdir()}
    for entry in index["kept"]:
        stem = f"{entry['pair']:05d}"
        assert {f"{stem}-reference.jpg", f"{stem}-candidate.jpg", f"{stem}-reference-classes.png"} <= names
        assert f"{stem}-candidate-classes.png" in names
    segnet = np.load(run_folder / "per_pair.npz")["segnet"]
    worst = [e for e in index["kept"] if "worst-segnet" in e["why"]]
    assert max(worst, key=lambda e: (e["segnet"], -e["pair"]))["pair"] == int(np.argmax(segnet))
    return index
