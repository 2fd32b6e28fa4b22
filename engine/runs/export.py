"""Export a lab run as an official-layout submission: archive.zip, inflate.sh, inflate.py.

The run's codec says what ships (`Codec.program`): for the PyAV codecs inflate.py is
`engine/media/inflate_runtime.py` copied verbatim, so the exported inflate is the lab's inflate
(torch, av and numpy only), and inflate.sh passes the run's inflate settings; a plug-in codec
ships its own standalone program the same way.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

from engine.runs.registry import codec_named
from engine.runs.spec import RunSpec, SourceSpec, parse_spec, spec_to_toml
from ledger import RunRecord
from ledger.errors import UserError

_INFLATE_SH = """#!/usr/bin/env bash
# Made by comma-tui export{origin}. Usage: inflate.sh ARCHIVE_DIR INFLATED_DIR VIDEO_NAMES_FILE
set -euo pipefail
HERE="$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)"
exec python3 "$HERE/inflate.py" "$1" "$2" "$3" {args}
"""


def export_run(record: RunRecord, source: SourceSpec, dest: Path) -> Path:
    """Write a finished run of the ledger (its spec completed by the lab's `source`) as a submission folder."""
    if record.status != "done":
        raise UserError(f"{record.id} is {record.status}: only finished runs can be exported")
    spec = parse_spec(record.spec, source)
    if spec.run.submission:
        raise UserError(f"{record.id} scored an external submission ({spec.run.submission}): export it from there")
    return export_submission(Path(record.artifacts) / "archive.zip", spec, dest, origin=f"run {record.id}")


def export_submission(archive: Path, spec: RunSpec, dest: Path, origin: str = "") -> Path:
    """Write archive.zip, inflate.sh, the codec's inflate program and the spec into `dest` (new or empty)."""
    if not archive.is_file():
        raise UserError(f"{archive} not found: only finished runs with an archive can be exported")
    if dest.exists() and any(dest.iterdir()):
        raise UserError(f"{dest} is not empty: export into a new folder")
    dest.mkdir(parents=True, exist_ok=True)
    program = codec_named(spec.encode.codec).program(spec)
    shutil.copy2(archive, dest / "archive.zip")
    for name, source in program.files.items():
        shutil.copy2(source, dest / name)
    script = dest / "inflate.sh"
    script.write_text(_INFLATE_SH.format(origin=f" from {origin}" if origin else "", args=shlex.join(program.args)))
    script.chmod(0o755)
    (dest / "spec.toml").write_text(spec_to_toml(spec))
    return dest
