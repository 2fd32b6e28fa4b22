"""`comma-tui init` and `comma-tui ledger ...`: make a lab, and read or judge its runs.

    comma-tui init DIR --clip C --models M [--original-bytes N] [--backend ray --ray-address URL]
    comma-tui ledger list [--lab DIR] [--track T] [--verdict V] [--status S ...] [--text Q] [--archived] [--json]
    comma-tui ledger show RUN [--json]
    comma-tui ledger promote|reject RUN --note TEXT
    comma-tui ledger rescore RUN
    comma-tui ledger archive RUN... [--restore]
    comma-tui ledger export --format csv|json|md [--output FILE]

Without `--lab`, a command uses the lab holding the current folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path

from comma_tui.cli.labs import add_backend_options, make_lab
from comma_tui.widgets.comparison import comparison_lines
from comma_tui.widgets.format import duration, run_label
from ledger import DEFAULT_EPSILON, Lab, Ledger, RunRecord, RunView
from ledger.errors import UserError
from ledger.export import FORMATS, export, when
from ledger.queries import SORT_KEYS, Prior
from ledger.records import STATUSES
from ledger.scheduler_settings import parse_settings


def register(sub: argparse._SubParsersAction) -> None:
    """Add `init` and `ledger` with its subcommands."""
    p = sub.add_parser("init", help="make a lab: a folder for the runs on one clip")
    p.add_argument("dir", type=Path, help="the lab folder (made if missing)")
    p.add_argument("--clip", required=True, type=Path, help="the source clip (the challenge's videos/0.mkv)")
    p.add_argument("--models", required=True, type=Path, help="folder with posenet/segnet.safetensors")
    p.add_argument("--original-bytes", type=int, help="uncompressed size (default: the clip's decoded size)")
    p.add_argument(
        "--epsilon", type=float, default=DEFAULT_EPSILON, help=f"how far a run must lower the floor ({DEFAULT_EPSILON})"
    )
    add_backend_options(p)
    p.add_argument("--cpus-per-run", type=float, metavar="N", help="CPUs each run asks Ray for (default 1)")
    p.add_argument("--gpus-per-run", type=float, metavar="N", help="GPUs each run asks Ray for (default 0; 1 on GPUs)")
    p.set_defaults(handler=run_init)

    lab = argparse.ArgumentParser(add_help=False)
    lab.add_argument("--lab", type=Path, help="the lab folder (default: the lab holding the current folder)")
    filters = argparse.ArgumentParser(add_help=False)
    filters.add_argument("--track", help="only this track")
    filters.add_argument("--verdict", help="promoted, rejected or none")
    filters.add_argument("--status", action="append", help=f"{', '.join(STATUSES)}; repeat it for any of several")
    filters.add_argument("--text", help="only runs whose id, label, notes, changes or spec contain this")
    filters.add_argument("--sort", default="id", help=f"sort by {', '.join(SORT_KEYS)} (default id)")
    filters.add_argument("--reverse", action="store_true", help="sort the other way")
    filters.add_argument("--archived", action="store_true", help="the archived runs instead (see ledger archive)")

    group = sub.add_parser("ledger", help="list, show, promote, reject, rescore or export the lab's runs")
    group.set_defaults(handler=lambda args: _print_help(group))
    leaves = group.add_subparsers(dest="ledger_command", metavar="COMMAND")

    p = leaves.add_parser("list", parents=[lab, filters], help="the runs, filtered and sorted")
    p.add_argument("--json", action="store_true", help="print a JSON list of records")
    p.set_defaults(handler=run_list)

    p = leaves.add_parser("show", parents=[lab], help="one run: its verdict, and Prior / Current / Delta")
    p.add_argument("run", help="run id, e.g. r0042")
    p.add_argument("--json", action="store_true", help="print the record as JSON")
    p.set_defaults(handler=run_show)

    for verdict, verb in (("promoted", "promote"), ("rejected", "reject")):
        p = leaves.add_parser(verb, parents=[lab], help=f"{verb} a measured run by hand, with a note")
        p.add_argument("run", help="run id, e.g. r0042")
        p.add_argument("--note", required=True, help="why (kept with the verdict)")
        p.set_defaults(handler=run_override, verdict=verdict)

    p = leaves.add_parser("rescore", parents=[lab], help="score a run rejected early fully (its kept archive)")
    p.add_argument("run", help="run id, e.g. r0042")
    p.set_defaults(handler=run_rescore)

    p = leaves.add_parser("archive", parents=[lab], help="move ended runs out of the views (kept on disk)")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run ids, e.g. r0042 r0043")
    p.add_argument("--restore", action="store_true", help="bring archived runs back into the views")
    p.set_defaults(handler=run_archive)

    p = leaves.add_parser("export", parents=[lab, filters], help="the runs as CSV, JSON or Markdown")
    p.add_argument("--format", required=True, help=" | ".join(FORMATS))
    p.add_argument("--output", type=Path, help="write to this file (default: standard output)")
    p.set_defaults(handler=run_export)


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 0


def open_ledger(lab_dir: Path | None) -> Ledger:
    """The ledger of `--lab DIR`, or of the lab holding the current folder."""
    return Ledger(Lab.locate(lab_dir))


def run_init(args: argparse.Namespace) -> int:
    """`comma-tui init`: make the lab folder and its lab.toml."""
    given = {"backend": args.backend, "ray_address": args.ray_address}
    given |= {"cpus_per_run": args.cpus_per_run, "gpus_per_run": args.gpus_per_run}
    settings = parse_settings({k: v for k, v in given.items() if v is not None}, "comma-tui init")
    lab = make_lab(args.dir, args.clip, args.models, args.original_bytes, args.epsilon, settings)
    source = lab.source()
    print(f"made lab {lab.root}")
    print(f"  clip:   {source.clip}")
    print(f"  models: {source.models}")
    if source.original_bytes is not None:
        print(f"  original size: {source.original_bytes:,} bytes")
    if settings.backend == "ray":
        print(
            f"  queue:  Ray jobs on {settings.ray_address}, each asking {settings.gpus_per_run:g} GPU, "
            f"{settings.cpus_per_run:g} CPU (the lab must be at {lab.root} on every node)"
        )
    print(f"settings are in {lab.config_path}; open the console with: comma-tui --lab {lab.root}")
    return 0


def _filtered(ledger: Ledger, args: argparse.Namespace) -> RunView:
    return ledger.runs(
        status=args.status,
        track=args.track,
        verdict=args.verdict,
        text=args.text,
        sort=args.sort,
        reverse=args.reverse,
        archived=args.archived,
    )


def run_list(args: argparse.Namespace) -> int:
    """`comma-tui ledger list`: a table of runs (or JSON)."""
    ledger = open_ledger(args.lab)
    runs = _filtered(ledger, args)
    deltas = ledger.deltas()
    if args.json:
        rows = [r.to_dict() | {"delta_vs_floor": deltas.get(r.id)} for r in ledger.records(runs)]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    total = len(ledger.runs(archived=args.archived))
    if not runs:
        if args.archived:
            print(
                "no archived runs match" if total else "no archived runs (comma-tui ledger archive RUN... makes some)"
            )
        else:
            print(
                "no runs match these filters" if total else "no runs yet: queue one with comma-tui queue add SPEC.toml"
            )
        return 0
    floor_runs = ledger.floors()
    print(_table(runs, deltas, {r.id for r in floor_runs.values()}))
    shown = f"{len(runs)} runs" if len(runs) == total else f"{len(runs)} of {total} runs"
    floor_text = ", ".join(f"{t} {r.id} {r.score:.3f}" for t, r in floor_runs.items() if r.score is not None)
    print(f"{shown}" + (f"; * floor: {floor_text}" if floor_text else ""))
    if any(r.estimated for r in runs):
        print("~ an estimate: rejected early, never a floor; comma-tui ledger rescore RUN scores it fully")
    return 0


def _table(runs: RunView, deltas: Mapping[str, float], floors: set[str]) -> str:
    head = ["id", "track", "label", "status", "score", "Δfloor", "bytes", "PoseNet", "SegNet", "verdict"]
    rows = []
    for r in runs:
        delta = deltas.get(r.id)
        verdict = (r.verdict or "-") + (" (hand)" if r.overridden else " (early)" if r.estimated else "")
        guess = "~" if r.estimated else ""
        rows.append(
            [
                r.id + ("*" if r.id in floors else ""),
                r.track,
                _clip(run_label(r), 28),
                r.status + (" ~" if r.approximate else ""),
                "" if r.score is None else f"{guess}{r.score:.3f}",
                "" if delta is None else f"{guess}{delta:+.3f}",
                "" if r.total_bytes is None else f"{r.total_bytes:,}",
                "" if r.posenet is None else f"{guess}{r.posenet:.5f}",
                "" if r.segnet is None else f"{guess}{r.segnet:.5f}",
                verdict,
            ]
        )
    numeric = {4, 5, 6, 7, 8}
    widths = [max(len(str(row[i])) for row in [head, *rows]) for i in range(len(head))]
    lines = []
    for row in [head, *rows]:
        cells = [
            str(c).rjust(w) if i in numeric else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def run_show(args: argparse.Namespace) -> int:
    """`comma-tui ledger show RUN`: everything about one run."""
    ledger = open_ledger(args.lab)
    record = ledger.get(args.run)
    # Only a measured run is compared; a queued run would face the current floor, which in a lab
    # of 100,000 runs means reading every summary for a line the report does not print.
    prior = ledger.prior_of(record.id) if args.json or record.metrics is not None else None
    if args.json:
        payload = record.to_dict() | {"prior": prior.run.id if prior else None}
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return 0
    print("\n".join(show_lines(record, prior)))
    return 0


def show_lines(r: RunRecord, prior: Prior[RunRecord] | None) -> list[str]:
    """The report of `ledger show`, line by line."""
    title = f"{r.id}  track {r.track}  {r.status}" + (f"  {r.verdict}" if r.verdict else "")
    lines = [title + (f"  “{r.label}”" if r.label else "")]
    if r.verdict_reason:
        lines.append(f"  {r.verdict_reason}")
    if r.parent:
        lines.append(f"parent {r.parent}" + (f": changed {', '.join(r.changed)}" if r.changed else ": same spec"))
    times = f"created {when(r.created)}"
    if r.started:
        times += f", started {when(r.started)}"
    if r.finished:
        times += f", finished {when(r.finished)}"
    if r.elapsed is not None:
        times += f" ({duration(r.elapsed)})"
    lines.append(times)
    if r.metrics is not None:
        lines += ["", *comparison_lines(r, prior)]
        if r.approximate:
            lines.append("(approximate score: never promoted)")
        m = r.metrics
        if m.estimated:
            lines.append(
                f"~ estimates from {m.pairs_scored} of {m.pairs} pairs (rejected early; the rate term is exact): "
                f"score ≥ {m.score_bound:.3f} with {(m.confidence or 0) * 100:g}% confidence; "
                f"score it fully with comma-tui ledger rescore {r.id}"
            )
        scorer = (r.scorer_fingerprint or "?") + (" (demo)" if r.scorer_demo else "")
        lines.append(f"scored by {scorer} on {r.device_kind or '?'}, decoder {r.decoder or '?'}, host {r.host or '?'}")
        lines.append(f"clip {r.clip_fingerprint or '?'}, engine {r.engine_version or '?'}")
    if r.stage_timings:
        lines.append("stages: " + ", ".join(f"{k} {duration(v)}" for k, v in r.stage_timings.items()))
    for o in r.overrides:
        lines.append(f"{o.verdict} by hand {when(o.at)} ({o.user or '?'}@{o.host or '?'}): {o.note}")
    if r.failure_reason:
        lines.append(f"failure: {r.failure_reason}")
    if r.requeued:
        lines.append(f"requeued {r.requeued} time(s) after interruptions")
    lines.append(f"artifacts: {r.artifacts}")
    if r.notes:
        lines.append(f"notes: {r.notes}")
    lines += ["spec:", *_spec_lines(r.spec)]
    if r.log_tail:
        lines += ["log tail:", *("  " + line for line in r.log_tail.splitlines()[-20:])]
    return lines


def _spec_lines(spec: dict) -> list[str]:
    lines = []
    for section, values in spec.items():
        if isinstance(values, dict):
            lines.append(f"  [{section}] " + ", ".join(f"{k}={json.dumps(v)}" for k, v in values.items()))
        else:
            lines.append(f"  {section}={json.dumps(values)}")
    return lines


def run_archive(args: argparse.Namespace) -> int:
    """`comma-tui ledger archive RUN... [--restore]`: out of the views, or back; never deleted."""
    ledger = open_ledger(args.lab)
    records = ledger.archive(args.runs, archived=not args.restore)
    ids = " ".join(r.id for r in records)
    if args.restore:
        print(f"restored {ids}: back in the views")
    else:
        print(f"archived {ids}: out of the views, kept on disk (ledger list --archived lists them)")
    return 0


def run_override(args: argparse.Namespace) -> int:
    """`comma-tui ledger promote|reject RUN --note TEXT`."""
    ledger = open_ledger(args.lab)
    record = ledger.override(args.run, args.verdict, args.note)
    floor = ledger.floor(record.track)
    print(f"{record.id} {record.verdict} by hand: {args.note.strip()}")
    if floor is not None and floor.score is not None:
        print(f"floor of track {record.track}: {floor.id} ({floor.score:.3f})")
    return 0


def run_rescore(args: argparse.Namespace) -> int:
    """`comma-tui ledger rescore RUN`: queue a run rejected early to be scored fully."""
    ledger = open_ledger(args.lab)
    record = ledger.rescore(args.run)
    print(f"queued {record.id} to be scored fully: its kept archive is inflated and every pair scored")
    print("its exact score replaces the estimate and is reviewed again; the scheduler runs it (comma-tui sched start)")
    return 0


def run_export(args: argparse.Namespace) -> int:
    """`comma-tui ledger export`: the runs as CSV, JSON or Markdown, to stdout or a file."""
    if args.format not in FORMATS:
        raise UserError(f"unknown export format {args.format!r}: use --format csv, json or md")
    ledger = open_ledger(args.lab)
    records = ledger.records(_filtered(ledger, args))
    text = export(records, args.format, ledger.deltas())
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        args.output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write {args.output} ({exc.strerror}): pick a writable --output path") from None
    print(f"wrote {len(records)} runs to {args.output}")
    return 0
