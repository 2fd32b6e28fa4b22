"""Command-palette commands beyond the screen's keys: "go to run r0123" (by id or label)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from comma_tui.lab_state import Snapshot
from comma_tui.widgets import format as fmt
from ledger import RunSummary
from ledger.errors import LedgerError

if TYPE_CHECKING:
    from comma_tui.app import CommaApp

MAX_HITS = 20
SEARCHED = 2000  # the newest runs a fuzzy search looks through


def typed_run(snapshot: Snapshot, word: str) -> RunSummary | None:
    """The run whose id is `word`, spelt in full (`r0042`), or None."""
    try:
        run = snapshot.find(word)
    except LedgerError:
        return None
    return run if run is not None and run.id == word else None


class RunCommands(Provider):
    """`go to run r0123`: type an id (or words of a label) and put the ledger's cursor on that run."""

    @property
    def lab_app(self) -> CommaApp:
        """The app, typed."""
        return cast("CommaApp", self.app)

    async def discover(self) -> Hits:
        """Offer the newest runs when the palette opens empty."""
        snapshot = self.lab_app.snapshot
        for run in reversed(snapshot.runs[-5:]) if snapshot else []:
            yield DiscoveryHit(f"Go to run {run.id} · {fmt.run_label(run)}", self._go(run.id), help="Select it")

    async def search(self, query: str) -> Hits:
        """Runs whose `go to run <id> · <label>` matches what is typed (an id typed in full comes first)."""
        snapshot = self.lab_app.snapshot
        if snapshot is None:
            return
        matcher = self.matcher(query)
        named = [run for word in query.split() if (run := typed_run(snapshot, word)) is not None]
        # An id typed in full is the run meant; else the newest runs (typing must stay quick on a huge ledger).
        found = 0
        for run in named or reversed(snapshot.runs[-SEARCHED:]):
            text = f"Go to run {run.id} · {fmt.run_label(run)}"
            score = 1.0 if named else matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), self._go(run.id), text=text, help=fmt.status_text(run.status))
                found += 1
                if found >= MAX_HITS:
                    return

    def _go(self, run_id: str) -> Callable[[], None]:
        return lambda: self.lab_app.go_to(run_id)
