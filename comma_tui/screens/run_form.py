"""`n`: a new run from a form prefilled from the selected run; every spec axis editable, checked as typed.

Each keystroke re-validates the whole spec with the engine's own `parse_spec`, so the form says
exactly what `comma-tui run` would say (the key, and the values it accepts) and marks the field.
Axes with a fixed set of values (codec, scalers, pix_fmt, post-filter...) are dropdowns. A spec
that a finished run measured already is flagged and not queued: a second measurement is a clone.
Track, label and priority are the ledger's; the parent is the run the form started from.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Select

from comma_tui.screens.ffmpeg_line import FfmpegLinePrompt
from comma_tui.screens.kept import resume_without_restyle
from comma_tui.widgets import format as fmt
from engine.media.codecs import PIX_FMTS
from engine.media.inflate_runtime import PATHS
from engine.runs.from_ffmpeg import Translation
from engine.runs.measured import measure_key
from engine.runs.registry import registry
from engine.runs.spec import (
    COMPRESSIONS,
    PIXEL_LOSSES,
    POSTFILTERS,
    QUANT_MODES,
    SCALERS,
    RunSpec,
    SourceSpec,
    parse_axis_value,
    parse_spec,
)
from ledger import RunRecord, RunSummary
from ledger.errors import UserError

#: Run-section keys kept out of the axes: the ledger records them for every run (as track, label,
#: parent), and copying them into the spec would list them as changes of every child.
LEDGER_KEYS = frozenset({"track", "label", "notes", "parent"})
#: Axes that take one of a fixed set of values: the form offers them as dropdowns.
CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("preprocess", "path"): PATHS,
    ("preprocess", "scaler"): SCALERS,
    ("encode", "pix_fmt"): tuple(PIX_FMTS),
    ("archive", "compression"): COMPRESSIONS,
    ("inflate", "path"): PATHS,
    ("inflate", "scaler"): SCALERS,
    ("inflate", "postfilter"): POSTFILTERS,
    ("inflate", "quant"): QUANT_MODES,
    ("inflate", "pixel_loss"): PIXEL_LOSSES,
}


@dataclass(frozen=True)
class FormStart:
    """What a new-run form starts from: a spec (the parent's, or the defaults) and what checks it."""

    spec: RunSpec
    source: SourceSpec
    parent: RunSummary | None
    tracks: Sequence[str]
    measured: Mapping[str, RunRecord]  # measure_key -> the finished run that measured it


@dataclass(frozen=True)
class RunRequest:
    """What the form asks to queue."""

    spec: RunSpec
    track: str
    label: str
    parent: str | None
    priority: int = 0


def choices(section: str, key: str) -> tuple[str, ...] | None:
    """The values an axis takes when they are a fixed set (a dropdown), else None."""
    if (section, key) == ("encode", "codec"):
        return tuple(registry().codecs)  # PyAV's, the neural codec and the installed plug-ins'
    return CHOICES.get((section, key))


def shape(spec: RunSpec) -> tuple[str, ...]:
    """The fields a spec needs in the form: a neural run's has its [neural] section, say."""
    return tuple(f"{section}.{key}" for section, key, _ in axes(spec))


def value_text(value: Any) -> str:
    """A spec value as the form shows it: true/false, pixel=1.0,scorer=0.5, 35."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def parse_value(section: str, key: str, text: str) -> Any:
    """A field's text as its axis's type; weight tables (`inflate.loss`) also take `pixel=1,scorer=0.5`."""
    return parse_axis_value(f"{section}.{key}", text)


def axes(spec: RunSpec) -> list[tuple[str, str, Any]]:
    """(section, key, value) of every editable axis, in the spec's order."""
    found = []
    for section, table in spec.to_dict().items():
        for key, value in table.items():
            if not (section == "run" and key in LEDGER_KEYS):
                found.append((section, key, value))
    return found


class RunForm(ModalScreen[RunRequest | None]):
    """Edit a spec and queue it: Ctrl+S (or Enter in a field) queues, Escape cancels.

    The app keeps a form for each `shape` of spec and `load`s each new base spec into it: its
    forty-odd fields cost seconds of CPU to compose on a busy two-core machine, and `n` must
    answer at once.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Cancel"),
        Binding("ctrl+s", "submit", "Queue", priority=True),
        Binding("ctrl+f", "from_ffmpeg", "From an ffmpeg line", priority=True),
    ]

    def __init__(self, start: FormStart) -> None:
        super().__init__()
        self.fields: dict[str, Input | Select] = {}  # "section.key" -> its field
        self._said = ""
        self.load(start)

    def load(self, start: FormStart) -> None:
        """Start over from `start.spec` (the parent's, or the defaults), as a new form would."""
        self.start = start
        self.spec: RunSpec | None = start.spec
        self.twin: RunRecord | None = None  # the finished run that measured this spec already
        if self.is_mounted:
            self._fill()

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog form"):
            yield Label("", id="form-title", classes="dialog-title", markup=False)
            with Horizontal(classes="form-meta"):
                yield Label("track")
                yield Input("", id="meta-track")
                yield Label("label")
                yield Input("", placeholder="what it tries", id="meta-label")
                yield Label("prio")
                yield Input("0", id="meta-priority", type="integer")
            with VerticalScroll(id="axes"):
                by_section: dict[str, list[tuple[str, Any]]] = {}
                for name, key, value in axes(self.start.spec):
                    by_section.setdefault(name, []).append((key, value))
                for name, keys in by_section.items():
                    yield Label(f"[{name}]", classes="form-section", markup=False)
                    with Grid(classes="axis-grid"):  # one grid per section: fewer widgets than a row each
                        for key, value in keys:
                            yield Label(key, classes="axis-name")
                            values = choices(name, key)
                            if values is not None:
                                yield Select(
                                    [(c, c) for c in values],
                                    value=value,
                                    allow_blank=False,
                                    id=f"ax-{name}-{key}",
                                    classes="axis",
                                    compact=True,
                                )
                            else:
                                yield Input(id=f"ax-{name}-{key}", classes="axis", compact=True)
            yield Label("", id="form-error", classes="error", markup=False)
            yield Label(
                "Ctrl+S or Enter: queue · Tab: next field · Ctrl+F: from an ffmpeg line · Esc: cancel",
                classes="dialog-hint",
            )

    def on_screen_resume(self, event: events.ScreenResume) -> None:
        resume_without_restyle(self, event)

    def on_mount(self) -> None:
        for field in self.query(".axis"):
            if isinstance(field, Input | Select):
                _, section, key = (field.id or "").split("-", 2)
                self.fields[f"{section}.{key}"] = field
        self._fill()

    def _fill(self) -> None:
        """Put the base spec, the parent and its track into the fields, then check them once."""
        parent, tracks = self.start.parent, self.start.tracks
        origin = f"from {parent.id} (it becomes the parent)" if parent else "from the defaults"
        track = parent.track if parent else (tracks[0] if tracks else "main")
        self.query_one("#form-title", Label).update(f"New run {origin}")
        with self.prevent(Input.Changed, Select.Changed):  # one check below, not one per field
            self.query_one("#meta-track", Input).value = track
            self.query_one("#meta-label", Input).value = ""
            self.query_one("#meta-priority", Input).value = "0"
            for section, key, value in axes(self.start.spec):
                self._set(section, key, value)
        self._check()
        self.query_one("#axes", VerticalScroll).scroll_home(animate=False)
        self.fields["encode.crf"].focus()

    def _set(self, section: str, key: str, value: Any) -> None:
        field = self.fields[f"{section}.{key}"]
        field.value = value if isinstance(field, Select) else value_text(value)

    def _read(self) -> RunSpec:
        """The spec the fields describe; SpecError names the key at fault."""
        data: dict[str, dict[str, Any]] = {s: dict(t) for s, t in self.start.spec.to_dict().items()}
        for axis, field in self.fields.items():
            section, key = axis.split(".", 1)
            data[section][key] = field.value if isinstance(field, Select) else parse_value(section, key, field.value)
        # Another codec chosen: the keys of the one it replaces stay behind (its own take their defaults).
        codec = data["encode"].get("codec")
        for name, kind in registry().codecs.items():
            if kind.section and name != codec:
                data.pop(kind.section, None)
        return parse_spec(data, self.start.source)

    def _say(self, text: str) -> None:
        """Show the form's one error line.

        Its height is fixed (two rows, app.tcss), so a new text needs a repaint, never a relayout
        of the form's hundreds of widgets: one costs more than the check itself.
        """
        if text != self._said:
            self._said = text
            self.query_one("#form-error", Label).update(text, layout=False)

    @on(Input.Changed)
    @on(Select.Changed)
    def _check(self) -> None:
        for field in self.fields.values():
            if field.has_class("-invalid"):  # touching every field's classes would restyle all forty
                field.remove_class("-invalid")
        self.twin = None
        try:
            self.spec = self._read()
        except UserError as exc:
            self.spec = None
            self._say(f"✗ {exc}")
            self._mark(str(exc))
            return
        track = self.query_one("#meta-track", Input).value.strip()
        if not track:
            self.spec = None
            self._say("✗ the track cannot be empty (e.g. main)")
            return
        self.twin = self.start.measured.get(measure_key(self.spec))
        if self.twin is not None:
            self._say(
                f"✗ {self.twin.id} measured this spec already (score {fmt.score(self.twin.score)}): "
                f"change an axis, or clone {self.twin.id} (c) to measure it again"
            )
            return
        self._say("")

    def _mark(self, message: str) -> None:
        """Mark the field a SpecError names (`encode.crf = 99 is out of range...`)."""
        for axis, field in self.fields.items():
            if re.search(rf"\b{re.escape(axis)}\b", message):
                field.add_class("-invalid")

    @on(Input.Submitted)
    def action_submit(self) -> None:
        """Queue the run, if the spec is valid and not measured already."""
        self._check()
        if self.spec is None or self.twin is not None:
            return
        try:
            priority = int(self.query_one("#meta-priority", Input).value or 0)
        except ValueError:
            self._say("✗ priority must be a whole number")
            return
        self.dismiss(
            RunRequest(
                spec=self.spec,
                track=self.query_one("#meta-track", Input).value.strip(),
                label=self.query_one("#meta-label", Input).value.strip(),
                parent=self.start.parent.id if self.start.parent else None,
                priority=priority,
            )
        )

    def action_from_ffmpeg(self) -> None:
        """Ask for an ffmpeg command line and fill the preprocess and encode fields from it."""
        self.app.push_screen(FfmpegLinePrompt(), self._take_ffmpeg)

    def _take_ffmpeg(self, translation: Translation | None) -> None:
        if translation is None:
            return
        defaults = RunSpec().to_dict()
        with self.prevent(Input.Changed, Select.Changed):  # one check below, not one per field
            for section, table in translation.sections.items():
                for key, value in (defaults[section] | table).items():
                    self._set(section, key, value)
        self._check()
