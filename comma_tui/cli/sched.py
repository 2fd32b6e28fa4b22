"""`comma-tui sched ...` (the scheduler process) and `comma-tui queue ...` (what it runs).

    comma-tui sched start [--lab DIR] [--slots N] [--backend local|ray] [--ray-address URL] [--foreground]
    comma-tui sched stop [--lab DIR] [--now] [--wait]
    comma-tui sched status [--lab DIR] [--json]
    comma-tui queue add SPEC.toml [--sweep crf=32..36] [--sweep film_grain=0,22] [--priority P] [--again]
    comma-tui queue add --around-floor TRACK crf=-2..+2 [film_grain=-5,+5] [--again]
    comma-tui queue list | pause | resume [--json]
    comma-tui queue cancel|retry RUN...
    comma-tui queue bump RUN --by N

Without `--lab`, a command uses the lab holding the current folder.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from comma_tui.cli.labs import add_backend_options, lab_for_spec
from comma_tui.widgets.format import cluster, duration
from engine.runs.spec import lab_source, load_spec
from engine.sched import control
from engine.sched.scheduler import Scheduler, make_backend
from engine.sched.state import SchedulerError, holder, when
from ledger import Lab, Ledger, RunRecord
from ledger.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `sched` and `queue` command groups."""
    lab = argparse.ArgumentParser(add_help=False)
    lab.add_argument("--lab", type=Path, help="the lab folder (default: the lab holding the current folder)")

    group = sub.add_parser("sched", help="start, stop or watch the lab's scheduler (it runs the queue)")
    group.set_defaults(handler=lambda args: _help(group))
    leaves = group.add_subparsers(dest="sched_command", metavar="COMMAND")
    p = leaves.add_parser("start", parents=[lab], help="start the scheduler, detached from this terminal")
    p.add_argument("--slots", type=int, help="runs at a time (default: one per GPU, else 1; on Ray, from the cluster)")
    add_backend_options(p)
    p.add_argument("--foreground", action="store_true", help="run it here instead (for tmux or a service)")
    p.set_defaults(handler=run_start)
    p = leaves.add_parser("stop", parents=[lab], help="stop it; running runs finish first unless --now")
    p.add_argument("--now", action="store_true", help="kill running runs now (they are requeued)")
    p.add_argument("--wait", action="store_true", help="return only once it has exited")
    p.set_defaults(handler=run_stop)
    p = leaves.add_parser("status", parents=[lab], help="its state, running and queued runs, floors, failures")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run_status)

    group = sub.add_parser("queue", help="add, list, cancel, retry or reorder queued runs")
    group.set_defaults(handler=lambda args: _help(group))
    leaves = group.add_subparsers(dest="queue_command", metavar="COMMAND")
    p = leaves.add_parser("add", parents=[lab], help="queue a spec, a sweep of it, or the neighbours of a floor")
    p.add_argument("items", nargs="*", metavar="SPEC.toml | AXIS=OFFSETS", help="a spec; offsets with --around-floor")
    p.add_argument("--sweep", action="append", default=[], metavar="AXIS=VALUES", help="e.g. crf=32..36 or crf=0,22")
    p.add_argument("--around-floor", metavar="TRACK", help="queue the floor's neighbours, one axis changed at a time")
    p.add_argument("--priority", type=int, default=0, help="higher starts first (default 0)")
    p.add_argument("--again", action="store_true", help="queue specs a finished run measured already, too")
    p.set_defaults(handler=run_add)
    p = leaves.add_parser("list", parents=[lab], help="running and queued runs, in launch order")
    p.add_argument("--json", action="store_true", help="print a JSON object")
    p.set_defaults(handler=run_list)
    for name, handler, text in (
        ("cancel", run_cancel, "cancel a queued or running run (its processes are killed)"),
        ("retry", run_retry, "queue a failed, cancelled or interrupted run again, as a new run"),
    ):
        p = leaves.add_parser(name, parents=[lab], help=text)
        p.add_argument("runs", nargs="+", metavar="RUN", help="run ids, e.g. r0042 r0043")
        p.set_defaults(handler=handler)
    p = leaves.add_parser("bump", parents=[lab], help="raise or lower a queued run's priority")
    p.add_argument("run", help="run id, e.g. r0042")
    p.add_argument("--by", type=int, default=1, help="how much (negative lowers; default 1)")
    p.set_defaults(handler=run_bump)
    for name, paused in (("pause", True), ("resume", False)):
        p = leaves.add_parser(name, parents=[lab], help=f"{name} the queue (running runs go on)")
        p.set_defaults(handler=run_pause, paused=paused)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 0


