"""The main screen: the ledger, the queue, the score history, and the status line.

Wide terminals put the ledger on the left and the queue over the plot on the right; narrow
ones stack them, and short ones shrink the plot (see `app.tcss`).
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.timer import Timer

from comma_tui.lab_state import Live, Snapshot
from comma_tui.screens.filter import RunFilter
from comma_tui.screens.review import ReviewScreen
from comma_tui.screens.run_screen import RUN_BINDINGS, RunScreen
from comma_tui.widgets.key_footer import KeyFooter
from comma_tui.widgets.ledger_table import LedgerTable
from comma_tui.widgets.queue_pane import QueuePane, QueueState
from comma_tui.widgets.score_plot import PlotData, ScorePlot
from comma_tui.widgets.status_line import StatusLine
from ledger import RunSummary

PLOT_FOLLOW_SECONDS = 0.15


class MainScreen(RunScreen):
    """Ledger, queue, plot and status line."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "detail", "Detail", tooltip="Open the selected run", id="detail"),
        *RUN_BINDINGS,
        Binding("slash", "filter", "Filter", key_display="/", tooltip="Filter by text, track, status, verdict"),
        Binding("v", "review", "Review", tooltip="Rejection review mode: rejected runs, newest first"),
        Binding("t", "next_track", "Track", tooltip="Show the next track (then all)", id="track"),
        Binding("A", "autopilot", "Autopilot", tooltip="Start or stop the autopilot on this track", id="autopilot"),
        Binding("f", "toggle_pareto", "Pareto", tooltip="Switch the plot: score history / bytes-vs-score Pareto"),
        Binding("space", "mark", "Mark", show=False, tooltip="Mark the run (x and r act on every marked run)"),
        Binding("escape", "unmark", "Unmark all", show=False, tooltip="Clear the marks"),
        Binding("h", "hide_cancelled", "Hide cancelled", show=False, tooltip="Hide or show cancelled runs"),
    ]

    #: The autopilot's key last: a narrow Footer keeps the track and plot keys before it.
    FOOTER_PRIORITY = (*RunScreen.FOOTER_PRIORITY, "next_track", "toggle_pareto", "autopilot")

    def __init__(self) -> None:
        super().__init__()
        self._pending_select: str | None = None
        self._plot_track: str | None = None
        self._plot_timer: Timer | None = None
        self._follow_on_resume = False

    def compose(self) -> ComposeResult:
        with Horizontal(id="panes"):
            yield LedgerTable(id="ledger")
            with Vertical(id="side"):
                yield QueuePane(id="queue")
                yield ScorePlot(id="plot")
        yield StatusLine(id="status")
        yield KeyFooter(self.FOOTER_PRIORITY)

    def on_mount(self) -> None:
        app = self.lab_app
        app.ledger_changed.subscribe(self, self._on_ledger)
        app.live_changed.subscribe(self, self._on_live)
        app.filters_changed.subscribe(self, self._on_filters)
        app.problems_changed.subscribe(self, lambda _problems: self._draw_status())
        if app.snapshot is not None:
            self._on_ledger(app.snapshot)
        self._draw_status()

    @property
    def table(self) -> LedgerTable:
        """The ledger pane."""
        return self.query_one("#ledger", LedgerTable)

    def _on_ledger(self, snapshot: Snapshot) -> None:
        self._draw_table(snapshot)
        if not snapshot.newest_only:  # the first page: the other panes wait for the whole history
            self._draw_plot(snapshot)
            self.query_one("#plot", ScorePlot).prepare(list(self.lab_app.plots.values()))  # for `t` and `f`
            self.call_after_refresh(lambda: self.lab_app.read_ahead(self.selected_run()))  # for `enter`
            self._draw_queue()
        self._draw_status()
        self.selection_changed()

    def _on_live(self, _live: Live) -> None:
        self._draw_queue()
        self._draw_status()
        self.selection_changed()

    def _on_filters(self, _filters: RunFilter) -> None:
        snapshot = self.lab_app.snapshot
        if snapshot is not None:  # the queue does not filter: it stays as drawn
            self._draw_table(snapshot)
            if not snapshot.newest_only:
                self._draw_plot(snapshot)
            self._draw_status()

    def _draw_table(self, snapshot: Snapshot) -> None:
        filters = self.lab_app.filters
        table = self.table
        shown = filters.apply(snapshot.table)
        table.set_runs(shown, snapshot.deltas, snapshot.floor_ids)
        table.keep_marks(snapshot.table)
        if self._pending_select is not None and table.select(self._pending_select):
            self._pending_select = None
        described = f" · {filters.describe()}" if filters else ""
        total = f"the newest {len(snapshot.table)}, reading the rest…" if snapshot.newest_only else len(snapshot.table)
        table.border_title = Text(f"Ledger · {len(shown)} of {total}{described}")
        table.border_subtitle = f"{table.sort_key} {'▼' if table.sort_reverse else '▲'} (o: sort)"
        if not len(snapshot.table):
            table.empty_text = "no runs yet: n queues one, s a sweep"
        else:
            table.empty_text = f"no run matches {filters.describe()}: / changes the filter (Ctrl+R in it clears)"

    def plot_track(self, snapshot: Snapshot) -> str:
        """The track the plot shows: the filtered one, else the selected run's, else the latest measured."""
        if self.lab_app.filters.track:
            return self.lab_app.filters.track
        selected = self.selected_run()
        if selected is not None:
            return selected.track
        return snapshot.latest_track or (snapshot.tracks[0] if snapshot.tracks else "")

    def _draw_plot(self, snapshot: Snapshot) -> None:
        track = self._plot_track = self.plot_track(snapshot)
        plot = self.query_one("#plot", ScorePlot)
        plot.show(self.lab_app.plots.get(track) or PlotData(track))
        selected = self.selected_run()
        plot.highlighted = selected.id if selected is not None else None

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
            scheduler=live.scheduler if live else None,
        )
        self.query_one("#queue", QueuePane).show(state)

    def _draw_status(self) -> None:
        app = self.lab_app
        scheduler = app.live.scheduler if app.live else None
        self.query_one("#status", StatusLine).show(
            app.snapshot, scheduler, app.filters.describe(), str(app.lab.root), list(app.problems.values())
        )

    def on_ledger_table_highlighted(self, _message: LedgerTable.Highlighted) -> None:
        # The plot follows the selected run (its track, its point) once the cursor rests, not on every row.
        self.selection_changed()
        if self._plot_timer is not None:
            self._plot_timer.stop()
        self._plot_timer = self.set_timer(PLOT_FOLLOW_SECONDS, self._follow_selection)

    def on_ledger_table_marked(self, _message: LedgerTable.Marked) -> None:
        self.selection_changed()

    def on_screen_resume(self) -> None:
        if self._follow_on_resume:
            self._follow_selection()

    def _follow_selection(self) -> None:
        self._plot_timer = None
        # Covered (`enter` pressed as the cursor came to rest) the plot waits for the screen's return.
        self._follow_on_resume = self.covered
        if self._follow_on_resume:
            return
        snapshot, selected = self.lab_app.snapshot, self.selected_run()
        if snapshot is None or snapshot.newest_only:
            return
        if selected is not None and selected.track != self._plot_track:
            self._draw_plot(snapshot)
        else:
            self.query_one("#plot", ScorePlot).highlighted = selected.id if selected is not None else None
        self.lab_app.read_ahead(selected)  # `enter` opens it at once

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Unmark applies only while runs are marked; the rest as for every screen of runs."""
        if action == "unmark":
            return bool(self.table.marked)
        return super().check_action(action, parameters)

    def action_autopilot(self) -> None:
        """Open the autopilot form on the current track, or stop the autopilot running there."""
        app = self.lab_app
        app.toggle_autopilot(app.current_track(self.selected_run()), app.start_scheduler_on_open)

    def action_toggle_pareto(self) -> None:
        """Switch the plot between score history and the Pareto view."""
        plot = self.query_one("#plot", ScorePlot)
        plot.pareto = not plot.pareto

    def action_filter(self) -> None:
        """Filter the ledger by text, track, status and verdict."""
        self.lab_app.open_filter()

    def action_review(self) -> None:
        """Open rejection review mode."""
        self.app.push_screen(ReviewScreen())

    def action_next_track(self) -> None:
        """Show the next track (all tracks, then each in turn)."""
        self.lab_app.next_track()

    def action_mark(self) -> None:
        """Mark or unmark the run under the cursor, and move down."""
        self.table.toggle_mark()

    def acted_on_marks(self) -> None:
        """Cancel or retry went through: the marks have done their job."""
        self.table.clear_marks()

    def action_unmark(self) -> None:
        """Clear every mark."""
        self.table.clear_marks()

    def action_hide_cancelled(self) -> None:
        """Hide cancelled runs, or show them again."""
        filters = self.lab_app.filters
        self.lab_app.set_filters(filters.with_hidden_cancelled(not filters.hide_cancelled))

    def selected_run(self) -> RunSummary | None:
        """The run under the ledger's cursor."""
        return self.table.current

    def marked_runs(self) -> list[RunSummary]:
        """The marked runs (in the ledger's order), else the run under the cursor."""
        return self.table.marked_runs() or super().marked_runs()

    def select_run(self, run_id: str) -> None:
        """Put the cursor on a run (once it is loaded: a new run shows at the next reload)."""
        if not self.table.select(run_id):
            self._pending_select = run_id
