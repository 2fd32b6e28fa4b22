"""The comma-tui console: one App over one lab, live, keyboard-first, never blocking.

Every call into the lab runs in a thread worker through `LabClient` and reports back by posting
a message; worker errors end in one place (`on_worker_state_changed`): a user's mistake is a
line, anything else is a bug whose traceback goes to `console.log` in the lab. A timer polls
the ledger's revision and reloads only when it changed; a read that fails shows once, stays in
the status line, and is retried less and less often. Screens of runs (`RunScreen`) own the run
keys and say which run they act on; the app does the work.
"""

from __future__ import annotations

import time
import traceback
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
from comma_tui.palette import RunCommands
from comma_tui.screens.confirm import Confirm
from comma_tui.screens.filter import FilterScreen, RunFilter
from comma_tui.screens.help import HelpScreen
from comma_tui.screens.main import MainScreen
from comma_tui.screens.prompt import TextPrompt
from comma_tui.screens.review import neighbour_offsets
from comma_tui.screens.run_detail import RunDetailScreen
from comma_tui.screens.run_form import RunForm, RunRequest
from comma_tui.screens.run_screen import RunScreen
from comma_tui.screens.sweep_form import SweepForm, SweepRequest
from comma_tui.widgets import format as fmt
from comma_tui.widgets.score_plot import PlotData, track_plots
from ledger import Lab, RunRecord
from ledger.errors import UserError

POLL_SECONDS = 0.5
MAX_BACKOFF = 30.0
LOG_NAME = "console.log"


