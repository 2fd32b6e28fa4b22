"""Hooks: real shell commands, started by the scheduler without blocking it, with the run in their environment."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from engine.sched.hooks import HookRunner, load_hooks, run_env
from engine.sched.pool import TAG_VAR, Worker, child_env, run_tag
from engine.sched.scheduler import Scheduler
from ledger import Lab, Ledger
from tests.ledger.fixtures import make_lab, measured
from tests.polling import wait_until

ECHO = 'echo "$COMMA_TUI_EVENT|$COMMA_TUI_RUN|$COMMA_TUI_TRACK|$COMMA_TUI_LABEL|$COMMA_TUI_SCORE|$COMMA_TUI_REASON"'


def with_hooks(lab: Lab, table: str) -> Lab:
    with open(lab.config_path, "a") as f:
        f.write(f"\n[hooks]\n{table}\n")
    return lab


def test_a_hook_gets_the_run_in_its_environment(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    lab = with_hooks(make_lab(tmp_path), f"on_promote = '{ECHO} >> {out}'")
    record = measured(Ledger(lab), 1.25)
    runner = HookRunner(lab, print)
    runner.fire("on_promote", run_env(record))
    runner.close()
    assert out.read_text().strip() == f"on_promote|{record.id}|main||1.250000|{record.verdict_reason}"


def test_a_failing_or_slow_hook_is_logged_and_killed_and_never_waited_for(tmp_path: Path) -> None:
    lab = with_hooks(make_lab(tmp_path), "on_fail = 'exit 4'\non_promote = 'sleep 30'\ntimeout = 0.5")
    log: list[str] = []
    runner = HookRunner(lab, log.append)
    began = time.monotonic()
    runner.fire("on_fail", {"COMMA_TUI_RUN": "r0001"})
    runner.fire("on_promote", {"COMMA_TUI_RUN": "r0002"})
    assert time.monotonic() - began < 5  # started, not waited for
    wait_until(lambda: runner.poll() or not runner.running, 20, "both hooks to end")
    assert any("hook on_fail" in line and "exit status 4" in line for line in log)
    assert any("hook on_promote" in line and "ran past its 0.5 s: killed" in line for line in log)


def test_bad_hooks_tables_switch_hooks_off_with_a_line_naming_the_key(tmp_path: Path) -> None:
    lab = with_hooks(make_lab(tmp_path), "on_finish = 'true'")
    hooks, problem = load_hooks(lab)
    assert not hooks.commands and "unknown key 'on_finish'" in problem
    lab = with_hooks(make_lab(tmp_path / "b"), "on_fail = 3")
    assert "on_fail must be a shell command" in load_hooks(lab)[1]


def test_the_scheduler_runs_on_fail_when_a_run_fails_and_goes_on(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    lab = with_hooks(make_lab(tmp_path), f"on_fail = '{ECHO} >> {out}; exit 1'")
    ledger = Ledger(lab)
    record = ledger.update(ledger.add_run({"run": {}}, label="doomed").id, status="running", slot=0)
    run_dir = lab.run_dir(record.id)
    with open(run_dir / "worker.out", "wb") as stdout:
        proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.exit(3)"],
            stdout=stdout,
            start_new_session=True,
            env=child_env({TAG_VAR: run_tag(lab.root, record.id)}),
        )
    scheduler = Scheduler(lab, slots=1, gpus=())
    scheduler.workers[record.id] = Worker(record.id, proc.pid, 0, time.time(), 0, run_dir, proc)
    wait_until(lambda: scheduler.tick() or out.exists(), 30, "the on_fail hook")
    scheduler.hooks.close()
    event, run, track, label, score, reason = out.read_text().strip().split("|")
    assert (event, run, track, label, score) == ("on_fail", record.id, "main", "doomed", "")
    assert "exited with status 3" in reason
