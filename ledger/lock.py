"""An inter-process file lock around every read-modify-write of a lab's ledger.

The TUI, the scheduler, its workers and one-off CLI commands all write the same lab. TinyDB
reads the whole file, changes it in memory and writes it back; two processes doing that at once
lose one of the two changes. `FileLock` serialises them with `flock(2)` on a lock file beside
the data. The kernel drops a flock when its holder dies, SIGKILL included, so a crashed writer
never leaves the lab locked.

Within one process the lock is shared per lock file and re-entrant per thread: a `Ledger`
method may call another that also takes it, and two `Ledger` objects on the same lab (say in
two TUI worker threads) wait for each other instead of deadlocking on their own flock.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
import time
import weakref
from pathlib import Path
from types import TracebackType

from ledger.errors import LedgerError

DEFAULT_TIMEOUT = 30.0

_registry: weakref.WeakValueDictionary[str, FileLock] = weakref.WeakValueDictionary()
_registry_guard = threading.Lock()


class FileLock:
    """An exclusive, re-entrant lock on `path`, held across processes with `flock`."""

    def __init__(self, path: Path, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    @classmethod
    def for_path(cls, path: Path, timeout: float = DEFAULT_TIMEOUT) -> FileLock:
        """The one lock object of this process for `path` (so threads queue up, not deadlock)."""
        key = os.path.realpath(path)
        with _registry_guard:
            lock = _registry.get(key)
            if lock is None:
                lock = cls(Path(path), timeout)
                _registry[key] = lock
            return lock

    @property
    def held(self) -> bool:
        """Whether this process holds the lock (from any thread)."""
        return self._depth > 0

    def acquire(self) -> None:
        """Take the lock, waiting at most `timeout` seconds for another process to let go."""
        deadline = time.monotonic() + self.timeout
        if not self._thread_lock.acquire(timeout=self.timeout):
            raise self._timeout_error()
        try:
            if self._depth == 0:
                self._fd = self._lock_file(deadline)
            self._depth += 1
        except BaseException:
            self._thread_lock.release()
            raise

    def release(self) -> None:
        """Let go of one level of the lock; the file lock goes with the last level."""
        if self._depth <= 0:
            raise RuntimeError(f"release of {self.path} without acquire")
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        self._thread_lock.release()

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def _lock_file(self, deadline: float) -> int:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise LedgerError(
                f"cannot open the lock file {self.path} ({exc.strerror}): check that the lab folder is writable"
            ) from None
        pause = 0.0005
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                        raise
                if time.monotonic() >= deadline:
                    raise self._timeout_error()
                time.sleep(pause)
                pause = min(pause * 2, 0.005)
        except BaseException:
            os.close(fd)
            raise
        # Say who holds it, so a stuck lab can be explained. Best effort only.
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass
        return fd

    def _timeout_error(self) -> LedgerError:
        holder = ""
        try:
            pid = self.path.read_text().strip()
            if pid:
                holder = f" (held by pid {pid})"
        except OSError:
            pass
        return LedgerError(
            f"the lab is locked by another process{holder} for more than {self.timeout:g} s: {self.path}; "
            "wait for it to finish, or end that process if it is stuck"
        )


def _forget_locks_after_fork() -> None:
    """A forked child holds none of its parent's locks: start it with an empty registry."""
    global _registry, _registry_guard
    _registry = weakref.WeakValueDictionary()
    _registry_guard = threading.Lock()


os.register_at_fork(after_in_child=_forget_locks_after_fork)
