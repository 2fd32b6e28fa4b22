"""`s`: a sweep of one or two axes around the selected run, every grid point checked before queueing.

Values are written as on the command line (`engine.runs.sweep.parse_sweep`): a list (`33,35,37`,
`lanczos,bicubic`), an inclusive range (`32..36`, `20..40:5`) or both (`31,33..35`). The form
shows the grid it would queue, or the first point that cannot run; points a finished run
measured already are named and left out. A sweep of more than `ASK_ABOVE` runs asks first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Vertical
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input, Label

from comma_tui.screens.confirm import Confirm
from comma_tui.screens.run_form import LEDGER_KEYS
from engine.runs.measured import measure_key
from engine.runs.spec import RunSpec, SpecError, resolve_axis
from engine.runs.sweep import grid, parse_sweep
from ledger import RunRecord, RunSummary
from ledger.errors import UserError

ROWS = 2
ASK_ABOVE = 20


@dataclass(frozen=True)
class SweepRequest:
    """What the sweep form asks to queue."""

    base: RunSpec
    sweeps: dict[str, list[Any]]
    parent: str | None
    track: str
    priority: int = 0


def axis_names(spec: RunSpec) -> list[str]:
    """Every axis a sweep may vary, by its short name where that is unambiguous."""
    names = []
    for section, table in spec.to_dict().items():
        for key in table:
            if section == "run" and key in LEDGER_KEYS:
                continue
            try:
                resolve_axis(key)
                names.append(key)
            except SpecError:
                names.append(f"{section}.{key}")
    return names


class SweepForm(ModalScreen[SweepRequest | None]):
    """Pick one or two axes and their values; Ctrl+S (or Enter) queues the grid."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Cancel"),
        Binding("ctrl+s", "submit", "Queue", priority=True),
    ]

    def __init__(
        self, spec: RunSpec, parent: RunSummary | None = None, measured: Mapping[str, RunRecord] | None = None
    ) -> None:
        super().__init__()
        self.base = spec
        self.base_run = parent
        self.measured = measured or {}
        self.request: SweepRequest | None = None
        self.points = 0
        self.twins: list[tuple[str, RunRecord]] = []  # (point, the run that measured it already)

    def compose(self) -> ComposeResult:
        origin = f"around {self.base_run.id}" if self.base_run else "around the defaults"
        suggester = SuggestFromList(axis_names(self.base), case_sensitive=False)
        with Vertical(classes="dialog"):
            yield Label(f"Sweep {origin}", classes="dialog-title", markup=False)
            with Grid(classes="sweep-grid"):
                for row in range(1, ROWS + 1):
                    yield Input(
                        "crf" if row == 1 else "",
                        placeholder="axis (crf, film_grain…)",
                        suggester=suggester,
                        id=f"axis-{row}",
                    )
                    yield Input("", placeholder="values: 33,35 or 32..36 or 20..40:5", id=f"values-{row}")
                yield Input(self.base_run.track if self.base_run else "main", placeholder="track", id="sweep-track")
                yield Input("0", placeholder="priority", id="sweep-priority", type="integer")
            yield Label("", id="sweep-preview", markup=False)
            yield Label("", id="sweep-error", classes="error", markup=False)
            yield Label("Ctrl+S or Enter: queue · Tab: next field · Esc: cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#values-1", Input).focus()

    def _read(self) -> SweepRequest:
        sweeps: dict[str, list[Any]] = {}
        for row in range(1, ROWS + 1):
            axis = self.query_one(f"#axis-{row}", Input).value.strip()
            values = self.query_one(f"#values-{row}", Input).value
            if not axis and not values.strip():
                continue
            if not axis:
                raise SpecError(f"row {row} has values but no axis: name one (e.g. crf)")
            section, key = resolve_axis(axis)
            if section == "run" and key in LEDGER_KEYS:
                raise SpecError(f"{axis} is the ledger's, not an axis to sweep")
            sweeps[axis] = parse_sweep(f"{axis}={values}")[1]
        if not sweeps:
            raise SpecError("name an axis and its values (e.g. crf and 33,35,37)")
        track = self.query_one("#sweep-track", Input).value.strip()
        if not track:
            raise SpecError("the track cannot be empty (e.g. main)")
        priority = int(self.query_one("#sweep-priority", Input).value or 0)
        points = grid(self.base, sweeps)  # every point checked now, not when queueing
        self.twins = [(label, twin) for label, spec in points if (twin := self.measured.get(measure_key(spec)))]
        self.points = len(points) - len(self.twins)
        return SweepRequest(self.base, sweeps, self.base_run.id if self.base_run else None, track, priority)

    @on(Input.Changed)
    def _check(self) -> None:
        preview, error = self.query_one("#sweep-preview", Label), self.query_one("#sweep-error", Label)
        try:
            self.request = self._read()
        except (UserError, ValueError) as exc:
            self.request = None
            error.update(f"✗ {exc}")
            preview.update("")
            return
        error.update("")
        shown = " × ".join(f"{axis} {', '.join(map(str, values))}" for axis, values in self.request.sweeps.items())
        text = f"Queues {self.points} run{'s' if self.points != 1 else ''}: {shown}"
        if self.twins:
            named = ", ".join(f"{twin.id} ({label})" for label, twin in self.twins[:3])
            more = ", …" if len(self.twins) > 3 else ""
            total = self.points + len(self.twins)
            text += f"\n{len(self.twins)} of {total} already measured: {named}{more} (left out)"
        preview.update(text)

    @on(Input.Submitted)
    def action_submit(self) -> None:
        """Queue the grid, if every point can run; a large one asks first."""
        self._check()
        request = self.request
        if request is None:
            return
        if self.points == 0:
            self.query_one("#sweep-error", Label).update("✗ every point was measured already: nothing to queue")
            return
        if self.points <= ASK_ABOVE:
            self.dismiss(request)
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.dismiss(request)

        self.app.push_screen(
            Confirm(f"Queue {self.points} runs?", "A sweep this large keeps the queue busy for a long while."),
            answer,
        )
