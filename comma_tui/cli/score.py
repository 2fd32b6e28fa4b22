"""`comma-tui score`: the official evaluator's numbers for one candidate."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from comma_tui.cli.progress_bar import ProgressBar
from engine.defaults import SCORE_BATCH_SIZE
from engine.runs.progress import StageClock
from ledger.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="score a candidate .raw or clip against a reference clip")
    p.add_argument("--reference", required=True, type=Path, help="the original clip (videos/0.mkv)")
    p.add_argument("--candidate", required=True, type=Path, help="inflated .raw, or a clip to decode")
    p.add_argument("--models", required=True, type=Path, help="folder with posenet/segnet.safetensors")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--archive", type=Path, help="archive.zip whose size is the submission size")
    size.add_argument("--archive-bytes", type=int, help="submission size in bytes")
    p.add_argument("--original-bytes", type=int, help="uncompressed size (default: the reference's size)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    p.add_argument("--batch-size", type=int, default=SCORE_BATCH_SIZE, help="pairs per batch (default 16)")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    p.add_argument(
        "--cache", type=Path, help="folder that keeps the reference side's network outputs between runs (optional)"
    )
    p.set_defaults(handler=run)


def _archive_bytes(args: argparse.Namespace) -> int:
    from engine.media.video import is_raw

    if args.archive is not None:
        if not args.archive.is_file():
            raise UserError(f"archive {args.archive} not found: pass the submission's archive.zip")
        return int(args.archive.stat().st_size)
    if args.archive_bytes is not None:
        if args.archive_bytes < 0:
            raise UserError(f"--archive-bytes {args.archive_bytes} is negative: pass the archive's size")
        return int(args.archive_bytes)
    if is_raw(args.candidate):
        raise UserError("a .raw candidate has no size of its own: pass --archive ZIP or --archive-bytes N")
    # A candidate clip is its own archive: its size is what would be shipped.
    return int(args.candidate.stat().st_size)


def run(args: argparse.Namespace) -> int:
    # Loaded here, not at the top: torch takes seconds to import and other commands never need it.
    from engine.scoring.evaluate import check_frame_counts, evaluate
    from engine.scoring.reference_cache import ReferenceCache
    from engine.scoring.scorer import Scorer

    if args.batch_size < 1:
        raise UserError(f"--batch-size {args.batch_size} must be at least 1")
    if args.original_bytes is not None and args.original_bytes <= 0:
        raise UserError(f"--original-bytes {args.original_bytes} must be positive")
    check_frame_counts(args.reference, args.candidate)
    archive_bytes = _archive_bytes(args)
    scorer = Scorer(args.models, device=args.device, threads=args.threads)
    clock = StageClock("score", ProgressBar())
    result = evaluate(
        scorer,
        args.reference,
        args.candidate,
        archive_bytes=archive_bytes,
        original_bytes=args.original_bytes,
        batch_size=args.batch_size,
        progress=clock,
        cache=ReferenceCache(args.cache) if args.cache is not None else None,
    )
    report = result.report
    if args.json:
        payload = report.as_dict() | {
            "per_pair": {
                "posenet": result.distortions.posenet_per_pair.tolist(),
                "segnet": result.distortions.segnet_per_pair.tolist(),
            }
        }
        print(json.dumps(payload))
    else:
        print("\n".join(report.lines()))
        print(f"  Scorer: {report.fingerprint} on {report.device}")
    return 0
