"""Which lab a command works in: the one `--lab DIR` names, the one holding the current folder, or a new one.

A lab is made by `comma-tui init`, or on first use by `run SPEC --lab DIR` and `queue add SPEC
--lab DIR` when DIR holds none and the spec names its whole source (clip and models), as MLflow
and pueue make their stores. Either way its clip and weights are checked first, so a checkout
without `git lfs pull` never becomes a lab.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ledger import DEFAULT_EPSILON, Lab
from ledger.lab import CONFIG_NAME
from ledger.scheduler_settings import BACKENDS, SchedulerSettings


def make_lab(
    root: Path,
    clip: Path,
    models: Path,
    original_bytes: int | None = None,
    epsilon: float = DEFAULT_EPSILON,
    scheduler: SchedulerSettings | None = None,
) -> Lab:
    """Check the clip and both weight files, then make the lab (its queue run as `scheduler` says)."""
    from engine.runs.source import check_source

    check_source(clip.expanduser().resolve(), models.expanduser().resolve())
    return Lab.create(root, clip, models, original_bytes=original_bytes, epsilon=epsilon, scheduler=scheduler)


def lab_for_spec(lab_dir: Path | None, spec_path: Path) -> Lab:
    """The lab a spec goes into; a `--lab DIR` holding none is made from the spec's own [source] if it has one."""
    if lab_dir is None or (lab_dir / CONFIG_NAME).exists():
        return Lab.locate(lab_dir)
    from engine.runs.spec import spec_source

    source = spec_source(spec_path)
    if source is None:
        return Lab.locate(lab_dir)  # no lab and no source to make one from: says how to make one
    lab = make_lab(lab_dir, Path(source.clip), Path(source.models), source.original_bytes or None)
    print(f"made lab {lab.root} from the [source] of {spec_path} (clip {source.clip})", file=sys.stderr)
    return lab


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    """`--backend` and `--ray-address`, for `sched start` and `init`."""
    parser.add_argument("--backend", choices=BACKENDS, help="run the queue here (local) or on a Ray cluster")
    parser.add_argument("--ray-address", metavar="URL", help="the Ray head's dashboard, e.g. http://127.0.0.1:8265")