class CommaApp(App[None]):
    """The lab console. `start_scheduler=False` keeps it from starting one (tests, read-only use)."""

    CSS_PATH = "app.tcss"
    TITLE = "comma-tui"
    COMMANDS = App.COMMANDS | {RunCommands}
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
        """An action on the lab succeeded: say so, maybe move the cursor to a run, and call `after`."""

        def __init__(self, text: str, select: str | None = None, after: Callable[[], None] | None = None) -> None:
            self.text = text
            self.select = select
            self.after = after
            super().__init__()

    def __init__(self, lab: Lab, *, start_scheduler: bool = True, poll_seconds: float = POLL_SECONDS) -> None:
        super().__init__()
        self.client = LabClient(lab)
        self.start_scheduler_on_open = start_scheduler
        self.poll_seconds = poll_seconds
        self.snapshot: Snapshot | None = None
        self.plots: dict[str, PlotData] = {}
        self.live: Live | None = None
        self.filters = RunFilter()
        #: What is wrong now, for the status line: a read that fails, a bug that was logged.
        self.problems: dict[str, str] = {}
        self.farewell = ""
        self.ledger_changed: Signal[Snapshot] = Signal(self, "ledger-changed")
        self.live_changed: Signal[Live] = Signal(self, "live-changed")
        self.filters_changed: Signal[RunFilter] = Signal(self, "filters-changed")
        self.problems_changed: Signal[dict[str, str]] = Signal(self, "problems-changed")
        self._detail_screen: RunDetailScreen | None = None
        self._seen_revision: Any = None
        self._polling = False
        self._backoff = 0.0
        self._next_poll = 0.0
        self._toasted: set[str] = set()
        self.sub_title = str(lab.root)

    @property
    def lab(self) -> Lab:
        """The lab this console shows."""
        return self.client.lab

    def get_default_screen(self) -> Screen:
        return MainScreen()

    def on_mount(self) -> None:
        self.poll()
        self.set_interval(self.poll_seconds, self._tick)
        if self.start_scheduler_on_open:
            self.ensure_scheduler()

    # Reading the lab.

    def _tick(self) -> None:
        # A slow read (a huge ledger) must not pile up readers; a failing one waits its backoff.
        if not self._polling and time.monotonic() >= self._next_poll:
            self.poll()

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def poll(self) -> None:
        """Reload the history if its revision moved, and always the live progress."""
        self._polling = True
        try:
            snapshot = self.client.snapshot(since=self._seen_revision)
            if snapshot is not None:
                self._seen_revision = snapshot.revision
                self.post_message(self.LedgerLoaded(snapshot, track_plots(snapshot)))
            self.post_message(self.LiveUpdated(self.client.live()))
            if snapshot is not None:
                self.client.prime_search(snapshot)  # after the first paint, not before it
        finally:
            self._polling = False

    @work(thread=True, group="scheduler", exit_on_error=False)
    def ensure_scheduler(self) -> None:
        """Start the lab's scheduler when none runs and nobody stopped it by hand (never a second one)."""
        self.post_message(self.ActionDone(self.client.ensure_scheduler()))

    @on(LedgerLoaded)
    def _ledger_loaded(self, message: LedgerLoaded) -> None:
        self.snapshot, self.plots = message.snapshot, message.plots
        self.ledger_changed.publish(message.snapshot)

    @on(LiveUpdated)
    def _live_updated(self, message: LiveUpdated) -> None:
        self._backoff, self._next_poll = 0.0, 0.0
        self._set_problem("read", None)
        if message.live == self.live:
            return  # nothing moved since the last poll: nothing to redraw
        self.live = message.live
        self.live_changed.publish(message.live)

    @on(ActionDone)
    def _action_done(self, message: ActionDone) -> None:
        self.notify(message.text, timeout=4, markup=False)
        if message.select is not None and isinstance(self.screen, RunScreen):
            self.screen.select_run(message.select)
        if message.after is not None:
            message.after()
        self.poll()

    # Errors: each in one place, none lost.

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Every worker's failure ends here (see `report`)."""
        if event.state == WorkerState.ERROR and isinstance(event.worker.error, Exception):
            self.report(event.worker.error, reading=event.worker.group == "poll")

    def report(self, error: Exception, reading: bool = False) -> None:
        """Say what went wrong: a user error as its line; a bug with its traceback logged in the lab.

        A failing read is said once per distinct message, stays in the status line until a read
        works, and is retried after a backoff that doubles up to `MAX_BACKOFF` seconds.
        """
        if isinstance(error, UserError):
            text = str(error)
        else:
            text = f"{type(error).__name__}: {error} (a bug: its traceback is in {self.log_error(error)})"
            self._set_problem("bug", text)
        if reading:
            self._backoff = min(MAX_BACKOFF, max(1.0, 2 * self._backoff))
            self._next_poll = time.monotonic() + self._backoff
            self._set_problem("read", f"cannot read the lab: {text} (retrying every {self._backoff:.0f} s)")
        if reading and text in self._toasted:
            return
        self._toasted.add(text)
        self.notify(text, title="Could not do that", severity="error", timeout=8, markup=False)

    def log_error(self, error: BaseException) -> Path:
        """Append the error's traceback to `console.log` in the lab; returns the log's path."""
        path = self.lab.root / LOG_NAME
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        try:
            with open(path, "a") as log:
                log.write(f"{stamp} {''.join(traceback.format_exception(error))}\n")
        except OSError:
            pass  # the lab folder is gone or read-only: the message on screen must do
        return path

    def _set_problem(self, kind: str, text: str | None) -> None:
        if self.problems.get(kind) == text:
            return
        if text is None:
            self.problems.pop(kind, None)
        else:
            self.problems[kind] = text
        self.problems_changed.publish(self.problems)

    # Work on the lab, asked for by the screens.

    @work(thread=True, group="action", exit_on_error=False)
    def run_on_lab(
        self,
        call: Callable[[], Any],
        done: Callable[[Any], str],
        select: Callable[[Any], str | None],
        after: Callable[[], None] | None = None,
    ) -> None:
        """Make one blocking call on the lab and report what it did."""
        result = call()
        self.post_message(self.ActionDone(done(result), select(result), after))

    def _do(
        self,
        call: Callable[[], Any],
        done: Callable[[Any], str],
        select_new: bool = False,
        after: Callable[[], None] | None = None,
    ) -> None:
        def new_id(result: Any) -> str | None:
            first = result[0] if isinstance(result, list) and result else result
            return getattr(first, "id", None)

        self.run_on_lab(call, done, new_id if select_new else (lambda _r: None), after)

    def open_run_form(self, base: RunRecord | None) -> None:
        """Open the new-run form, prefilled from `base` (its parent) or the defaults."""
        self._open_run_form(base)

    @work(thread=True, group="form", exit_on_error=False)
    def _open_run_form(self, base: RunRecord | None) -> None:
        spec = self.client.spec_of(base.id if base else None)
        form = RunForm(
            spec,
            self.client.source(),
            parent=base,
            tracks=self.snapshot.tracks if self.snapshot else [],
            measured=self.client.measured(),
        )
        self.call_from_thread(self.push_screen, form, self._queue_from_form)

    def _queue_from_form(self, request: RunRequest | None) -> None:
        if request is None:
            return
        self._do(
            lambda: self.client.queue_run(request.spec, request.track, request.label, request.parent, request.priority),
            lambda r: f"Queued {r.id}",
            select_new=True,
        )

    def clone(self, run: RunRecord) -> None:
        """Queue `run`'s spec again, as its child (a deliberate second measurement)."""
        self._do(lambda: self.client.clone(run.id), lambda r: f"Queued {r.id}, a clone of {run.id}", True)

    def open_sweep_form(self, base: RunRecord | None) -> None:
        """Open the sweep form around `base` (or the defaults)."""
        self._open_sweep_form(base)

    @work(thread=True, group="form", exit_on_error=False)
    def _open_sweep_form(self, base: RunRecord | None) -> None:
        spec = self.client.spec_of(base.id if base else None)
        form = SweepForm(spec, parent=base, measured=self.client.measured())
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

    def cancel(self, runs: list[RunRecord], after: Callable[[], None] | None = None) -> None:
        """Cancel these runs; when one is running (its work would be lost), ask first."""
        if not runs:
            return
        ids = [r.id for r in runs]
        names = ", ".join(ids[:6]) + ("…" if len(ids) > 6 else "")

        def go(sure: bool | None = True) -> None:
            if sure:
                self._do(
                    lambda: self.client.cancel(ids),
                    lambda done: f"Cancelled {', '.join(r.id for r in done)}",
                    after=after,
                )

        running = [r for r in runs if r.status == "running"]
        if not running:
            go()
            return
        live = self.live.progress if self.live else {}
        where = ", ".join(f"{r.id} ({fmt.progress_text(live.get(r.id))})" for r in running[:3])
        question = f"Cancel {names}?"
        detail = f"Running now: {where}. Its work so far is lost; its log is kept."
        self.push_screen(Confirm(question, detail, yes="Cancel the runs", no="Keep them"), go)

    def retry(self, runs: list[RunRecord], after: Callable[[], None] | None = None) -> None:
        """Queue these failed, cancelled or interrupted runs again (new runs; parent: the old one)."""
        if runs:
            ids = [r.id for r in runs]
            self._do(
                lambda: self.client.retry(ids),
                lambda new: f"Queued {', '.join(r.id for r in new)} to retry {', '.join(ids)}",
                select_new=len(ids) == 1,
                after=after,
            )

    def bump(self, run: RunRecord, delta: int) -> None:
        """Raise or lower a queued run's priority."""
        self._do(lambda: self.client.bump(run.id, delta), lambda r: f"{run.id} priority {r.priority:+d}")

    def set_paused(self, paused: bool) -> None:
        """Pause the queue (running runs finish) or resume it."""
        self._do(lambda: self.client.set_paused(paused), lambda _r: "Queue paused" if paused else "Queue resumed")

    def start_scheduler(self) -> None:
        """Start the lab's scheduler (it may take seconds: a worker waits for it)."""
        self._do(self.client.start_scheduler, str)

    def stop_scheduler(self) -> None:
        """Stop the scheduler once its running runs finish; it stays stopped until started."""
        self._do(self.client.stop_scheduler, str)

    def verdict(self, run: RunRecord, verdict: str) -> None:
        """Promote or reject a measured run by hand, with a note; the prompt says where the floor goes."""
        verb = "Promote" if verdict == "promoted" else "Reject"
        floors = self.snapshot.floors if self.snapshot else {}
        title = f"{verb} {run.id}: why?"
        warning = floor_move(run, verdict, floors.get(run.track))

        def give(note: str | None) -> None:
            if note:
                self._do(lambda: self.client.override(run.id, verdict, note), lambda r: f"{r.id} {r.verdict}")

        self.push_screen(TextPrompt(title, placeholder="a note kept with the verdict", warning=warning), give)

    def export(self, run: RunRecord) -> None:
        """Export a finished run as an official-layout submission folder (the prompt proposes one)."""
        default = str(self.client.default_export_dir(run.id))

        def export(dest: str | None) -> None:
            if dest:
                self._do(lambda: self.client.export(run.id, Path(dest)), lambda path: f"Exported {run.id} to {path}")

        self.push_screen(TextPrompt(f"Export {run.id} to folder", value=default), export)

    def open_detail(self, run: RunRecord) -> None:
        """Open a run's detail screen (one screen, kept: composing it anew costs ~0.3 s)."""
        if isinstance(self.screen, RunDetailScreen):
            return
        if self._detail_screen is None:
            self._detail_screen = RunDetailScreen(run.id)
            self.install_screen(self._detail_screen, name="detail")
        self._detail_screen.show_run(run.id)
        self.push_screen(self._detail_screen)

    def around_floor(self, run: RunRecord) -> None:
        """From a rejected run: queue the floor's neighbours on the axis it changed (editable first)."""
        floor = self.snapshot.floors.get(run.track) if self.snapshot else None
        if floor is None:
            self.notify(f"track {run.track} has no floor yet: nothing to queue around", severity="warning")
            return
        offsets = neighbour_offsets(run, floor)
        if offsets is None:
            self.notify(
                f"{run.id} changed no number axis from the floor {floor.id}: sweep it instead (s)", severity="warning"
            )
            return

        def queue(text: str | None) -> None:
            if text:
                self._do(
                    lambda: self.client.around_floor(run.track, text),
                    lambda runs: (
                        f"Queued {len(runs)} around the floor {floor.id}: {', '.join(r.label for r in runs)}"
                        if runs
                        else "Nothing queued: every neighbour was measured already"
                    ),
                )

        title = f"Queue the neighbours of the floor {floor.id} ({run.id} lost to it)"
        self.push_screen(TextPrompt(title, value=offsets, placeholder="axis=offsets, e.g. crf=-1,+1"), queue)

    def open_filter(self) -> None:
        """Filter the ledger by text, track, status and verdict."""
        tracks = self.snapshot.tracks if self.snapshot else []
        self.push_screen(FilterScreen(self.filters, tracks), self.set_filters)

    def set_filters(self, filters: RunFilter | None) -> None:
        """Apply new filters (None: leave them)."""
        if filters is not None:
            self.filters = filters
            self.filters_changed.publish(filters)

    def next_track(self) -> None:
        """Show the next track (all tracks, then each in turn)."""
        tracks: list[str | None] = [None, *(self.snapshot.tracks if self.snapshot else [])]
        following = (
            tracks[(tracks.index(self.filters.track) + 1) % len(tracks)] if self.filters.track in tracks else None
        )
        self.set_filters(self.filters.with_track(following))
        self.notify(f"Track: {following or 'all'}", timeout=2, markup=False)

    def go_to(self, run_id: str) -> None:
        """Put the main screen's cursor on a run (clearing a filter that hides it)."""
        while len(self.screen_stack) > 1:
            self.pop_screen()
        run = self.snapshot.by_id.get(run_id) if self.snapshot else None
        if run is not None and not self.filters.apply([run]):
            self.set_filters(RunFilter())
            self.notify(f"Filter cleared to show {run_id}", timeout=3)
        main = self.screen_stack[0]
        if isinstance(main, RunScreen):
            main.select_run(run_id)

    def action_help(self) -> None:
        """Show every key and what the symbols mean."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    async def action_quit(self) -> None:
        """Quit the console; the scheduler and its queue go on, and the last line says so."""
        self.farewell = self.quit_message()
        self.exit(message=self.farewell)

    def quit_message(self) -> str:
        """What quitting leaves behind: the scheduler still running the queue, and how to stop it."""
        lab = self.lab.root
        queued = len(self.snapshot.queued) if self.snapshot else 0
        running = len(self.snapshot.running) if self.snapshot else 0
        work = f"{running} running, {queued} queued"
        if self.live is not None and self.live.scheduler.state in ("running", "paused", "stopping"):
            return f"comma-tui: the scheduler keeps running ({work}); stop it with comma-tui sched stop --lab {lab}"
        return f"comma-tui: the scheduler is stopped ({work}); start it with comma-tui sched start --lab {lab}"

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The palette lists the keys that apply on the screen in front as commands, then Textual's own."""
        seen = set()
        for key, active in screen.active_bindings.items():
            binding = active.binding
            if not binding.description or binding.action in seen or binding.system or not active.enabled:
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


def floor_move(run: RunRecord, verdict: str, floor: RunRecord | None) -> str:
    """What a hand verdict does to the floor, said before it is given ("" when it leaves it alone)."""
    if verdict != "promoted" or run.score is None:
        return ""
    if floor is None:
        return f"{run.id} becomes the first floor of {run.track} ({fmt.score(run.score)})."
    if floor.id == run.id or floor.score is None:
        return ""
    change = run.score - floor.score
    way = "UP, to a worse score" if change > 0 else "down"
    return (
        f"The floor of {run.track} moves {way}: {floor.id} {fmt.score(floor.score)} → "
        f"{run.id} {fmt.score(run.score)} ({fmt.delta(change)})."
    )
