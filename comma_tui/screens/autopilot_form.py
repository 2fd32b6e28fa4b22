"""`A`: start an autopilot on the current track, its axes prefilled from the floor's spec.

Axes are written as sweeps are (`crf=28..40 film_grain=0,10,22`): a range `a..b` is searched
as a range, a list as choices. The form writes the search file the CLI would take
(`comma-tui autopilot start`); the lab checks it against its ledger when it starts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from engine.runs.spec import RunSpec, SpecError, parse_axis_value, resolve_axis
from engine.runs.sweep import parse_sweep
from ledger import RunSummary
from ledger.errors import UserError

DEFAULT_BUDGET = 20
GRAIN_CHOICES = (0, 10, 22)


@dataclass(frozen=True)
class AutopilotRequest:
    """The search file the form wrote, for its track."""

    track: str
    text: str


def default_axes(spec: RunSpec) -> str:
    """The floor's neighbourhood as the form first shows it: crf ±6 and a few film grains."""
    crf = spec.encode.crf
    axes = f"crf={max(crf - 6, 0)}..{crf + 6}"
    if spec.encode.codec == "libsvtav1":
        grains = sorted({*GRAIN_CHOICES, spec.encode.film_grain})
        axes += f" film_grain={','.join(map(str, grains))}"
    return axes


def _axis_line(text: str) -> str:
    axis, values = parse_sweep(text)
    section, key = resolve_axis(axis)
    body = text.partition("=")[2].strip()
    if ".." in body and "," not in body and ":" not in body:
        low, high = values[0], values[-1]
        return f'"{section}.{key}" = {{ low = {low}, high = {high} }}'
    typed = [parse_axis_value(axis, v) if isinstance(v, str) else v for v in values]
    return f'"{section}.{key}" = {{ choices = {json.dumps(typed)} }}'


def search_text(track: str, axes: str, budget: str, parallel: str) -> str:
    """The search file of the form's fields; SpecError names a malformed axis or number."""
    lines = [f"track = {json.dumps(track)}"]
    for name, value in (("budget", budget), ("parallel", parallel)):
        if value.strip():
            if not value.strip().isdigit() or int(value) < 1:
                raise SpecError(f"{name} {value!r} must be a whole number >= 1")
            lines.append(f"{name} = {int(value)}")
    tokens = axes.split()
    if not tokens:
        raise SpecError("name at least one axis, e.g. crf=28..40")
    lines += ["", "[axes]", *(_axis_line(token) for token in tokens)]
    return "\n".join(lines) + "\n"


class AutopilotForm(ModalScreen[AutopilotRequest | None]):
    """Axes, budget and parallel proposals; Ctrl+S (or Enter) starts the autopilot."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Cancel"),
        Binding("ctrl+s", "submit", "Start", priority=True),
    ]

    def __init__(self, track: str, floor: RunSummary, spec: RunSpec) -> None:
        super().__init__()
        self.track = track
        self.floor = floor
        self.spec = spec
        self.request: AutopilotRequest | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Autopilot on {self.track}, around the floor {self.floor.id}", classes="dialog-title")
            with Grid(classes="autopilot-grid"):
                yield Input(default_axes(self.spec), placeholder="axes: crf=28..40 film_grain=0,10", id="ap-axes")
                yield Input(str(DEFAULT_BUDGET), placeholder="budget (runs)", id="ap-budget", type="integer")
                yield Input("", placeholder="parallel (default: the slots)", id="ap-parallel", type="integer")
            yield Label("", id="ap-error", classes="error", markup=False)
            yield Label("Ctrl+S or Enter: start · A again: stop it · Esc: cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#ap-axes", Input).focus()
        self._check()

    def _value(self, name: str) -> str:
        return self.query_one(f"#ap-{name}", Input).value

    @on(Input.Changed)
    def _check(self) -> None:
        error = self.query_one("#ap-error", Label)
        try:
            text = search_text(self.track, self._value("axes"), self._value("budget"), self._value("parallel"))
            self.request = AutopilotRequest(self.track, text)
        except (UserError, ValueError) as exc:
            self.request = None
            error.update(f"✗ {exc}")
            return
        error.update("")

    @on(Input.Submitted)
    def action_submit(self) -> None:
        """Start it, if the fields read as a search file."""
        self._check()
        if self.request is not None:
            self.dismiss(self.request)
