"""The lab's ledger: every run, what it tried, what it scored, and whether it moved the floor.

    from ledger import Lab, Ledger
    ledger = Ledger(Lab.find())
    run = ledger.add_run(spec, parent="r0042")
    ...
    run = ledger.record_result(run.id, result)   # the engine's one call: stores and reviews
    print(run.verdict, run.verdict_reason)

Modules: `lab` (the folder), `ledger` (the API), `records` (RunRecord, Metrics), `results`
(RunResult, what the engine hands in), `promotion` (verdicts), `queries` (floors, frontiers, counts),
`specdiff` (changed axes), `segments`, `storage`, `schema` and `lock` (how it is kept on disk),
`progress` and `queue_state` (live state), `export`, `artifacts`.
"""

from ledger.artifacts import load_per_pair
from ledger.errors import LedgerError
from ledger.lab import Lab, Source
from ledger.ledger import Ledger
from ledger.progress import Progress
from ledger.promotion import DEFAULT_EPSILON
from ledger.queries import Counts, NeighbourRow, TurningPoint
from ledger.records import STATUSES, VERDICTS, Metrics, Override, RunRecord, RunStatus, Verdict, run_id, run_number
from ledger.results import RunResult

__all__ = [
    "DEFAULT_EPSILON",
    "STATUSES",
    "VERDICTS",
    "Counts",
    "Lab",
    "Ledger",
    "LedgerError",
    "Metrics",
    "NeighbourRow",
    "Override",
    "Progress",
    "RunRecord",
    "RunResult",
    "RunStatus",
    "Source",
    "TurningPoint",
    "Verdict",
    "load_per_pair",
    "run_id",
    "run_number",
]
