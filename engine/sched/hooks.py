"""Hooks: shell commands the scheduler runs when something worth a word happens at night.

    [hooks]                                   # in lab.toml
    on_promote = "notify-send \"$COMMA_TUI_LABEL\" \"$COMMA_TUI_SCORE\""
    on_fail = "curl -d \"$COMMA_TUI_RUN failed: $COMMA_TUI_REASON\" ntfy.sh/my-lab"
    on_autopilot_done = "echo done >> ~/lab-news.txt"
    timeout = 30                              # seconds a hook may take (default 30)

A hook runs in a shell, in a session of its own, with the run's id, track, label, score, bytes
and reason (and the event and lab) in `COMMA_TUI_*` environment variables. It never blocks the
queue: the scheduler starts it and looks at it again each tick; a hook that fails or outlasts its
time limit is killed and logged, and the queue goes on.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from engine.sched.pool import child_env
from ledger import Lab, LedgerError, RunRecord

EVENTS = ("on_promote", "on_fail", "on_autopilot_done")
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class Hooks:
    """The lab's hook commands by event, and how long each may run."""

    commands: Mapping[str, str] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT


def load_hooks(lab: Lab) -> tuple[Hooks, str]:
    """The `[hooks]` of lab.toml and a problem to log ("" when none): a bad table means no hooks."""
    try:
        table = lab.config().get("hooks", {})
    except LedgerError as exc:
        return Hooks(), str(exc)
    if not isinstance(table, Mapping):
        return Hooks(), "lab.toml [hooks] must be a table: hooks are off"
    unknown = sorted(set(table) - {*EVENTS, "timeout"})
    if unknown:
        return (
            Hooks(),
            f"lab.toml [hooks] has unknown key {unknown[0]!r} (use {', '.join(EVENTS)}, timeout): hooks are off",
        )
    timeout = table.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        return Hooks(), f"lab.toml [hooks] timeout = {timeout!r} must be a positive number of seconds: hooks are off"
    commands = {k: v for k, v in table.items() if k in EVENTS}
    bad = [k for k, v in commands.items() if not isinstance(v, str) or not v.strip()]
    if bad:
        return Hooks(), f"lab.toml [hooks] {bad[0]} must be a shell command (a string): hooks are off"
    return Hooks(commands, float(timeout)), ""


def run_env(record: RunRecord | None, reason: str = "") -> dict[str, str]:
    """The `COMMA_TUI_*` variables that describe a run to a hook."""
    if record is None:
        return {"COMMA_TUI_REASON": reason}
    score, size = record.score, record.total_bytes
    return {
        "COMMA_TUI_RUN": record.id,
        "COMMA_TUI_TRACK": record.track,
        "COMMA_TUI_LABEL": record.label,
        "COMMA_TUI_SCORE": "" if score is None else f"{score:.6f}",
        "COMMA_TUI_BYTES": "" if size is None else str(size),
        "COMMA_TUI_REASON": reason or record.failure_reason or record.verdict_reason,
    }


@dataclass
class _Running:
    event: str
    proc: subprocess.Popen[bytes]
    deadline: float


class HookRunner:
    """Starts hooks without waiting for them, then reaps, logs and (past their time) kills them."""

    def __init__(self, lab: Lab, say: Callable[[str], None]) -> None:
        self.lab = lab
        self.say = say
        self.hooks, problem = load_hooks(lab)
        if problem:
            say(problem)
        self.running: list[_Running] = []

    def fire(self, event: str, env: Mapping[str, str]) -> None:
        """Start the hook of `event`, if the lab has one, with `env` added to its environment."""
        command = self.hooks.commands.get(event)
        if not command:
            return
        extra = {"COMMA_TUI_EVENT": event, "COMMA_TUI_LAB": str(self.lab.root), **env}
        try:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", command],
                stdin=subprocess.DEVNULL,
                cwd=self.lab.root,
                env=child_env(extra),
                start_new_session=True,  # its own group, so a timeout kills what it started too
            )
        except OSError as exc:
            self.say(f"hook {event} could not start: {exc}")
            return
        self.say(f"hook {event} started (pid {proc.pid}) for {env.get('COMMA_TUI_RUN') or env.get('COMMA_TUI_TRACK')}")
        self.running.append(_Running(event, proc, time.monotonic() + self.hooks.timeout))

    def poll(self) -> None:
        """Reap ended hooks (logging failures) and kill the ones past their time limit."""
        for hook in list(self.running):
            code = hook.proc.poll()
            if code is None and time.monotonic() > hook.deadline:
                self._kill(hook)
                self.say(f"hook {hook.event} (pid {hook.proc.pid}) ran past its {self.hooks.timeout:g} s: killed")
                code = hook.proc.wait()
            elif code is not None and code != 0:
                self.say(f"hook {hook.event} (pid {hook.proc.pid}) failed with exit status {code}")
            if code is not None:
                self.running.remove(hook)

    def close(self, grace: float = 5.0) -> None:
        """Give running hooks a moment to end (the scheduler is exiting), then kill the rest."""
        deadline = time.monotonic() + grace
        while self.running and time.monotonic() < deadline:
            self.poll()
            time.sleep(0.05)
        for hook in self.running:
            self._kill(hook)
            hook.proc.wait()
        self.running.clear()

    @staticmethod
    def _kill(hook: _Running) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(hook.proc.pid, signal.SIGKILL)
