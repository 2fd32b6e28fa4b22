"""The score-history pane: score per finished run with the floor as a step line, or the Pareto view.

History: each measured run of the track, in the order it finished; the floor (the best promoted
score so far) as a step line; promotions marked ★. Pareto: archive bytes against score, bytes on
a log scale drawn as log10(bytes) on a linear axis with byte-size tick labels, because plotext
5's own log scale raises a math domain error when a plot is rebuilt on resize. Any other plotext
failure shows as a line of text in the pane, never as a crash.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.text import Text
from textual.app import RenderResult
from textual.reactive import reactive
from textual_plotext import PlotextPlot

from comma_tui.lab_state import Snapshot
from comma_tui.widgets import format as fmt
from comma_tui.widgets.colors import theme_rgb
from ledger import RunRecord
from ledger.queries import pareto

MAX_POINTS = 400


@dataclass(frozen=True)
class PlotData:
    """The points of both views for one track."""

    track: str = ""
    scores: list[float] = field(default_factory=list)
    promoted: list[tuple[float, float]] = field(default_factory=list)
    floor_steps: list[tuple[float, float]] = field(default_factory=list)
    pareto_points: list[tuple[float, float]] = field(default_factory=list)
    frontier: list[tuple[float, float]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)  # the run of each score, in order
    pareto_ids: list[str] = field(default_factory=list)  # the run of each Pareto point

    def history_point(self, run_id: str | None) -> tuple[float, float] | None:
        """Where a run sits in the score history, if it is there."""
        if run_id in self.ids:
            x = self.ids.index(run_id)
            return (x + 1, self.scores[x])
        return None

    def pareto_point(self, run_id: str | None) -> tuple[float, float] | None:
        """Where a run sits in the Pareto view, if it is there."""
        return self.pareto_points[self.pareto_ids.index(run_id)] if run_id in self.pareto_ids else None


def _point(run: RunRecord) -> tuple[float, float]:
    """(log10 bytes, score) of a measured run."""
    return math.log10(max(1, run.total_bytes or 1)), run.score if run.score is not None else math.nan


def plot_data(runs: Sequence[RunRecord], track: str, frontier: Sequence[RunRecord]) -> PlotData:
    """Both views' points for the measured runs of `track`, in the order they finished."""
    measured = sorted(
        (r for r in runs if r.measured and r.track == track and r.score is not None),
        key=lambda r: (r.finished or 0.0, r.number),
    )
    scores = [_point(r)[1] for r in measured]
    promoted: list[tuple[float, float]] = []
    steps: list[tuple[float, float]] = []
    floor: float | None = None
    for x, (r, score) in enumerate(zip(measured, scores, strict=True), start=1):
        if r.verdict == "promoted" and not r.approximate:
            promoted.append((x, score))
            if floor is not None:
                steps.append((x, floor))  # the step down happens at the promotion
            floor = score
        if floor is not None:
            steps.append((x, floor))
    exact = [r for r in measured if not r.approximate]
    return PlotData(
        track,
        scores,
        promoted,
        steps,
        [_point(r) for r in exact],
        [_point(r) for r in frontier],
        [r.id for r in measured],
        [r.id for r in exact],
    )


def track_plots(snapshot: Snapshot) -> dict[str, PlotData]:
    """Both views' points for every track (worth doing in a worker on a big ledger)."""
    by_track: dict[str, list[RunRecord]] = {}
    for r in snapshot.runs:
        by_track.setdefault(r.track, []).append(r)
    return {track: plot_data(runs, track, pareto(runs, track)) for track, runs in by_track.items()}


def thin(points: Sequence[tuple[float, float]], limit: int = MAX_POINTS) -> list[tuple[float, float]]:
    """At most about `limit` points, keeping each bucket's lowest and highest (the shape stays)."""
    if len(points) <= limit:
        return list(points)
    size = math.ceil(len(points) / (limit / 2))
    kept: list[tuple[float, float]] = []
    for start in range(0, len(points), size):
        bucket = points[start : start + size]
        low, high = min(bucket, key=lambda p: p[1]), max(bucket, key=lambda p: p[1])
        kept += sorted({low, high})
    return kept


def whole_ticks(first: int, last: int, most: int = 6) -> list[int]:
    """Whole-number ticks from `first` to `last` on a round step, at most about `most` of them."""
    span, step = max(1, last - first), 1
    for candidate in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000):
        step = candidate
        if span / candidate <= most:
            break
    ticks = [t for t in range(first - first % step, last + 1, step) if t >= first]
    return ticks if first in ticks or (ticks and ticks[0] - first <= step / 2) else [first, *ticks]


