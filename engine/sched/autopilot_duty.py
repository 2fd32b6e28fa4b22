"""The autopilot's loop, a duty of the scheduler process: it keeps each active autopilot's proposals queued.

Once per pass (a second apart, and only when the ledger or an autopilot's files changed) and for
each track whose autopilot runs (see `engine.sched.autopilot`), the duty:
1. opens the study (first time: fails the trials a dead scheduler asked but never queued;
   a new study also gets the floor's neighbours enqueued first),
2. adds the track's measured runs that are points of the space (`study.seed`),
3. tells the study how its ended proposals went (COMPLETE with the score, and bytes; PRUNED
   when rejected early; FAIL),
4. stops on `autopilot stop` (cancelling its queued proposals) or once the budget is spent and
   every proposal has ended, running the `on_autopilot_done` hook,
5. otherwise asks for new points until `parallel` proposals wait or run, each queued as an
   ordinary run: parent the current floor, label `auto: crf=33 fg=10`, notes naming the trial.
The study lives in a journal file, so a restarted scheduler resumes where it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from engine.sched import autopilot
from engine.sched.autopilot import AutopilotState
from engine.sched.hooks import HookRunner, run_env
from engine.sched.search import Search
from engine.sched.state import holder
from ledger import Lab, Ledger, LedgerError, RunRecord
from ledger.errors import UserError

if TYPE_CHECKING:
    import optuna

PASS_SECONDS = 1.0


@dataclass
class _Open:
    """A study the duty has open, with the search it explores."""

    name: str
    search: Search
    study: optuna.Study
    checked: set[str] = field(default_factory=set)  # runs already offered to `study.seed`


class AutopilotDuty:
    """Advances every active autopilot of a lab; the scheduler calls `tick` from its loop."""

    def __init__(self, lab: Lab, ledger: Ledger, slots: int, hooks: HookRunner, say: Callable[[str], None]) -> None:
        self.lab = lab
        self.ledger = ledger
        self.slots = slots
        self.hooks = hooks
        self.say = say
        self.open: dict[str, _Open] = {}
        self._last = 0.0
        self._seen: Any = None

    def tick(self, stopping: bool = False) -> None:
        """One pass over the active autopilots, at most once per `PASS_SECONDS` and when something changed."""
        now = time.monotonic()
        if now - self._last < PASS_SECONDS:
            return
        self._last = now
        active = [s for s in autopilot.states(self.lab) if s.active]
        seen = (
            self.ledger.revision(),
            [(s.track, s.state, autopilot.stop_requested(self.lab, s.track)) for s in active],
        )
        if seen == self._seen:
            return
        self._seen = seen
        for state in active:
            try:
                self.advance(state, propose=not stopping)
            except (UserError, LedgerError, OSError) as exc:
                self._end(state, "failed", f"the autopilot stopped: {exc}")
            except Exception as exc:  # an Optuna or journal fault: the queue must go on without it
                self._end(state, "failed", f"the autopilot stopped on an internal error: {exc!r}")

    def _study(self, state: AutopilotState) -> _Open:
        current = self.open.get(state.track)
        if current is not None and current.name == state.study:
            return current
        from engine.sched import study

        search = autopilot.load(self.lab, self.ledger, state)
        journal = autopilot.folder(self.lab, state.track) / "journal.log"
        fresh = not journal.exists()
        opened = _Open(state.study, search, study.open_study(search, journal, state.study))
        orphans = study.fail_orphans(opened.study)
        if orphans:
            self.say(f"autopilot {state.track}: {orphans} trial(s) asked before a restart but never queued: failed")
        if fresh or not opened.study.get_trials(deepcopy=False):
            seeded = study.seed(opened.study, search, self._candidates(opened))
            floor = self.ledger.floors().get(search.track)
            center = None if floor is None else search.params_of(self.ledger.get(floor.id).spec)
            near = 0 if center is None else study.enqueue_neighbours(opened.study, search, center)
            self.say(
                f"autopilot {state.track}: study {state.study}: {len(seeded)} run(s) seeded, {near} neighbour(s) first"
            )
        self.open[state.track] = opened
        return opened

    def advance(self, state: AutopilotState, propose: bool = True) -> AutopilotState:
        """Seed, tell, then stop, finish or propose, as the module says; returns the state written."""
        from engine.sched import study

        opened = self._study(state)
        search, st = opened.search, opened.study
        study.seed(st, search, self._candidates(opened))
        waiting = self._tell(search, st)
        proposed = len(study.proposals(st))
        if autopilot.stop_requested(self.lab, state.track):
            for record in waiting:
                if record.status == "queued":
                    self.ledger.update(record.id, status="cancelled")
            self._tell(search, st)
            return self._end(state, "stopped", "stopped by comma-tui autopilot stop", st)
        if proposed >= state.budget and not waiting:
            return self._end(state, "done", f"its budget of {state.budget} run(s) is spent", st)
        parallel = search.parallel or self.slots
        while propose and proposed < state.budget and len(waiting) < parallel:
            queued = self._propose(state, search, st)
            if queued is None:
                break
            waiting.append(queued)
            proposed += 1
        return self._write(state, st, "running", "")

    def _candidates(self, opened: _Open) -> list[RunRecord]:
        """In full, the track's measured runs this study has not looked at yet (each is read once)."""
        new = [
            s
            for s in self.ledger.all()
            if s.track == opened.search.track and s.score is not None and s.id not in opened.checked
        ]
        opened.checked.update(s.id for s in new)
        return self.ledger.records(new) if new else []

    def _tell(self, search: Search, st: optuna.Study) -> list[RunRecord]:
        """Tell the study each ended proposal; returns the runs of those still queued or running."""
        from engine.sched import study

        waiting = []
        for trial in study.proposals(st):
            record = None if trial.state.name != "RUNNING" else self._record(trial.user_attrs["run"])
            if record is not None and not study.tell(st, search, trial, record):
                waiting.append(record)
        return waiting

    def _propose(self, state: AutopilotState, search: Search, st: optuna.Study) -> RunRecord | None:
        from engine.sched import study

        trial = study.ask(st, search)
        if trial is None:
            self.say(f"autopilot {state.track}: every draw this pass was a known point; trying again later")
            return None
        params = dict(trial.params)
        spec = search.spec_at(params)
        floor = self.ledger.floors().get(search.track)
        record = self.ledger.add_run(
            spec.to_dict(),
            track=search.track,
            label=search.label(params),
            notes=f"autopilot trial {trial.number} of study {state.study}",
            parent=(floor.id if floor is not None else search.base),
        )
        trial.set_user_attr("run", record.id)
        self.say(f"autopilot {state.track}: trial {trial.number} queued as {record.id} ({record.label})")
        return record

    def _record(self, run_id: str) -> RunRecord | None:
        try:
            return self.ledger.get(run_id)
        except LedgerError:
            return None  # a run removed by hand: nothing to tell

    def _write(self, state: AutopilotState, st: optuna.Study | None, name: str, reason: str) -> AutopilotState:
        from engine.sched import study

        fresh = autopilot.read_state(self.lab, state.track) or state
        if fresh.study != state.study:
            return fresh  # a new autopilot replaced this one meanwhile
        counts: dict[str, Any] = {}
        if st is not None:
            made = study.proposals(st)
            best = study.best(st)
            counts = {
                "proposed": len(made),
                "finished": sum(1 for t in made if t.state.name != "RUNNING"),
                "best": None if best is None else best[0],
                "best_run": "" if best is None else best[1],
            }
        new = replace(fresh, state=name, reason=reason, **counts)
        if new != fresh:
            autopilot.write_state(self.lab, new)
        return new

    def _end(self, state: AutopilotState, name: str, reason: str, st: optuna.Study | None = None) -> AutopilotState:
        ended = self._write(state, st, name, reason)
        (autopilot.folder(self.lab, state.track) / "stop").unlink(missing_ok=True)
        self.open.pop(state.track, None)
        self.say(f"autopilot {state.track}: {name}: {reason} ({ended.line()})")
        best = self._record(ended.best_run) if ended.best_run else None
        env = run_env(best, reason) | {"COMMA_TUI_TRACK": state.track}
        self.hooks.fire("on_autopilot_done", env)
        return ended


def stop(lab: Lab, track: str, say: Callable[[str], None]) -> AutopilotState:
    """Stop a track's autopilot: the scheduler's duty does it within a second (state `stopping`),
    or, when no scheduler runs, this process does the same at once (state `stopped`)."""
    state = autopilot.stop(lab, track)
    if holder(lab) is not None:
        return state
    hooks = HookRunner(lab, say)
    try:
        return AutopilotDuty(lab, Ledger(lab), 1, hooks, say).advance(state, propose=False)
    finally:
        hooks.close()
