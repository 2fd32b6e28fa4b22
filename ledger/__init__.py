"""The lab's ledger: every run, what it tried, what it scored, and whether it moved the floor.

    from ledger import Lab, Ledger
    ledger = Ledger(Lab.find())
    run = ledger.add_run(spec, parent="r0042")
    ...
    run = ledger.record_result(run.id, result)   # the engine's one call: stores and reviews
    print(run.verdict, run.verdict_reason)

Lists and questions are answered from the runs' summaries (`RunSummary`, a few columns per run,
in a `SummaryTable`); a full `RunRecord` is read only when asked for (`get`, `records`).

Modules: `lab` (the folder), `ledger` (the API), `records` (RunRecord, Metrics), `results`
(RunResult, what the engine hands in), `summary` and `table` (RunSummary, SummaryTable, RunView),
`promotion` (verdicts), `queries` (floors, frontiers, counts), `specdiff` (changed axes),
`segments`, `summary_file`, `storage`, `schema` and `lock` (how it is kept on disk), `progress`
and `queue_state` (live state), `export`, `artifacts`.
"""

from ledger.artifacts import load_per_pair
from ledger.errors import LedgerError
from ledger.lab import Lab, Source
from ledger.ledger import Ledger
from ledger.progress import Progress
from ledger.promotion import DEFAULT_EPSILON
from ledger.queries import Counts, Deltas, NeighbourRow, TurningPoint
from ledger.records import STATUSES, VERDICTS, Metrics, Override, RunRecord, RunStatus, Verdict, run_id, run_number
from ledger.results import RunResult
from ledger.summary import RunSummary
from ledger.table import RunView, SummaryTable

__all__ = [
    "DEFAULT_EPSILON",
    "STATUSES",
    "VERDICTS",
    "Counts",
    "Deltas",
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
    "RunSummary",
    "RunView",
    "Source",
    "SummaryTable",
    "TurningPoint",
    "Verdict",
    "load_per_pair",
    "run_id",
    "run_number",
]
