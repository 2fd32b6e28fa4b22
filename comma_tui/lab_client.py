"""The console's one door into the lab: the ledger, the scheduler's controls and the engine's specs.

The Textual app never reads a file or calls the engine itself; it calls a `LabClient` from
thread workers and gets back plain frozen values (`Snapshot`, `Live`, `RunDetail`). Every
method blocks, so none may run on the UI thread.

Scheduler control goes through `engine.sched.control`, handed this client's ledger so that it reuses
its cache instead of reading the history again.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from comma_tui.lab_state import Compare, Live, PerPairSeries, PreviewPair, RunDetail, SchedulerInfo, Snapshot
from engine.runs.measured import measured_index
from engine.runs.spec import RunSpec, SourceSpec, lab_source, parse_spec, stage_names
from engine.sched import autopilot, autopilot_duty, control
from engine.sched.pool import LOG_NAME, log_tail
from ledger import Lab, Ledger, RunRecord, RunSummary, SummaryTable, load_per_pair, queries
from ledger.artifacts import load_curve
from ledger.errors import UserError
from ledger.previews import PreviewIndex, load_preview_index

LOG_TAIL_LINES = 40


def in_view(table: SummaryTable) -> SummaryTable:
    """The table without its archived runs (`ledger archive`): the console shows only the others."""
    archived = table.arrays["archived"]
    return table.take(np.flatnonzero(~archived)) if archived.any() else table


class LabClient:
    """Blocking calls on one lab, safe to make from several worker threads at once."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        # One lock for every ledger call: a Ledger caches files and is not thread-safe.
        self._lock = threading.RLock()
        self._ledger: Ledger | None = None
        self._source: SourceSpec | None = None
        self._measured: tuple[Any, dict[str, RunRecord]] | None = None

    @property
    def ledger(self) -> Ledger:
        """The lab's ledger, opened on first use (in a worker, since opening reads every file)."""
        with self._lock:
            if self._ledger is None:
                self._ledger = Ledger(self.lab)
            return self._ledger

    def source(self) -> SourceSpec:
        """The lab's default [source] (read once)."""
        with self._lock:
            if self._source is None:
                self._source = lab_source(self.lab)
            return self._source

    # Reading.

    def snapshot(self, since: Any = None) -> Snapshot | None:
        """The summaries of the runs in view (archived runs left out) at the history's current revision,
        or None when it is still `since`."""
        with self._lock:
            ledger = self.ledger
            revision = ledger.revision()
            if since is not None and revision == since:
                return None
            table = in_view(ledger.table())
            running = ledger.running()
            latest = queries.latest_measured(table)
            return Snapshot(
                revision=revision,
                table=table,
                deltas=queries.Deltas(table, queries.floor_deltas(table)),
                floors=queries.floors(table),
                counts=queries.counts(table),
                tracks=queries.tracks(table),
                paused=ledger.paused(),
                queued=queries.launch_order(table),
                running=[RunSummary.of(r) for r in running],
                stages={r.id: stage_names(r.spec, r.job) for r in running},
                scorer=latest.scorer_fingerprint if latest else None,
                scorer_demo=bool(latest and latest.scorer_demo),
                latest_track=latest.track if latest else "",
            )

    def first_page(self, rows: int) -> Snapshot:
        """The newest `rows` runs' summaries alone, read before the rest of a long history (`newest_only`)."""
        with self._lock:
            table = in_view(self.ledger.newest(rows))
        unknown = queries.Deltas(table, np.full(len(table), np.nan))
        return Snapshot(None, table, unknown, {}, queries.Counts(), [], False, (), (), newest_only=True)

    @staticmethod
    def prime(snapshot: Snapshot) -> None:
        """Read the runs' search texts and rank their labels now (both are kept), so the first `/`
        filter and the first sort by label are quick."""
        snapshot.table.search_blocks()
        queries.sort_values(snapshot.table, "label")

    def live(self) -> Live:
        """Progress of running runs, and the scheduler's state."""
        with self._lock:
            progress = self.ledger.progress()
            glance = control.glance(self.ledger)
        lines = tuple(s.line() for s in autopilot.states(self.lab) if s.active)
        jobs = {run: (job.get("state", "?"), job.get("note", "")) for run, job in glance.jobs.items()}
        info = SchedulerInfo(
            glance.state, glance.slots, glance.address, glance.resources, jobs, lines, held=glance.held
        )
        return Live(info, progress)

    def detail(self, run_id: str) -> RunDetail:
        """A run, the run it is compared with (`ledger.queries.prior_of`), both per-pair distortions, its log's tail."""
        with self._lock:
            ledger = self.ledger
            run = ledger.get(run_id)
            parent = ledger.get(run.parent) if run.parent else None
            prior = ledger.prior_of(run.id)
        return RunDetail(
            run=run,
            prior=prior,
            parent=parent,
            per_pair=self._per_pair(run),
            prior_per_pair=self._per_pair(prior.run) if prior is not None else None,
            log_tail=self.log_tail(run),
            artifacts=run.artifacts,
            curve=self.curve(run),
        )

    def _per_pair(self, run: RunRecord) -> PerPairSeries | None:
        try:
            found = load_per_pair(self.lab, run.id, run.artifacts)
        except UserError:
            return None  # a damaged file only costs the plot, not the screen
        if found is None:
            return None
        return PerPairSeries(found.posenet.tolist(), found.segnet.tolist())

    def compare(self, run_id: str) -> Compare:
        """A run's previews, decoded, with its floor's frames of the same pairs; or why there are none."""
        with self._lock:
            run = self.ledger.get(run_id)
        if run.status in ("failed", "cancelled", "interrupted"):
            return Compare(run, missing=f"{run.id} {run.status} before it was scored: no frames to show")
        if not run.measured:
            return Compare(run, missing=f"{run.id} is {run.status}: its frames are kept once it is scored")
        index = load_preview_index(Path(run.artifacts)) if run.artifacts else None
        if index is None or not index.entries:
            return Compare(
                run, missing=f"{run.id} has no previews (scored before runs kept them): `comma-tui frames {run.id}`"
            )
        with self._lock:
            prior = self.ledger.prior_of(run.id)
        floor = prior.run if prior is not None and prior.kind == "floor" and prior.run.artifacts else None
        floor_index = load_preview_index(Path(floor.artifacts)) if floor is not None else None
        floor_pairs = {e.pair for e in floor_index.entries} if floor_index is not None else set()
        pairs = tuple(
            PreviewPair(
                entry,
                _image(index, entry.pair, "reference"),
                _image(index, entry.pair, "candidate"),
                _image(index, entry.pair, "reference-classes"),
                _image(index, entry.pair, "candidate-classes"),
                _image(floor_index, entry.pair, "candidate") if floor_index and entry.pair in floor_pairs else None,
            )
            for entry in index.entries
        )
        series = self._per_pair(run)
        return Compare(
            run,
            pairs,
            index.pairs,
            tuple(series.segnet) if series else (),
            floor.id if floor_pairs and floor is not None else None,
        )

    def log_tail(self, run: RunRecord) -> str:
        """The last lines of a run's log.txt (live while it runs), else the tail kept in the ledger."""
        live = log_tail(Path(run.artifacts) / LOG_NAME, LOG_TAIL_LINES) if run.artifacts else ""
        return live or run.log_tail

    @staticmethod
    def curve(run: RunRecord) -> tuple[dict[str, float], ...]:
        """A training run's curve (loss terms and score estimate by step; live while it trains), else ()."""
        return tuple(load_curve(run.artifacts)) if run.artifacts else ()

    def get(self, run_id: str) -> RunRecord:
        """One run's record, fresh from the ledger."""
        with self._lock:
            return self.ledger.get(run_id)

    def measured(self) -> dict[str, RunRecord]:
        """Each spec a finished run measured (by `engine.runs.measured.measure_key`), kept until the history changes."""
        with self._lock:
            revision = self.ledger.revision()
            if self._measured is None or self._measured[0] != revision:
                self._measured = (revision, measured_index(self.ledger.records(self.ledger.measured()), self.source()))
            return self._measured[1]

    def spec_of(self, run_id: str | None) -> RunSpec:
        """A run's spec, validated with the lab's source; the defaults when `run_id` is None."""
        source = self.source()
        if run_id is None:
            return parse_spec({}, source)
        return parse_spec(self.get(run_id).spec, source)

    # Changing the queue.

    def ensure_scheduler(self) -> str:
        """Start the lab's scheduler unless one runs, or a person stopped it (never a second one); says which."""
        # Not under the lock: starting waits for the new process (seconds), and the lab is enough.
        pid = control.ensure_running(self.lab)
        if pid is None:
            return "The scheduler was stopped by hand (sched stop) and stays stopped: S starts it"
        return f"Scheduler running (pid {pid})"

    def start_scheduler(self) -> str:
        """Start the lab's scheduler (lifting a stop by hand); says so."""
        return f"Scheduler started (pid {control.start(self.lab)})"

    def stop_scheduler(self) -> str:
        """Ask the scheduler to stop once its running runs finish; it stays stopped until started."""
        pid = control.stop(self.lab, wait=False)
        return "No scheduler was running; it stays stopped" if pid is None else f"Scheduler (pid {pid}) is stopping"

    def set_paused(self, paused: bool) -> None:
        """Pause or resume the whole queue (running runs finish)."""
        with self._lock:
            (control.pause if paused else control.resume)(self.ledger)

    def toggle_pause(self) -> bool:
        """Pause a running queue or resume a paused one; returns whether it is paused now."""
        with self._lock:
            paused = not self.ledger.paused()
        self.set_paused(paused)
        return paused

    def cancel(self, run_ids: list[str]) -> list[RunRecord]:
        """Cancel queued or running runs (the scheduler kills a running one's process group)."""
        with self._lock:
            return control.cancel(self.ledger, *run_ids)

    def retry(self, run_ids: list[str]) -> list[RunRecord]:
        """Queue failed, cancelled or interrupted runs again, each as a new run whose parent is the old one."""
        with self._lock:
            return control.retry(self.ledger, *run_ids)

    def rescore(self, run_id: str) -> RunRecord:
        """Queue a run rejected early to be scored fully (its kept archive; the estimate is replaced)."""
        with self._lock:
            return self.ledger.rescore(run_id)

    def bump(self, run_id: str, delta: int) -> RunRecord:
        """Raise (positive delta) or lower a queued run's priority."""
        with self._lock:
            return control.bump(self.ledger, run_id, delta)

    def queue_run(self, spec: RunSpec, track: str, label: str, parent: str | None, priority: int = 0) -> RunRecord:
        """Queue one run of a validated spec (its `run.track` follows `track`)."""
        if spec.run.track != track:
            spec = spec.with_value("run.track", track)
        with self._lock:
            return self.ledger.add_run(spec.to_dict(), track=track, label=label, parent=parent, priority=priority)

    def clone(self, run_id: str) -> RunRecord:
        """Queue the same spec again as a child of `run_id` (a remeasure, or a base to vary)."""
        with self._lock:
            run = self.ledger.get(run_id)
            label = run.label if run.label.startswith("clone of") else f"clone of {run.id}"
            return self.ledger.add_run(run.spec, track=run.track, label=label, parent=run.id)

    def queue_sweep(
        self, base: RunSpec, sweeps: dict[str, list[Any]], parent: str | None, track: str, priority: int = 0
    ) -> list[RunRecord]:
        """Queue one run per point of the grid `sweeps` ({axis: values}) around `base`, in `track`.

        All or nothing (see `engine.sched.control.queue_sweep`); labels name the point alone;
        points a finished run measured already are left out.
        """
        base = base.with_value("run.track", track).with_value("run.label", "")
        with self._lock:
            return control.queue_sweep(self.ledger, base, sweeps, priority, parent=parent, again=False)

    def around_floor(self, track: str, offsets: str) -> list[RunRecord]:
        """Queue the floor's neighbours on `offsets` (`crf=-2,+2`), leaving out what was measured already."""
        axis, values = control.parse_sweep(offsets)
        with self._lock:
            return control.around_floor_axes(self.ledger, track, {axis: values}, again=False)

    # Verdicts and exports.

    def override(self, run_id: str, verdict: str, note: str) -> RunRecord:
        """Promote or reject a measured run by hand, with a note."""
        with self._lock:
            return self.ledger.override(run_id, verdict, note)

    def default_export_dir(self, run_id: str) -> Path:
        """Where `e` proposes to export a run: `<lab>/exports/<run>`."""
        return self.lab.root / "exports" / run_id

    def export(self, run_id: str, dest: Path) -> Path:
        """Write a finished run as an official-layout submission folder."""
        from engine.runs.export import export_run

        return export_run(self.get(run_id), self.source(), Path(dest).expanduser())

    # The autopilot.

    def autopilot_running(self, track: str) -> bool:
        """Whether an autopilot runs on `track` now."""
        state = autopilot.read_state(self.lab, track)
        return state is not None and state.active

    def start_autopilot(self, track: str, text: str, start_scheduler: bool = True) -> str:
        """Start an autopilot from a search file's text (the form's); make sure a scheduler runs it."""
        path = autopilot.folder(self.lab, track).with_suffix(".console.toml")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        with self._lock:
            state = autopilot.start(self.lab, path)
        if start_scheduler:
            control.ensure_running(self.lab)
        return f"Autopilot started on {track}: {state.budget} runs around {state.base}"

    def stop_autopilot(self, track: str) -> str:
        """Stop `track`'s autopilot (its queued proposals are cancelled)."""
        with self._lock:
            state = autopilot_duty.stop(self.lab, track, lambda _line: None)
        return f"Autopilot on {track} {state.state} ({state.line()})"


def _image(index: PreviewIndex, pair: int, kind: str) -> np.ndarray:
    """One preview image as a uint8 array; a damaged one is a clear error naming the file."""
    path = index.path(pair, kind)
    try:
        with Image.open(path) as image:
            return np.asarray(image)
    except OSError as exc:
        raise UserError(f"{path} cannot be read ({exc}): the run's previews are damaged; rescore the run") from None
