"""`Ledger`: the lab's memory of every run, and the one API the engine, scheduler and console use.

Each method that changes something takes the lab's file lock, brings its cache up to date with
the files, checks the change against what is there now, and writes one file atomically (see
`ledger.storage`, `ledger.segments`). A method returns only once its change is on disk, so a
run whose `add_run` or `record_result` returned survives any crash that follows. Reading
methods take no lock and cost one `stat` per file when nothing changed.

Files, in the lab's `ledger/` folder: `runs-NNNN.json` (the history), `queue.json` (paused or
not), `progress.json` (live progress), `ledger.lock` and `progress.lock`.
"""

from __future__ import annotations

import getpass
import socket
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ledger import queries
from ledger.artifacts import ARCHIVE_NAME
from ledger.errors import LedgerError
from ledger.lab import Lab
from ledger.lock import DEFAULT_TIMEOUT, FileLock
from ledger.progress import Progress, ProgressStore
from ledger.promotion import group_floor, review
from ledger.queue_state import QueueStateStore
from ledger.records import Job, RunRecord, RunStatus, Verdict, clip_log_tail, run_id, run_number
from ledger.results import RunResult, result_changes
from ledger.segments import RunStore
from ledger.specdiff import changed_axes, check_spec
from ledger.storage import signature_of
from ledger.summary import RunSummary
from ledger.table import RunView, SummaryTable

#: Status changes `update` allows. `done` comes only from `record_result`, requeueing from `requeue`.
S = RunStatus
TRANSITIONS: dict[RunStatus, set[RunStatus]] = {
    S.QUEUED: {S.RUNNING, S.CANCELLED, S.FAILED},
    S.RUNNING: {S.FAILED, S.CANCELLED, S.INTERRUPTED},
    S.INTERRUPTED: {S.RUNNING, S.FAILED, S.CANCELLED},
    S.DONE: set(),
    S.FAILED: set(),
    S.CANCELLED: set(),
}
UPDATABLE = frozenset(
    {"status", "started", "finished", "pid", "slot", "priority", "position", "label", "notes", "track"}
    | {"artifacts", "log_tail", "failure_reason", "stage_timings", "extra"}
)


