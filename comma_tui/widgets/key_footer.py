"""A compact Footer that shows the most important keys that fit, and never a clipped one.

Textual's Footer lays every shown binding out in a row and docks the palette key over the end
of it, so on a narrow terminal the last keys are cut mid-word under `^p palette`. This one keeps
the keys in the screen's order but chooses which to show by the screen's priority, until the
width runs out; the rest stay in the help screen (`?`) and the command palette.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


def key_width(key: FooterKey) -> int:
    """Cells a compact key takes, with the margin after it."""
    described = 1 + cell_len(key.description) if key.description else 0
    return cell_len(key.key_display) + described + 1


def keys_that_fit(widths: Sequence[int], ranks: Sequence[int], room: int) -> set[int]:
    """Indexes of the keys shown: by rank (lower first), each while it still fits in `room` cells."""
    shown: set[int] = set()
    for index in sorted(range(len(widths)), key=lambda i: (ranks[i], i)):
        if widths[index] <= room:
            shown.add(index)
            room -= widths[index]
    return shown


class KeyFooter(Footer):
    """The keys of the screen in front, the important ones first when they do not all fit."""

    def __init__(self, priority: Sequence[str] = ()) -> None:
        super().__init__(compact=True)
        self.priority = list(priority)
        self._rebuild_waiting = False

    async def recompose(self) -> None:
        """Rebuild the keys (the bindings changed), then fit them."""
        self._rebuild_waiting = False
        await super().recompose()
        self.fit()

    def bindings_changed(self, screen: Screen) -> None:
        """Grey or ungrey the keys in place when only that changed (the cursor moved); else rebuild them,
        once for a burst of changes (a screen shown for the first time sends several)."""
        if self.is_attached and screen is self.screen and self._bindings_ready and self._restyle():
            return
        if self._rebuild_waiting:  # the rebuild to come reads the bindings as they are then
            self._bindings_ready = True
            return
        self._rebuild_waiting = self.is_attached and screen is self.screen and screen.app.app_focus
        super().bindings_changed(screen)

    def _restyle(self) -> bool:
        """Set each key's greyed state from the screen's bindings; False when the keys themselves changed."""
        first: dict[str, tuple[str, bool]] = {}  # action -> (description, enabled), as Footer.compose takes them
        for _node, binding, enabled, _tooltip in self.screen.active_bindings.values():
            if binding.show:
                first.setdefault(binding.action, (binding.description, enabled))
        keys = [k for k in self.query_children(FooterKey) if not k.has_class("-command-palette")]
        if [(k.action, k.description) for k in keys] != [(a, d) for a, (d, _) in first.items()]:
            return False
        for key in keys:
            disabled = not first[key.action][1]
            key._disabled = disabled  # what a click on it checks
            key.set_class(disabled, "-disabled")
        return True

    def on_resize(self) -> None:
        self.fit()

    def fit(self) -> None:
        """Show the keys that fit the width, by priority; hide the others."""
        keys = [k for k in self.query_children(FooterKey) if not k.has_class("-command-palette")]
        palette = [k for k in self.query_children(FooterKey) if k.has_class("-command-palette")]
        room = self.size.width - sum(key_width(k) + 1 for k in palette)
        if not keys or room <= 0:
            return
        rank = {action: i for i, action in enumerate(self.priority)}
        # A priority names the action, not its arguments: "verdict" ranks "verdict('promoted')".
        ranks = [rank.get(k.action.removeprefix("app.").split("(")[0], len(rank)) for k in keys]
        shown = keys_that_fit([key_width(k) for k in keys], ranks, room)
        for index, key in enumerate(keys):
            key.display = index in shown
