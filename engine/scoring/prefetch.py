"""A background thread that makes the next item of an iterator while the consumer uses this one.

Scoring runs the networks on one batch while this thread decodes and prepares the next
(`engine.scoring.evaluate`).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

import torch

PREFETCH_DEPTH = 1

T = TypeVar("T")


class Prefetch(Generic[T]):
    """Runs an iterator in a background thread, making at most `depth` items ahead of the consumer.

    The thread starts on an item only once the consumer has taken the one before it, so with
    depth 1 at most two items exist at a time: the one in use and the next. An exception in the
    thread reaches the consumer as itself, where the item it was making would have arrived.
    Closing (or leaving the `with` block) stops the thread at its next item and closes the source
    iterator there, so nothing keeps decoding behind the consumer's back.
    """

    def __init__(
        self,
        items: Iterator[T],
        depth: int = PREFETCH_DEPTH,
        name: str = "prefetch",
        thread_init: Callable[[], None] | None = None,
    ) -> None:
        """Start the thread; `thread_init` runs in it first, and has run when this returns."""
        self._items = items
        self._queue: queue.SimpleQueue[tuple[str, object]] = queue.SimpleQueue()
        self._permits = threading.Semaphore(max(1, depth))
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread_init = thread_init
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()

    def _wait_for_permit(self) -> bool:
        while not self._stop.is_set():
            if self._permits.acquire(timeout=0.05):
                return True
        return False

    def _run(self) -> None:
        try:
            try:
                if self._thread_init is not None:
                    self._thread_init()
            finally:
                self._ready.set()
            with torch.inference_mode():
                while self._wait_for_permit():
                    try:
                        item = next(self._items)
                    except StopIteration:
                        self._queue.put(("end", None))
                        return
                    self._queue.put(("item", item))
        except BaseException as exc:  # handed to the consumer, who re-raises it as itself
            self._queue.put(("error", exc))
        finally:
            close = getattr(self._items, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._stop.is_set():
            raise StopIteration
        kind, value = self._queue.get()
        if kind == "item":
            self._permits.release()  # the consumer holds this one now: the thread may make the next
            return value  # type: ignore[return-value]
        self.close()
        if kind == "error":
            raise value  # type: ignore[misc]
        raise StopIteration

    def close(self) -> None:
        """Stop the thread and wait for it (it finishes the item it is making first)."""
        self._stop.set()
        self._thread.join()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> Prefetch[T]:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
