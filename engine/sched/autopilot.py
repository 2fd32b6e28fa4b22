"""The autopilot's files and its client: start, stop and status, for the CLI and the console.

    <lab>/autopilot/<track>/search.toml   the search file it was started with
    <lab>/autopilot/<track>/state.json    running/stopped/done, budget, counts, best (the duty writes it)
    <lab>/autopilot/<track>/journal.log   the Optuna study (see `engine.sched.study`)
    <lab>/autopilot/<track>/stop          asks the scheduler's duty to stop it

The loop itself is a duty of the scheduler process (`engine.sched.autopilot_duty`): starting an
autopilot writes these files and makes sure the lab's scheduler runs. This module imports no
Optuna, so that a status line stays cheap.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from engine.sched.search import Search, load_search, parse_search, read_search_file
from ledger import Lab, Ledger
from ledger.errors import UserError
from ledger.files import atomic_write

ACTIVE = ("running", "stopping")


class AutopilotRunning(UserError):
    """A second autopilot on a track that has one running; the message gives the running one's status."""


@dataclass(frozen=True)
class AutopilotState:
    """What `state.json` says about one track's autopilot."""

    track: str
    state: str  # running, stopping, stopped, done, failed
    study: str
    base: str
    budget: int
    started: float
    proposed: int = 0  # runs queued by it
    finished: int = 0  # of those, ended (told to the study)
    best: float | None = None
    best_run: str = ""
    reason: str = ""
    updated: float = 0.0

    @property
    def active(self) -> bool:
        """Whether it still proposes or waits for its proposals."""
        return self.state in ACTIVE

    def line(self) -> str:
        """The status line: `autopilot 7/40 · best 1.731 (r0123)`."""
        best = "" if self.best is None else f" · best {self.best:.3f} ({self.best_run})"
        tail = "" if self.active else f" · {self.state}"
        return f"autopilot {self.finished}/{self.budget}{best}{tail}"


def folder(lab: Lab, track: str) -> Path:
    """The folder of `track`'s autopilot (the track's name made safe for a file name)."""
    return lab.root / "autopilot" / re.sub(r"[^A-Za-z0-9_.-]", "_", track)


def read_state(lab: Lab, track: str) -> AutopilotState | None:
    """The track's autopilot state, or None when it never had one (or its file is unreadable)."""
    return _read_path(folder(lab, track) / "state.json")


def write_state(lab: Lab, state: AutopilotState) -> None:
    """Replace the track's state file whole."""
    where = folder(lab, state.track)
    where.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(asdict(replace(state, updated=time.time())), indent=1).encode()
    atomic_write(where / "state.json", payload)


def states(lab: Lab) -> list[AutopilotState]:
    """Every track's autopilot state, active ones first."""
    root = lab.root / "autopilot"
    found = [_read_path(path) for path in sorted(root.glob("*/state.json"))]
    return sorted((s for s in found if s is not None), key=lambda s: (not s.active, s.track))


def _read_path(path: Path) -> AutopilotState | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return AutopilotState(**data)
    except (OSError, ValueError, TypeError):
        return None


def load(lab: Lab, ledger: Ledger, state: AutopilotState) -> Search:
    """The search an autopilot was started with, validated again (the duty calls this on every start).

    Its base stays the run it started from, though the floor has moved since: the space is the same.
    """
    data = read_search_file(folder(lab, state.track) / "search.toml")
    return parse_search({**data, "base": state.base}, ledger, state.budget)


def start(lab: Lab, path: str | Path, budget: int | None = None) -> AutopilotState:
    """Validate the search file and start its autopilot (the scheduler's duty picks it up).

    Raises SearchError for a bad file and AutopilotRunning when the track has one running.
    """
    ledger = Ledger(lab)
    search = load_search(path, ledger, budget)
    running = read_state(lab, search.track)
    if running is not None and running.active:
        raise AutopilotRunning(
            f"an autopilot already runs on track {search.track!r} ({running.line()}, started "
            f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(running.started))}): "
            f"stop it first with comma-tui autopilot stop --track {search.track}"
        )
    where = folder(lab, search.track)
    where.mkdir(parents=True, exist_ok=True)
    (where / "search.toml").write_text(Path(path).read_text())
    (where / "stop").unlink(missing_ok=True)
    now = time.time()
    name = f"{search.track}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}"
    state = AutopilotState(search.track, "running", name, search.base, search.budget, now)
    write_state(lab, state)
    return state


def stop(lab: Lab, track: str) -> AutopilotState:
    """Ask the track's autopilot to stop: it queues nothing more and cancels its queued proposals."""
    state = read_state(lab, track)
    if state is None or not state.active:
        said = "never had one" if state is None else f"has none running ({state.line()})"
        raise UserError(f"track {track!r} {said}: start one with comma-tui autopilot start search.toml")
    (folder(lab, track) / "stop").touch()
    if state.state == "running":
        state = replace(state, state="stopping", reason="stop asked")
        write_state(lab, state)
    return state


def stop_requested(lab: Lab, track: str) -> bool:
    """Whether `autopilot stop` asked the track's autopilot to stop."""
    return (folder(lab, track) / "stop").exists()
