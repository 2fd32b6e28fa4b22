"""Colours taken from the app's current theme, so drawings made outside CSS follow light and dark."""

from __future__ import annotations

from textual.app import App
from textual.color import Color


def theme_rgb(app: App, name: str, fallback: str = "#888888") -> tuple[int, int, int]:
    """A theme variable (`success`, `error`, `primary`...) as an RGB triple (plotext takes these)."""
    try:
        return Color.parse(app.theme_variables.get(name) or fallback).rgb
    except Exception:  # an ANSI theme names colours Color cannot mix; any readable colour will do
        return Color.parse(fallback).rgb


def theme_hex(app: App, name: str, fallback: str = "#888888") -> str:
    """A theme variable as `#rrggbb`, for Rich styles."""
    r, g, b = theme_rgb(app, name, fallback)
    return f"#{r:02x}{g:02x}{b:02x}"
