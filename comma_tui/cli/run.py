"""`comma-tui run` (one spec or submission, headless, recorded) and `comma-tui export`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from comma_tui.cli.labs import lab_for_spec
from comma_tui.cli.progress_bar import ProgressBar
from engine.runs.progress import json_lines_sink
from ledger import Lab, Ledger, RunRecord
from ledger.errors import UserError

if TYPE_CHECKING:
    from engine.runs.spec import RunSpec


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run one spec (or score a submission folder) and record it in the lab")
    p.add_argument("spec", nargs="?", type=Path, help="run spec (.toml)")
    p.add_argument("--submission", type=Path, help="score an official-layout submission folder instead")
    p.add_argument("--lab", type=Path, help="lab folder (default: the lab holding the current folder)")
    p.add_argument("--keep-raw", action="store_true", help="keep the inflated .raw in the run's folder")
    p.add_argument("--events", action="store_true", help="print progress as JSON lines on stdout")
    p.add_argument("--track", help="track for a submission run (default main)")
    p.add_argument("--label", help="label for a submission run")
    p.add_argument("--timeout", type=int, help="time limit in seconds for a submission (default 1800)")
    p.set_defaults(handler=run)

    e = sub.add_parser("export", help="write a run as an official-layout submission folder")
    e.add_argument("run_id", metavar="RUN", help="run id, e.g. r0042")
    e.add_argument("dest", type=Path, help="new folder for archive.zip, inflate.sh, inflate.py")
    e.add_argument("--lab", type=Path, help="lab folder (default: the lab holding the current folder)")
    e.set_defaults(handler=export)


def _submission_spec(args: argparse.Namespace, lab: Lab) -> RunSpec:
    from engine.runs.spec import lab_source, parse_spec

    run: dict[str, Any] = {"submission": str(args.submission.resolve()), "label": args.label or args.submission.name}
    if args.track:
        run["track"] = args.track
    if args.timeout is not None:
        run["timeout"] = args.timeout
    return parse_spec({"run": run}, lab_source(lab))


def run(args: argparse.Namespace) -> int:
    # The engine loads torch: imported here so that `comma-tui --help` and quick commands stay quick.
    from engine.runs.pipeline import preflight
    from engine.runs.spec import lab_source, load_spec
    from engine.sched.worker import execute_run

    if (args.spec is None) == (args.submission is None):
        raise UserError("pass a spec file or --submission DIR (one of them)")
    lab = lab_for_spec(args.lab, args.spec) if args.spec is not None else Lab.locate(args.lab)
    spec = _submission_spec(args, lab) if args.submission else load_spec(args.spec, lab_source(lab))
    # A user's mistake is not a run: everything checkable in a moment is checked before recording.
    preflight(spec, lab.runs_dir)
    ledger = Ledger(lab)
    record = ledger.add_run(
        spec.to_dict(),
        track=spec.run.track,
        label=spec.run.label or (args.spec.stem if args.spec else ""),
        notes=spec.run.notes,
        parent=spec.run.parent or None,
        status="running",
    )
    sink = json_lines_sink(sys.stdout) if args.events else ProgressBar()
    print(f"{record.id}: running in {record.artifacts}", file=sys.stderr)
    done = execute_run(ledger, record.id, sink, keep_raw=args.keep_raw)
    return _report(done, events=args.events)


def _report(record: RunRecord, events: bool) -> int:
    if record.status != "done":
        raise UserError(f"{record.id} {record.status}: {record.failure_reason}")
    if events:
        return 0
    folder = Path(record.artifacts)
    m = record.metrics
    assert m is not None
    print(f"=== {record.id} ({record.track}) ===")
    print((folder / "report.txt").read_text().rstrip())
    if m.charged_bytes is not None and m.charged_bytes != m.archive_bytes:
        print(f"  Charged: {m.charged_bytes:,} bytes with the files beside inflate.sh, score {m.charged_score:.2f}")
    print(f"  Verdict: {record.verdict} ({record.verdict_reason})")
    print(f"  Artifacts: {folder}")
    return 0


def export(args: argparse.Namespace) -> int:
    from engine.runs.export import export_run
    from engine.runs.spec import lab_source

    lab = Lab.locate(args.lab)
    record = Ledger(lab).get(args.run_id)
    dest = export_run(record, lab_source(lab), args.dest)
    print(f"exported {record.id} to {dest} (archive.zip, inflate.sh, inflate.py)")
    return 0
