"""The comma-tui console: one App over one lab, live, keyboard-first, never blocking.

Every call into the lab runs in a thread worker through `LabClient` and reports back by posting
a message; worker errors end in one place (`on_worker_state_changed`): a user's mistake is a
line, anything else is a bug whose traceback goes to `console.log` in the lab. A timer polls
the ledger's revision and reloads only when it changed; a read that fails shows once, stays in
the status line, and is retried less and less often. Screens of runs (`RunScreen`) own the run
keys and say which run they act on; the app does the work (`comma_tui.lab_actions`).
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import events, on, work
from textual.app import SystemCommand
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.signal import Signal
from textual.worker import Worker, WorkerState

from comma_tui.collector import Collector
from comma_tui.lab_actions import LabActions
from comma_tui.lab_state import Live, Snapshot
from comma_tui.palette import RunCommands
from comma_tui.screens.help import HelpScreen
from comma_tui.screens.main import MainScreen
from comma_tui.screens.run_screen import RunScreen
from comma_tui.widgets.score_plot import PlotData, track_plots
from ledger import Lab
from ledger.errors import UserError

POLL_SECONDS = 0.5
MAX_BACKOFF = 30.0
LOG_NAME = "console.log"
#: Rows read before the rest of the history (more than a tall terminal shows).
FIRST_PAGE_ROWS = 200
FIRST_PAINT_WAIT = 2.0  # seconds the rest of the history waits for the first page to be painted


class CommaApp(LabActions):
    """The lab console. `start_scheduler=False` keeps it from starting one (tests, read-only use)."""

    CSS_PATH = "app.tcss"
    TITLE = "comma-tui"
    COMMANDS = LabActions.COMMANDS | {RunCommands}
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

    def __init__(self, lab: Lab, *, start_scheduler: bool = True, poll_seconds: float = POLL_SECONDS) -> None:
        super().__init__(lab)
        self.start_scheduler_on_open = start_scheduler
        self.poll_seconds = poll_seconds
        #: What is wrong now, for the status line: a read that fails, a bug that was logged.
        self.problems: dict[str, str] = {}
        self.farewell = ""
        self.ledger_changed: Signal[Snapshot] = Signal(self, "ledger-changed")
        self.live_changed: Signal[Live] = Signal(self, "live-changed")
        self.problems_changed: Signal[dict[str, str]] = Signal(self, "problems-changed")
        self._seen_revision: Any = None
        self._polling = False
        self._backoff = 0.0
        self._next_poll = 0.0
        self._toasted: set[str] = set()
        self._first_painted = threading.Event()
        self.sub_title = str(lab.root)
        self.collector = Collector()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key | events.MouseDown):
            self.collector.input()
        await super().on_event(event)

    def on_unmount(self) -> None:
        self.collector.stop()

    def get_default_screen(self) -> Screen:
        return MainScreen()

    def on_mount(self) -> None:
        self.collector.start()
        self.set_interval(1.0, self.collector.at_idle)
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
            if self.snapshot is None and self._seen_revision is None:
                # A long history: the newest runs first, so the first screen of rows paints at once.
                self.post_message(self.LedgerLoaded(self.client.first_page(FIRST_PAGE_ROWS), {}))
                # Reading the rest holds the GIL for long stretches: let the first page paint first.
                self._first_painted.wait(FIRST_PAINT_WAIT)
            snapshot = self.client.snapshot(since=self._seen_revision)
            if snapshot is not None:
                self._seen_revision = snapshot.revision
                plots = track_plots(snapshot, self.plots)
                self.collector.settle()  # here, while the history loads: not on a key
                self.post_message(self.LedgerLoaded(snapshot, plots))
            self.post_message(self.LiveUpdated(self.client.live()))
            if snapshot is not None:
                self.client.prime(snapshot)  # after the first paint, not before it
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
        if message.snapshot.newest_only:
            self.call_after_refresh(self._first_painted.set)

    @on(LiveUpdated)
    def _live_updated(self, message: LiveUpdated) -> None:
        self._backoff, self._next_poll = 0.0, 0.0
        self._set_problem("read", None)
        if message.live == self.live:
            return  # nothing moved since the last poll: nothing to redraw
        self.live = message.live
        self.live_changed.publish(message.live)

    @on(LabActions.ActionDone)
    def _action_done(self, message: LabActions.ActionDone) -> None:
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

    def action_help(self) -> None:
        """Show every key and what the symbols mean."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    async def action_quit(self) -> None:
        """Quit the console; the scheduler and its queue go on, and the last line says so."""
        self.farewell = self.quit_message()
        self.exit(message=Text(self.farewell))  # printed as it is, not read as markup

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
