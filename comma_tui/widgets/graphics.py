"""The compare view's optional higher-fidelity mode: textual-image, where the terminal speaks kitty or sixel.

textual-image asks the terminal what it supports when it is first imported, which only works
before Textual takes the terminal over; so `comma-tui --graphics` loads it before the app starts
(`load_graphics`), and the compare view offers the mode (`g`) only when it was loaded and found
a graphics protocol. Half-block cells stay the default: they work everywhere, snapshots included.
"""

from __future__ import annotations

import importlib
import sys

import numpy as np
from PIL import Image as PILImage
from textual.widget import Widget

from comma_tui.widgets.halfblock import View

_WIDGET_MODULE = "textual_image.widget"


def load_graphics() -> None:
    """Import textual-image now, while the terminal can still be asked what it speaks."""
    importlib.import_module(_WIDGET_MODULE)


def graphics_widget() -> type[Widget] | None:
    """textual-image's widget class if it was loaded and the terminal speaks kitty or sixel, else None."""
    if _WIDGET_MODULE not in sys.modules:
        return None
    from textual_image.renderable import Image as Detected
    from textual_image.renderable.sixel import Image as Sixel
    from textual_image.renderable.tgp import Image as Kitty
    from textual_image.widget import Image as GraphicsImage

    return GraphicsImage if Detected in (Sixel, Kitty) else None


def view_crop(image: np.ndarray, view: View) -> PILImage.Image:
    """The part of `image` that `view` shows, as a Pillow image for textual-image."""
    top, left, rows, cols = view.window(image.shape[0], image.shape[1])
    return PILImage.fromarray(np.ascontiguousarray(image[top : top + rows, left : left + cols]))
