"""`comma-tui autopilot ...`: the lab proposes its own next runs (Optuna), within a budget.

    comma-tui autopilot start search.toml [--budget N] [--lab DIR]
    comma-tui autopilot status [--lab DIR] [--json]
    comma-tui autopilot stop [--track T] [--lab DIR]

The loop runs in the lab's scheduler (started here when none runs); these commands write its
files and read its state (see `engine.sched.autopilot`).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from engine.sched import autopilot, autopilot_duty, control
from engine.sched.state import holder, when
from ledger import Lab
from ledger.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `autopilot` command group."""
    lab = argparse.ArgumentParser(add_help=False)
    lab.add_argument("--lab", type=Path, help="the lab folder (default: the lab holding the current folder)")
    group = sub.add_parser("autopilot", help="let the lab propose and queue its own next runs (Optuna)")
    group.set_defaults(handler=lambda args: group.print_help() or 0)
    leaves = group.add_subparsers(dest="autopilot_command", metavar="COMMAND")
    p = leaves.add_parser("start", parents=[lab], help="start an autopilot from a search file")
    p.add_argument("search", type=Path, metavar="SEARCH.toml", help="track, axes, budget... (see the README)")
    p.add_argument("--budget", type=int, help="runs it may queue (overrides the file's budget)")
    p.set_defaults(handler=run_start)
    p = leaves.add_parser("status", parents=[lab], help="each track's autopilot: progress, best run, state")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(handler=run_status)
    p = leaves.add_parser("stop", parents=[lab], help="stop it: nothing more is queued, its queued runs are cancelled")
    p.add_argument("--track", help="the track whose autopilot to stop (default: the one running)")
    p.set_defaults(handler=run_stop)


def run_start(args: argparse.Namespace) -> int:
    """`autopilot start`: validate, start, and make sure the scheduler runs it."""
    lab = Lab.locate(args.lab)
    state = autopilot.start(lab, args.search, args.budget)
    pid = control.ensure_running(lab)
    print(f"autopilot started on track {state.track}: budget {state.budget} run(s), base {state.base}")
    print(f"  study {state.study} in {autopilot.folder(lab, state.track) / 'journal.log'}")
    print(f"  the scheduler (pid {pid}) runs it; watch it with comma-tui autopilot status --lab {lab.root}")
    return 0


def run_status(args: argparse.Namespace) -> int:
    """`autopilot status`: one line per track that has had an autopilot."""
    lab = Lab.locate(args.lab)
    states = autopilot.states(lab)
    if args.json:
        print(json.dumps([asdict(s) for s in states], indent=2, ensure_ascii=False))
        return 0
    if not states:
        print("no autopilot yet: start one with comma-tui autopilot start search.toml")
        return 0
    for s in states:
        since = when(s.started)
        print(f"{s.track}: {s.state} · {s.line()} · {s.proposed} queued so far · base {s.base} · since {since}")
        if s.reason and not s.active:
            print(f"  {s.reason}")
    if any(s.active for s in states) and holder(lab) is None:
        print(f"the scheduler is not running, so nothing moves: start it with comma-tui sched start --lab {lab.root}")
    return 0


def run_stop(args: argparse.Namespace) -> int:
    """`autopilot stop`: ask the scheduler to stop it (or stop it here when none runs)."""
    lab = Lab.locate(args.lab)
    track = args.track or _the_running_track(lab)
    state = autopilot_duty.stop(lab, track, print)
    if state.state == "stopping":
        print(f"autopilot on track {track} is stopping: the scheduler cancels its queued runs within a second")
    else:
        print(f"autopilot on track {track} stopped ({state.line()})")
    return 0


def _the_running_track(lab: Lab) -> str:
    active = [s.track for s in autopilot.states(lab) if s.active]
    if len(active) == 1:
        return active[0]
    if not active:
        raise UserError("no autopilot is running in this lab: see comma-tui autopilot status")
    raise UserError(f"autopilots run on tracks {', '.join(active)}: say which with --track")
