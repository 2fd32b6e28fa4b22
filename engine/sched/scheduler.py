"""The scheduler: one detached process per lab that runs its queue with a pool of worker processes.

    python -m engine.sched.scheduler --lab DIR [--slots N]           # in the foreground (tmux, systemd)
    python -m engine.sched.scheduler --lab DIR [--slots N] --spawn   # detached; prints its pid and returns

`engine.sched.control` is its client (start, stop, status, cancel...). Everything durable lives in the
ledger; the scheduler only knows which worker process runs which run, and rebuilds that on start.

How it stays up and cleans up:
- One per lab: `scheduler/lock` is flocked for the process's life and `scheduler/state.json` says
  pid, slots, GPUs and since when (see `engine.sched.state`).
- Each run is `python -m engine.sched.worker --lab LAB --run ID` in a session (process group) of its
  own, tagged so that all of its processes can be killed (see `engine.sched.pool`), and pinned to its
  slot's GPU with CUDA_VISIBLE_DEVICES.
- Worker stdout goes to `runs/<id>/worker.out`, which the scheduler tails; stderr goes straight to
  the run's `log.txt`. Not pipes: a pipe dies with the scheduler and kills the worker at its next
  progress line, while a file lets the worker finish its run and the next scheduler adopt it.
- On start, runs marked running whose worker still lives are adopted; those whose worker is gone
  are marked interrupted and requeued once (a run that was requeued already stays interrupted).
- SIGTERM: launch nothing more, let running runs finish, exit. SIGUSR1 (`sched stop --now`): kill
  the workers, mark their runs interrupted and requeue them, exit. SIGHUP is ignored.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from itertools import count
from pathlib import Path
from types import FrameType
from typing import Any

from engine.sched.pool import (
    LOG_NAME,
    OUTPUT_NAME,
    TAG_VAR,
    Worker,
    alive,
    append_log,
    child_env,
    describe_exit,
    exit_text,
    is_run_process,
    kill_run,
    log_tail,
    python_command,
    remove_partial,
    run_tag,
    visible_gpus,
)
from engine.sched.state import (
    SchedulerError,
    SchedulerRunning,
    SchedulerState,
    acquire_lock,
    slot_gpu,
    spawn,
    write_state,
)
from ledger import Lab, Ledger, LedgerError, RunRecord, RunSummary
from ledger.errors import UserError

__all__ = ["Scheduler", "SchedulerError", "SchedulerRunning", "main"]

POLL_SECONDS = 0.25
PROGRESS_INTERVAL = 0.25  # at most one progress write per interval, all runs together
TIMEOUT_GRACE = 15.0  # the worker's own alarm fires at run.timeout; this backstop a little later
MAX_REQUEUES = 1


class Scheduler:
    """Runs a lab's queue: at most `slots` workers at a time, in launch order, unless paused."""

    def __init__(self, lab: Lab, slots: int | None = None, gpus: tuple[str, ...] | None = None) -> None:
        self.lab = lab
        self.ledger = Ledger(lab)
        self.gpus = visible_gpus() if gpus is None else tuple(gpus)
        self.slots = slots or max(1, len(self.gpus))
        self.timeout_grace = TIMEOUT_GRACE
        self.workers: dict[str, Worker] = {}
        self.started = time.time()
        self._stop: str | None = None  # "graceful" or "now"
        self._announced: str | None = None
        self._revision: Any = None
        self._launch_due = True
        self._paused_said = False
        self._last_progress = 0.0
        self._lock_fd: int | None = None
        self._last_error = ""

    # Life cycle.

    def serve(self) -> int:
        """Take the lab's lock, recover, and run the queue until stopped; returns the exit status."""
        self._lock_fd = acquire_lock(self.lab)
        try:
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
            signal.signal(signal.SIGUSR1, self._on_signal)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            self._write("starting")
            gpus = ", ".join(self.gpus) or "none"
            self.say(f"started for lab {self.lab.root}: pid {os.getpid()}, {self.slots} slot(s), GPUs {gpus}")
            self.recover()
            self._write("running")  # clients waiting in control.start return now, recovery done
            self.loop()
        finally:
            self._write("stopped", stopped=time.time())
            self.say("stopped")
            if self._lock_fd is not None:
                os.close(self._lock_fd)
        return 0

    def _write(self, state: str, stopped: float | None = None) -> None:
        record = SchedulerState(os.getpid(), self.slots, self.gpus, self.started, state, socket.gethostname(), stopped)
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
            if self._stop != self._announced:
                self._announced = self._stop
                self._write("stopping")
                self.say(f"stopping ({self._stop}): {len(self.workers)} run(s) running")
            if self._stop == "now":
                self.stop_now()
                return
            try:
                self.tick()
            except (LedgerError, OSError) as exc:
                # A damaged or locked ledger, a full disk: say so once, and keep the workers followed.
                if str(exc) != self._last_error:
                    self.say(f"error: {exc}")
                self._last_error = str(exc)
            else:
                self._last_error = ""
            if self._stop == "graceful" and not self.workers:
                return
            time.sleep(POLL_SECONDS)

    def tick(self) -> None:
        """Follow the workers, reap the ended ones, enforce timeouts, launch what may start."""
        for worker in list(self.workers.values()):
            worker.follow()
            if worker.ended():
                self._finish(worker)
        self._enforce_timeouts()
        revision = self.ledger.revision()
        if revision != self._revision:
            self._revision = revision
            self._launch_due = True
            self._kill_cancelled()
        if self._launch_due and self._stop is None:
            self._launch_due = False
            self._launch_ready()
        self._flush_progress()

    # Recovery.

    def recover(self) -> None:
        """Adopt live workers of runs marked running; interrupt and requeue (once) the others.

        A run without a slot was started in a terminal (`comma-tui run`), not by a scheduler: it
        is left alone while its process lives, or when it recorded no pid to check.
        """
        for record in self.ledger.running():
            tag = run_tag(self.lab.root, record.id)
            if record.slot is None and (record.pid is None or alive(record.pid)):
                self.say(f"{record.id}: running in the foreground (pid {record.pid or 'unknown'}): left alone")
                continue
            if record.slot is not None and is_run_process(record.pid, tag):
                assert record.pid is not None
                worker = self._worker(record, record.pid, None)
                with contextlib.suppress(OSError):
                    worker.offset = worker.output.stat().st_size  # earlier lines went to the log already
                self.workers[record.id] = worker
                self.say(f"{record.id}: adopted its live worker (pid {record.pid}) on slot {record.slot}")
                continue
            kill_run(tag)  # stragglers of the dead worker, such as a submission's inflate.sh
            reason = (
                f"interrupted: its worker (pid {record.pid}) was gone when the scheduler started again "
                "(the scheduler or the machine stopped while it ran)"
            )
            self._interrupt(record, reason)

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

    def _free_slot(self) -> int | None:
        if len(self.workers) >= self.slots:
            return None
        used = {w.slot for w in self.workers.values()}
        return next(i for i in count() if i not in used)

    def _launch_ready(self) -> None:
        queued = self.ledger.queued()
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
            self._launch(record, slot)

    def _worker(self, record: RunRecord, pid: int, proc: subprocess.Popen[bytes] | None) -> Worker:
        meta = record.spec.get("run")
        timeout = meta.get("timeout", 0) if isinstance(meta, dict) else 0
        return Worker(
            run_id=record.id,
            pid=pid,
            slot=record.slot,
            started=record.started or time.time(),
            timeout=int(timeout or 0),
            run_dir=Path(record.artifacts or self.lab.run_dir(record.id)),
            proc=proc,
        )

    def _launch(self, queued: RunSummary, slot: int) -> None:
        try:
            # Marked running (with its slot) before the process exists: if we die in between, the
            # next scheduler sees a slot without a live pid and requeues the run.
            record = self.ledger.update(queued.id, status="running", slot=slot)
        except LedgerError as exc:
            self.say(f"{queued.id}: not launched ({exc})")
            return
        gpu = slot_gpu(self.gpus, slot)
        run_dir = Path(record.artifacts or self.lab.run_dir(record.id))
        run_dir.mkdir(parents=True, exist_ok=True)
        env = {TAG_VAR: run_tag(self.lab.root, record.id)} | ({} if gpu is None else {"CUDA_VISIBLE_DEVICES": gpu})
        append_log(run_dir / LOG_NAME, [f"scheduler: starting the worker on slot {slot}, GPU {gpu or 'none'}"])
        try:
            with open(run_dir / OUTPUT_NAME, "wb") as out, open(run_dir / LOG_NAME, "ab") as err:
                proc = subprocess.Popen(
                    python_command("engine.sched.worker", "--lab", str(self.lab.root), "--run", record.id),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    cwd=self.lab.root,
                    env=child_env(env),
                    start_new_session=True,
                )
        except OSError as exc:
            reason = f"the scheduler could not start a worker: {exc}"
            self.ledger.record_failure(record.id, reason, log_tail(run_dir / LOG_NAME))
            self.say(f"{record.id}: {reason}")
            return
        self.workers[record.id] = self._worker(record, proc.pid, proc)
        with contextlib.suppress(LedgerError):
            if self.ledger.get(record.id).status == "running":
                self.ledger.update(record.id, pid=proc.pid)
        self.say(f"{record.id}: launched worker pid {proc.pid} on slot {slot}, GPU {gpu or 'none'}")

    # Following.

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
            eta = event.get("eta")
            self.ledger.set_progress(
                worker.run_id,
                str(event["stage"]),
                int(event["done"]),
                int(event["total"]),
                float(event.get("elapsed") or 0.0),
                None if eta is None else float(eta),
            )
        worker.written = self._last_progress = now

    # Ending.

    def _finish(self, worker: Worker) -> None:
        worker.follow(final=True)
        del self.workers[worker.run_id]
        self._launch_due = True
        returncode = worker.proc.returncode if worker.proc is not None else None
        kill_run(run_tag(self.lab.root, worker.run_id))  # whatever it left behind
        try:
            record = self.ledger.get(worker.run_id)
        except LedgerError:
            return
        if record.status == "running":
            reason = describe_exit(worker.pid, returncode)
            append_log(worker.log, [f"scheduler: {reason}"])
            record = self.ledger.record_failure(record.id, reason, log_tail(worker.log))
        elif record.status == "interrupted":
            self._interrupt(record, record.failure_reason or "interrupted")
            record = self.ledger.get(record.id)
        if record.status == "cancelled":
            remove_partial(Path(record.artifacts))
        elif record.status in ("failed", "interrupted", "queued"):
            shutil.rmtree(worker.run_dir / "work", ignore_errors=True)  # a full-size .raw is gigabytes
        self.ledger.clear_progress(record.id)
        worker.output.unlink(missing_ok=True)
        self.say(f"{record.id}: {exit_text(worker.pid, returncode)}; the run is {record.status}")

    def _kill_cancelled(self) -> None:
        for worker in list(self.workers.values()):
            with contextlib.suppress(LedgerError):
                if not worker.killed and self.ledger.get(worker.run_id).status == "cancelled":
                    worker.killed = True
                    kill_run(run_tag(self.lab.root, worker.run_id), worker.pid)

    def _enforce_timeouts(self) -> None:
        now = time.time()
        for worker in list(self.workers.values()):
            if worker.killed or not worker.timeout or now - worker.started <= worker.timeout + self.timeout_grace:
                continue
            reason = f"went past its run.timeout of {worker.timeout} s and was stopped by the scheduler"
            append_log(worker.log, [f"scheduler: {reason}"])
            self.ledger.record_failure(worker.run_id, reason, log_tail(worker.log))
            worker.killed = True
            kill_run(run_tag(self.lab.root, worker.run_id), worker.pid)

    def stop_now(self) -> None:
        """Kill every worker, mark its run interrupted and requeue it."""
        for worker in list(self.workers.values()):
            worker.killed = True
            reason = "interrupted by comma-tui sched stop --now"
            append_log(worker.log, [f"scheduler: {reason}"])
            with contextlib.suppress(LedgerError):
                record = self.ledger.get(worker.run_id)
                if record.status == "running":
                    self.ledger.record_failure(record.id, reason, log_tail(worker.log), status="interrupted")
            kill_run(run_tag(self.lab.root, worker.run_id), worker.pid)
            if worker.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    worker.proc.wait(timeout=5)
            with contextlib.suppress(LedgerError):
                record = self.ledger.get(worker.run_id)
                if record.status == "interrupted":
                    self._interrupt(record, reason, always_requeue=True)
                self.ledger.clear_progress(record.id)
            worker.output.unlink(missing_ok=True)
            del self.workers[worker.run_id]


def main(argv: list[str] | None = None) -> int:
    """`python -m engine.sched.scheduler --lab DIR [--slots N] [--spawn]`."""
    parser = argparse.ArgumentParser(description="Run a comma-tui lab's queue with a pool of workers.")
    parser.add_argument("--lab", required=True, help="the lab folder")
    parser.add_argument("--slots", type=int, help="runs at a time (default: one per visible GPU, else 1)")
    parser.add_argument("--spawn", action="store_true", help="start detached, print its pid, and return")
    args = parser.parse_args(argv)
    try:
        lab = Lab.open(args.lab)
        if args.slots is not None and args.slots < 1:
            raise SchedulerError(f"--slots {args.slots} must be at least 1")
        if args.spawn:
            print(spawn(lab, args.slots), flush=True)
            return 0
        return Scheduler(lab, args.slots).serve()
    except UserError as exc:
        print(f"scheduler: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
