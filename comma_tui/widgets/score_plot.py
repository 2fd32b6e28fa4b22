"""The score-history pane: score per finished run with the floor as a step line, or the Pareto view.

History: each measured run of the track, in the order it finished; the floor (the best promoted
score so far) as a step line; promotions marked ★, early verdicts' estimates ~. Pareto (exact
scores only): archive bytes against score, bytes on a log scale drawn as log10(bytes) on a
linear axis with byte-size tick labels, because plotext 5's own log scale raises a math domain
error when a plot is rebuilt on resize. Any other plotext failure shows as a line of text in the
pane, never as a crash.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from rich.color import Color as RichColor
from rich.console import Console
from rich.segment import Segment
from rich.style import Style as RichStyle
from rich.text import Text
from textual import work
from textual.app import RenderResult
from textual.content import Content
from textual.geometry import Region
from textual.reactive import reactive
from textual.strip import Strip
from textual.style import Style
from textual.visual import RenderOptions
from textual_plotext import PlotextPlot
from textual_plotext.plot import Plot

from comma_tui.lab_state import Snapshot
from comma_tui.widgets import format as fmt
from comma_tui.widgets.colors import theme_rgb
from ledger import RunSummary, SummaryTable, Verdict
from ledger.errors import LedgerError
from ledger.queries import pareto
from ledger.records import run_number

MAX_POINTS = 400
KEEP_PLOTS = 8  # plots kept built (a few tracks, both views)


Point = tuple[float, float]


@dataclass(frozen=True, eq=False)  # arrays: compared by identity, as PlotData is (by its fingerprint)
class Places:
    """Where each measured run of a track sits in both views, found by its run number."""

    numbers: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # sorted
    history: np.ndarray = field(default_factory=lambda: np.empty((0, 2)))  # (finish order, score), as `numbers`
    pareto: np.ndarray = field(default_factory=lambda: np.empty((0, 2)))  # (log10 bytes, score); NaN: not exact

    def find(self, run_id: str | None, view: np.ndarray) -> Point | None:
        """Where the run `run_id` sits in `view` (one of the two arrays), if it is there."""
        try:
            number = run_number(run_id) if run_id else 0
        except LedgerError:
            return None
        at = int(np.searchsorted(self.numbers, number))
        if at >= len(self.numbers) or self.numbers[at] != number or np.isnan(view[at, 0]):
            return None
        return float(view[at, 0]), float(view[at, 1])


@dataclass(frozen=True, eq=False)
class PlotData:
    """What both views of one track draw: its points, thinned to what a pane can show (`thin`),
    and the ranges of all of them (a track of 25,000 runs keeps a few hundred points).

    `fingerprint` digests everything it was made from: equal fingerprints, equal data.
    """

    track: str = ""
    runs: int = 0  # measured runs: the history's x axis runs 1..runs
    scores: list[Point] = field(default_factory=list)  # (finish order, score)
    estimated: list[Point] = field(default_factory=list)  # early verdicts' estimates, as `scores`
    score_range: Point = (0.0, 0.0)
    promoted: list[Point] = field(default_factory=list)
    floor_steps: list[Point] = field(default_factory=list)
    pareto_points: list[Point] = field(default_factory=list)  # (log10 bytes, score), by bytes
    pareto_range: tuple[Point, Point] = ((0.0, 0.0), (0.0, 0.0))  # bytes, then score
    frontier: list[Point] = field(default_factory=list)
    places: Places = field(default_factory=Places)
    fingerprint: bytes = b""

    def history_point(self, run_id: str | None) -> Point | None:
        """Where a run sits in the score history, if it is there."""
        return self.places.find(run_id, self.places.history)

    def pareto_point(self, run_id: str | None) -> Point | None:
        """Where a run sits in the Pareto view, if it is there."""
        return self.places.find(run_id, self.places.pareto)


def _range(values: np.ndarray) -> Point:
    return (float(values.min()), float(values.max())) if len(values) else (0.0, 0.0)


def _log_bytes(total_bytes: np.ndarray) -> np.ndarray:
    return np.log10(np.maximum(1.0, np.nan_to_num(total_bytes, nan=1.0)))


def plot_data(table: SummaryTable, track: str, frontier: Sequence[RunSummary]) -> PlotData:
    """Both views' points for the measured runs of `track`, in the order they finished (from the summaries)."""
    rows = np.flatnonzero(table.is_("track", track) & table.measured)
    rows = rows[np.lexsort((table.numbers[rows], np.nan_to_num(table.arrays["finished"][rows], nan=0.0)))]
    scores, estimated = table.arrays["score"][rows], table.arrays["estimated"][rows]
    exact = ~table.arrays["approximate"][rows] & ~estimated
    xs = np.arange(1, len(rows) + 1, dtype=np.float64)
    promoted = table.is_("verdict", Verdict.PROMOTED)[rows] & exact
    # The floor after each run: the score of the latest promotion so far; it steps down at a promotion.
    latest = np.maximum.accumulate(np.where(promoted, np.arange(len(rows)), -1))
    floor = np.where(latest >= 0, scores[np.maximum(latest, 0)], np.nan)
    before = np.concatenate([[np.nan], floor])[:-1]  # the floor before each run (none before the first)
    keep = np.column_stack([promoted & ~np.isnan(before), ~np.isnan(floor)]).ravel()
    sizes = _log_bytes(table.arrays["total_bytes"][rows])
    by_size = np.lexsort((scores[exact], sizes[exact]))
    edge = [(math.log10(max(1, r.total_bytes or 1)), r.score if r.score is not None else math.nan) for r in frontier]
    numbers = table.numbers[rows]
    order = np.argsort(numbers)
    places = Places(
        numbers=numbers[order],
        history=np.column_stack([xs, scores])[order],
        pareto=np.column_stack([np.where(exact, sizes, np.nan), scores])[order],
    )
    made_of = (numbers, scores, xs, sizes, exact, promoted, estimated, np.array(edge, dtype=np.float64))
    return PlotData(
        track=track,
        runs=len(rows),
        scores=thin(xs, scores),
        estimated=thin(xs[estimated], scores[estimated]),
        score_range=_range(scores),
        promoted=thin(xs[promoted], scores[promoted]),
        floor_steps=thin(np.repeat(xs, 2)[keep], np.column_stack([before, floor]).ravel()[keep], 2 * MAX_POINTS),
        pareto_points=thin(sizes[exact][by_size], scores[exact][by_size]),
        pareto_range=(_range(sizes[exact]), _range(scores[exact])),
        frontier=edge,
        places=places,
        fingerprint=hashlib.blake2b(b"".join(a.tobytes() for a in made_of), digest_size=16).digest(),
    )


