"""Execute one recorded run: the engine's single door into the ledger.

`comma-tui run` and the scheduler's worker processes both come here. The run's record says what
to do (its spec); the result, or the reason it failed, goes back with one ledger call.
Progress goes to a sink (a terminal bar, or JSON lines for the pool) and the log to the run's
`log.txt`.

Run as `python -m engine.sched.worker --lab DIR --run ID` it is a pool worker: it lowers its own
CPU priority (and on a small machine its torch threads) so the console stays responsive, prints
JSON-lines progress on stdout, and exits 0 when the run is done, 1 when it failed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import FrameType

from engine.runs.pipeline import run_spec
from engine.runs.progress import Sink, json_lines_sink
from engine.runs.spec import RunSpec, lab_source, parse_spec
from engine.runs.submission import OFFICIAL_TIMEOUT, score_submission
from engine.sched.pool import LOG_NAME
from ledger import Lab, Ledger, RunRecord, RunResult
from ledger.errors import UserError, machine_fault

_LOG_TAIL_LINES = 20
WORKER_NICE = 10  # added to the scheduler's niceness: the console and shells come first
FEW_CORES = 4  # up to this many cores, a worker leaves one free for the console


class RunTimeout(UserError):
    """The run went past its spec's run.timeout."""


@contextlib.contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    """Raise RunTimeout after `seconds` (0 = never); only the main thread can take the alarm."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(_signum: int, _frame: FrameType | None) -> None:
        raise RunTimeout(f"run went past its run.timeout of {seconds} s and was stopped")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


class RunLog:
    """Appends timestamped lines to the run's log.txt and remembers the last few.

    The log never stops a run: on a full disk or a vanished folder the line is kept in memory,
    and the run fails where its real work fails, with the reason.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tail: list[str] = []

    def __call__(self, line: str) -> None:
        stamped = f"{time.strftime('%H:%M:%S')} {line}"
        self._tail = [*self._tail, stamped][-_LOG_TAIL_LINES:]
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as f:
                f.write(stamped + "\n")

    def tail(self) -> str:
        """The last lines of the whole file (it may hold worker output too)."""
        try:
            return "\n".join(self.path.read_text(errors="replace").splitlines()[-_LOG_TAIL_LINES:])
        except OSError:
            return "\n".join(self._tail)


def _execute(
    spec: RunSpec, run_dir: Path, sink: Sink | None, log: RunLog, keep_raw: bool, cache_dir: Path
) -> RunResult:
    if spec.run.submission:
        timeout = spec.run.timeout or OFFICIAL_TIMEOUT
        submission = Path(spec.run.submission)
        return score_submission(submission, spec, run_dir, sink, log, timeout=timeout, cache_dir=cache_dir)
    return run_spec(spec, run_dir, sink, log, keep_raw, cache_dir=cache_dir)


def _record_bug(ledger: Ledger, run_id: str, log: RunLog, exc: Exception) -> None:
    log(f"internal error: {exc!r}")
    ledger.record_failure(run_id, f"internal error: {exc!r} (a bug: see the log)", log.tail())


def execute_run(ledger: Ledger, run_id: str, sink: Sink | None = None, keep_raw: bool = False) -> RunRecord:
    """Run a recorded run and record how it ended; user errors come back as a failed record."""
    record = ledger.get(run_id)
    # Recording our pid lets a scheduler tell a live foreground run from one whose process died.
    if record.status != "running":
        record = ledger.update(record.id, status="running", started=time.time(), pid=os.getpid())
    elif record.pid is None:
        record = ledger.update(record.id, pid=os.getpid())
    run_dir = Path(record.artifacts)
    log = RunLog(run_dir / LOG_NAME)
    try:
        spec = parse_spec(record.spec, lab_source(ledger.lab))
        with _deadline(spec.run.timeout if not spec.run.submission else 0):
            result = _execute(spec, run_dir, sink, log, keep_raw, ledger.lab.cache_dir)
    except UserError as exc:
        log(f"failed: {exc}")
        return ledger.record_failure(record.id, str(exc), log.tail())
    except OSError as exc:
        fault = machine_fault(exc, run_dir)
        if fault is None:
            _record_bug(ledger, record.id, log, exc)
            raise
        log(f"failed: {fault}")
        return ledger.record_failure(record.id, str(fault), log.tail())
    except KeyboardInterrupt:
        log("interrupted")
        ledger.record_failure(record.id, "interrupted by the user", log.tail(), status="interrupted")
        raise
    except Exception as exc:
        _record_bug(ledger, record.id, log, exc)
        raise
    done = ledger.record_result(record.id, replace(result, log_tail=log.tail()))
    log(f"verdict: {done.verdict} ({done.verdict_reason})")
    return done


def worker_threads(cores: int) -> int | None:
    """Torch threads for a worker on a machine with `cores` cores: one fewer on a small machine (None: torch's own)."""
    return max(1, cores - 1) if cores <= FEW_CORES else None


def yield_to_people() -> None:
    """Make this worker give way to the person at the console: a lower CPU priority, and a free core on a small box.

    A run keeps every core busy for minutes; at the same priority the console's keys wait
    behind it for seconds. Children (encoders, inflate.sh) inherit the priority.
    """
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICE)
    threads = worker_threads(os.cpu_count() or 1)
    if threads is not None:
        import torch  # the worker scores with it anyway

        torch.set_num_threads(threads)


def main(argv: list[str] | None = None) -> int:
    """Pool worker entry point: `python -m engine.sched.worker --lab DIR --run ID`."""
    parser = argparse.ArgumentParser(description="Execute one queued comma-tui run.")
    parser.add_argument("--lab", required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--keep-raw", action="store_true")
    args = parser.parse_args(argv)
    yield_to_people()
    try:
        ledger = Ledger(Lab(args.lab))
        record = execute_run(ledger, args.run, json_lines_sink(sys.stdout), args.keep_raw)
    except UserError as exc:
        print(f"worker: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        fault = machine_fault(exc)
        if fault is None:
            raise
        print(f"worker: {fault}", file=sys.stderr)
        return fault.exit_code
    return 0 if record.status == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
