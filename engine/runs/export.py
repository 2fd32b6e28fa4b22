"""Export a lab run as an official-layout submission: archive.zip, inflate.sh, inflate.py.

inflate.py is `engine/media/inflate_runtime.py` copied verbatim, so the exported inflate is the lab's
inflate; it needs only torch, av and numpy. inflate.sh passes the run's inflate settings.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

from engine.media import inflate_runtime
from engine.runs.spec import RunSpec, SourceSpec, parse_spec, spec_to_toml
from ledger import RunRecord
from ledger.errors import UserError

_INFLATE_SH = """#!/usr/bin/env bash
# Made by comma-tui export{origin}. Usage: inflate.sh ARCHIVE_DIR INFLATED_DIR VIDEO_NAMES_FILE
set -euo pipefail
HERE="$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)"
exec python3 "$HERE/inflate.py" "$1" "$2" "$3" {args}
"""


def inflate_args(spec: RunSpec) -> list[str]:
    """The inflate.py flags that reproduce a spec's inflate stage."""
    i = spec.inflate
    args = ["--path", i.path, "--scaler", i.scaler]
    if i.filters:
        args += ["--filters", i.filters]
    args += ["--postfilter", i.postfilter]
    if i.postfilter == "unsharp":
        args += ["--unsharp-size", str(i.unsharp_size), "--unsharp-amount", repr(i.unsharp_amount)]
    # `--postfilter learned` needs nothing more: the filter's shape and weights are in
    # postfilter.bin inside archive.zip, so the training keys (hidden, steps, ...) stay out of inflate.
    return args


def export_run(record: RunRecord, source: SourceSpec, dest: Path) -> Path:
    """Write a finished run of the ledger (its spec completed by the lab's `source`) as a submission folder."""
    if record.status != "done":
        raise UserError(f"{record.id} is {record.status}: only finished runs can be exported")
    spec = parse_spec(record.spec, source)
    if spec.run.submission:
        raise UserError(f"{record.id} scored an external submission ({spec.run.submission}): export it from there")
    return export_submission(Path(record.artifacts) / "archive.zip", spec, dest, origin=f"run {record.id}")


def export_submission(archive: Path, spec: RunSpec, dest: Path, origin: str = "") -> Path:
    """Write archive.zip, inflate.sh, inflate.py and the spec into `dest` (new or empty)."""
    if not archive.is_file():
        raise UserError(f"{archive} not found: only finished runs with an archive can be exported")
    if dest.exists() and any(dest.iterdir()):
        raise UserError(f"{dest} is not empty: export into a new folder")
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(archive, dest / "archive.zip")
    shutil.copy2(inflate_runtime.__file__, dest / "inflate.py")
    script = dest / "inflate.sh"
    script.write_text(
        _INFLATE_SH.format(origin=f" from {origin}" if origin else "", args=shlex.join(inflate_args(spec)))
    )
    script.chmod(0o755)
    (dest / "spec.toml").write_text(spec_to_toml(spec))
    return dest
