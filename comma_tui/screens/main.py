"""The main screen: the ledger, the queue, the score history, and the status line.

Wide terminals put the ledger on the left and the queue over the plot on the right; narrow
ones stack them, and short ones shrink the plot (see `app.tcss`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer

from comma_tui.lab_state import Live, Snapshot
from comma_tui.screens.filter import RunFilter
from comma_tui.widgets.ledger_table import LedgerTable
from comma_tui.widgets.queue_pane import QueuePane, QueueState
from comma_tui.widgets.score_plot import PlotData, ScorePlot
from comma_tui.widgets.status_line import StatusLine
from ledger import RunSummary
from ledger.queries import latest_measured

if TYPE_CHECKING:
    from comma_tui.app import CommaApp

PLOT_FOLLOW_SECONDS = 0.3

#: The keys that act on runs, shared by the screens that show runs (main, detail, review).
RUN_BINDINGS: list[BindingType] = [
    Binding("n", "app.new_run", "New", tooltip="New run from a form prefilled from the selected run", id="new"),
    Binding("c", "app.clone", "Clone", tooltip="Queue the selected run again, as its child", id="clone"),
    Binding("s", "app.sweep", "Sweep", tooltip="Queue a sweep of one or two axes around the selected run", id="sweep"),
    Binding("x", "app.cancel", "Cancel", tooltip="Cancel the selected queued or running run", id="cancel"),
    Binding("r", "app.retry", "Retry", tooltip="Queue a failed, cancelled or interrupted run again", id="retry"),
    Binding("p", "app.toggle_pause", "Pause", tooltip="Pause or resume the queue (running runs finish)", id="pause"),
    Binding("plus,equals_sign", "app.bump(1)", "Prio+", key_display="+", tooltip="Raise a queued run's priority"),
    Binding("minus", "app.bump(-1)", "Prio-", key_display="-", tooltip="Lower a queued run's priority"),
    Binding("P", "app.verdict('promoted')", "Promote", tooltip="Promote the selected run by hand, with a note"),
    Binding("R", "app.verdict('rejected')", "Reject", tooltip="Reject the selected run by hand, with a note"),
    Binding("e", "app.export", "Export", tooltip="Export the selected run as a submission folder", id="export"),
    Binding(
        "S",
        "app.score_fully",
        "Score fully",
        tooltip="Score a run rejected early in full (kept archive): its exact score replaces the estimate",
        id="score-fully",
    ),
]


class MainScreen(Screen[None]):
    """Ledger, queue, plot and status line."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "app.detail", "Detail", tooltip="Open the selected run", id="detail"),
        *RUN_BINDINGS,
        Binding("slash", "app.filter", "Filter", key_display="/", tooltip="Filter by text, track, status, verdict"),
        Binding("v", "app.review", "Review", tooltip="Rejection review mode: rejected runs, newest first"),
        Binding("t", "app.next_track", "Track", tooltip="Show the next track (then all)", id="track"),
        Binding("A", "app.autopilot", "Autopilot", tooltip="Start or stop the autopilot on this track", id="autopilot"),
        Binding("f", "toggle_pareto", "Pareto", tooltip="Switch the plot: score history / bytes-vs-score Pareto"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._pending_select: str | None = None
        self._plot_track: str | None = None
        self._plot_timer: Timer | None = None

    @property
    def lab_app(self) -> CommaApp:
        """The app, typed."""
        return cast("CommaApp", self.app)

    def compose(self) -> ComposeResult:
        with Horizontal(id="panes"):
            yield LedgerTable(id="ledger")
            with Vertical(id="side"):
                yield QueuePane(id="queue")
                yield ScorePlot(id="plot")
        yield StatusLine(id="status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#ledger", LedgerTable).border_title = "Ledger"
        app = self.lab_app
        app.ledger_changed.subscribe(self, self._on_ledger)
        app.live_changed.subscribe(self, self._on_live)
        app.filters_changed.subscribe(self, self._on_filters)
        if app.snapshot is not None:
            self._on_ledger(app.snapshot)
        self._draw_status()

    def _on_ledger(self, snapshot: Snapshot) -> None:
        self._draw_table(snapshot)
        if not snapshot.newest_only:  # the first page: the other panes wait for the whole history
            self._draw_plot(snapshot)
            self._draw_queue()
        self._draw_status()

    def _on_live(self, _live: Live) -> None:
        self._draw_queue()
        self._draw_status()

    def _on_filters(self, _filters: RunFilter) -> None:
        snapshot = self.lab_app.snapshot
        if snapshot is not None:  # the queue does not filter: it stays as drawn
            self._draw_table(snapshot)
            if not snapshot.newest_only:
                self._draw_plot(snapshot)
            self._draw_status()

    def _draw_table(self, snapshot: Snapshot) -> None:
        filters = self.lab_app.filters
        table = self.query_one("#ledger", LedgerTable)
        shown = filters.apply(snapshot.table)
        table.set_runs(shown, snapshot.deltas, snapshot.floor_ids)
        if self._pending_select is not None and table.select(self._pending_select):
            self._pending_select = None
        described = f" · {filters.describe()}" if filters else ""
        total = f"the newest {len(snapshot.table)}, reading the rest…" if snapshot.newest_only else len(snapshot.table)
        table.border_title = Text(f"Ledger · {len(shown)} of {total}{described}")
        table.border_subtitle = f"{table.sort_key} {'▼' if table.sort_reverse else '▲'} (o: sort)"

    def plot_track(self, snapshot: Snapshot) -> str:
        """The track the plot shows: the filtered one, else the selected run's, else the latest measured."""
        if self.lab_app.filters.track:
            return self.lab_app.filters.track
        selected = self.selected_run()
        if selected is not None:
            return selected.track
        latest = latest_measured(snapshot.table)
        if latest is not None:
            return latest.track
        return snapshot.tracks[0] if snapshot.tracks else ""

    def _draw_plot(self, snapshot: Snapshot) -> None:
        track = self._plot_track = self.plot_track(snapshot)
        self.query_one("#plot", ScorePlot).show(self.lab_app.plots.get(track) or PlotData(track))

    def _draw_queue(self) -> None:
        snapshot, live = self.lab_app.snapshot, self.lab_app.live
        if snapshot is None or snapshot.newest_only:
            return
        state = QueueState(
            running=snapshot.running,
            queued=snapshot.queued,
            paused=snapshot.paused,
            progress=live.progress if live else {},
            stages=snapshot.stages,
            jobs=live.scheduler.jobs if live else {},
        )
        self.query_one("#queue", QueuePane).show(state)

    def _draw_status(self) -> None:
        app = self.lab_app
        scheduler = app.live.scheduler if app.live else None
        self.query_one("#status", StatusLine).show(app.snapshot, scheduler, app.filters.describe())

    def on_ledger_table_highlighted(self, message: LedgerTable.Highlighted) -> None:
        if message.run is not None and message.run.track != self._plot_track:
            # The plot follows the selected run's track, once the cursor rests (not on every row).
            if self._plot_timer is not None:
                self._plot_timer.stop()
            self._plot_timer = self.set_timer(PLOT_FOLLOW_SECONDS, self._follow_track)

    def _follow_track(self) -> None:
        self._plot_timer = None
        if self.lab_app.snapshot is not None and not self.lab_app.snapshot.newest_only:
            self._draw_plot(self.lab_app.snapshot)

    def action_toggle_pareto(self) -> None:
        """Switch the plot between score history and the Pareto view."""
        plot = self.query_one("#plot", ScorePlot)
        plot.pareto = not plot.pareto

    def selected_run(self) -> RunSummary | None:
        """The run under the ledger's cursor."""
        return self.query_one("#ledger", LedgerTable).current

    def select_run(self, run_id: str) -> None:
        """Put the cursor on a run (once it is loaded: a new run shows at the next reload)."""
        table = self.query_one("#ledger", LedgerTable)
        if not table.select(run_id):
            self._pending_select = run_id
