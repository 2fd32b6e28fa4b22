"""A run's previews folder: what the engine kept while scoring, for the console's compare view.

`runs/<run_id>/previews/` holds, for each previewed pair, the last frame of the pair (the one
SegNet saw) of the reference and of the candidate at the networks' 512x384, and both sides'
SegNet class maps, named `NNNNN-<kind>.<ext>`; `index.json`, written last, lists the pairs, why
each is there (fixed, worst-segnet, worst-posenet) and its distortions. A folder without the
index holds no previews. Only the index is read here; the images are the client's to decode.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ledger.errors import LedgerError

PREVIEWS_FOLDER = "previews"
INDEX_NAME = "index.json"
#: kind -> file name suffix: lossy frames (a lossless photo is ~300 KB), exact class maps.
PREVIEW_KINDS = {
    "reference": "reference.jpg",
    "candidate": "candidate.jpg",
    "reference-classes": "reference-classes.png",
    "candidate-classes": "candidate-classes.png",
}


def preview_name(pair: int, kind: str) -> str:
    """The file name of one kind of preview of `pair`."""
    return f"{pair:05d}-{PREVIEW_KINDS[kind]}"


@dataclass(frozen=True)
class PreviewEntry:
    """One previewed pair: its index, the frame SegNet saw, why it is kept, and its distortions."""

    pair: int
    frame: int
    why: tuple[str, ...]
    posenet: float
    segnet: float


@dataclass(frozen=True)
class PreviewIndex:
    """What a run's previews folder holds."""

    folder: Path
    pairs: int  # in the clip
    fixed: tuple[int, ...]
    entries: tuple[PreviewEntry, ...]

    def path(self, pair: int, kind: str) -> Path:
        """Where one kind of preview of `pair` is."""
        return self.folder / preview_name(pair, kind)


def load_preview_index(run_folder: Path) -> PreviewIndex | None:
    """The previews index of a run's folder, or None when it has none (an older run, or not scored)."""
    folder = run_folder / PREVIEWS_FOLDER
    path = folder / INDEX_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        entries = tuple(
            PreviewEntry(int(e["pair"]), int(e["frame"]), tuple(e["why"]), float(e["posenet"]), float(e["segnet"]))
            for e in data["kept"]
        )
        return PreviewIndex(folder, int(data["pairs"]), tuple(int(p) for p in data["fixed"]), entries)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LedgerError(f"{path} cannot be read ({exc}): the run's previews are damaged; rescore the run") from None
