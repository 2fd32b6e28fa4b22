"""A training run's curves: each loss term and the running score estimate against the step, live."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.text import Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot

# What is drawn, in this order, and its marker (told apart without colour).
SERIES = {"loss": "braille", "segnet": "dot", "posenet": "+", "pixel": "·", "estimate": "x"}


class CurvePlot(PlotextPlot):
    """Loss terms and the score estimate by training step; hidden for runs that do not train."""

    DEFAULT_CSS = """
    CurvePlot { height: 14; min-height: 6; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.points: Sequence[Mapping[str, float]] = ()
        self.display = False  # until a run with a curve is shown

    def show(self, points: Sequence[Mapping[str, float]], live: bool) -> None:
        """Plot `points` (one per step, as curve.jsonl holds them); `live` while the run trains."""
        self.points = points
        self.display = bool(points)
        last = points[-1] if points else {}
        latest = " ".join(f"{name} {last[name]:.4g}" for name in SERIES if name in last)
        self.border_title = f"Training · step {int(last.get('step', 0))}" + (" · live" if live else "")
        self.border_subtitle = latest
        self.refresh()

    def render(self) -> RenderResult:
        """The curves, or a line saying why there are none."""
        width, height = self.size
        if not self.points:
            return Text("no training curve", style="dim")
        if width < 16 or height < 5:
            return Text("(plot: make the terminal larger)", style="dim")
        try:
            plt = self.plt
            plt.clear_figure()
            for name, marker in SERIES.items():
                xy = [(p["step"], p[name]) for p in self.points if name in p]
                if xy:
                    plt.plot([x for x, _ in xy], [y for _, y in xy], marker=marker, label=name)
            plt.xlabel("step")
            return super().render()
        except Exception as exc:  # plotext is third-party drawing code: a bad frame must not end the app
            return Text(f"(plot could not be drawn: {exc})", style="dim")
