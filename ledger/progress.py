"""Live progress of running runs, in a small store of its own.

Progress changes several times a second while runs work. Written into the run history, each
update would rewrite a file of hundreds of runs; here it rewrites a file of one entry per
running run, under a lock of its own, so progress never waits on (or delays) the history.

Progress is ephemeral: it is written atomically but not fsynced (a power cut may lose the last
second of it, never a run), and a damaged progress file is read as empty and replaced by the
next update instead of stopping the lab.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.table import Document

from ledger.errors import LedgerError
from ledger.lock import FileLock
from ledger.records import run_id, run_number
from ledger.storage import AtomicJSONStorage, read_tables

KIND = "progress"
TABLE = "progress"


@dataclass(frozen=True)
class Progress:
    """Where a running run is: stage, units done of total, seconds elapsed and to go (if known).

    `detail` says a few more words (`batches · bound 23.91 vs floor 23.08` while scoring); `metrics`
    are the stage's latest live figures (a training step's loss terms and score estimate).
    """

    run_id: str
    stage: str
    done: int
    total: int
    elapsed: float
    eta: float | None
    updated: float
    detail: str = ""  # e.g. `batches · bound 23.91 vs floor 23.08` while scoring
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        """Done over total, in [0, 1] (0 when the total is unknown)."""
        return min(1.0, max(0.0, self.done / self.total)) if self.total > 0 else 0.0


class ProgressStore:
    """`progress.json` beside the ledger, guarded by `progress.lock`."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "progress.json"
        self.lock = FileLock.for_path(folder / "progress.lock")

    def set(
        self,
        run: str,
        stage: str,
        done: int,
        total: int,
        elapsed: float,
        eta: float | None,
        detail: str = "",
        metrics: Mapping[str, float] | None = None,
    ) -> Progress:
        """Record where run `run` is now (replacing what was said before); figures that are not finite are left out."""
        figures = {str(k): float(v) for k, v in (metrics or {}).items() if math.isfinite(float(v))}
        number = run_number(run)
        entry = Progress(
            run_id(number),
            str(stage),
            int(done),
            int(total),
            float(elapsed),
            _opt(eta),
            time.time(),
            str(detail),
            figures,
        )
        with self.lock:
            self._write(lambda db: db.table(TABLE).upsert(Document(asdict(entry), doc_id=number)))
        return entry

    def clear(self, run: str) -> None:
        """Forget the progress of run `run` (it finished, failed or was cancelled)."""
        number = run_number(run)
        if number not in self._read():
            return
        with self.lock:
            self._write(lambda db: db.table(TABLE).remove(doc_ids=[number]))

    def all(self) -> dict[str, Progress]:
        """The progress of every run that reported some, by run id."""
        return {run_id(n): p for n, p in sorted(self._read().items())}

    def _read(self) -> dict[int, Progress]:
        try:
            tables, _ = read_tables(self.path, KIND)
        except LedgerError:
            return {}
        entries = {}
        for doc_id, doc in ((tables or {}).get(TABLE) or {}).items():
            try:
                entries[int(doc_id)] = Progress(**doc)
            except (TypeError, ValueError):
                continue
        return entries

    def _write(self, operation: Any) -> None:
        db = TinyDB(self.path, storage=_ForgivingStorage, kind=KIND, durable=False)
        try:
            operation(db)
        finally:
            db.close()


class _ForgivingStorage(AtomicJSONStorage):
    """Reads a damaged progress file as empty, so the next write replaces it."""

    def read(self) -> dict[str, dict[str, Any]] | None:
        """The progress tables, or None (empty) when the file is missing or damaged."""
        try:
            return super().read()
        except LedgerError:
            return None


def _opt(value: float | None) -> float | None:
    return None if value is None else float(value)
