"""An RGB image drawn in half-block cells: works over SSH, in tmux and at 80x24, and snapshots as text.

Each cell is an upper half block (▀) whose foreground is the upper pixel and whose background is
the lower one, in 24-bit colour, so a cell shows two square-ish pixels. The image is scaled to
the widget (aspect kept, centred) through a `View`: a zoom level and the centre of the window
it shows, shared by every panel of the compare view so they stay zoom- and frame-synced.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

UPPER_HALF = "▀"
MAX_ZOOM = 16


@dataclass(frozen=True)
class View:
    """Which part of the image shows: `zoom` (1 = whole) around a centre given as fractions of its size."""

    zoom: int = 1
    x: float = 0.5
    y: float = 0.5

    def zoomed(self, factor: float) -> View:
        """Zoom in (factor > 1) or out around the same centre, within 1..MAX_ZOOM."""
        return replace(self, zoom=int(min(MAX_ZOOM, max(1, self.zoom * factor)))).clamped()

    def panned(self, dx: float, dy: float) -> View:
        """Move the window by a fraction of its own size."""
        return replace(self, x=self.x + dx / self.zoom, y=self.y + dy / self.zoom).clamped()

    def clamped(self) -> View:
        """The centre kept where the window stays inside the image."""
        half = 0.5 / self.zoom
        return replace(self, x=min(1 - half, max(half, self.x)), y=min(1 - half, max(half, self.y)))

    def window(self, height: int, width: int) -> tuple[int, int, int, int]:
        """(top, left, rows, columns) of an image of `height` x `width` that the view shows."""
        rows, cols = max(1, round(height / self.zoom)), max(1, round(width / self.zoom))
        top = min(height - rows, max(0, round(self.y * height - rows / 2)))
        left = min(width - cols, max(0, round(self.x * width - cols / 2)))
        return top, left, rows, cols


def halfblock_lines(image: np.ndarray, width: int, height: int, view: View = View()) -> list[Strip]:
    """The part of `image` (H, W, 3 uint8) that `view` shows, scaled into `width` x `height` cells."""
    top, left, rows, cols = view.window(image.shape[0], image.shape[1])
    crop = image[top : top + rows, left : left + cols]
    # Each cell is one pixel wide and two tall: fit rows x cols into width x 2*height, aspect kept.
    scale = min(width / cols, 2 * height / rows)
    out_w, out_h = max(1, min(width, round(cols * scale))), max(2, min(2 * height, round(rows * scale)))
    out_h -= out_h % 2
    ys = np.minimum(((np.arange(out_h) + 0.5) * rows / out_h).astype(int), rows - 1)
    xs = np.minimum(((np.arange(out_w) + 0.5) * cols / out_w).astype(int), cols - 1)
    sampled = crop[ys][:, xs]
    pad_left = (width - out_w) // 2
    pad_top = (height - out_h // 2) // 2
    blank = Strip.blank(width)
    lines = [blank] * pad_top
    styles: dict[tuple[int, ...], Style] = {}
    for row in range(out_h // 2):
        upper, lower = sampled[2 * row], sampled[2 * row + 1]
        segments = [Segment(" " * pad_left)] if pad_left else []
        for a, b in zip(upper.tolist(), lower.tolist(), strict=True):
            key = (*a, *b)
            style = styles.get(key)
            if style is None:
                style = styles[key] = Style(color=f"rgb({a[0]},{a[1]},{a[2]})", bgcolor=f"rgb({b[0]},{b[1]},{b[2]})")
            segments.append(Segment(UPPER_HALF, style))
        lines.append(Strip(segments).adjust_cell_length(width))
    return lines + [blank] * (height - len(lines))


class HalfBlockImage(Widget):
    """One panel of the compare view: an image in half-block cells, through the view it is handed."""

    DEFAULT_CSS = """
    HalfBlockImage { width: 1fr; height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.image: np.ndarray | None = None
        self.view = View()
        self._lines: list[Strip] = []
        self._drawn_for: tuple[int, int] = (0, 0)

    def show(self, image: np.ndarray | None, view: View) -> None:
        """Draw `image` (None: nothing) through `view`."""
        self.image, self.view = image, view
        self._drawn_for = (0, 0)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        """Line `y` of the drawing, made for the whole widget at once when its size or image changes."""
        width, height = self.size
        if self._drawn_for != (width, height):
            self._lines = [] if self.image is None else halfblock_lines(self.image, width, height, self.view)
            self._drawn_for = (width, height)
        return self._lines[y] if y < len(self._lines) else Strip.blank(width)
