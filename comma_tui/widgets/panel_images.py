"""What the compare view's third panel can show, made from a pair's frames and SegNet class maps.

- disagreement: the pixels whose SegNet class differs between the two sides, tinted by the
  candidate's class (vivid colours), over the candidate's frame dimmed (where SegNet agrees);
- absolute difference x4: |reference - candidate| per channel, four times brighter;
- classes: the candidate's SegNet class map in the comma10k palette.
"""

from __future__ import annotations

import numpy as np

THIRD_PANELS = ("disagreement", "difference x4", "candidate classes")
# comma10k's colours: road, lane markings, undrivable, movable, my car.
CLASS_COLOURS = np.array(
    [[64, 32, 32], [255, 0, 0], [128, 128, 96], [0, 255, 102], [204, 0, 255]],
    dtype=np.uint8,
)
# Vivid tints for the disagreement panel, one per class the candidate put there: comma10k's road
# colour is too dark to show over a dimmed frame.
TINTS = np.array([[255, 0, 255], [255, 40, 40], [255, 230, 0], [0, 255, 102], [0, 200, 255]], dtype=np.uint8)
_DIM, _TINT = 0.3, 0.75


def class_colours(classes: np.ndarray) -> np.ndarray:
    """A class map (H, W) as RGB (H, W, 3) in the comma10k palette (unknown classes grey)."""
    palette = np.vstack([CLASS_COLOURS, np.full((256 - len(CLASS_COLOURS), 3), 128, dtype=np.uint8)])
    return palette[classes]


def disagreement(candidate: np.ndarray, reference_classes: np.ndarray, candidate_classes: np.ndarray) -> np.ndarray:
    """The candidate dimmed, with the pixels whose class differs tinted by the candidate's class."""
    out = candidate.astype(np.float32) * _DIM
    differ = reference_classes != candidate_classes
    tint = TINTS[np.minimum(candidate_classes, len(TINTS) - 1)].astype(np.float32)
    out[differ] = candidate[differ] * (1 - _TINT) + tint[differ] * _TINT
    return out.round().clip(0, 255).astype(np.uint8)


def difference_x4(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """|reference - candidate| per channel, times four, clipped."""
    diff = np.abs(reference.astype(np.int16) - candidate.astype(np.int16)) * 4
    return diff.clip(0, 255).astype(np.uint8)


def disagreeing_share(reference_classes: np.ndarray, candidate_classes: np.ndarray) -> float:
    """The share of pixels whose class differs: the pair's SegNet distortion, as the previews hold it."""
    return float((reference_classes != candidate_classes).mean())
