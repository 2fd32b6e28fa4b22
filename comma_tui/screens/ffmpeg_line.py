"""Ctrl+F in the new-run form: paste an ffmpeg command line, see what it comes to, and fill the form with it.

The line is read as `comma-tui spec from-ffmpeg` reads it, on every change: the notes say what a
spec cannot express (one option per line) before anything is applied.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, TextArea

from engine.runs.from_ffmpeg import Translation, spec_from_ffmpeg
from ledger.errors import UserError


class FfmpegLinePrompt(ModalScreen[Translation | None]):
    """A multi-line box for a pasted ffmpeg command (its `\\` continuations too); Ctrl+S fills the form."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Cancel"),
        Binding("ctrl+s", "apply", "Fill the form", priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.translation: Translation | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("New run from an ffmpeg command line", classes="dialog-title")
            yield TextArea(id="ffmpeg-line", soft_wrap=True, show_line_numbers=False)
            yield Label("", id="ffmpeg-notes", classes="error", markup=False)
            yield Label("Paste the line · Ctrl+S fill the form · Esc cancel", classes="dialog-hint")

    @on(TextArea.Changed)
    def _read(self, event: TextArea.Changed) -> None:
        notes = self.query_one("#ffmpeg-notes", Label)
        line = event.text_area.text.strip()
        self.translation = None
        try:
            self.translation = spec_from_ffmpeg(line) if line else None
        except UserError as exc:
            notes.update(f"✗ {exc}")
        else:
            notes.update("\n".join(f"left out: {note}" for note in self.translation.notes) if self.translation else "")
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Filling the form waits for a line that reads as a spec (shown greyed out until then)."""
        return None if action == "apply" and self.translation is None else True

    def action_apply(self) -> None:
        """Give the translation to the form, if the line reads as a spec."""
        if self.translation is not None:
            self.dismiss(self.translation)
