"""Panes that never ask for a second layout: blocks of text, and the rows and columns that hold them.

After a layout, Textual gives each widget its virtual (scrollable) size, and a widget whose virtual
size changed asks for another layout and a repaint, in case a scrollbar must come or go. These
panes never scroll (the screen around them does), so that second layout found what the first had
found and the first paint had painted: on a run's detail it was a sixth of what `enter` cost.
"""

from __future__ import annotations

from textual.containers import Horizontal, Vertical
from textual.geometry import Size
from textual.reactive import Reactive
from textual.widgets import Static


class _NoRelayout:
    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False, repaint=False)


class Pane(_NoRelayout, Static):
    """A block of text (a `Static`) that never scrolls."""


class PaneColumn(_NoRelayout, Vertical):
    """Panes one above the other (a `Vertical`) that never scroll."""


class PaneRow(_NoRelayout, Horizontal):
    """Panes side by side (a `Horizontal`) that never scroll."""
