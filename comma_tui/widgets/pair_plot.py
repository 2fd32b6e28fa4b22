"""A per-pair distortion plot: one metric across the clip, a run against the run it is compared with."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.text import Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot

from comma_tui.widgets.colors import theme_rgb
from comma_tui.widgets.score_plot import whole_ticks


class PairPlot(PlotextPlot):
    """PoseNet or SegNet distortion per frame pair: where in the clip a run wins or loses."""

    DEFAULT_CSS = """
    PairPlot { height: 12; min-height: 6; }
    """

    def __init__(self, metric: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.metric = metric
        self.series: Sequence[float] = ()
        self.prior: Sequence[float] = ()
        self.names = ("", "")

    def show(self, series: Sequence[float] | None, prior: Sequence[float] | None, names: tuple[str, str]) -> None:
        """Plot `series` (this run) against `prior` (the floor or the parent); either may be missing."""
        self.series, self.prior, self.names = series or (), prior or (), names
        versus = f" vs {names[1]}" if self.prior else ""
        self.border_title = f"{self.metric} per pair · {names[0]}{versus}"
        partial = " (pairs scored before its early verdict)" if any(not math.isfinite(v) for v in self.series) else ""
        self.border_subtitle = f"⠤ {names[0]}{partial}" + (f"  · {names[1]}" if self.prior else "")
        self.refresh()

    def render(self) -> RenderResult:
        """The plot, or a line saying why there is none."""
        width, height = self.size
        if not self.series:
            return Text(f"no per-pair {self.metric} distortions (the run has not been scored)", style="dim")
        if width < 16 or height < 5:
            return Text("(plot: make the terminal larger)", style="dim")
        try:
            plt = self.plt
            plt.clear_figure()
            if self.prior:
                xs = list(range(len(self.prior)))
                # Dots for the run compared with, a fine line for this run: told apart without colour.
                plt.plot(xs, list(self.prior), marker="·", color=theme_rgb(self.app, "warning", "#d9a400"))
            colour = theme_rgb(self.app, "primary", "#4a90d9")
            scored = [(x, y) for x, y in enumerate(self.series) if math.isfinite(y)]
            if len(scored) < len(self.series):
                # Rejected early: only some batches were scored, so no line joins them across the gaps.
                plt.scatter([x for x, _ in scored], [y for _, y in scored], marker="braille", color=colour)
            else:
                plt.plot(list(range(len(self.series))), list(self.series), marker="braille", color=colour)
            count = max(len(self.series), len(self.prior))
            ticks = whole_ticks(0, count - 1)
            plt.xticks([float(t) for t in ticks], [str(t) for t in ticks])
            plt.xlabel("frame pair")
            return super().render()
        except Exception as exc:  # plotext is third-party drawing code: a bad frame must not end the app
            return Text(f"(plot could not be drawn: {exc})", style="dim")
