"""The scheduler: one detached process per lab that runs its queue through an execution backend.

    python -m engine.sched.scheduler --lab DIR [--slots N] [--backend local|ray] [--ray-address URL]
    python -m engine.sched.scheduler --lab DIR ... --spawn   # detached; prints its pid and returns

`engine.sched.control` is its client (start, stop, status, cancel...). Everything durable lives in the
ledger; the scheduler only knows which execution runs which run, and rebuilds that on start. How a
run executes is its backend's business (`engine.sched.backend`): a worker process here (`local`, the
default) or a job on a Ray cluster (`ray`), as lab.toml's `[scheduler]` or `--backend` says.

How it stays up and cleans up:
- One per lab: `scheduler/lock` is flocked for the process's life and `scheduler/state.json` says
  pid, slots, GPUs, the backend's news and since when (see `engine.sched.state`).
- It writes the ledger for the runs it executes (launches, ends, progress); a Ray job never does,
  and a local worker only records its own result.
- On start, what an earlier scheduler left is adopted: live executions are followed, ended ones
  recorded, and runs whose execution is lost are marked interrupted and requeued once (a run that
  was requeued already stays interrupted).
- A worker killed by a signal the scheduler did not send (the OOM killer, a person) lost its run:
  interrupted and requeued once, as after a crash. One that exits without a result failed it.
- SIGTERM: launch nothing more, let running runs finish, exit. SIGUSR1 (`sched stop --now`): stop
  the executions, mark their runs interrupted and requeue them, exit. SIGHUP is ignored.
- Each tick also runs its duties: the autopilots (`engine.sched.autopilot_duty`) and the lab's
  hooks (`engine.sched.hooks`: on_fail and on_promote as runs end), neither of which may block it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import sys
import time
from itertools import count
from pathlib import Path
from types import FrameType
from typing import Any

from engine.sched.autopilot_duty import AutopilotDuty
from engine.sched.backend import Backend, Execution, LaunchError, Published
from engine.sched.hooks import HookRunner, run_env
from engine.sched.local import LocalBackend
from engine.sched.pool import LOG_NAME, alive, append_log, log_tail, remove_partial
from engine.sched.ray_backend import RayBackend
from engine.sched.state import (
    SchedulerError,
    SchedulerRunning,
    SchedulerState,
    acquire_lock,
    spawn,
    write_state,
)
from ledger import Lab, Ledger, LedgerError, RunRecord, RunStatus
from ledger.errors import UserError
from ledger.scheduler_settings import SchedulerSettings

__all__ = ["Scheduler", "SchedulerError", "SchedulerRunning", "main", "make_backend"]

POLL_SECONDS = 0.25
PROGRESS_INTERVAL = 0.25  # at most one progress write per interval, all runs together
TIMEOUT_GRACE = 15.0  # the worker's own alarm fires at run.timeout; this backstop a little later
MAX_REQUEUES = 1
RETRY_LAUNCH = 5.0  # seconds before launching again when the backend could not (a cluster out of reach)
STOP_WAIT = 10.0  # seconds `stop --now` waits for each stopped execution to be over


def make_backend(lab: Lab, settings: SchedulerSettings, gpus: tuple[str, ...] | None = None) -> Backend:
    """The backend the settings name: worker processes here (pinned to `gpus`), or a Ray cluster."""
    return RayBackend(lab, settings) if settings.backend == "ray" else LocalBackend(lab, gpus)


class Scheduler:
    """Runs a lab's queue: at most `slots` runs at a time, in launch order, unless paused."""

    def __init__(
        self, lab: Lab, slots: int | None = None, gpus: tuple[str, ...] | None = None, backend: Backend | None = None
    ) -> None:
        self.lab = lab
        self.ledger = Ledger(lab)
        self.backend = backend or make_backend(lab, lab.scheduler_settings(), gpus)
        self._slots_asked = slots
        self.slots = slots or 1  # until `serve` has asked the backend for its default
        self.timeout_grace = TIMEOUT_GRACE
        self.workers: dict[str, Execution] = {}
        self.started = time.time()
        self._stop: str | None = None  # "graceful" or "now"
        self._announced: str | None = None
        self._state = "starting"
        self._published = Published()
        self._revision: Any = None
        self._launch_due = True
        self._launch_after = 0.0
        self._launch_trouble = ""
        self._paused_said = False
        self._last_progress = 0.0
        self._lock_fd: int | None = None
        self._last_error = ""
        self.hooks = HookRunner(lab, self.say)
        self.autopilot = AutopilotDuty(lab, self.ledger, self.slots, self.hooks, self.say)

    # Life cycle.

    def serve(self) -> int:
        """Take the lab's lock, reach the backend, recover, and run the queue until stopped; returns the exit status."""
        self._lock_fd = acquire_lock(self.lab)
        try:
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
            signal.signal(signal.SIGUSR1, self._on_signal)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            self._write("starting")
            self.backend.open(self.say)
            self.slots = self._slots_asked or self.backend.default_slots()
            self.autopilot.slots = self.slots  # its default parallelism is the slots the backend gives
            self._published = self.backend.published(())
            where = self.backend.describe()
            self.say(f"started for lab {self.lab.root}: pid {os.getpid()}, {self.slots} slot(s), {where}")
            self.recover()
            self._write("running")  # clients waiting in control.start return now, recovery done
            self.loop()
        finally:
            self.hooks.close()
            self._write("stopped", stopped=time.time())
            self.say("stopped")
            if self._lock_fd is not None:
                os.close(self._lock_fd)
        return 0

    def _write(self, state: str, stopped: float | None = None) -> None:
        self._state = state
        news = self._published
        record = SchedulerState(
            os.getpid(),
            self.slots,
            news.gpus,
            self.started,
            state,
            socket.gethostname(),
            stopped,
            backend=news.backend,
            address=news.address,
            resources={k: list(v) for k, v in news.resources.items()},
            jobs={k: dict(v) for k, v in news.jobs.items()},
        )
        with contextlib.suppress(OSError):
            write_state(self.lab, record)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Only flags here: the loop acts on them between ticks.
        if signum == signal.SIGUSR1 or (signum == signal.SIGINT and self._stop == "graceful"):
            self._stop = "now"
        elif self._stop is None:
            self._stop = "graceful"

    def say(self, message: str) -> None:
        """A line in the scheduler's own log (its stdout)."""
        with contextlib.suppress(OSError, ValueError):
            print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}", flush=True)

    def loop(self) -> None:
        """Tick until stopped; an idle tick costs a few stat calls."""
        while True:
            if not self.lab.config_path.exists():
                self.say(f"the lab {self.lab.root} is gone: stopping")
                self._stop = "now"
            self._announce_stop()
            if self._stop == "now":
                self.stop_now()
                return
            try:
                self.tick()
            except (UserError, OSError) as exc:
                # A damaged or locked ledger, a full disk, a cluster out of reach: say so once, and
                # keep the executions followed.
                if str(exc) != self._last_error:
                    self.say(f"error: {exc}")
                self._last_error = str(exc)
            else:
                self._last_error = ""
            if self._stop == "graceful" and not self.workers:
                self._announce_stop()  # a signal taken during the tick
                return
            time.sleep(POLL_SECONDS)

    def _announce_stop(self) -> None:
        # Once for each way of stopping asked for: in the state file and in the log.
        if self._stop != self._announced:
            self._announced = self._stop
            self._write("stopping")
            self.say(f"stopping ({self._stop}): {len(self.workers)} run(s) running")

    def tick(self) -> None:
        """One pass over the scheduler's duties, in this order; another periodic duty is one more line here."""
        self._follow()  # take in what the executions reported; record the ended ones
        self._enforce_timeouts()
        self._watch_ledger()  # queue changes: cancels to carry out, a launch round due
        self._launch_ready()
        self._flush_progress()
        self._publish()  # the backend's news (job states, cluster resources) into state.json
        self.autopilot.tick(stopping=self._stop is not None)
        self.hooks.poll()

    # Recovery.

    def recover(self) -> None:
        """Adopt what an earlier scheduler left: executions of running runs (live or ended), executions
        started for queued runs just before it died; interrupt and requeue (once) the runs that lost theirs.

        A run without a slot was started in a terminal (`comma-tui run`), not by a scheduler: it
        is left alone while its process lives, or when it recorded no pid to check.
        """
        for record in self.ledger.running():
            if record.slot is None and (record.pid is None or alive(record.pid)):
                self.say(f"{record.id}: running in the foreground (pid {record.pid or 'unknown'}): left alone")
                continue
            found = self.backend.adopt(record)
            if isinstance(found, str) or found is None:
                self._interrupt(record, found or "interrupted: its execution was gone")
                continue
            self.workers[record.id] = found
            self.say(f"{record.id}: adopted {found.where}")
            found.follow()
            if found.ended():
                self._finish(found)  # it finished while no scheduler ran: recorded before clients see "running"
        for record in self.ledger.records(self.ledger.queued()):
            found = self.backend.adopt(record)
            if found is None or isinstance(found, str):
                continue
            found.slot = self._free_slot(any_free=True)
            self.ledger.update(record.id, status="running", slot=found.slot)
            self.workers[record.id] = found
            self.say(f"{record.id}: adopted {found.where}, started before the last scheduler could mark it running")
        self.backend.sweep(self.workers.values())

    def _interrupt(self, record: RunRecord, reason: str, always_requeue: bool = False) -> None:
        run_dir = Path(record.artifacts or self.lab.run_dir(record.id))
        ended = self.ledger.record_failure(record.id, reason, log_tail(run_dir / LOG_NAME), status="interrupted")
        shutil.rmtree(run_dir / "work", ignore_errors=True)
        if ended.status != "interrupted":
            return
        if always_requeue or ended.requeued < MAX_REQUEUES:
            self.ledger.requeue(ended.id)
            self.say(f"{ended.id}: {reason}; requeued")
        else:
            self.say(f"{ended.id}: {reason}; requeued once already, so left interrupted (retry it by hand)")

    # Launching.

    def _free_slot(self, any_free: bool = False) -> int | None:
        if len(self.workers) >= self.slots and not any_free:
            return None
        used = {w.slot for w in self.workers.values()}
        return next(i for i in count() if i not in used)

    def _watch_ledger(self) -> None:
        revision = self.ledger.revision()
        if revision == self._revision:
            return
        self._launch_due = True
        self._kill_cancelled()  # a backend out of reach raises here: the change is looked at again next tick
        self._revision = revision

    def _launch_ready(self) -> None:
        if not self._launch_due or self._stop is not None or time.monotonic() < self._launch_after:
            return
        self._launch_due = False
        queued = [r for r in self.ledger.queued() if r.id not in self.workers]
        if not queued or self._free_slot() is None:
            return
        if self.ledger.paused():
            if not self._paused_said:
                self.say(f"queue paused: {len(queued)} queued run(s) wait for comma-tui queue resume")
                self._paused_said = True
            return
        self._paused_said = False
        for record in queued:
            slot = self._free_slot()
            if slot is None:
                break
            try:
                execution = self.backend.launch(self.ledger, self.ledger.get(record.id), slot)
            except LaunchError as exc:
                if str(exc) != self._launch_trouble:
                    self.say(f"{record.id}: {exc}")
                self._launch_trouble = str(exc)
                if exc.retry_later:  # nothing can start now: the run stays queued, and we try again soon
                    self._launch_due, self._launch_after = True, time.monotonic() + RETRY_LAUNCH
                    break
                continue
            self._launch_trouble = ""
            self.workers[record.id] = execution
            self.say(f"{record.id}: launched {execution.where}")

    # Following.

    def _follow(self) -> None:
        self.backend.poll(self.workers.values())
        for execution in list(self.workers.values()):
            execution.follow()
            if execution.ended():
                self._finish(execution)

    def _flush_progress(self) -> None:
        now = time.monotonic()
        if now - self._last_progress < PROGRESS_INTERVAL:
            return
        pending = [w for w in self.workers.values() if w.progress is not None and not w.killed]
        if not pending:
            return
        worker = min(pending, key=lambda w: w.written)  # the stalest run goes first
        event, worker.progress = worker.progress, None
        assert event is not None
        with contextlib.suppress(LedgerError, ValueError, TypeError):
            if self.ledger.get(worker.run_id).status != "running":
                return  # it ended (its progress was cleared): a late event must not bring it back
            eta, metrics = event.get("eta"), event.get("metrics")
            self.ledger.set_progress(
                worker.run_id,
                str(event["stage"]),
                int(event["done"]),
                int(event["total"]),
                float(event.get("elapsed") or 0.0),
                None if eta is None else float(eta),
                str(event.get("detail") or ""),
                metrics if isinstance(metrics, dict) else None,
            )
        worker.written = self._last_progress = now

    def _publish(self) -> None:
        news = self.backend.published(self.workers.values())
        if news != self._published:
            self._published = news
            self._write(self._state)

    # Ending.

    def _finish(self, execution: Execution) -> None:
        execution.follow(final=True)
        ending = execution.settle(self.ledger)  # a ledger that refuses raises: the execution is kept, tried again
        del self.workers[execution.run_id]
        self._launch_due = True
        try:
            record = self.ledger.get(execution.run_id)
        except LedgerError:
            return
        log = execution.run_dir / LOG_NAME
        if record.status == RunStatus.RUNNING and not ending.lost:
            append_log(log, [f"scheduler: {ending.reason}"])
            record = self.ledger.record_failure(record.id, ending.reason, log_tail(log))
        elif record.status in (RunStatus.RUNNING, RunStatus.INTERRUPTED):
            self._interrupt(record, ending.reason if ending.lost else record.failure_reason or "interrupted")
            record = self.ledger.get(record.id)
        if record.status == RunStatus.CANCELLED:
            remove_partial(Path(record.artifacts))
        elif record.status in (RunStatus.FAILED, RunStatus.INTERRUPTED, RunStatus.QUEUED):
            shutil.rmtree(execution.run_dir / "work", ignore_errors=True)  # a full-size .raw is gigabytes
        self.ledger.clear_progress(record.id)
        execution.forget()
        self.say(f"{record.id}: {ending.text}; the run is {record.status}")
        if record.status == RunStatus.FAILED:
            self.hooks.fire("on_fail", run_env(record))
        elif record.verdict == "promoted":
            self.hooks.fire("on_promote", run_env(record))

    def _kill_cancelled(self) -> None:
        for execution in list(self.workers.values()):
            with contextlib.suppress(LedgerError):
                if not execution.killed and self.ledger.get(execution.run_id).status == RunStatus.CANCELLED:
                    execution.kill()

    def _enforce_timeouts(self) -> None:
        now = time.time()
        for execution in list(self.workers.values()):
            if execution.killed or not execution.timeout:
                continue
            if now - execution.started <= execution.timeout + self.timeout_grace:
                continue
            reason = f"went past its run.timeout of {execution.timeout} s and was stopped by the scheduler"
            log = execution.run_dir / LOG_NAME
            append_log(log, [f"scheduler: {reason}"])
            self.ledger.record_failure(execution.run_id, reason, log_tail(log))
            execution.kill()

    def stop_now(self) -> None:
        """Stop every execution, mark its run interrupted and requeue it."""
        reason = "interrupted by comma-tui sched stop --now"
        for execution in list(self.workers.values()):
            log = execution.run_dir / LOG_NAME
            append_log(log, [f"scheduler: {reason}"])
            with contextlib.suppress(LedgerError):
                record = self.ledger.get(execution.run_id)
                if record.status == "running":
                    self.ledger.record_failure(record.id, reason, log_tail(log), status="interrupted")
            try:
                execution.kill()
            except UserError as exc:
                self.say(f"{execution.run_id}: could not stop {execution.where}: {exc}")
            execution.wait(STOP_WAIT)
            with contextlib.suppress(LedgerError):
                record = self.ledger.get(execution.run_id)
                if record.status == "interrupted":
                    self._interrupt(record, reason, always_requeue=True)
                self.ledger.clear_progress(record.id)
            execution.forget()
            del self.workers[execution.run_id]