def _lab(args: argparse.Namespace) -> Lab:
    return Lab.locate(args.lab)


# sched


def run_start(args: argparse.Namespace) -> int:
    """`sched start`: a detached scheduler (or one in the foreground)."""
    lab = _lab(args)
    if args.foreground:
        if args.slots is not None and args.slots < 1:
            raise SchedulerError(f"--slots {args.slots} must be at least 1")
        settings = lab.scheduler_settings().overridden(args.backend, args.ray_address)
        return Scheduler(lab, args.slots, backend=make_backend(lab, settings)).serve()
    pid = control.start(lab, args.slots, backend=args.backend, ray_address=args.ray_address)
    state = control.status(lab)
    print(f"scheduler started for lab {lab.root}: pid {pid}, {state.slots} slot(s), {_where(state)}")
    print(f"  it keeps running when this terminal closes; its log: {state.log}")
    if state.paused:
        print("  the queue is paused: comma-tui queue resume")
    return 0


def run_stop(args: argparse.Namespace) -> int:
    """`sched stop`: graceful unless --now."""
    lab = _lab(args)
    before = control.status(lab)
    pid = control.stop(lab, now=args.now, wait=args.wait or args.now)
    if pid is None:
        print(f"no scheduler is running for lab {lab.root}")
    elif args.now:
        print(f"scheduler (pid {pid}) stopped; {len(before.running)} running run(s) interrupted and requeued")
    elif args.wait:
        print(f"scheduler (pid {pid}) stopped after its running runs finished")
    else:
        print(f"scheduler (pid {pid}) is stopping: it starts nothing more and exits when its running runs finish")
    return 0


def _where(s: control.SchedulerStatus) -> str:
    return cluster(s.address, s.resources) if s.backend == "ray" else f"GPUs {','.join(s.gpus) or 'none'}"


def run_status(args: argparse.Namespace) -> int:
    """`sched status`: a readable summary, or one JSON object."""
    state = control.status(_lab(args))
    if args.json:
        print(json.dumps(state.to_dict(), indent=2, ensure_ascii=False))
        return 0
    print("\n".join(status_lines(state)))
    return 0


def status_lines(s: control.SchedulerStatus) -> list[str]:
    """The `sched status` summary as lines."""
    if s.pid is None:
        head = f"scheduler: stopped (start it with comma-tui sched start --lab {s.lab})"
    else:
        head = f"scheduler: {s.state}, pid {s.pid}, {s.slots} slot(s), {_where(s)}, since {when(s.since)}"
        head += " (stopping: waits for its running runs)" if s.stopping else ""
    lines = [head, f"lab: {s.lab}"]
    if s.paused:
        lines.append(f"queue: paused since {when(s.paused_since)} (resume with comma-tui queue resume)")
    lines += queue_lines(s)
    lines.append("floors:" if s.floors else "floors: none yet")
    for f in s.floors:
        score = "-" if f.score is None else f"{f.score:.4f}"
        size = "-" if f.total_bytes is None else f"{f.total_bytes:,} bytes"
        lines.append(f"  {f.track:<10} {f.id}  score {score}  {size}  {f.label}")
    if s.failures:
        lines.append("recent failures:")
        lines += [f"  {f.id}  {f.status:<11} {when(f.finished)}  {f.reason}" for f in s.failures]
    return lines


def queue_lines(s: control.SchedulerStatus) -> list[str]:
    """Running runs (stage, progress, elapsed, ETA, slot/GPU), then queued runs in launch order."""
    lines = [f"running ({len(s.running)}):"]
    for r in s.running:
        where = "-" if r.slot is None else f"slot {r.slot}" + (f" GPU {r.gpu}" if r.gpu is not None else "")
        stage = f"{r.stage} {r.done}/{r.total} " + (r.detail or f"{r.fraction:4.0%}") if r.stage else "starting"
        elapsed, eta = duration(r.elapsed, "-"), duration(r.eta, "-")
        lines.append(f"  {r.id}  {where:<12} {stage:<22} elapsed {elapsed:>6}  ETA {eta:>6}  {r.label}")
        if r.job:
            lines.append(f"         Ray job {r.job}  {r.job_state or '?'}" + (f": {r.job_note}" if r.job_note else ""))
    lines.append(f"queued ({len(s.queued)}):")
    for q in s.queued:
        again = f"  (requeued {q.requeued}x)" if q.requeued else ""
        lines.append(f"  {q.id}  priority {q.priority:<3} {q.track:<8} {q.label}{again}")
    return lines


# queue


