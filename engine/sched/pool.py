"""The worker pool's processes: follow a worker, tell whether a pid lives, kill all of a run.

Every process of a run carries `COMMA_TUI_RUN=<lab>::<run>` in its environment (the scheduler
sets it on the worker; children inherit it). Killing a run kills the worker's process group and
every process with the tag: a submission's inflate.sh runs in a session of its own, so a
process-group kill alone would leave it running. Finding tagged processes needs `/proc` (Linux);
elsewhere only the worker's group is killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.runs.codec import CHECKPOINT_NAME
from engine.sched.backend import Ending
from ledger import Ledger
from ledger.artifacts import CURVE_NAME

TAG_VAR = "COMMA_TUI_RUN"
LOG_NAME = "log.txt"  # each run's log, in its run folder
OUTPUT_NAME = "worker.out"
_MAX_LINE = 64 * 1024
KILL_GRACE = 3.0
_PROC = Path("/proc")
ENGINE_ROOT = str(Path(__file__).resolve().parents[2])  # the folder that holds this engine (for PYTHONPATH)
_EXIT_HINTS = {
    "SIGKILL": "out of memory, or killed by hand",
    "SIGSEGV": "a crash in native code",
    "SIGABRT": "a crash in native code",
    "SIGBUS": "a crash in native code",
    "SIGTERM": "stopped from outside",
}


def alive(pid: int | None) -> bool:
    """Whether process `pid` exists and is not a zombie (a dead child nobody has reaped yet)."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, but it exists
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return True  # no /proc here (or it just ended): trust kill(pid, 0)
    return stat.rsplit(")", 1)[-1].split()[:1] not in (["Z"], ["X"])


def run_tag(lab_root: Path | str, run_id: str) -> str:
    """The environment tag of a run's processes."""
    return f"{lab_root}::{run_id}"


def _has_tag(pid: int, tag: str) -> bool:
    try:
        environ = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return False
    # NUL-separated KEY=VALUE items; prepend a NUL so the first item matches like the others
    return f"\0{TAG_VAR}={tag}\0".encode() in b"\0" + environ


def tagged_pids(tag: str) -> list[int]:
    """Live processes whose environment carries `tag` (empty where there is no /proc)."""
    try:
        names = [e.name for e in _PROC.iterdir()] if _PROC.is_dir() else []
    except OSError:
        names = []
    me = os.getpid()
    return sorted(int(n) for n in names if n.isdigit() and int(n) != me and _has_tag(int(n), tag) and alive(int(n)))


def is_run_process(pid: int | None, tag: str) -> bool:
    """Whether `pid` is alive and is a process of the tagged run (where /proc can tell)."""
    if not alive(pid):
        return False
    assert pid is not None
    if not _PROC.is_dir():
        return True
    return _has_tag(pid, tag)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _signal_all(pids: Iterable[int], groups: Iterable[int], sig: signal.Signals) -> None:
    for group in groups:
        with contextlib.suppress(OSError):  # it ended meanwhile
            os.killpg(group, sig)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, sig)


def kill_run(tag: str, pid: int | None = None, grace: float = KILL_GRACE) -> list[int]:
    """Kill every process of a run: SIGTERM, then SIGKILL after `grace` s; returns the pids it found.

    `pid` is the worker, when known; its group is killed only if it still belongs to the run
    (a recycled pid must never take an innocent process group down with it).
    """
    own = os.getpgrp()
    targets = set(tagged_pids(tag))
    if pid is not None and is_run_process(pid, tag):
        targets.add(pid)
    deadline = time.monotonic() + grace
    for sig in (signal.SIGTERM, signal.SIGKILL):
        groups = {g for g in map(_pgid, targets) if g is not None and g not in (own, 0, 1)}
        _signal_all(targets, groups, sig)
        while any(alive(p) for p in targets) and time.monotonic() < deadline:
            time.sleep(0.02)
        targets = {p for p in targets | set(tagged_pids(tag)) if alive(p)}
        if not targets:
            break
        deadline = time.monotonic() + grace
    return sorted(targets)


def visible_gpus(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The GPUs a worker may be pinned to: CUDA_VISIBLE_DEVICES if set, else what nvidia-smi lists."""
    env = os.environ if environ is None else environ
    if "CUDA_VISIBLE_DEVICES" in env:
        gpus = []
        for item in env["CUDA_VISIBLE_DEVICES"].split(","):
            item = item.strip()
            if not item or item.startswith("-"):
                break  # CUDA stops at the first invalid id; -1 hides every GPU
            gpus.append(item)
        return tuple(gpus)
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return ()
    if out.returncode != 0:
        return ()
    return tuple(line.strip() for line in out.stdout.splitlines() if line.strip().isdigit())


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our environment for a child Python, able to import this very engine wherever it runs from."""
    env = dict(os.environ)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([ENGINE_ROOT, *(p for p in paths if p != ENGINE_ROOT)])
    env.update(extra or {})
    return env


def python_command(module: str, *args: str) -> list[str]:
    """`python -m module args...` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def log_tail(path: Path, lines: int = 20) -> str:
    """The last `lines` lines of a log file ("" when there is none)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 32 * 1024))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def exit_text(pid: int, returncode: int | None) -> str:
    """How a worker ended: its exit status, or the signal that killed it (and what that suggests)."""
    if returncode is None:
        return f"worker (pid {pid}) ended; its exit status is unknown (it was adopted after a scheduler restart)"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        hint = _EXIT_HINTS.get(name)
        return f"worker (pid {pid}) was killed by {name}" + (f" ({hint})" if hint else "")
    return f"worker (pid {pid}) exited with status {returncode}"


