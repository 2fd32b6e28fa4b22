"""`?`: every key of the screen behind, with what it does, and what the symbols mean."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Label, Static

from comma_tui.widgets import format as fmt

SYMBOLS = (
    (fmt.FLOOR, "the floor: the track's latest promotion, the score to beat"),
    (fmt.PROMOTED, "promoted: lowered the floor by more than epsilon"),
    (fmt.REJECTED, "rejected: did not lower the floor (the reason says by how much)"),
    (f"{fmt.ESTIMATE}24.310", "an estimate: rejected early after some of its pairs; F scores it fully"),
    ("!", "failed (the detail screen shows why, and the log)"),
    ("▶ ○ ⊘ ↺", "running, queued, cancelled, interrupted"),
    ("Δ floor", "score minus the current floor of the run's track and scorer"),
)


def keys_table(screen: Screen) -> Table:
    """The screen's active keys: the lab's actions first, then moving around."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    actions: list[tuple[str, str]] = []
    moving: list[tuple[str, str]] = []
    seen = set()
    for active in screen.active_bindings.values():
        binding = active.binding
        # Textual's own keys (focus, copy) carry no tooltip: they are not this console's.
        ours = binding.tooltip or active.node not in (screen, screen.app)
        if not binding.description or binding.system or not ours:
            continue
        display = binding.key_display or screen.app.get_key_display(binding)
        if (binding.action, display) in seen:
            continue  # `+` is bound to both plus and = : one line
        seen.add((binding.action, display))
        row = (display, binding.tooltip or binding.description)
        # Bindings of the screen and the app act on the lab; the focused widget's move around it.
        (actions if active.node in (screen, screen.app) else moving).append(row)
    for display, text in actions:
        table.add_row(display, text)
    if moving:
        table.add_row("", "")
        for display, text in moving:
            table.add_row(display, Text(text, style="dim"))
    return table


class HelpScreen(ModalScreen[None]):
    """The keys of `behind`, the screen it was opened over."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss(None)", "Close", key_display="esc"),
    ]

    def __init__(self, behind: Screen) -> None:
        super().__init__()
        self.behind = behind

    def compose(self) -> ComposeResult:
        symbols = Table.grid(padding=(0, 2))
        symbols.add_column(style="bold", no_wrap=True)
        symbols.add_column()
        for mark, meaning in SYMBOLS:
            symbols.add_row(mark, meaning)
        with Vertical(classes="dialog help"):
            yield Label("Keys", classes="dialog-title")
            with VerticalScroll():
                yield Static(keys_table(self.behind))
                yield Static(Text("\nSymbols", style="bold"))
                yield Static(symbols)
                yield Static(
                    Text(
                        "\nEvery key is also in the command palette (ctrl+p). "
                        "Quitting leaves the queue running; `comma-tui sched stop` stops it.",
                        style="dim",
                    )
                )
            yield Label("Esc close", classes="dialog-hint")
