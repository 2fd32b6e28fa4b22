"""Python's cyclic garbage collector, kept off the keys.

A full collection walks every container the process holds, and it runs whenever enough objects
have piled up: on whichever key happens to allocate past the threshold. On the 2-core box that
was 130-230 ms with a history of 100,000 runs loaded, and 25-90 ms for Textual's own objects
alone, more than a key may take. So the console takes the history it loaded out of the walks
(`settle`, as each load ends), makes the automatic full collections rare, and walks everything
itself once nobody has pressed a key for a while (`at_idle`), so cyclic garbage is still freed.
"""

from __future__ import annotations

import gc
import time

IDLE_SECONDS = 2.0  # no key or click for this long: a pause now lands on no one
FULL_EVERY_SECONDS = 60.0
RARE = 100  # full collections wait for this many middle ones (Python's default: 10)


class Collector:
    """The console's use of `gc`: set up by `start`, undone by `stop` (tests run many consoles in one process)."""

    def __init__(self) -> None:
        self._thresholds = gc.get_threshold()
        self._last_input = self._last_full = time.monotonic()

    def start(self) -> None:
        """Make automatic full collections rare."""
        young, middle, _old = self._thresholds
        gc.set_threshold(young, middle, RARE)

    def stop(self) -> None:
        """Give the process its collector back as it was."""
        gc.set_threshold(*self._thresholds)
        gc.unfreeze()

    def settle(self) -> None:
        """After reading a history: collect the garbage of the moment, then leave all that lives out of
        the automatic walks (call it where a pause is expected: beside the read, not on a key).

        Frozen objects are still freed by reference counting when the next history replaces them;
        only the first call walks everything, the next ones walk what came since.
        """
        gc.collect()
        gc.freeze()

    def input(self) -> None:
        """A key or a click arrived."""
        self._last_input = time.monotonic()

    def at_idle(self, now: float | None = None) -> None:
        """Collect everything, the frozen too, if the console is idle and this has not run for a while
        (call it on a timer): a big history makes this the one long walk, and nobody is waiting on it.

        `now` is the monotonic time to judge by (the clock's, unless given)."""
        now = time.monotonic() if now is None else now
        if now - self._last_input >= IDLE_SECONDS and now - self._last_full >= FULL_EVERY_SECONDS:
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self._last_full = now
