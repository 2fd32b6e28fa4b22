"""A TinyDB storage that never leaves a half-written file behind.

TinyDB's own `JSONStorage` rewrites its file in place: it seeks to the start, writes, and
truncates. A process killed in the middle (SIGKILL, OOM, power loss) leaves a file that is part
new, part old, or cut short: broken JSON, and with it every run the lab ever measured.
`AtomicJSONStorage` writes the whole new state to a temporary file in the same folder, fsyncs
it, renames it over the old file (atomic on POSIX) and fsyncs the folder so the rename itself
is durable. A reader, or a process that dies at any instant, therefore sees either the old file
or the new one, never a mixture.

The storage does not lock: callers hold `ledger.lock.FileLock` around every read-modify-write,
which TinyDB's insert/update always are. Reads need no lock, because a rename is atomic.

A file that does not parse is never "repaired": the error names it, and it is left byte for
byte as it was, so that a person can look at it or restore it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import orjson
from tinydb.storages import Storage

from ledger.errors import LedgerError
from ledger.files import TEMP_SUFFIX, atomic_write
from ledger.schema import META_TABLE, Tables, migrate, stamp

#: Identity of one version of a file: (inode, size, mtime in ns). A rename gives a new inode.
Signature = tuple[int, int, int]
#: Identity of one version of a ledger file that survives a copy of the lab: (write token, size,
#: mtime in ns). Files written before tokens existed use their inode in place of the token.
Version = tuple[str, int, int]

_HEAD = re.compile(rb'^\{"_meta":\{"1":(\{[^{}]*\})\}')
_HEAD_BYTES = 256


def signature_of(st: os.stat_result) -> Signature:
    """The identity of a file version, from its stat."""
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def version_of(token: Any, sig: Signature) -> Version:
    """The version of a file with this write token (None for files written before tokens) and stat."""
    return (token if isinstance(token, str) else f"inode {sig[0]}", sig[1], sig[2])


def token_of(tables: Tables) -> str | None:
    """The write token stamped into a file's `_meta` (None when it has none)."""
    meta = tables.get(META_TABLE, {}).get("1")
    token = meta.get("token") if isinstance(meta, dict) else None
    return token if isinstance(token, str) else None


def read_version(path: Path) -> tuple[Version, Signature] | None:
    """The version and signature of a ledger file, read from its head alone (None when it does not exist)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        sig = signature_of(os.fstat(fd))
        head = os.read(fd, _HEAD_BYTES)
    finally:
        os.close(fd)
    match = _HEAD.match(head)
    token = None
    if match:
        try:
            token = orjson.loads(match.group(1)).get("token")
        except orjson.JSONDecodeError:
            token = None
    return version_of(token, sig), sig


def _damaged(path: Path, what: str) -> LedgerError:
    return LedgerError(
        f"ledger file {path} is damaged ({what}); it was left untouched: move it aside and restore it "
        "from a backup (comma-tui writes it atomically, so something else changed it)"
    )


def read_tables(path: Path, kind: str) -> tuple[Tables | None, Signature | None]:
    """A ledger file's tables in the current schema, and the signature of the version read.

    A missing file is (None, None); a damaged, foreign or newer file raises `LedgerError` and
    is left exactly as it was.
    """
    try:
        with open(path, "rb") as f:
            sig = signature_of(os.fstat(f.fileno()))
            raw = f.read()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        raise LedgerError(f"cannot read ledger file {path} ({exc.strerror}): check its permissions") from None
    if not raw.strip():
        raise _damaged(path, "it is empty")
    try:
        tables = orjson.loads(raw)
    except orjson.JSONDecodeError:
        tables = _parse_slowly(raw, path)  # the standard parser says what is wrong, and where
    if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
        raise _damaged(path, "it is JSON, but not a table of documents")
    return migrate(tables, path, kind), sig


def _parse_slowly(raw: bytes, path: Path) -> Any:
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise _damaged(path, "it is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        short = exc.pos >= len(raw.rstrip()) or exc.msg.startswith("Unterminated string")
        cut = " (it is cut short)" if short else ""
        raise _damaged(path, f"not valid JSON at line {exc.lineno} column {exc.colno}{cut}") from None


class AtomicJSONStorage(Storage):
    """A TinyDB storage for one ledger file, written atomically, versioned and migrated.

    `TinyDB(path, storage=AtomicJSONStorage, kind="runs")` is all a caller needs. After each
    write, `last_written` and `signature` describe what is now on disk, so a cache can take
    the new state without reading the file again.
    """

    def __init__(self, path: str | Path, kind: str, durable: bool = True) -> None:
        super().__init__()
        self.path = Path(path)
        self.kind = kind
        self.durable = durable
        self.last_written: Tables | None = None
        self.signature: Signature | None = None

    def read(self) -> dict[str, dict[str, Any]] | None:
        """The file's tables (None when the file does not exist yet)."""
        tables, _ = read_tables(self.path, self.kind)
        return tables

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        """Replace the file with `data`, stamped with the schema version, atomically."""
        tables = stamp(data, self.kind)
        payload = json.dumps(tables, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        atomic_write(self.path, payload.encode("utf-8"), durable=self.durable)
        self.last_written = tables
        self.signature = signature_of(os.stat(self.path))

    def close(self) -> None:
        """Nothing stays open between operations."""


def remove_stale_temps(folder: Path, prefixes: tuple[str, ...]) -> None:
    """Delete temporary files that writers of files named `prefixes...` left when they died mid-write.

    Call only while holding the lock that guards those files: then no live writer owns them.
    """
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        if not (entry.startswith(".") and entry.endswith(TEMP_SUFFIX)):
            continue
        if entry[1:].startswith(prefixes):
            (folder / entry).unlink(missing_ok=True)


__all__ = [
    "META_TABLE",
    "AtomicJSONStorage",
    "Signature",
    "Version",
    "atomic_write",
    "read_tables",
    "read_version",
    "remove_stale_temps",
    "signature_of",
    "token_of",
    "version_of",
]