def track_plots(snapshot: Snapshot, before: dict[str, PlotData] | None = None) -> dict[str, PlotData]:
    """Both views' points for every track (worth doing in a worker on a big ledger).

    A track whose points did not change keeps its data from `before`, the same object, so the
    plots the pane built of it stay good.
    """
    table, before = snapshot.table, before or {}
    plots = {track: plot_data(table, track, pareto(table, track)) for track in snapshot.tracks}
    return {
        track: old if (old := before.get(track)) is not None and old.fingerprint == data.fingerprint else data
        for track, data in plots.items()
    }


def thin(x: np.ndarray, y: np.ndarray, limit: int = MAX_POINTS) -> list[Point]:
    """The points (x, y), ordered by x, as at most about `limit`: each bucket of neighbours keeps its
    lowest and highest y (the shape stays)."""
    if len(y) <= limit:
        return list(zip(x.tolist(), y.tolist(), strict=True))
    size = math.ceil(len(y) / (limit / 2))
    buckets = math.ceil(len(y) / size)
    pad = buckets * size - len(y)
    low = np.concatenate([y, np.full(pad, np.inf)]).reshape(buckets, size).argmin(axis=1)
    high = np.concatenate([y, np.full(pad, -np.inf)]).reshape(buckets, size).argmax(axis=1)
    start = np.arange(buckets) * size
    kept = np.unique(np.concatenate([start + low, start + high]))
    # Within a bucket the low and high go by (x, y), as a line through them is drawn.
    kept = kept[np.lexsort((y[kept], x[kept]))]
    return list(zip(x[kept].tolist(), y[kept].tolist(), strict=True))


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