def describe_exit(pid: int, returncode: int | None) -> str:
    """The failure reason of a worker that ended without recording a result."""
    text = exit_text(pid, returncode)
    return text if returncode is not None and returncode < 0 else f"{text} without recording a result"


def append_log(path: Path, lines: list[str]) -> None:
    """Append timestamped lines to a run's log, as the worker's own log lines look."""
    stamp = time.strftime("%H:%M:%S")
    with contextlib.suppress(OSError), open(path, "a") as f:
        f.writelines(f"{stamp} {line}\n" for line in lines)


def progress_event(text: str) -> dict[str, Any] | None:
    """A worker's JSON progress line as a dict, or None for any other line."""
    if not text.startswith("{"):
        return None
    try:
        event = json.loads(text)
    except ValueError:
        return None
    if isinstance(event, dict) and event.get("event") == "progress" and {"stage", "done", "total"} <= set(event):
        return event
    return None


@dataclass
class Worker:
    """One worker process of the pool, and what the scheduler follows of it (an `Execution`)."""

    run_id: str
    pid: int
    slot: int | None
    started: float  # wall-clock time the run started (for its timeout)
    timeout: int
    run_dir: Path
    proc: subprocess.Popen[bytes] | None = None  # None for a worker adopted from a previous scheduler
    tag: str = ""  # the run's process tag (see `run_tag`)
    offset: int = 0
    partial: bytes = b""
    progress: dict[str, Any] | None = None  # the latest progress event not yet written to the ledger
    written: float = 0.0
    killed: bool = False

    @property
    def where(self) -> str:
        """Which process, on which slot, for the scheduler's log."""
        return f"worker pid {self.pid} on slot {self.slot}"

    @property
    def output(self) -> Path:
        """The file the worker's stdout goes to."""
        return self.run_dir / OUTPUT_NAME

    @property
    def log(self) -> Path:
        """The run's log."""
        return self.run_dir / LOG_NAME

    def ended(self) -> bool:
        """Whether the process has ended (and, for our own child, been reaped)."""
        return self.proc.poll() is not None if self.proc is not None else not alive(self.pid)

    def follow(self, final: bool = False) -> None:
        """Read what the worker printed since last time: keep its latest progress, log the rest."""
        data = b""
        with contextlib.suppress(OSError):
            if self.output.stat().st_size > self.offset:
                with open(self.output, "rb") as f:
                    f.seek(self.offset)
                    data = f.read()
                self.offset += len(data)
        *lines, self.partial = (self.partial + data).split(b"\n")
        if final or len(self.partial) > _MAX_LINE:  # the last words, or a runaway line without newline
            lines.append(self.partial)
            self.partial = b""
        other = []
        for raw in lines:
            text = raw.decode(errors="replace").rstrip("\r")
            event = progress_event(text)
            if event is not None:
                self.progress = event
            elif text.strip():
                other.append(f"[stdout] {text}")
        if other:
            append_log(self.log, other)

    def kill(self) -> None:
        """Kill the worker and every process of its run."""
        self.killed = True
        kill_run(self.tag, self.pid)

    def wait(self, timeout: float) -> None:
        """Reap our own killed child (an adopted worker is not ours to wait for)."""
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=timeout)

    def settle(self, _ledger: Ledger) -> Ending:
        """Kill what the ended worker left behind; it recorded its own result, so only say how it exited.

        A worker killed by a signal the scheduler did not send (the OOM killer, a person, a crash in
        native code) lost its run rather than failed it: the run is requeued once, as after a crash,
        and a codec with a checkpoint resumes from it.
        """
        kill_run(self.tag)
        returncode = self.proc.returncode if self.proc is not None else None
        lost = returncode is not None and returncode < 0 and not self.killed
        return Ending(exit_text(self.pid, returncode), describe_exit(self.pid, returncode), lost=lost)

    def forget(self) -> None:
        """Remove the worker's stdout file."""
        self.output.unlink(missing_ok=True)


def remove_partial(run_dir: Path) -> None:
    """Delete what a cancelled run left in its folder, all but its log and a codec's checkpoint.

    The checkpoint stays so that a later run can start from it (`init_from`).
    """
    with contextlib.suppress(OSError):
        for child in list(run_dir.iterdir()):
            if child.name in (LOG_NAME, CHECKPOINT_NAME):
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)


def carry_checkpoint(parent_dir: Path, run_dir: Path) -> bool:
    """Give a retry its parent's checkpoint (and the curve up to it), so that it resumes where the parent stopped.

    A retry runs its parent's very spec, and a codec resumes only a checkpoint made under the same
    keys. Nothing is ever written over a file the new run made itself; returns whether a checkpoint came.
    """
    if not (parent_dir / CHECKPOINT_NAME).is_file():
        return False
    for name in (CURVE_NAME, CHECKPOINT_NAME):  # the checkpoint last: whoever sees it sees its curve too
        source, dest = parent_dir / name, run_dir / name
        temp = run_dir / f".{name}.carry"
        try:
            shutil.copyfile(source, temp)
            os.link(temp, dest)  # all at once, and never over a file that is there already
        except OSError:
            if name == CHECKPOINT_NAME:
                return False
        finally:
            temp.unlink(missing_ok=True)
    return True
