"""The compare view: one run's previewed pairs, reference | candidate | disagreement, zoom- and frame-synced.

Opened with `i` from the detail screen and from review mode. It draws only what the engine kept
while scoring (`LabClient.compare`): the last frame of each previewed pair, which is the one
SegNet saw (PoseNet sees both), and both sides' class maps of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static

from comma_tui.lab_state import Compare, PreviewPair
from comma_tui.widgets import format as fmt
from comma_tui.widgets.distortion_strip import DistortionStrip
from comma_tui.widgets.graphics import graphics_widget, view_crop
from comma_tui.widgets.halfblock import HalfBlockImage, View
from comma_tui.widgets.key_footer import KeyFooter
from comma_tui.widgets.panel_images import THIRD_PANELS, class_colours, difference_x4, disagreement

if TYPE_CHECKING:
    from comma_tui.app import CommaApp

PAN_STEP = 0.25  # of the window, per key press
PANELS = ("left", "middle", "right")
#: The key that opens the view, on the screens that show a run (detail, review).
COMPARE_BINDING = Binding(
    "i", "compare", "Frames", tooltip="Compare view: the frames SegNet saw, reference | candidate", id="frames"
)


class CompareScreen(Screen[None]):
    """Frames of one run's previewed pairs; Escape goes back."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,i", "app.pop_screen", "Back", id="back"),
        Binding("left", "step(-1)", "Prev pair", key_display="←"),
        Binding("right", "step(1)", "Next pair", key_display="→"),
        Binding("w", "worst", "Worst", tooltip="The pair with the worst SegNet distortion"),
        Binding("d", "cycle_third", "Panel", tooltip="Third panel: disagreement, difference x4, class map"),
        Binding("f", "toggle_floor", "Floor", tooltip="Left panel: the floor's frame of this pair / the reference"),
        Binding("z", "zoom(2)", "Zoom in"),
        Binding("Z", "zoom(0.5)", "Zoom out", key_display="Z"),
        Binding("g", "graphics", "Graphics", tooltip="Kitty or sixel images, not half blocks (--graphics)"),
        Binding("shift+left,h", "pan(-1, 0)", "Pan", show=False),
        Binding("shift+right,l", "pan(1, 0)", "Pan", show=False),
        Binding("shift+up,k", "pan(0, -1)", "Pan", show=False),
        Binding("shift+down,j", "pan(0, 1)", "Pan", show=False),
    ]
    #: What the Footer keeps when it cannot show every key (at 80 columns the zoom keys went under `^p`).
    FOOTER_PRIORITY = ("pop_screen", "step", "worst", "cycle_third", "toggle_floor", "zoom", "quit", "help", "graphics")

    class Loaded(Message):
        """The run's previews were read."""

        def __init__(self, compare: Compare) -> None:
            self.compare = compare
            super().__init__()

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.compare: Compare | None = None
        self.index = 0
        self.third = 0
        self.floor_on_left = False
        self.view = View()
        self.graphics = False

    @property
    def lab_app(self) -> CommaApp:
        """The app, typed."""
        return cast("CommaApp", self.app)

    def compose(self) -> ComposeResult:
        yield Static(f"{self.run_id} · frames · loading…", id="compare-title")
        with Horizontal(id="compare-panels"):
            for name in PANELS:
                with Vertical(classes="compare-panel"):
                    yield Static(id=f"{name}-label", classes="compare-label")
                    yield HalfBlockImage(id=f"{name}-image")
        yield DistortionStrip(id="compare-strip")
        yield Static(id="compare-note")
        yield KeyFooter(self.FOOTER_PRIORITY)

    def on_mount(self) -> None:
        self.load()

    def on_resize(self) -> None:
        # Equal panels draw at one scale, so their frames line up row for row.
        width = self.query_one("#compare-panels").size.width // len(PANELS)
        for panel in self.query(".compare-panel"):
            panel.styles.width = max(1, width)

    @work(thread=True, exclusive=True, group="compare", exit_on_error=False)
    def load(self) -> None:
        """Read and decode the run's previews."""
        self.post_message(self.Loaded(self.lab_app.client.compare(self.run_id)))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        self.compare = message.compare
        self.index = 0
        self._draw()

    @property
    def pair(self) -> PreviewPair | None:
        """The pair on show."""
        return self.compare.pairs[self.index] if self.compare and self.compare.pairs else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys that cannot apply are greyed out: nothing to show, no floor frame, no zoom to undo."""
        if action in ("step", "worst", "cycle_third", "zoom", "pan") and self.pair is None:
            return None
        if action == "graphics":
            return None if self.pair is None or graphics_widget() is None else True
        if action == "toggle_floor":
            return None if self.pair is None or self.pair.floor is None else True
        if action == "zoom":
            return None if (self.view.zoom == 1 and parameters[0] == 0.5) else True
        if action == "pan":
            return None if self.view.zoom == 1 else True
        return True

    def action_step(self, delta: int) -> None:
        """The previous or next previewed pair (in clip order)."""
        if self.compare and self.compare.pairs:
            self.index = (self.index + delta) % len(self.compare.pairs)
            self._draw()

    def action_worst(self) -> None:
        """The previewed pair with the worst SegNet distortion."""
        if self.compare and self.compare.pairs:
            self.index = max(range(len(self.compare.pairs)), key=lambda i: self.compare.pairs[i].entry.segnet)  # type: ignore[union-attr]
            self._draw()

    def action_cycle_third(self) -> None:
        """Disagreement, absolute difference x4, the candidate's class map, in turn."""
        self.third = (self.third + 1) % len(THIRD_PANELS)
        self._draw()

    def action_toggle_floor(self) -> None:
        """The left panel shows the floor's frame of this pair, or the reference again."""
        self.floor_on_left = not self.floor_on_left
        self._draw()

    def action_zoom(self, factor: float) -> None:
        """Zoom every panel in or out together."""
        self.view = self.view.zoomed(factor)
        self._draw()

    def action_pan(self, dx: int, dy: int) -> None:
        """Move every panel's window together."""
        self.view = self.view.panned(dx * PAN_STEP, dy * PAN_STEP)
        self._draw()

    def action_graphics(self) -> None:
        """Kitty/sixel images (textual-image) instead of half-block cells, or back."""
        widget = graphics_widget()
        if widget is None:
            return
        self.graphics = not self.graphics
        for name in PANELS:
            if not self.query(f"#{name}-graphics"):
                self.query_one(f"#{name}-image").parent.mount(widget(id=f"{name}-graphics"))  # type: ignore[union-attr]
            self.query_one(f"#{name}-graphics").display = self.graphics
            self.query_one(f"#{name}-image").display = not self.graphics
        self._draw()

    def _draw(self) -> None:
        title = self.query_one("#compare-title", Static)
        note = self.query_one("#compare-note", Static)
        pair, compare = self.pair, self.compare
        if compare is None:
            return
        if pair is None:
            title.update(Text.assemble((compare.run.id, "bold"), " · frames"))
            note.update(Text(compare.missing or f"{compare.run.id} kept no frames", style="italic"))
            for name in PANELS:
                self.query_one(f"#{name}-image", HalfBlockImage).show(None, self.view)
            self.refresh_bindings()
            return
        entry = pair.entry
        why = ", ".join(entry.why)
        title.update(
            Text.assemble(
                (compare.run.id, "bold"),
                f" · pair {entry.pair} of {compare.clip_pairs} ({self.index + 1}/{len(compare.pairs)}, {why})",
                f" · SegNet {fmt.small(entry.segnet)} · PoseNet {fmt.small(entry.posenet)}",
            )
        )
        floor = self.floor_on_left and pair.floor is not None
        left = pair.floor if floor and pair.floor is not None else pair.reference
        third = THIRD_PANELS[self.third]
        if third == "disagreement":
            right = disagreement(pair.candidate, pair.reference_classes, pair.candidate_classes)
        elif third == "difference x4":
            right = difference_x4(pair.reference, pair.candidate)
        else:
            right = class_colours(pair.candidate_classes)
        labels = (f"floor {compare.floor_id}" if floor else "reference", f"candidate {compare.run.id}", third)
        for name, label, image in zip(PANELS, labels, (left, pair.candidate, right), strict=True):
            self.query_one(f"#{name}-label", Static).update(Text(label, style="bold"))
            self.query_one(f"#{name}-image", HalfBlockImage).show(image, self.view)
            if self.graphics:
                self.query_one(f"#{name}-graphics").image = view_crop(image, self.view)  # type: ignore[attr-defined]
        self.query_one("#compare-strip", DistortionStrip).show(compare.segnet_per_pair, entry.pair)
        zoom = f" · zoom x{self.view.zoom}" if self.view.zoom > 1 else ""
        note.update(
            Text(
                f"frame {entry.frame}: the last of pair {entry.pair}, the one SegNet sees (PoseNet sees both) · "
                f"512x384 as the networks see it{zoom} · strip: SegNet per pair",
                style="dim",
            )
        )
        self.refresh_bindings()