@dataclass(frozen=True)
class Colours:
    """The theme's colours of a plot: runs, marks (promotions, the frontier), the floor and estimates."""

    run: tuple[int, int, int]
    mark: tuple[int, int, int]
    floor: tuple[int, int, int]
    estimate: tuple[int, int, int]
    selected: tuple[int, int, int]


@dataclass(frozen=True)
class Canvas:
    """Where a built plot put its data: the cells of its canvas and the data ranges they span.

    plotext maps a value to a cell as `floor(0.5 + (cells - 1) * (value - low) / (high - low))`,
    counting rows from the bottom; `cell` does the same, so a mark drawn over the built lines lands
    where plotext would have drawn it.
    """

    columns: range
    rows: range  # from the bottom of the plot
    height: int  # the plot's lines
    xlim: Point
    ylim: Point

    @staticmethod
    def of(plt: Plot, height: int) -> Canvas | None:
        """The canvas of the plot `plt` just built (None where it has no room for data)."""
        # plotext keeps the canvas it laid out in its monitor's matrix (plotext < 6, as pinned).
        monitor = plt.monitor  # type: ignore[attr-defined]  # set in the figure's __init__, untyped
        matrix = monitor.matrix
        xlim, ylim = monitor.xlim[0], monitor.ylim[0]
        if len(matrix.Cols_canvas) < 1 or len(matrix.Rows_canvas) < 1 or None in (*xlim, *ylim):
            return None
        x, y = (float(xlim[0]), float(xlim[1])), (float(ylim[0]), float(ylim[1]))
        return Canvas(matrix.Cols_canvas, matrix.Rows_canvas, height, x, y)

    def cell(self, point: Point) -> tuple[int, int] | None:
        """The (line, column) where `point` is drawn, None if it is off the canvas."""

        def place(value: float, lim: Point, cells: range) -> int | None:
            if lim[1] == lim[0] or math.isnan(value):
                return None
            at = math.floor(round(0.5 + (len(cells) - 1) * (value - lim[0]) / (lim[1] - lim[0]), 8))
            return cells.start + at if 0 <= at < len(cells) else None

        column, row = place(point[0], self.xlim, self.columns), place(point[1], self.ylim, self.rows)
        return None if column is None or row is None else (self.height - 1 - row, column)


@dataclass(frozen=True)
class Built:
    """A plot built for one key: its lines, where its data went, and the style of the selected run's mark."""

    data: PlotData
    lines: list[Strip]
    canvas: Canvas | None
    mark: RichStyle


@dataclass(frozen=True)
class Paint:
    """What one paint of the pane draws: a built plot at a width and style, and the mark's (line, column)."""

    plot: Built
    width: int
    style: RichStyle
    mark: tuple[int, int] | None


