"""The comma-tui console: one App over one lab, live, keyboard-first, never blocking.

Every call into the lab runs in a thread worker through `LabClient` and reports back by posting
a message; worker errors are shown in one place (`on_worker_state_changed`). A timer polls the
ledger's revision and reloads only when it changed. The app owns the actions (new run, clone,
cancel...) and asks the screen on top which run is selected; screens own the bindings, so the
Footer and the command palette always list the keys of the screen in front.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.signal import Signal
from textual.worker import Worker, WorkerState

from comma_tui.lab_client import LabClient
from comma_tui.lab_state import Live, Snapshot
from comma_tui.screens.autopilot_form import AutopilotForm, AutopilotRequest
from comma_tui.screens.filter import FilterScreen, RunFilter
from comma_tui.screens.help import HelpScreen
from comma_tui.screens.main import MainScreen
from comma_tui.screens.prompt import TextPrompt
from comma_tui.screens.review import ReviewScreen
from comma_tui.screens.run_detail import RunDetailScreen
from comma_tui.screens.run_form import RunForm, RunRequest
from comma_tui.screens.sweep_form import SweepForm, SweepRequest
from comma_tui.widgets.score_plot import PlotData, track_plots
from ledger import Lab, RunSummary
from ledger.errors import UserError

POLL_SECONDS = 0.5
#: Rows read before the rest of the history (more than a tall terminal shows).
FIRST_PAGE_ROWS = 200


class CommaApp(App[None]):
    """The lab console. `start_scheduler=False` keeps it from starting one (tests, read-only use)."""

    CSS_PATH = "app.tcss"
    TITLE = "comma-tui"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]  # noqa: RUF012 (typed by App)
    VERTICAL_BREAKPOINTS = [(0, "-short"), (36, "-tall")]  # noqa: RUF012
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", tooltip="Quit the console; the queue keeps running", id="quit"),
        Binding("question_mark", "help", "Help", key_display="?", tooltip="Every key, and the symbols", id="help"),
    ]

    class LedgerLoaded(Message):
        """The history changed and was read again (with each track's plot, drawn off the UI thread)."""

        def __init__(self, snapshot: Snapshot, plots: dict[str, PlotData]) -> None:
            self.snapshot = snapshot
            self.plots = plots
            super().__init__()

    class LiveUpdated(Message):
        """Progress and the scheduler's state were read again."""

        def __init__(self, live: Live) -> None:
            self.live = live
            super().__init__()

    class ActionDone(Message):
        """An action on the lab succeeded: say so, and maybe move the cursor to a run."""

        def __init__(self, text: str, select: str | None = None) -> None:
            self.text = text
            self.select = select
            super().__init__()

    def __init__(self, lab: Lab, *, start_scheduler: bool = True, poll_seconds: float = POLL_SECONDS) -> None:
        super().__init__()
        self.client = LabClient(lab)
        self.start_scheduler = start_scheduler
        self.poll_seconds = poll_seconds
        self.snapshot: Snapshot | None = None
        self.plots: dict[str, PlotData] = {}
        self.live: Live | None = None
        self.filters = RunFilter()
        self.ledger_changed: Signal[Snapshot] = Signal(self, "ledger-changed")
        self.live_changed: Signal[Live] = Signal(self, "live-changed")
        self.filters_changed: Signal[RunFilter] = Signal(self, "filters-changed")
        self._detail_screen: RunDetailScreen | None = None
        self._seen_revision: Any = None
        self._polling = False
        self.sub_title = lab.root.name

    def get_default_screen(self) -> Screen:
        return MainScreen()

    def on_mount(self) -> None:
        self.poll()
        self.set_interval(self.poll_seconds, self._tick)
        if self.start_scheduler:
            self.ensure_scheduler()

    # Reading the lab.

    def _tick(self) -> None:
        if not self._polling:  # a slow read (a huge ledger) must not pile up readers
            self.poll()

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def poll(self) -> None:
        """Reload the history if its revision moved, and always the live progress."""
        self._polling = True
        try:
            if self.snapshot is None and self._seen_revision is None:
                # A long history: the newest runs first, so the first screen of rows paints at once.
                self.post_message(self.LedgerLoaded(self.client.first_page(FIRST_PAGE_ROWS), {}))
            snapshot = self.client.snapshot(since=self._seen_revision)
            if snapshot is not None:
                self._seen_revision = snapshot.revision
                self.post_message(self.LedgerLoaded(snapshot, track_plots(snapshot)))
            self.post_message(self.LiveUpdated(self.client.live()))
            if snapshot is not None:
                self.client.prime(snapshot)  # after the first paint, not before it
        finally:
            self._polling = False

    @work(thread=True, group="scheduler", exit_on_error=False)
    def ensure_scheduler(self) -> None:
        """Start the lab's scheduler when none runs (never a second one)."""
        self.post_message(self.ActionDone(self.client.ensure_scheduler()))

    @on(LedgerLoaded)
    def _ledger_loaded(self, message: LedgerLoaded) -> None:
        self.snapshot, self.plots = message.snapshot, message.plots
        self.ledger_changed.publish(message.snapshot)

    @on(LiveUpdated)
    def _live_updated(self, message: LiveUpdated) -> None:
        if message.live == self.live:
            return  # nothing moved since the last poll: nothing to redraw
        self.live = message.live
        self.live_changed.publish(message.live)

    @on(ActionDone)
    def _action_done(self, message: ActionDone) -> None:
        self.notify(message.text, timeout=4, markup=False)
        if message.select is not None:
            selector = getattr(self.screen, "select_run", None)
            if selector is not None:
                selector(message.select)
        self.poll()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Every worker's failure ends here: a user error as one line, anything else with its type."""
        if event.state != WorkerState.ERROR or event.worker.error is None:
            return
        error = event.worker.error
        text = str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}"
        self.notify(text, title="Could not do that", severity="error", timeout=8, markup=False)

    # Which run the keys act on.

    def selected_run(self) -> RunSummary | None:
        """The run selected on the screen in front (the ledger's cursor, or the run shown)."""
        getter: Callable[[], RunSummary | None] | None = getattr(self.screen, "selected_run", None)
        return getter() if getter is not None else None

    def _need_run(self, doing: str) -> RunSummary | None:
        run = self.selected_run()
        if run is None:
            self.notify(f"Select a run to {doing} first", severity="warning")
        return run

    @work(thread=True, group="action", exit_on_error=False)
    def run_on_lab(
        self, call: Callable[[], Any], done: Callable[[Any], str], select: Callable[[Any], str | None]
    ) -> None:
        """Make one blocking call on the lab and report what it did."""
        result = call()
        self.post_message(self.ActionDone(done(result), select(result)))

    def _do(self, call: Callable[[], Any], done: Callable[[Any], str], select_new: bool = False) -> None:
        self.run_on_lab(call, done, (lambda r: getattr(r, "id", None)) if select_new else (lambda _r: None))

    # Actions (bound on the screens, so the Footer shows the ones that apply).

    def action_new_run(self) -> None:
        """Open the new-run form, prefilled from the selected run."""
        self._open_run_form(self.selected_run())

    @work(thread=True, group="form", exit_on_error=False)
    def _open_run_form(self, base: RunSummary | None) -> None:
        spec = self.client.spec_of(base.id if base else None)
        source = self.client.source()
        form = RunForm(spec, source, parent=base, tracks=self.snapshot.tracks if self.snapshot else [])
        self.call_from_thread(self.push_screen, form, self._queue_from_form)

    def _queue_from_form(self, request: RunRequest | None) -> None:
        if request is None:
            return
        self._do(
            lambda: self.client.queue_run(request.spec, request.track, request.label, request.parent, request.priority),
            lambda r: f"Queued {r.id}",
            select_new=True,
        )

    def action_clone(self) -> None:
        """Queue the selected run's spec again, as its child."""
        if (run := self._need_run("clone")) is not None:
            self._do(lambda: self.client.clone(run.id), lambda r: f"Queued {r.id}, a clone of {run.id}", True)

    def action_sweep(self) -> None:
        """Open the sweep form around the selected run."""
        self._open_sweep_form(self.selected_run())

    @work(thread=True, group="form", exit_on_error=False)
    def _open_sweep_form(self, base: RunSummary | None) -> None:
        spec = self.client.spec_of(base.id if base else None)
        form = SweepForm(spec, parent=base)
        self.call_from_thread(self.push_screen, form, self._queue_sweep)

    def _queue_sweep(self, request: SweepRequest | None) -> None:
        if request is None:
            return
        self._do(
            lambda: self.client.queue_sweep(
                request.base, request.sweeps, request.parent, request.track, request.priority
            ),
            lambda runs: f"Queued {len(runs)} runs: {', '.join(r.id for r in runs[:6])}{'…' if len(runs) > 6 else ''}",
        )

    def current_track(self) -> str:
        """The track keys act on: the selected run's, else the filtered one, else the first with a floor."""
        run = self.selected_run()
        if run is not None:
            return run.track
        floors = list(self.snapshot.floors) if self.snapshot else []
        return self.filters.track or (floors[0] if floors else "main")

    def action_autopilot(self) -> None:
        """Open the autopilot form on the current track, or stop the autopilot running there."""
        self._toggle_autopilot(self.current_track())

    @work(thread=True, group="form", exit_on_error=False)
    def _toggle_autopilot(self, track: str) -> None:
        if self.client.autopilot_running(track):
            self.post_message(self.ActionDone(self.client.stop_autopilot(track)))
            return
        floor = self.snapshot.floors.get(track) if self.snapshot else None
        if floor is None:
            raise UserError(f"track {track!r} has no floor yet: the autopilot searches around one, measure a run first")
        form = AutopilotForm(track, floor, self.client.spec_of(floor.id))
        self.call_from_thread(self.push_screen, form, self._start_autopilot)

    def _start_autopilot(self, request: AutopilotRequest | None) -> None:
        if request is not None:
            self._do(lambda: self.client.start_autopilot(request.track, request.text, self.start_scheduler), str)

    def action_cancel(self) -> None:
        """Cancel the selected queued or running run."""
        if (run := self._need_run("cancel")) is not None:
            self._do(lambda: self.client.cancel(run.id), lambda r: f"{run.id} cancelled")

    def action_retry(self) -> None:
        """Queue a failed, cancelled or interrupted run again (a new run; parent is the old one)."""
        if (run := self._need_run("retry")) is not None:
            self._do(lambda: self.client.retry(run.id), lambda r: f"Queued {r.id} to retry {run.id}", True)

    def action_bump(self, delta: int) -> None:
        """Raise or lower the selected queued run's priority."""
        if (run := self._need_run("reprioritise")) is not None:
            self._do(lambda: self.client.bump(run.id, delta), lambda r: f"{run.id} priority {r.priority:+d}")

    def action_score_fully(self) -> None:
        """Queue the selected run rejected early to be scored fully (its kept archive, every pair)."""
        if (run := self._need_run("score fully")) is not None:
            self._do(lambda: self.client.rescore(run.id), lambda r: f"Queued {r.id} to be scored fully")

    def action_toggle_pause(self) -> None:
        """Pause the queue (running runs finish) or resume it."""
        self._do(self.client.toggle_pause, lambda paused: "Queue paused" if paused else "Queue resumed")

    def action_detail(self) -> None:
        """Open the selected run's detail screen."""
        if (run := self._need_run("open")) is None or isinstance(self.screen, RunDetailScreen):
            return
        if self._detail_screen is None:
            self._detail_screen = RunDetailScreen(run.id)
            self.install_screen(self._detail_screen, name="detail")
        self._detail_screen.show_run(run.id)
        self.push_screen(self._detail_screen)

    def action_filter(self) -> None:
        """Filter the ledger by text, track, status and verdict."""
        tracks = self.snapshot.tracks if self.snapshot else []
        self.push_screen(FilterScreen(self.filters, tracks), self.set_filters)

    def set_filters(self, filters: RunFilter | None) -> None:
        """Apply new filters (None: leave them)."""
        if filters is not None:
            self.filters = filters
            self.filters_changed.publish(filters)

    def action_next_track(self) -> None:
        """Show the next track (all tracks, then each in turn)."""
        tracks: list[str | None] = [None, *(self.snapshot.tracks if self.snapshot else [])]
        following = (
            tracks[(tracks.index(self.filters.track) + 1) % len(tracks)] if self.filters.track in tracks else None
        )
        self.set_filters(self.filters.with_track(following))
        self.notify(f"Track: {following or 'all'}", timeout=2, markup=False)

    def action_review(self) -> None:
        """Open rejection review mode."""
        self.push_screen(ReviewScreen())

    def action_verdict(self, verdict: str) -> None:
        """Promote or reject the selected measured run by hand, with a note."""
        if (run := self._need_run(verdict[:-1])) is None:
            return
        verb = "Promote" if verdict == "promoted" else "Reject"

        def give(note: str | None) -> None:
            if note:
                self._do(lambda: self.client.override(run.id, verdict, note), lambda r: f"{r.id} {r.verdict}")

        self.push_screen(TextPrompt(f"{verb} {run.id}: why?", placeholder="a note kept with the verdict"), give)

    def action_export(self) -> None:
        """Export the selected finished run as an official-layout submission folder."""
        if (run := self._need_run("export")) is None:
            return
        default = str(self.client.default_export_dir(run.id))

        def export(dest: str | None) -> None:
            if dest:
                self._do(lambda: self.client.export(run.id, Path(dest)), lambda path: f"Exported {run.id} to {path}")

        self.push_screen(TextPrompt(f"Export {run.id} to folder", value=default), export)

    def action_clone_variant(self) -> None:
        """Open the new-run form on the selected run (review mode's clone into a new variant)."""
        if (run := self._need_run("clone")) is not None:
            self._open_run_form(run)

    def action_help(self) -> None:
        """Show every key and what the symbols mean."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The palette lists the keys of the screen in front as commands, then Textual's own."""
        seen = set()
        for key, active in screen.active_bindings.items():
            binding = active.binding
            if not binding.description or binding.action in seen or binding.system:
                continue
            seen.add(binding.action)
            display = binding.key_display or key
            help_text = binding.tooltip or binding.description
            yield SystemCommand(
                f"{binding.description} ({display})",
                help_text,
                lambda node=active.node, action=binding.action: self.call_later(self.run_action, action, node),
            )
        yield from super().get_system_commands(screen)
