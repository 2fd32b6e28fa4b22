"""Screens the app keeps and shows again (the new-run form, a run's detail): no restyle on each return.

Textual restyles every widget of a screen each time it is shown again, in case a style changed
while it was away. For a kept screen of hundreds of widgets that was most of what its key cost,
and nothing restyles it while it is away except a change of theme, which is still honoured.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from textual import events
from textual.screen import Screen

_STYLED_IN: WeakKeyDictionary[Screen[Any], str] = WeakKeyDictionary()  # screen -> the theme it was styled in


def resume_without_restyle(screen: Screen[Any], event: events.ScreenResume) -> None:
    """Call from a kept screen's `on_screen_resume`: skip the restyle unless the theme changed."""
    theme = screen.app.theme
    if _STYLED_IN.get(screen) == theme:
        event.refresh_styles = False
    _STYLED_IN[screen] = theme