def _parse_sweeps(texts: list[str]) -> dict[str, list[Any]]:
    sweeps: dict[str, list[Any]] = {}
    for text in texts:
        axis, values = control.parse_sweep(text)
        sweeps.setdefault(axis, []).extend(values)  # --sweep crf=30 --sweep crf=40 is one axis
    return sweeps


def _print_queued(records: list[RunRecord], lab: Lab) -> None:
    for r in records:
        parent = f"  (parent {r.parent})" if r.parent else ""
        print(f"queued {r.id}  {r.track}  {r.label}{parent}")
    print(f"{len(records)} run(s) queued in lab {lab.root}")
    if holder(lab) is None:
        print(f"the scheduler is not running: start it with comma-tui sched start --lab {lab.root}")


def run_add(args: argparse.Namespace) -> int:
    """`queue add`: a spec (optionally swept), or a floor's neighbours; measured specs skipped unless --again."""
    parent, notes, track = None, None, None
    if args.around_floor is not None:
        lab = _lab(args)
        ledger = Ledger(lab)
        if args.sweep:
            raise UserError("--around-floor takes AXIS=OFFSETS as arguments, not --sweep: e.g. crf=-2..+2")
        if not args.items:
            raise UserError("--around-floor needs offsets: e.g. comma-tui queue add --around-floor main crf=-2..+2")
        floor = control.the_floor(ledger, args.around_floor)
        points = control.floor_points(ledger, args.around_floor, _parse_sweeps(args.items))
        parent, notes, track = floor.id, f"around the floor {floor.id}", floor.track
    else:
        if len(args.items) != 1:
            raise UserError("queue add takes one SPEC.toml (sweep it with --sweep crf=32..36)")
        path = Path(args.items[0])
        lab = lab_for_spec(args.lab, path)
        ledger = Ledger(lab)
        spec = load_spec(path, lab_source(lab))
        if not spec.run.label:
            spec = replace(spec, run=replace(spec.run, label=path.stem))
        points = control.sweep_points(ledger, spec, _parse_sweeps(args.sweep))
        parent = spec.run.parent or None
    measured = [p for p in points if p.measured_by is not None]
    fresh = points if args.again else [p for p in points if p.measured_by is None]
    records = control.queue_points(ledger, fresh, args.priority, parent, notes, track)
    if measured and not args.again:
        print(measured_line(measured, len(points)) + " (skipped: --again queues them too)")
    _print_queued(records, lab)
    return 0


def measured_line(measured: list[control.Point], total: int) -> str:
    """`3 of 12 already measured: r0001 (crf=34), r0002 (crf=35), …`."""
    named = ", ".join(f"{p.measured_by.id} ({p.label})" for p in measured[:4] if p.measured_by is not None)
    more = ", …" if len(measured) > 4 else ""
    return f"{len(measured)} of {total} already measured: {named}{more}"


def run_list(args: argparse.Namespace) -> int:
    """`queue list`: running runs, then queued ones in launch order."""
    s = control.status(_lab(args))
    if args.json:
        data = s.to_dict()
        keep = ("lab", "state", "pid", "paused", "running", "queued")
        print(json.dumps({k: data[k] for k in keep}, indent=2, ensure_ascii=False))
        return 0
    state = "stopped" if s.pid is None else s.state
    print(f"scheduler: {state}" + (f"; queue paused since {when(s.paused_since)}" if s.paused else ""))
    print("\n".join(queue_lines(s)))
    return 0


def run_cancel(args: argparse.Namespace) -> int:
    """`queue cancel RUN...`: every run is checked before any is cancelled."""
    for record in control.cancel(_lab(args), *args.runs):
        print(
            f"{record.id} cancelled"
            if record.status == "cancelled"
            else f"{record.id} had already ended: {record.status}"
        )
    return 0


def run_retry(args: argparse.Namespace) -> int:
    """`queue retry RUN...`: every run is checked before any is queued again."""
    for record in control.retry(_lab(args), *args.runs):
        print(f"queued {record.id}, a retry of {record.parent} ({record.label or 'no label'})")
    return 0


def run_bump(args: argparse.Namespace) -> int:
    """`queue bump RUN --by N`."""
    record = control.bump(_lab(args), args.run, args.by)
    print(f"{record.id} priority {record.priority}")
    return 0


def run_pause(args: argparse.Namespace) -> int:
    """`queue pause` / `queue resume`."""
    lab = _lab(args)
    ledger = Ledger(lab)
    (control.pause if args.paused else control.resume)(ledger)
    if args.paused:
        print(f"queue paused: running runs finish, nothing new starts ({len(ledger.queued())} queued)")
    else:
        print(f"queue resumed ({len(ledger.queued())} queued)")
    return 0
