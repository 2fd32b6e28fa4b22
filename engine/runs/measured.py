"""Which specs a finished run has measured already, so nobody runs the same thing twice by accident.

Two specs measure the same thing when they are equal after defaults, apart from the run's
label, notes, track and parent, none of which changes what is measured. The [source] (clip,
weights, original size) is part of the spec, so the same scorer and clip are part of the match.
A deliberate second measurement is a clone (`c`) or `queue add --again`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from engine.runs.spec import RunSpec, SourceSpec, parse_spec
from ledger import RunRecord
from ledger.errors import UserError

#: [run] keys that say where a run is filed, not what it measures.
FILING_KEYS = ("label", "notes", "track", "parent")


def measure_key(spec: RunSpec) -> str:
    """The spec as what it measures: equal keys, equal measurements."""
    data = spec.to_dict()
    data["run"] = {k: v for k, v in data["run"].items() if k not in FILING_KEYS}
    return json.dumps(data, sort_keys=True, default=str)


def stored_key(run: RunRecord, source: SourceSpec) -> str | None:
    """The measure key of a run's stored spec (None when it no longer parses: an older engine's)."""
    try:
        return measure_key(parse_spec(run.spec, source))
    except UserError:
        return None


def measured_index(runs: Iterable[RunRecord], source: SourceSpec) -> dict[str, RunRecord]:
    """Each measured spec's key, with the first finished run that measured it."""
    index: dict[str, RunRecord] = {}
    for run in runs:
        if run.measured and not run.approximate:
            key = stored_key(run, source)
            if key is not None:
                index.setdefault(key, run)
    return index
