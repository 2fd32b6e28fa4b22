"""The `/` filter: text, track, status and verdict, typed (`verdict:rejected crf`) or picked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Vertical
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Input, Label, Select

from ledger import STATUSES, VERDICTS, RunView, SummaryTable
from ledger.queries import filter_runs

FIELDS = ("track", "status", "verdict")


@dataclass(frozen=True)
class RunFilter:
    """Which runs the ledger shows; empty fields match everything."""

    text: str = ""
    track: str | None = None
    status: str | None = None
    verdict: str | None = None
    hide_cancelled: bool = False

    def with_track(self, track: str | None) -> RunFilter:
        """The same filter on another track (None: every track)."""
        return replace(self, track=track)

    def with_hidden_cancelled(self, hide: bool) -> RunFilter:
        """The same filter, hiding cancelled runs or not."""
        return replace(self, hide_cancelled=hide)

    def apply(self, table: SummaryTable) -> RunView:
        """The runs of `table` this filter lets through (the table holds only the runs in view)."""
        status: str | list[str] | None = self.status
        if self.hide_cancelled:
            status = [s for s in ([self.status] if self.status else STATUSES) if s != "cancelled"]
        return filter_runs(table, status, self.track, self.verdict, self.text or None, archived=None)

    def __bool__(self) -> bool:
        return bool(self.text or self.track or self.status or self.verdict or self.hide_cancelled)

    def describe(self) -> str:
        """`verdict:rejected track:main "crf" -cancelled`, or empty."""
        parts = [f"{name}:{getattr(self, name)}" for name in FIELDS if getattr(self, name)]
        if self.text:
            parts.append(f'"{self.text}"')
        if self.hide_cancelled:
            parts.append("-cancelled")
        return " ".join(parts)


def parse_filter(text: str, tracks: Sequence[str] = ()) -> RunFilter:
    """Read `track:main status:failed verdict:rejected words...`; a bad value raises ValueError."""
    values: dict[str, str | None] = dict.fromkeys(FIELDS)
    words = []
    for word in text.split():
        name, sep, value = word.partition(":")
        if sep and name in FIELDS:
            allowed = {"track": tracks, "status": STATUSES, "verdict": (*VERDICTS, "none")}[name]
            if name != "track" and value not in allowed:
                raise ValueError(f"{name}:{value} is not known: use one of {', '.join(allowed)}")
            values[name] = value or None
        else:
            words.append(word)
    return RunFilter(" ".join(words), values["track"], values["status"], values["verdict"])


class FilterScreen(ModalScreen[RunFilter | None]):
    """Edit the filter; Enter applies, Escape leaves it, Ctrl+R clears every field (and stays open)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Cancel"),
        Binding("ctrl+s", "apply", "Apply", priority=True),
        Binding("ctrl+r", "clear", "Clear all", priority=True),
    ]

    def __init__(self, current: RunFilter, tracks: Sequence[str]) -> None:
        super().__init__()
        self.current = current
        self.tracks = list(tracks)

    def compose(self) -> ComposeResult:
        typed = " ".join(
            [f"{n}:{getattr(self.current, n)}" for n in ("status", "verdict") if getattr(self.current, n)]
            + ([self.current.text] if self.current.text else [])
        )
        with Vertical(classes="dialog"):
            yield Label("Filter runs", classes="dialog-title")
            yield Input(typed, placeholder="text, or status:failed verdict:rejected track:main", id="filter-text")
            with Grid(classes="filter-grid"):
                yield Label("track")
                # Compact (one line each): full-height selects do not fit an 80x24 terminal, and the
                # last one was squeezed to an empty box.
                yield Select(
                    [(t, t) for t in self.tracks], value=self.current.track or Select.NULL, id="track", compact=True
                )
                yield Label("status")
                yield Select(
                    [(s, s) for s in STATUSES], value=self.current.status or Select.NULL, id="status", compact=True
                )
                yield Label("verdict")
                yield Select(
                    [(v, v) for v in (*VERDICTS, "none")],
                    value=self.current.verdict or Select.NULL,
                    id="verdict",
                    compact=True,
                )
                yield Label("")
                yield Checkbox("hide cancelled runs", self.current.hide_cancelled, id="hide-cancelled", compact=True)
            yield Label("", id="filter-error", classes="error", markup=False)
            yield Label("Enter apply · Ctrl+R clear all · Esc cancel", classes="dialog-hint")

    def _read(self) -> RunFilter | None:
        try:
            typed = parse_filter(self.query_one("#filter-text", Input).value, self.tracks)
        except ValueError as exc:
            self.query_one("#filter-error", Label).update(str(exc))
            return None
        picked = {}
        for name in FIELDS:
            value = self.query_one(f"#{name}", Select).value
            picked[name] = None if value is Select.NULL else str(value)
        # What is typed wins over what is picked: typing is the quick way.
        return RunFilter(
            typed.text,
            typed.track or picked["track"],
            typed.status or picked["status"],
            typed.verdict or picked["verdict"],
            self.query_one("#hide-cancelled", Checkbox).value,
        )

    @on(Input.Submitted)
    def action_apply(self) -> None:
        """Apply the filter."""
        found = self._read()
        if found is not None:
            self.dismiss(found)

    def action_clear(self) -> None:
        """Empty every field; the dialog stays open (Enter then shows every run)."""
        self.query_one("#filter-text", Input).value = ""
        for name in FIELDS:
            self.query_one(f"#{name}", Select).clear()
        self.query_one("#hide-cancelled", Checkbox).value = False
        self.query_one("#filter-error", Label).update("")
        self.query_one("#filter-text", Input).focus()
