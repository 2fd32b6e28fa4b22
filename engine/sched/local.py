"""The local backend: each run is a worker process on this machine, pinned to its slot's GPU.

- Each run is `python -m engine.sched.worker --lab LAB --run ID` in a session (process group) of its
  own, tagged so that all of its processes can be killed (see `engine.sched.pool`), and pinned to its
  slot's GPU with CUDA_VISIBLE_DEVICES.
- Worker stdout goes to `runs/<id>/worker.out`, which the scheduler tails; stderr goes straight to
  the run's `log.txt`. Not pipes: a pipe dies with the scheduler and kills the worker at its next
  progress line, while a file lets the worker finish its run and the next scheduler adopt it.
- The worker records its own result in the ledger; the scheduler records only how a worker that
  left no result ended.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from engine.sched.backend import Execution, LaunchError, Published, Say
from engine.sched.pool import (
    LOG_NAME,
    OUTPUT_NAME,
    TAG_VAR,
    Worker,
    append_log,
    child_env,
    is_run_process,
    kill_run,
    log_tail,
    python_command,
    run_tag,
    visible_gpus,
)
from engine.sched.state import slot_gpu
from ledger import Lab, Ledger, LedgerError, RunRecord, RunStatus


class LocalBackend:
    """Worker processes on this machine; slots take the visible GPUs in turn."""

    name = "local"

    def __init__(self, lab: Lab, gpus: tuple[str, ...] | None = None) -> None:
        self.lab = lab
        self.gpus = visible_gpus() if gpus is None else tuple(gpus)

    def open(self, say: Say) -> None:
        """Nothing to check: this machine runs the workers."""

    def default_slots(self) -> int:
        """One run per visible GPU, else one."""
        return max(1, len(self.gpus))

    def describe(self) -> str:
        """The GPUs the slots take."""
        return f"GPUs {', '.join(self.gpus) or 'none'}"

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
            tag=run_tag(self.lab.root, record.id),
        )

    def launch(self, ledger: Ledger, record: RunRecord, slot: int) -> Worker:
        """Mark the run running on `slot`, then start its worker process."""
        try:
            # Marked running (with its slot) before the process exists: if we die in between, the
            # next scheduler sees a slot without a live pid and requeues the run.
            record = ledger.update(record.id, status="running", slot=slot)
        except LedgerError as exc:
            raise LaunchError(f"not launched ({exc})") from None
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
            ledger.record_failure(record.id, reason, log_tail(run_dir / LOG_NAME))
            raise LaunchError(reason) from None
        worker = self._worker(record, proc.pid, proc)
        with contextlib.suppress(LedgerError):
            if ledger.get(record.id).status == "running":
                ledger.update(record.id, pid=proc.pid)
        return worker

    def adopt(self, record: RunRecord) -> Worker | str | None:
        """The run's worker if it still lives; else its stragglers are killed and the run is lost.

        A queued run has no worker: a worker starts only after its run is marked running.
        """
        if record.status != RunStatus.RUNNING:
            return None
        tag = run_tag(self.lab.root, record.id)
        if is_run_process(record.pid, tag):
            assert record.pid is not None
            worker = self._worker(record, record.pid, None)
            with contextlib.suppress(OSError):
                worker.offset = worker.output.stat().st_size  # earlier lines went to the log already
            return worker
        kill_run(tag)  # stragglers of the dead worker, such as a submission's inflate.sh
        return (
            f"interrupted: its worker (pid {record.pid}) was gone when the scheduler started again "
            "(the scheduler or the machine stopped while it ran)"
        )

    def sweep(self, executions: Iterable[Execution]) -> None:
        """Nothing to sweep: a worker of no running run was killed by `adopt`."""

    def poll(self, executions: Iterable[Execution]) -> None:
        """Nothing to refresh: a worker's state is its process's."""

    def published(self, executions: Iterable[Execution]) -> Published:
        """The GPUs the slots take."""
        return Published("local", gpus=self.gpus)
