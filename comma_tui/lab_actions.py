"""The console's work on the lab, asked for by the screens: each blocking call in a thread worker.

`LabActions` is the part of the app that changes the lab (queue, cancel, retry, verdicts, the
scheduler) and opens the forms and dialogs that lead there; `CommaApp` adds reading the lab,
errors and the app's life. A call reports back with `ActionDone`; a failure ends in
`CommaApp.on_worker_state_changed` like every worker's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App
from textual.message import Message
from textual.signal import Signal
from textual.timer import Timer

from comma_tui.lab_client import LabClient
from comma_tui.lab_state import Live, RunDetail, Snapshot
from comma_tui.screens.autopilot_form import AutopilotForm, AutopilotRequest
from comma_tui.screens.compare import CompareScreen
from comma_tui.screens.confirm import Confirm
from comma_tui.screens.filter import FilterScreen, RunFilter
from comma_tui.screens.kept import build_unseen, render_unseen
from comma_tui.screens.prompt import TextPrompt
from comma_tui.screens.review import neighbour_offsets
from comma_tui.screens.run_detail import RunDetailScreen
from comma_tui.screens.run_form import FormStart, RunForm, RunRequest, shape
from comma_tui.screens.run_screen import RunScreen
from comma_tui.screens.sweep_form import SweepForm, SweepRequest
from comma_tui.widgets import format as fmt
from comma_tui.widgets.score_plot import PlotData
from engine.runs.spec import RunSpec, SourceSpec
from ledger import Lab, RunRecord, RunSummary
from ledger.errors import UserError

#: How long the cursor rests on a run before its detail is drawn, unseen, for `enter`.
DRAW_AHEAD_SECONDS = 0.1


class LabActions(App[None]):
    """The lab's client, what was read of the lab, and every change the keys ask for."""

    class ActionDone(Message):
        """An action on the lab succeeded: say so, maybe move the cursor to a run, and call `after`."""

        def __init__(self, text: str, select: str | None = None, after: Callable[[], None] | None = None) -> None:
            self.text = text
            self.select = select
            self.after = after
            super().__init__()

    def __init__(self, lab: Lab) -> None:
        super().__init__()
        self.client = LabClient(lab)
        self.snapshot: Snapshot | None = None
        self.plots: dict[str, PlotData] = {}
        self.live: Live | None = None
        self.filters = RunFilter()
        self.filters_changed: Signal[RunFilter] = Signal(self, "filters-changed")
        self._detail_screen: RunDetailScreen | None = None
        self._read_ahead: tuple[tuple[RunSummary, object], RunDetail] | None = None  # (run, revision), its detail
        self._draw_timer: Timer | None = None  # draws the run read ahead into the detail screen, unseen
        self._run_forms: dict[tuple[str, ...], RunForm] = {}  # by the fields a spec needs (`run_form.shape`)

    @property
    def lab(self) -> Lab:
        """The lab this console shows."""
        return self.client.lab

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

    def open_run_form(self, base: RunSummary | None) -> None:
        """Open the new-run form, prefilled from `base` (its parent) or the defaults."""
        self._open_run_form(base)

    @work(thread=True, group="form", exit_on_error=False)
    def _open_run_form(self, base: RunSummary | None) -> None:
        spec, source, measured = (
            self.client.spec_of(base.id if base else None),
            self.client.source(),
            self.client.measured(),
        )
        self.call_from_thread(self._show_run_form, spec, source, base, measured)

    def _show_run_form(
        self, spec: RunSpec, source: SourceSpec, base: RunSummary | None, measured: dict[str, RunRecord]
    ) -> None:
        tracks = self.snapshot.tracks if self.snapshot else []
        start = FormStart(spec, source, base, tracks, measured)
        form = self._run_forms.get(fields := shape(spec))
        if form is None:  # kept, one for each shape of spec: see RunForm
            form = self._run_forms[fields] = RunForm(start)
            self.install_screen(form, name=f"run-form-{len(self._run_forms)}")
        else:
            form.load(start)
        self.push_screen(form, self._queue_from_form)

    def _queue_from_form(self, request: RunRequest | None) -> None:
        if request is None:
            return
        self._do(
            lambda: self.client.queue_run(request.spec, request.track, request.label, request.parent, request.priority),
            lambda r: f"Queued {r.id}",
            select_new=True,
        )

    def clone(self, run: RunSummary) -> None:
        """Queue `run`'s spec again, as its child (a deliberate second measurement)."""
        self._do(lambda: self.client.clone(run.id), lambda r: f"Queued {r.id}, a clone of {run.id}", True)

    def open_sweep_form(self, base: RunSummary | None) -> None:
        """Open the sweep form around `base` (or the defaults)."""
        self._open_sweep_form(base)

    @work(thread=True, group="form", exit_on_error=False)
    def _open_sweep_form(self, base: RunSummary | None) -> None:
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

    def cancel(self, runs: list[RunSummary], after: Callable[[], None] | None = None) -> None:
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
        lost = (
            "Its work so far is lost; its log is kept"
            if len(running) == 1
            else "Their work so far is lost; their logs are kept"
        )
        detail = f"Running now: {where}. {lost}."
        yes, no = ("Cancel it", "Keep it") if len(runs) == 1 else ("Cancel them", "Keep them")
        self.push_screen(Confirm(question, detail, yes=yes, no=no), go)

    def retry(self, runs: list[RunSummary], after: Callable[[], None] | None = None) -> None:
        """Queue these failed, cancelled or interrupted runs again (new runs; parent: the old one)."""
        if runs:
            ids = [r.id for r in runs]
            self._do(
                lambda: self.client.retry(ids),
                lambda new: f"Queued {', '.join(r.id for r in new)} to retry {', '.join(ids)}",
                select_new=len(ids) == 1,
                after=after,
            )

    def bump(self, run: RunSummary, delta: int) -> None:
        """Raise or lower a queued run's priority."""
        self._do(lambda: self.client.bump(run.id, delta), lambda r: f"{run.id} priority {r.priority:+d}")

    def rescore(self, run: RunSummary) -> None:
        """Queue a run rejected early to be scored fully: its kept archive, every pair, reviewed again."""
        self._do(lambda: self.client.rescore(run.id), lambda r: f"Queued {r.id} to be scored fully")

    def set_paused(self, paused: bool) -> None:
        """Pause the queue (running runs finish) or resume it."""
        self._do(lambda: self.client.set_paused(paused), lambda _r: "Queue paused" if paused else "Queue resumed")

    def start_scheduler(self) -> None:
        """Start the lab's scheduler (it may take seconds: a worker waits for it)."""
        self._do(self.client.start_scheduler, str)

    def stop_scheduler(self) -> None:
        """Stop the scheduler once its running runs finish; it stays stopped until started."""
        self._do(self.client.stop_scheduler, str)

    def verdict(self, run: RunSummary, verdict: str) -> None:
        """Promote or reject a measured run by hand, with a note; the prompt says where the floor goes."""
        verb = "Promote" if verdict == "promoted" else "Reject"
        floors = self.snapshot.floors if self.snapshot else {}
        title = f"{verb} {run.id}: why?"
        warning = floor_move(run, verdict, floors.get(run.track))

        def give(note: str | None) -> None:
            if note:
                self._do(lambda: self.client.override(run.id, verdict, note), lambda r: f"{r.id} {r.verdict}")

        self.push_screen(TextPrompt(title, placeholder="a note kept with the verdict", warning=warning), give)

    def export(self, run: RunSummary) -> None:
        """Export a finished run as an official-layout submission folder (the prompt proposes one)."""
        default = str(self.client.default_export_dir(run.id))

        def export(dest: str | None) -> None:
            if dest:
                self._do(lambda: self.client.export(run.id, Path(dest)), lambda path: f"Exported {run.id} to {path}")

        self.push_screen(TextPrompt(f"Export {run.id} to folder", value=default), export)

    def open_detail(self, run: RunSummary) -> None:
        """Open a run's detail screen once the run is read: it shows that run from its first frame,
        never the run shown before it or a half-drawn screen. A run read ahead opens at once."""
        ahead = self._read_ahead
        if ahead is not None and ahead[0] == self._ahead_key(run):
            self._show_detail(ahead[1])
        else:
            self._read_detail(run, show=True)

    def read_ahead(self, run: RunSummary | None) -> None:
        """Read the detail of the run the cursor rests on, so that `enter` opens it without waiting.

        A running run is not read ahead: its log and progress move from second to second."""
        if run is None or run.status == "running":
            return
        ahead = self._read_ahead
        if ahead is None or ahead[0] != self._ahead_key(run):
            self._read_detail(run, show=False)

    def _ahead_key(self, run: RunSummary) -> tuple[RunSummary, object]:
        # A detail read at another revision of the ledger may show another floor, parent or verdict.
        return run, self.snapshot.revision if self.snapshot is not None else None

    @work(thread=True, group="read-detail", exit_on_error=False)
    def _read_detail(self, run: RunSummary, show: bool) -> None:
        key, detail = self._ahead_key(run), self.client.detail(run.id)
        self.call_from_thread(self._detail_read, key, detail, show)

    def _detail_read(self, key: tuple[RunSummary, object], detail: RunDetail, show: bool) -> None:
        self._read_ahead = (key, detail)
        if show:
            self._show_detail(detail)
        else:
            self._draw_ahead(detail)

    def _draw_ahead(self, detail: RunDetail) -> None:
        """Draw a run read ahead into the detail screen, unseen, so that `enter` only has to show it.

        The first builds the screen. The others are drawn once the cursor has rested a while
        (someone reading the row, not running down the table), then laid out and rendered after the
        next refresh: a key pressed in between is handled first, and a cursor moved on skips it.
        """
        if self._detail_screen is None:
            self._detail_screen = RunDetailScreen(detail)
            self._build_unseen(self._detail_screen)
            return
        if self._draw_timer is not None:
            self._draw_timer.stop()
        self._draw_timer = self.set_timer(DRAW_AHEAD_SECONDS, lambda: self._draw_unseen(detail))

    @work(group="build", exit_on_error=False)
    async def _build_unseen(self, screen: RunDetailScreen) -> None:
        # A worker, its coroutine made as it starts: an app that closes first makes none.
        await build_unseen(self, screen, "detail")

    def _still_ahead(self, detail: RunDetail) -> RunDetailScreen | None:
        # The detail screen, when it is unseen and `detail` is still the selected run's, as read ahead.
        shown = self.screen_stack[-1] if self.screen_stack else None  # none while the app closes
        screen, ahead = self._detail_screen, self._read_ahead
        selected = shown.selected_run() if isinstance(shown, RunScreen) else None
        if screen is None or not screen.is_mounted or screen.is_current or ahead is None or ahead[1] is not detail:
            return None
        return screen if selected is not None and selected.id == detail.run.id else None

    def _draw_unseen(self, detail: RunDetail) -> None:
        self._draw_timer = None
        if (screen := self._still_ahead(detail)) is not None:
            screen.show(detail)
            self.call_after_refresh(self._render_unseen, detail)

    def _render_unseen(self, detail: RunDetail) -> None:
        if (screen := self._still_ahead(detail)) is not None and screen.detail is detail:
            render_unseen(screen)

    def _show_detail(self, detail: RunDetail) -> None:
        if isinstance(self.screen, RunDetailScreen):
            return
        if self._detail_screen is None:  # one screen, kept (and built ahead): composing it costs ~0.3 s
            self._detail_screen = RunDetailScreen(detail)
            self.install_screen(self._detail_screen, name="detail")
        elif self._detail_screen.detail is not detail:
            self._detail_screen.show(detail)
        self.push_screen(self._detail_screen)

    def open_compare(self, run: RunSummary) -> None:
        """Open the compare view of a run's previewed frames."""
        if not isinstance(self.screen, CompareScreen):
            self.push_screen(CompareScreen(run.id))

    def around_floor(self, run: RunSummary) -> None:
        """From a rejected run: queue the floor's neighbours on the axis it changed (editable first)."""
        floor = self.snapshot.floors.get(run.track) if self.snapshot else None
        if floor is None:
            self.notify(f"track {run.track} has no floor yet: nothing to queue around", severity="warning")
            return
        self._around_floor(run.id, floor.id)

    @work(thread=True, group="form", exit_on_error=False)
    def _around_floor(self, run_id: str, floor_id: str) -> None:
        run, floor = self.client.get(run_id), self.client.get(floor_id)  # their specs: two records in full
        self.call_from_thread(self._ask_around_floor, run, floor)

    def _ask_around_floor(self, run: RunRecord, floor: RunRecord) -> None:
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

    def current_track(self, run: RunSummary | None) -> str:
        """The track keys act on: the selected run's, else the filtered one, else the first with a floor."""
        if run is not None:
            return run.track
        floors = list(self.snapshot.floors) if self.snapshot else []
        return self.filters.track or (floors[0] if floors else "main")

    @work(thread=True, group="form", exit_on_error=False)
    def toggle_autopilot(self, track: str, start_scheduler: bool) -> None:
        """Open the autopilot form on `track`, or stop the autopilot running there."""
        if self.client.autopilot_running(track):
            self.post_message(self.ActionDone(self.client.stop_autopilot(track)))
            return
        floor = self.snapshot.floors.get(track) if self.snapshot else None
        if floor is None:
            raise UserError(f"track {track!r} has no floor yet: the autopilot searches around one, measure a run first")
        form = AutopilotForm(track, floor, self.client.spec_of(floor.id))

        def start(request: AutopilotRequest | None) -> None:
            if request is not None:
                self._do(lambda: self.client.start_autopilot(request.track, request.text, start_scheduler), str)

        self.call_from_thread(self.push_screen, form, start)

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
        # No toast: the ledger's title names the track, and a toast's coming and going would each
        # cost a relayout and a repaint of the whole screen.
        self.set_filters(self.filters.with_track(following))

    def go_to(self, run_id: str) -> None:
        """Put the main screen's cursor on a run (clearing a filter that hides it)."""
        while len(self.screen_stack) > 1:
            self.pop_screen()
        snapshot = self.snapshot
        run = snapshot.find(run_id) if snapshot is not None else None
        if snapshot is not None and run is not None and run_id not in self.filters.apply(snapshot.table).ids:
            self.set_filters(RunFilter())
            self.notify(f"Filter cleared to show {run_id}", timeout=3)
        main = self.screen_stack[0]
        if isinstance(main, RunScreen):
            main.select_run(run_id)


def floor_move(run: RunSummary, verdict: str, floor: RunSummary | None) -> str:
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