def main(argv: list[str] | None = None) -> int:
    """`python -m engine.sched.scheduler --lab DIR [--slots N] [--backend B] [--ray-address URL] [--spawn]`."""
    parser = argparse.ArgumentParser(description="Run a comma-tui lab's queue.")
    parser.add_argument("--lab", required=True, help="the lab folder")
    parser.add_argument(
        "--slots", type=int, help="runs at a time (default: one per GPU, else 1; on Ray from the cluster)"
    )
    parser.add_argument("--backend", help="local or ray (default: lab.toml's [scheduler] backend)")
    parser.add_argument("--ray-address", help="the Ray dashboard, http://HOST:PORT (default: lab.toml's)")
    parser.add_argument("--spawn", action="store_true", help="start detached, print its pid, and return")
    args = parser.parse_args(argv)
    try:
        lab = Lab.open(args.lab)
        if args.slots is not None and args.slots < 1:
            raise SchedulerError(f"--slots {args.slots} must be at least 1")
        settings = lab.scheduler_settings().overridden(args.backend, args.ray_address)
        if args.spawn:
            print(spawn(lab, args.slots, args.backend, args.ray_address), flush=True)
            return 0
        return Scheduler(lab, args.slots, backend=make_backend(lab, settings)).serve()
    except UserError as exc:
        print(f"scheduler: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
