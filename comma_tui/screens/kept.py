"""Screens the app keeps and shows again (the new-run form, a run's detail): built before they are
first shown, and not restyled on each return.

Textual restyles every widget of a screen each time it is shown again, in case a style changed
while it was away. For a kept screen of hundreds of widgets that was most of what its key cost,
and nothing restyles it while it is away except a change of theme, which is still honoured.

Textual composes, styles and lays out a screen when it is first shown. For the run detail that
was 0.3 s on the first `enter` of a session; `build_unseen` does it beforehand, while the console
waits. It reaches into Textual's screen stack (`_get_screen`, `_refresh_layout`), which is why
Textual is pinned below 9.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from textual import events
from textual.app import App
from textual.screen import Screen

_STYLED_IN: WeakKeyDictionary[Screen[Any], str] = WeakKeyDictionary()  # screen -> the theme it was styled in


async def build_unseen(app: App[Any], screen: Screen[Any], name: str) -> None:
    """Install `screen` under `name`, then compose, style, lay out and render it without showing it.

    Its first showing then costs what every later one does. Pushing the screen before this ends
    is safe: Textual then finishes the work as usual. A closing app builds nothing.
    """
    if not app.is_running:  # a screen started now would be closed before its children mount
        return
    app.install_screen(screen, name=name)
    _, mounted = app._get_screen(screen)
    await mounted
    if screen.is_current:
        return
    screen.update_node_styles(animate=False)
    _STYLED_IN[screen] = app.theme
    render_unseen(screen)


def render_unseen(screen: Screen[Any]) -> None:
    """Lay out and render a mounted screen that is not shown, so that showing it paints what is
    already rendered (a screen on show Textual renders itself)."""
    for _ in range(2):  # a second time when the first brought a scrollbar (or took one away)
        screen._layout_required = False
        screen._refresh_layout(screen.app.size)
        if not screen._layout_required:
            break
    screen._compositor.render_update(full=True)  # every widget renders into its cache


def resume_without_restyle(screen: Screen[Any], event: events.ScreenResume) -> None:
    """Call from a kept screen's `on_screen_resume`: skip the restyle unless the theme changed."""
    theme = screen.app.theme
    if _STYLED_IN.get(screen) == theme:
        event.refresh_styles = False
    _STYLED_IN[screen] = theme