class ScorePlot(PlotextPlot):
    """Score history, or the bytes-vs-score Pareto view (`pareto = True`).

    plotext builds a plot in tens of milliseconds (a hundred and more on a track of 25,000 runs),
    and turning its text into lines of cells costs as much again: too long for the UI thread to
    wait on a key. A thread worker does both, and the pane draws the lines it hands back (the
    Line API), showing the last plot built until the new one is ready (`settled` says when it
    is). The last few plots are kept, and `prepare` builds the other tracks' plots while the
    console is idle, so switching tracks or views draws at once. The selected run's mark (◉) is
    not part of a build: it is drawn over the built lines, so moving the cursor builds nothing.
    """

    DEFAULT_CSS = """
    ScorePlot { height: 1fr; min-height: 6; }
    """

    pareto: reactive[bool] = reactive(False)
    highlighted: reactive[str | None] = reactive(None)

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.data = PlotData()
        self._built: OrderedDict[tuple[object, ...], Built] = OrderedDict()  # newest last, by `_key`
        self._shown: Built | None = None
        self._paint: Paint | None = None  # worked out by `render_lines`, read by `render_line`
        self._building: tuple[object, ...] | None = None
        self._waiting: list[tuple[PlotData, bool]] = []  # plots to build while idle (`prepare`)
        self._lock = threading.Lock()  # one figure: one build at a time

    @property
    def settled(self) -> bool:
        """Whether the pane shows the plot of its current data and view (no build waits or runs)."""
        key = self._key(self.data, self.pareto)
        return key is None or (key in self._built and self._building is None)

    @property
    def prepared(self) -> bool:
        """Whether every plot `prepare` asked for is built (and the one shown)."""
        return self.settled and not self._waiting

    def show(self, data: PlotData) -> None:
        """Draw new data."""
        self.data = data
        self._titles()
        self.refresh()

    def prepare(self, plots: Sequence[PlotData]) -> None:
        """Build these plots when nothing else is being built: the current view of each, then the
        other view of the data shown; as many as the pane keeps."""
        wanted = [(data, self.pareto) for data in plots if data is not self.data]
        wanted.append((self.data, not self.pareto))
        self._waiting = wanted[: KEEP_PLOTS - 1]
        self.call_after_refresh(self._build_next)  # after the paint this call comes with

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
            estimates = "  ~ estimate" if self.data.estimated else ""  # a legend names only what is drawn
            self.border_subtitle = f"· run{estimates}  ★ promoted  ─ floor{selected}"

    def _key(self, data: PlotData, pareto: bool) -> tuple[object, ...] | None:
        """What a plot of `data` depends on; None when the pane would show words instead."""
        width, height = self.size
        if width < 16 or height < 5 or not data.runs:
            return None
        return (width, height, id(data), pareto, self.app.theme)

    def render(self) -> RenderResult:
        """Words, where the pane shows no plot (the plot itself is drawn by `render_line`)."""
        width, height = self.size
        if width < 16 or height < 5:
            return Text("(plot: make the terminal larger)", style="dim")
        if not self.data.runs:
            return Text(f"no measured runs in track {self.data.track or '-'} yet", style="dim")
        return Text("drawing the plot…", style="dim")

    def render_lines(self, crop: Region) -> list[Strip]:
        """The lines in `crop`: which plot and where its mark goes are worked out once for all of them."""
        self._paint = self._what_to_paint()
        return super().render_lines(crop)

    def _what_to_paint(self) -> Paint | None:
        key = self._key(self.data, self.pareto)
        if key is None:
            return None
        found = self._built.get(key)
        if found is None:
            self._build_next()
        else:
            self._built.move_to_end(key)  # the plot shown is the last to be dropped
            self._shown = found
        shown = self._shown
        if shown is None:
            return None
        # The selected run's mark, only over the plot of the data shown (not over the last one while building).
        selected = self._highlight() if shown is found else None
        place = shown.canvas.cell(selected) if selected is not None and shown.canvas is not None else None
        return Paint(shown, self.size.width, self.visual_style.rich_style, place)

    def render_line(self, y: int) -> Strip:
        """A line of the plot for the current size, data and theme once built (meanwhile the last one)."""
        paint = self._paint
        if paint is None:
            return super().render_line(y)
        width, style, lines = paint.width, paint.style, paint.plot.lines
        if y >= len(lines):
            return Strip.blank(width, style)
        line = lines[y] if lines[y].cell_length == width else lines[y].crop_extend(0, width, style)
        if paint.mark is None or paint.mark[0] != y:
            return line
        column = paint.mark[1]
        left, cell, right = line.divide([column, column + 1, width])
        under = next(iter(cell), None)
        mark = Segment("◉", (under.style or RichStyle()) + paint.plot.mark if under else paint.plot.mark)
        return Strip.join([left, Strip([mark], 1), right])

    def _build_next(self) -> None:
        """Unless a build runs, start the next: the plot shown first, then those `prepare` asked for."""
        while self._building is None:
            key = self._key(self.data, self.pareto)
            if key is not None and key not in self._built:
                self._start_build(key, self.data, self.pareto)
            elif not self._waiting:
                return
            else:
                data, pareto = self._waiting.pop(0)
                key = self._key(data, pareto)
                if key is not None and key not in self._built:
                    self._start_build(key, data, pareto)

    def _start_build(self, key: tuple[object, ...], data: PlotData, pareto: bool) -> None:
        self._building = key
        colours = Colours(
            theme_rgb(self.app, "primary", "#4a90d9"),
            theme_rgb(self.app, "success", "#2e9d4f"),
            theme_rgb(self.app, "warning", "#d9a400"),
            theme_rgb(self.app, "secondary", "#9a6fd0"),
            theme_rgb(self.app, "accent", "#e0559a"),
        )
        # What the worker needs of the widget to lay the plot's text out as `render` would, read here.
        rules = {name: self.styles.get_rule(name) for name in ("text_align", "text_overflow", "text_wrap", "line_pad")}
        options = RenderOptions(self._get_style, {k: v for k, v in rules.items() if v is not None})  # type: ignore[arg-type]
        layout = (self.visual_style, options, self.app.console)
        theme = self._get_plotext_theme_name(self.app.theme)
        self._build(key, data, pareto, colours, theme, layout)

    @work(thread=True, group="plot", exit_on_error=False, description="build the score plot")
    def _build(
        self,
        key: tuple[object, ...],
        data: PlotData,
        pareto: bool,
        colours: Colours,
        theme: str,
        layout: tuple[Style, RenderOptions, Console],
    ) -> None:
        """Build one plot off the UI thread and hand its lines to the pane."""
        width, height = key[0], key[1]
        assert isinstance(width, int) and isinstance(height, int)
        canvas = None
        with self._lock:
            plt = self.plt
            try:
                plt.clear_figure()
                (draw_pareto if pareto else draw_history)(plt, data, colours)
                plt.plotsize(width, height)
                plt._set_size(width, height)  # as `PlotextPlot.render` does: resizing needs both
                plt.theme(theme)
                drawn = Text.from_ansi(plt.build())
                canvas = Canvas.of(plt, height)
            except Exception as exc:  # plotext is third-party drawing code: a bad frame must not end the app
                drawn = Text(f"(plot could not be drawn: {exc})", style="dim")
        style, options, console = layout
        lines = Content.from_rich_text(drawn, console=console).render_strips(width, height, style, options)
        mark = RichStyle(color=RichColor.from_rgb(*colours.selected), bold=True)
        self.app.call_from_thread(self._done, key, Built(data, lines, canvas, mark))

    def _done(self, key: tuple[object, ...], built: Built) -> None:
        self._built[key] = built
        self._built.move_to_end(key)
        while len(self._built) > KEEP_PLOTS:
            self._built.popitem(last=False)
        if self._building == key:
            self._building = None
        self.refresh()
        self._build_next()


