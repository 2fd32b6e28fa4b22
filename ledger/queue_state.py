"""The queue's own state, beside the runs: whether it is paused, and since when.

Queued runs themselves are run records (status queued, a priority and a position); only what
belongs to the queue as a whole lives here, in `queue.json`, written under the lab's lock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tinydb import TinyDB
from tinydb.table import Document

from ledger.storage import AtomicJSONStorage, read_tables

KIND = "queue"
TABLE = "queue"


@dataclass(frozen=True)
class QueueState:
    """Whether the queue is paused (a paused queue starts nothing new), and since when."""

    paused: bool = False
    since: float | None = None


class QueueStateStore:
    """`queue.json` in the ledger folder. Writers hold the lab's lock."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "queue.json"

    def read(self) -> QueueState:
        """The queue's state (not paused when never set). A damaged file raises LedgerError."""
        tables, _ = read_tables(self.path, KIND)
        doc = ((tables or {}).get(TABLE) or {}).get("1")
        if not isinstance(doc, dict):
            return QueueState()
        return QueueState(paused=bool(doc.get("paused", False)), since=doc.get("since"))

    def write(self, paused: bool) -> QueueState:
        """Pause or resume; `since` changes only when the state does."""
        current = self.read()
        if current.paused == paused and current.since is not None:
            return current
        state = QueueState(paused=paused, since=time.time())
        db = TinyDB(self.path, storage=AtomicJSONStorage, kind=KIND)
        try:
            db.table(TABLE).upsert(Document({"paused": state.paused, "since": state.since}, doc_id=1))
        finally:
            db.close()
        return state
