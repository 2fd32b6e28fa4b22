"""The base of every screen that shows runs (main, detail, review): the selected run, and its keys.

A `RunScreen` says which run is selected (and which are marked, on the main screen), and
`check_action` greys out each run key that cannot apply to it, so the Footer tells the truth
before a key is pressed; pressing a greyed key says why in one line. The work itself is the
app's (`CommaApp`), which calls the lab from thread workers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual import events
from textual.binding import Binding, BindingType
from textual.screen import Screen

from engine.sched.control import CANCELLABLE, RETRYABLE, why_not_bump, why_not_cancel, why_not_retry
from ledger import RunSummary

if TYPE_CHECKING:
    from comma_tui.app import CommaApp

#: The keys that act on runs, shared by the screens that show runs (main, detail).
RUN_BINDINGS: list[BindingType] = [
    Binding("n", "new_run", "New", tooltip="New run from a form prefilled from the selected run", id="new"),
    Binding("c", "clone", "Clone", tooltip="Queue the selected run again, as its child", id="clone"),
    Binding("s", "sweep", "Sweep", tooltip="Queue a sweep of one or two axes around the selected run", id="sweep"),
    Binding("x", "cancel", "Cancel", tooltip="Cancel the selected (or marked) queued or running runs", id="cancel"),
    Binding("r", "retry", "Retry", tooltip="Queue failed, cancelled or interrupted runs again", id="retry"),
    Binding("p", "pause", "Pause", tooltip="Pause the queue (running runs finish)", id="pause"),
    Binding("p", "resume", "Resume", tooltip="Resume the paused queue", id="resume"),
    Binding(
        "plus,equals_sign", "bump(1)", "Prio+", key_display="+", show=False, tooltip="Raise a queued run's priority"
    ),
    Binding("minus", "bump(-1)", "Prio-", key_display="-", show=False, tooltip="Lower a queued run's priority"),
    Binding("P", "verdict('promoted')", "Promote", tooltip="Promote the selected run by hand, with a note"),
    Binding("R", "verdict('rejected')", "Reject", show=False, tooltip="Reject the selected run by hand, with a note"),
    Binding("e", "export", "Export", tooltip="Export the selected run as a submission folder", id="export"),
    Binding(
        "F",
        "score_fully",
        "Score fully",
        tooltip="Score a run rejected early in full (kept archive): its exact score replaces the estimate",
        id="score-fully",
    ),
    Binding("S", "start_scheduler", "Start sched", tooltip="Start the lab's scheduler (it runs the queue)"),
    Binding("S", "stop_scheduler", "Stop sched", show=False, tooltip="Stop the scheduler once running runs finish"),
]


#: The actions whose key depends on the selected run.
RUN_ACTIONS = ("cancel", "retry", "clone", "bump", "verdict", "export", "detail", "compare", "around", "score_fully")


def why_not(action: str, run: RunSummary | None, runs: list[RunSummary]) -> str | None:
    """Why `action` cannot apply to the selected `run` (and the marked `runs`), or None when it can."""
    if action in ("cancel", "retry"):
        check = why_not_cancel if action == "cancel" else why_not_retry
        reasons = [check(r) for r in runs]
        if not runs:
            return "select a run first"
        return None if None in reasons else reasons[0]
    if run is None:
        return "select a run first" if action in RUN_ACTIONS else None
    if action == "bump":
        return why_not_bump(run)
    if action == "verdict" and not run.measured:
        return f"{run.id} is {run.status}: only measured runs are promoted or rejected"
    if action == "export" and run.status != "done":
        return f"{run.id} is {run.status}: only finished runs are exported"
    if action == "score_fully" and not (run.status == "done" and run.estimated):
        return f"{run.id} was not rejected early: only an early verdict's estimate is scored fully"
    if action == "around" and run.verdict != "rejected":
        return f"{run.id} is not a rejection: review mode queues the floor's neighbours from a rejected run"
    return None


class RunScreen(Screen[None]):
    """A screen of runs: subclasses say which run is selected; the run keys follow it."""

    #: Actions in the order the Footer keeps them when it cannot show every key.
    FOOTER_PRIORITY: ClassVar[tuple[str, ...]] = (
        "new_run",
        "cancel",
        "retry",
        "pause",
        "resume",
        "start_scheduler",
        "help",
        "quit",
        "detail",
        "filter",
        "clone",
        "sweep",
        "verdict",
        "export",
        "review",
    )

    def __init__(self) -> None:
        super().__init__()
        self._key_states: tuple[object, ...] = ()

    @property
    def lab_app(self) -> CommaApp:
        """The app, typed."""
        return cast("CommaApp", self.app)

    @property
    def covered(self) -> bool:
        """Whether an opaque screen is in front (a run's detail over the main screen): nothing of
        this one shows. Around a dialog it does."""
        return not self.is_active and self.app.screen.styles.background.a == 1

    def _compositor_refresh(self) -> None:
        # Textual repaints the screen in front wherever the one behind it changed, in case it shows
        # through: for a covered screen that was two more frames for an `enter`. Shown again, a
        # screen repaints whatever changed meanwhile. (A Textual private: see `kept` on the pin.)
        if not self.covered:
            super()._compositor_refresh()

    def selected_run(self) -> RunSummary | None:
        """The run the keys act on (the cursor's, or the one shown)."""
        return None

    def marked_runs(self) -> list[RunSummary]:
        """The runs cancel and retry act on: the marked ones, else the selected one."""
        run = self.selected_run()
        return [run] if run is not None else []

    def select_run(self, run_id: str) -> None:
        """Move the selection to a run, where the screen can."""

    def acted_on_marks(self) -> None:
        """Cancel or retry of the marked runs went through (the main screen clears its marks)."""

    # Which keys apply.

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide the pause or resume key that does not apply; grey out run keys that cannot apply."""
        app = self.lab_app
        if action in ("pause", "resume"):
            paused = bool(app.snapshot and app.snapshot.paused)
            return paused == (action == "resume")
        if action in ("start_scheduler", "stop_scheduler"):
            stopped = app.live is None or app.live.scheduler.state == "stopped"
            return stopped == (action == "start_scheduler")
        return None if why_not(action, self.selected_run(), self.marked_runs()) else True

    def selection_changed(self) -> None:
        """Refresh the Footer if what the keys can do changed (the selection moved, a run ended).

        Only a change of what applies rebuilds the Footer, not every move of the cursor.
        """
        app = self.lab_app
        run, runs = self.selected_run(), self.marked_runs()
        states = (
            tuple(why_not(action, run, runs) is None for action in RUN_ACTIONS),
            app.snapshot.paused if app.snapshot else None,
            app.live.scheduler.state if app.live else None,
        )
        if states != self._key_states:
            self._key_states = states
            self.refresh_bindings()

    def on_key(self, event: events.Key) -> None:
        """A greyed key says why it does nothing, instead of nothing at all."""
        active = self.active_bindings.get(event.key)
        if active is None or active.enabled:
            return
        action = active.binding.action.split("(")[0]
        reason = why_not(action, self.selected_run(), self.marked_runs())
        if reason:
            event.stop()
            self.notify(reason, severity="warning", timeout=4, markup=False)

    # The keys: the app does the work.

    def action_new_run(self) -> None:
        """Open the new-run form, prefilled from the selected run."""
        self.lab_app.open_run_form(self.selected_run())

    def action_clone(self) -> None:
        """Queue the selected run's spec again, as its child."""
        if (run := self.selected_run()) is not None:
            self.lab_app.clone(run)

    def action_sweep(self) -> None:
        """Open the sweep form around the selected run."""
        self.lab_app.open_sweep_form(self.selected_run())

    def action_cancel(self) -> None:
        """Cancel the selected (or marked) queued and running runs; running ones ask first."""
        self.lab_app.cancel([r for r in self.marked_runs() if r.status in CANCELLABLE], self.acted_on_marks)

    def action_retry(self) -> None:
        """Queue failed, cancelled or interrupted runs again (new runs; each one's parent is the old one)."""
        self.lab_app.retry([r for r in self.marked_runs() if r.status in RETRYABLE], self.acted_on_marks)

    def action_bump(self, delta: int) -> None:
        """Raise or lower the selected queued run's priority."""
        if (run := self.selected_run()) is not None:
            self.lab_app.bump(run, delta)

    def action_pause(self) -> None:
        """Pause the queue: running runs finish, nothing new starts."""
        self.lab_app.set_paused(True)

    def action_resume(self) -> None:
        """Resume the queue."""
        self.lab_app.set_paused(False)

    def action_verdict(self, verdict: str) -> None:
        """Promote or reject the selected measured run by hand, with a note."""
        if (run := self.selected_run()) is not None:
            self.lab_app.verdict(run, verdict)

    def action_export(self) -> None:
        """Export the selected finished run as an official-layout submission folder."""
        if (run := self.selected_run()) is not None:
            self.lab_app.export(run)

    def action_score_fully(self) -> None:
        """Queue the selected run rejected early to be scored fully (its kept archive, every pair)."""
        if (run := self.selected_run()) is not None:
            self.lab_app.rescore(run)

    def action_detail(self) -> None:
        """Open the selected run's detail screen."""
        if (run := self.selected_run()) is not None:
            self.lab_app.open_detail(run)

    def action_compare(self) -> None:
        """Open the compare view of the selected run's frames."""
        if (run := self.selected_run()) is not None:
            self.lab_app.open_compare(run)

    def action_start_scheduler(self) -> None:
        """Start the lab's scheduler."""
        self.lab_app.start_scheduler()

    def action_stop_scheduler(self) -> None:
        """Stop the scheduler once its running runs finish (they are not interrupted)."""
        self.lab_app.stop_scheduler()