def draw_history(plt: Plot, data: PlotData, colours: Colours) -> None:
    """Scores in finish order, the floor as a step line under them, promotions marked."""
    # The floor first, so runs close to it are drawn over it rather than hidden under it.
    if data.floor_steps:
        steps = data.floor_steps
        plt.plot([p[0] for p in steps], [p[1] for p in steps], marker="braille", color=colours.floor)
    points = data.scores
    plt.scatter([p[0] for p in points], [p[1] for p in points], marker="•", color=colours.run)
    if data.estimated:
        guesses = data.estimated
        plt.scatter([p[0] for p in guesses], [p[1] for p in guesses], marker=fmt.ESTIMATE, color=colours.estimate)
    if data.promoted:
        marks = data.promoted
        plt.scatter([p[0] for p in marks], [p[1] for p in marks], marker="★", color=colours.mark)
    low, high = data.score_range
    pad = max(1e-3, (high - low) * 0.05)
    plt.ylim(low - pad, high + pad)
    plt.xlim(0.5, data.runs + 0.5)
    ticks = whole_ticks(1, data.runs)
    plt.xticks([float(t) for t in ticks], [str(t) for t in ticks])
    plt.xlabel("run (finish order)")


def draw_pareto(plt: Plot, data: PlotData, colours: Colours) -> None:
    """Bytes (log) against score, the frontier drawn and marked."""
    if not data.pareto_points:
        plt.scatter([0.0], [0.0], marker=" ")
        return
    points = data.pareto_points
    plt.scatter([p[0] for p in points], [p[1] for p in points], marker="•", color=colours.run)
    if data.frontier:
        plt.plot([p[0] for p in data.frontier], [p[1] for p in data.frontier], marker="braille", color=colours.mark)
        plt.scatter([p[0] for p in data.frontier], [p[1] for p in data.frontier], marker="◆", color=colours.mark)
    (low, high), (lowest, highest) = data.pareto_range
    if high - low < 0.02:
        low, high = low - 0.01, high + 0.01
    ticks, labels = byte_ticks(low, high)
    plt.xlim(low, high)
    plt.xticks(ticks, labels)
    pad = max(1e-3, (highest - lowest) * 0.05)
    plt.ylim(lowest - pad, highest + pad)
    plt.xlabel("archive bytes")