class Ledger:
    """Every run of one lab: add, update, record results and verdicts, and ask questions."""

    def __init__(self, lab: Lab | str | Path, lock_timeout: float = DEFAULT_TIMEOUT) -> None:
        self.lab = lab if isinstance(lab, Lab) else Lab.open(lab)
        self.epsilon = self.lab.epsilon()
        self.folder = self.lab.ledger_dir
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock.for_path(self.folder / "ledger.lock", lock_timeout)
        self._runs = RunStore(self.folder)
        self._queue = QueueStateStore(self.folder)
        self._progress = ProgressStore(self.folder)
        self._queue.read()

    def __repr__(self) -> str:
        return f"Ledger({str(self.lab.root)!r})"

    # Runs in and out.

    def add_run(
        self,
        spec: Mapping[str, Any],
        *,
        track: str = "main",
        label: str = "",
        notes: str = "",
        parent: str | None = None,
        priority: int = 0,
        status: str = RunStatus.QUEUED,
    ) -> RunRecord:
        """Add a run (queued, or running when started at once) and return its record with its new id."""
        try:
            plain = check_spec(spec)
        except ValueError as exc:
            raise LedgerError(f"cannot add the run: {exc}; fix the spec") from None
        track = str(track).strip()
        if not track:
            raise LedgerError("a run's track cannot be empty: use --track main, or any name")
        if status not in (S.QUEUED, S.RUNNING):
            raise LedgerError(f"a new run is queued or running, not {status!r}")
        with self._lock:
            parent_id, changed = None, []
            if parent is not None:
                parent_record = self.get(parent)
                parent_id, changed = parent_record.id, changed_axes(parent_record.spec, plain)

            def document(number: int) -> dict[str, Any]:
                now = time.time()
                # The folder first: a disk that refuses it must not leave a run that can never start.
                self.lab.run_dir(run_id(number)).mkdir(parents=True, exist_ok=True)
                return {
                    "id": run_id(number),
                    "created": now,
                    "started": now if status == S.RUNNING else None,
                    "track": track,
                    "label": str(label),
                    "notes": str(notes),
                    "spec": plain,
                    "parent": parent_id,
                    "changed": changed,
                    "status": status,
                    "priority": int(priority),
                    "position": number,
                    "artifacts": str(self.lab.run_dir(run_id(number))),
                }

            return self._runs.append(document)

    def get(self, run: str) -> RunRecord:
        """The record of a run ("r0042", "r42" or "42"), as the files hold it now; an unknown id raises LedgerError."""
        number = run_number(run)
        record = self._runs.get(number)
        if record is None:
            raise LedgerError(f"no run {run_id(number)} in {self.folder}: list runs with comma-tui ledger list")
        return record

    def update(self, run: str, **fields: Any) -> RunRecord:
        """Change a run's bookkeeping: status (see `TRANSITIONS`), pid, slot, times, priority, label...

        Entering `running` sets `started` (unless given); ending sets `finished` and clears `pid`
        and `slot` (unless given). Metrics and verdicts are not fields of `update`.
        """
        unknown = sorted(set(fields) - UPDATABLE)
        if unknown:
            raise ValueError(f"update cannot change {unknown}: it changes {sorted(UPDATABLE)}")
        with self._lock:
            record = self.get(run)
            changes = dict(fields)
            if "log_tail" in changes:
                changes["log_tail"] = clip_log_tail(str(changes["log_tail"]))
            if "track" in changes and record.status != S.QUEUED:
                raise LedgerError(f"{record.id} is {record.status}: only a queued run can move to another track")
            new_status = changes.get("status", record.status)
            if new_status != record.status:
                self._check_transition(record, new_status)
                now = time.time()
                if new_status == S.RUNNING:
                    changes.setdefault("started", now)
                else:
                    changes.setdefault("finished", now)
                    changes.setdefault("pid", None)
                    changes.setdefault("slot", None)
            if not changes:
                return record
            return self._runs.update(record.number, changes)

    def requeue(self, run: str) -> RunRecord:
        """Put an interrupted (or still running) run back in the queue, counting it in `requeued`."""
        with self._lock:
            record = self.get(run)
            if record.status not in (S.INTERRUPTED, S.RUNNING):
                raise LedgerError(f"{record.id} is {record.status}: only interrupted or running runs are requeued")
            changes: dict[str, Any] = {"status": S.QUEUED, "started": None, "finished": None, "pid": None}
            changes |= {"slot": None, "requeued": record.requeued + 1}
            return self._runs.update(record.number, changes)

    def rescore(self, run: str) -> RunRecord:
        """Queue a run rejected early to be scored fully: its kept archive is inflated and every pair scored.

        The run is queued again as a score-only job (no encode, no training); its result replaces
        the estimate and is reviewed again. Until then it keeps its estimate.
        """
        with self._lock:
            record = self.get(run)
            if record.status != S.DONE or not record.estimated:
                raise LedgerError(
                    f"{record.id} is not a run rejected early ({record.status}"
                    f"{', scored in full' if record.measured else ''}): only early estimates are scored fully"
                )
            archive = Path(record.artifacts) / ARCHIVE_NAME
            if not archive.is_file():
                raise LedgerError(
                    f"{record.id} has no kept archive ({archive} is gone): it cannot be scored fully; queue it "
                    "again instead (clone it)"
                )
            changes = {"status": S.QUEUED, "job": Job.RESCORE, "position": self._runs.max_number() + 1}
            return self._runs.update(record.number, changes | {"failure_reason": "", "pid": None, "slot": None})

    def record_result(self, run: str, result: RunResult) -> RunRecord:
        """Store a finished run's result, review it for promotion, and return it with its verdict.

        The run becomes done whatever its status was (a finished run is never lost), unless it is
        done already. A rescore's result replaces the estimate (its stage timings join the run's).
        A result no engine produces (non-finite metrics...) is a ValueError.
        """
        result.check()
        with self._lock:
            record = self.get(run)
            if record.status == RunStatus.DONE:
                raise LedgerError(f"{record.id} already has a result: a run is measured once; retry it as a new run")
            changes = result_changes(record, result)
            if record.job == Job.RESCORE:
                changes |= {"job": Job.RUN, "stage_timings": {**record.stage_timings, **changes["stage_timings"]}}
            candidate = replace(record, **{k: v for k, v in changes.items() if k != "metrics"}, metrics=result.metrics)
            verdict = review(candidate, group_floor(self._runs.table(), candidate), self.epsilon, now=time.time())
            changes["review"] = verdict.to_doc()
            done = self._runs.update(record.number, changes)
        self._progress.clear(done.id)
        return done

    def record_failure(self, run: str, reason: str, log_tail: str = "", status: str = S.FAILED) -> RunRecord:
        """End a run as failed, cancelled or interrupted, with the reason and the log's tail.

        A run that has already ended (done, failed, cancelled) keeps its first ending: the call
        changes nothing and returns the record, so a late report can never undo a result.
        """
        if status not in (S.FAILED, S.CANCELLED, S.INTERRUPTED):
            raise ValueError(f"record_failure ends a run as failed, cancelled or interrupted, not {status!r}")
        with self._lock:
            record = self.get(run)
            if record.status.final:
                return record
            if record.job == Job.RESCORE and status != S.INTERRUPTED:
                return self._end_rescore(record, reason)
            changes = {
                "status": status,
                "finished": time.time(),
                "failure_reason": str(reason),
                "log_tail": clip_log_tail(str(log_tail)) if log_tail else record.log_tail,
                "pid": None,
                "slot": None,
            }
            ended = self._runs.update(record.number, changes)
        self._progress.clear(ended.id)
        return ended

    def _end_rescore(self, record: RunRecord, reason: str) -> RunRecord:
        """A rescore that failed or was cancelled leaves the run as it was: done, with its estimate."""
        changes: dict[str, Any] = {"status": S.DONE, "job": Job.RUN, "pid": None, "slot": None}
        changes["failure_reason"] = f"scoring it fully did not finish ({reason}); it keeps its estimate"
        ended = self._runs.update(record.number, changes)
        self._progress.clear(ended.id)
        return ended

    def archive(self, runs: Sequence[str], archived: bool = True) -> list[RunRecord]:
        """Move ended runs out of the views (`archived=False` brings them back); nothing is deleted.

        All or nothing: a queued or running run, or the floor of a track, refuses the whole call.
        """
        with self._lock:
            records = [self.get(run) for run in runs]
            floors = {r.id for r in self.floors().values()}
            for record in records:
                if record.status in ("queued", "running"):
                    raise LedgerError(f"{record.id} is {record.status}: cancel it before archiving it")
                if archived and record.id in floors:
                    raise LedgerError(f"{record.id} is the floor of {record.track}: the score to beat stays in view")
            return [self._runs.update(r.number, {"archived": archived}) for r in records]

    def override(self, run: str, verdict: str, note: str) -> RunRecord:
        """A person's verdict on a measured run, with a note; stored as an event beside the run."""
        if verdict not in tuple(Verdict):
            raise LedgerError(f"unknown verdict {verdict!r}: a run is promoted or rejected")
        note = str(note).strip()
        if not note:
            raise LedgerError("an override needs a note saying why: pass --note TEXT")
        with self._lock:
            record = self.get(run)
            if not record.measured:
                raise LedgerError(f"{record.id} is {record.status}: only measured (done) runs are promoted or rejected")
            if verdict == Verdict.PROMOTED and record.approximate:
                raise LedgerError(
                    f"{record.id} has an approximate score, and approximate scores are never promoted: "
                    "rerun it exactly, then promote that run"
                )
            if verdict == Verdict.PROMOTED and record.estimated:
                raise LedgerError(
                    f"{record.id} was rejected early and its score is an estimate, which is never promoted: "
                    f"score it fully first (comma-tui ledger rescore {record.id})"
                )
            event = {"kind": "override", "verdict": verdict, "note": note, "at": time.time()}
            event |= {"host": socket.gethostname(), "user": _user()}
            return self._runs.add_event(record.number, event)

    def _check_transition(self, record: RunRecord, status: str) -> None:
        if status not in TRANSITIONS:
            raise LedgerError(f"unknown status {status!r}: use one of {', '.join(TRANSITIONS)}")
        if status == S.DONE:
            raise LedgerError(f"{record.id} cannot be marked done by hand: results come through record_result")
        if status not in TRANSITIONS[record.status]:
            allowed = ", ".join(sorted(TRANSITIONS[record.status])) or "nothing: it has ended"
            raise LedgerError(f"{record.id} is {record.status} and cannot become {status} (it can become {allowed})")

    # Questions: answered from the runs' summaries; full records are read only where asked for.

    def table(self) -> SummaryTable:
        """Every run's summary as columns, at the files' current state (see `ledger.table`)."""
        return self._runs.table()

    def newest(self, count: int) -> SummaryTable:
        """The summaries of the newest `count` runs at least (a first page), without reading the rest."""
        return self._runs.newest(count)

    def records(self, runs: Iterable[RunSummary | RunRecord | str]) -> list[RunRecord]:
        """The full records of these runs (summaries, records or ids), in the order given."""
        if isinstance(runs, RunView):
            return self._runs.records(runs.table.numbers[runs.rows].tolist())
        return self._runs.records(run_number(r) if isinstance(r, str) else r.number for r in runs)

    def runs(
        self,
        status: str | Collection[str] | None = None,
        track: str | None = None,
        verdict: str | None = None,
        text: str | None = None,
        sort: str = "id",
        reverse: bool = False,
        archived: bool | None = False,
    ) -> RunView:
        """Summaries of the runs matching the filters, sorted (see `queries.filter_runs`, `queries.SORT_KEYS`)."""
        found = queries.filter_runs(self._runs.table(), status, track, verdict, text, archived)
        return queries.sort_runs(found, sort, reverse)

    def all(self) -> RunView:
        """Every run's summary, by id."""
        return self._runs.table().view()

    def queued(self) -> RunView:
        """Summaries of the queued runs in launch order: priority high first, then position."""
        return queries.launch_order(self._runs.table())

    def running(self) -> list[RunRecord]:
        """Runs now running, by id, in full (they are few, and whoever asks needs their pid and spec)."""
        return self.records(queries.filter_runs(self._runs.table(), status=S.RUNNING))

    def measured(self) -> RunView:
        """Summaries of the exact (not approximate) measured runs, by id."""
        return queries.measured(self._runs.table())

    def latest(self, statuses: Iterable[RunStatus], count: int) -> list[RunRecord]:
        """In full, the last `count` runs to end (else to be made) in one of these statuses, most recent first."""
        return self.records(queries.latest(self._runs.table(), statuses, count))

    def floor(
        self,
        track: str,
        *,
        scorer_fingerprint: str | None = None,
        clip_fingerprint: str | None = None,
        device_kind: str | None = None,
    ) -> RunSummary | None:
        """The floor of a track (its latest promotion), within the scorer, clip and device given."""
        return queries.floor(self._runs.table(), track, scorer_fingerprint, clip_fingerprint, device_kind)

    def group_floors(self, track: str) -> list[RunSummary]:
        """The floor of each comparison group (scorer, clip, device) of a track: what a run of it may be judged by."""
        return queries.group_floors(self._runs.table(), track)

    def floors(self) -> dict[str, RunSummary]:
        """The floor of each track that has one."""
        return queries.floors(self._runs.table())

    def deltas(self) -> queries.Deltas:
        """Each measured run's score minus the current floor of its comparison group, by run id."""
        table = self._runs.table()
        return queries.Deltas(table, queries.floor_deltas(table))

    def turning_points(self, track: str) -> list[queries.TurningPoint]:
        """The promotions of a track's current comparison group, in order, with their deltas."""
        return queries.turning_points(self._runs.table(), track)

    def pareto(self, track: str | None = None) -> list[RunSummary]:
        """The bytes-vs-score frontier of exact measured runs (of one track, or all), by bytes."""
        return queries.pareto(self._runs.table(), track)

    def prior_of(self, run: str) -> queries.Prior[RunRecord] | None:
        """What a run is compared with, in full (see `queries.prior_of`): reads that run and this one.

        A reviewed run names the floor it was judged by, so only those two records are read (no
        summary of the history: `ledger show` stays fast in a lab of 100,000 runs).
        """
        record = self.get(run)
        judged_by = record.compared_with and self._runs.get(run_number(record.compared_with))
        if judged_by:
            return queries.Prior(judged_by, "floor")
        prior = queries.prior_of(self._runs.table(), record)
        return None if prior is None else queries.Prior(self.get(prior.run.id), prior.kind)

    def neighbourhood(self, run: str) -> list[queries.NeighbourRow]:
        """The runs whose parent is `run`, with Δscore, Δbytes, changed axes and verdict."""
        center = self.get(run)
        children = queries.children(self._runs.table(), center.number)
        return queries.neighbourhood(self.records(children), center)

    def counts(self, track: str | None = None) -> queries.Counts:
        """How many runs are measured, promoted, rejected, failed, queued, running..."""
        return queries.counts(self._runs.table(), track)

    def tracks(self) -> list[str]:
        """Track names in the order of their first run."""
        return queries.tracks(self._runs.table())

    def revision(self) -> tuple[Any, ...]:
        """A value that changes whenever a run or the queue's state changes: poll it to redraw."""
        try:
            queue_sig: Any = signature_of(self._queue.path.stat())
        except FileNotFoundError:
            queue_sig = None
        return (self._runs.revision(), queue_sig)

    # Live progress and the queue's state.

    def set_progress(
        self,
        run: str,
        stage: str,
        done: int,
        total: int,
        elapsed: float = 0.0,
        eta: float | None = None,
        detail: str = "",
        metrics: Mapping[str, float] | None = None,
    ) -> Progress:
        """Say where a running run is (kept apart from the history; see `ledger.progress`)."""
        return self._progress.set(run, stage, done, total, elapsed, eta, detail, metrics)

    def progress(self) -> dict[str, Progress]:
        """The latest progress of each run that reported some, by run id."""
        return self._progress.all()

    def clear_progress(self, run: str) -> None:
        """Forget a run's progress (done automatically when a run ends)."""
        self._progress.clear(run)

    def paused(self) -> bool:
        """Whether the queue is paused (running runs finish; nothing new starts)."""
        return self._queue.read().paused

    def paused_since(self) -> float | None:
        """When the queue was last paused or resumed."""
        return self._queue.read().since

    def set_paused(self, paused: bool) -> None:
        """Pause or resume the whole queue."""
        with self._lock:
            self._queue.write(bool(paused))


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""
