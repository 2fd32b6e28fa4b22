"""One line of the run's per-pair SegNet distortion across the clip, with the pair on show marked."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.text import Text
from textual.app import RenderResult
from textual.widget import Widget

BARS = "▁▂▃▄▅▆▇█"
UNSCORED = "·"


def strip_text(values: Sequence[float], current: int, width: int) -> Text:
    """`values` spread over `width` cells (a cell holding several pairs shows their worst), `current` reversed."""
    if not values or width < 1:
        return Text("no per-pair distortions", style="dim")
    count = len(values)
    top = max((v for v in values if math.isfinite(v)), default=0.0) or 1.0
    text = Text()
    for cell in range(width):
        first = cell * count // width
        chunk = [v for v in values[first : max(first + 1, (cell + 1) * count // width)] if math.isfinite(v)]
        glyph = BARS[min(len(BARS) - 1, int(max(chunk) / top * (len(BARS) - 1)))] if chunk else UNSCORED
        here = first <= current < max(first + 1, (cell + 1) * count // width)
        text.append(glyph, style="bold reverse" if here else "")
    return text


class DistortionStrip(Widget):
    """The per-pair strip under the compare view's panels."""

    DEFAULT_CSS = """
    DistortionStrip { height: 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.values: Sequence[float] = ()
        self.current = 0

    def show(self, values: Sequence[float], current: int) -> None:
        """Draw `values` with pair `current` marked."""
        self.values, self.current = values, current
        self.refresh()

    def render(self) -> RenderResult:
        """The strip at the widget's width."""
        return strip_text(self.values, self.current, self.size.width)
