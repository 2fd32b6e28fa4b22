"""The console's garbage collector: a loaded history is left out of the automatic walks, cyclic
garbage is still freed once the console is idle, and the process gets its collector back."""

from __future__ import annotations

import gc
import time
import weakref

from comma_tui.collector import FULL_EVERY_SECONDS, IDLE_SECONDS, Collector


class Node:
    """A thing that can sit in a reference cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> weakref.ref[Node]:
    """A two-node cycle nobody holds; a weak reference says when it is freed."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_a_history_is_frozen_and_what_it_leaves_in_cycles_is_freed_at_idle() -> None:
    before = gc.get_threshold()
    collector = Collector()
    collector.start()
    try:
        assert gc.get_threshold()[2] > before[2]  # full collections made rare
        garbage = cycle()
        held = cycle()()  # alive when the history is settled
        collector.settle()
        assert garbage() is None  # the garbage of the moment is collected, not frozen
        assert gc.get_freeze_count() > 0
        left = weakref.ref(held)
        del held  # its cycle is garbage now, frozen: the automatic walks leave it alone
        gc.collect()
        assert left() is not None
        collector.at_idle()
        assert left() is not None  # somebody pressed a key a moment ago (the collector was just made)
        collector.at_idle(now=time.monotonic() + max(IDLE_SECONDS, FULL_EVERY_SECONDS) + 1)
        assert left() is None  # idle: everything walked, the cycle freed
        assert gc.get_freeze_count() > 0  # and what lives is frozen again
    finally:
        collector.stop()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