def byte_ticks(low: float, high: float) -> tuple[list[float], list[str]]:
    """Tick positions (log10 bytes) at 1, 2 and 5 times powers of ten within [low, high], labelled."""
    ticks = []
    for exponent in range(math.floor(low), math.ceil(high) + 1):
        for mantissa in (1, 2, 5):
            value = math.log10(mantissa) + exponent
            if low - 1e-9 <= value <= high + 1e-9:
                ticks.append(value)
    if len(ticks) > 6:
        ticks = [t for t in ticks if abs(t - round(t)) < 1e-9] or ticks[:: len(ticks) // 5]
    if len(ticks) < 2:
        ticks = [low, high] if high > low else [low]
    return ticks, [fmt.size(10**t) for t in ticks]


class ScorePlot(PlotextPlot):
    """Score history, or the bytes-vs-score Pareto view (`pareto = True`)."""

    DEFAULT_CSS = """
    ScorePlot { height: 1fr; min-height: 6; }
    """

    pareto: reactive[bool] = reactive(False)
    highlighted: reactive[str | None] = reactive(None)

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.data = PlotData()
        # plotext rebuilds the whole plot on every render (tens of ms): keep the last one.
        self._cache: tuple[tuple[object, ...], RenderResult] | None = None
        self._version = 0

    def show(self, data: PlotData) -> None:
        """Draw new data."""
        self.data = data
        self._version += 1
        self._titles()
        self.refresh()

    def watch_pareto(self) -> None:
        self._titles()
        self.refresh()

    def watch_highlighted(self) -> None:
        self._titles()
        self.refresh()

    def _highlight(self) -> tuple[float, float] | None:
        """Where the selected run sits in the view shown (None: it is not plotted there)."""
        return self.data.pareto_point(self.highlighted) if self.pareto else self.data.history_point(self.highlighted)

    def _titles(self) -> None:
        track = self.data.track or "no track"
        selected = f"  ◉ {self.highlighted}" if self._highlight() is not None else ""
        if self.pareto:
            self.border_title = Text(f"Pareto · {track} · bytes (log) vs score")
            self.border_subtitle = f"· run  ◆ frontier{selected}"
        else:
            self.border_title = Text(f"Score history · {track}")
            self.border_subtitle = f"· run  ★ promoted  ─ floor{selected}"

    def render(self) -> RenderResult:
        """Build the plot for the current size; too small or failing, say so in words."""
        width, height = self.size
        if width < 16 or height < 5:
            return Text("(plot: make the terminal larger)", style="dim")
        if not self.data.scores:
            return Text(f"no measured runs in track {self.data.track or '-'} yet", style="dim")
        # The highlight's place, not its run: moving the cursor over unplotted runs (queued ones) draws nothing anew.
        key = (width, height, self._version, self.pareto, self._highlight(), self.app.theme)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        try:
            self._draw()
            drawn = super().render()
        except Exception as exc:  # plotext is third-party drawing code: a bad frame must not end the app
            return Text(f"(plot could not be drawn: {exc})", style="dim")
        self._cache = (key, drawn)
        return drawn

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_figure()
        run_colour = theme_rgb(self.app, "primary", "#4a90d9")
        mark_colour = theme_rgb(self.app, "success", "#2e9d4f")
        floor_colour = theme_rgb(self.app, "warning", "#d9a400")
        if self.pareto:
            self._draw_pareto(run_colour, mark_colour)
        else:
            self._draw_history(run_colour, mark_colour, floor_colour)
        # The selected run last, over everything, so the cursor's run is always found on the plot.
        point = self._highlight()
        if point is not None:
            plt.scatter([point[0]], [point[1]], marker="◉", color=theme_rgb(self.app, "accent", "#e0559a"))

    def _draw_history(self, run_colour: tuple, mark_colour: tuple, floor_colour: tuple) -> None:
        plt, data = self.plt, self.data
        # The floor first, so runs close to it are drawn over it rather than hidden under it.
        if data.floor_steps:
            steps = thin(data.floor_steps, 2 * MAX_POINTS)
            plt.plot([p[0] for p in steps], [p[1] for p in steps], marker="braille", color=floor_colour)
        points = thin(list(enumerate(data.scores, start=1)))
        plt.scatter([p[0] for p in points], [p[1] for p in points], marker="•", color=run_colour)
        if data.promoted:
            marks = thin(data.promoted)
            plt.scatter([p[0] for p in marks], [p[1] for p in marks], marker="★", color=mark_colour)
        low, high = min(data.scores), max(data.scores)
        pad = max(1e-3, (high - low) * 0.05)
        plt.ylim(low - pad, high + pad)
        plt.xlim(0.5, len(data.scores) + 0.5)
        ticks = whole_ticks(1, len(data.scores))
        plt.xticks([float(t) for t in ticks], [str(t) for t in ticks])
        plt.xlabel("run (finish order)")

    def _draw_pareto(self, run_colour: tuple, mark_colour: tuple) -> None:
        plt, data = self.plt, self.data
        if not data.pareto_points:
            plt.scatter([0.0], [0.0], marker=" ")
            return
        points = thin(sorted(data.pareto_points))
        plt.scatter([p[0] for p in points], [p[1] for p in points], marker="•", color=run_colour)
        if data.frontier:
            plt.plot([p[0] for p in data.frontier], [p[1] for p in data.frontier], marker="braille", color=mark_colour)
            plt.scatter([p[0] for p in data.frontier], [p[1] for p in data.frontier], marker="◆", color=mark_colour)
        xs = [p[0] for p in data.pareto_points]
        ys = [p[1] for p in data.pareto_points]
        low, high = min(xs), max(xs)
        if high - low < 0.02:
            low, high = low - 0.01, high + 0.01
        ticks, labels = byte_ticks(low, high)
        plt.xlim(low, high)
        plt.xticks(ticks, labels)
        pad = max(1e-3, (max(ys) - min(ys)) * 0.05)
        plt.ylim(min(ys) - pad, max(ys) + pad)
        plt.xlabel("archive bytes")
