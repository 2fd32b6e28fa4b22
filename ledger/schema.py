"""The ledger files' schema version and the forward migrations between versions.

Every file the ledger writes carries a `_meta` table with the schema version and the file's kind
(runs, queue, progress). A lab outlives many versions of comma-tui, and a lab folder may be
copied between machines running different ones, so a reader must know what it is reading:

- an older file is migrated forward in memory on every read, one step at a time, and is written
  back in the current schema the next time something in it changes (reading never writes, so
  `ledger list` works on a read-only copy of a lab);
- a newer file is refused with a message to upgrade, never downgraded or overwritten;
- a file without a version is not a ledger file, and is refused.

To change the layout of a record, bump `SCHEMA_VERSION` and add `MIGRATIONS[old]`, a function
from a file's tables at version `old` to the same tables at `old + 1`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ledger.errors import LedgerError

SCHEMA_VERSION = 2
META_TABLE = "_meta"

Tables = dict[str, dict[str, Any]]


def _specs_keep_the_rgb_path(tables: Tables) -> Tables:
    """Schema 2: runs recorded before the yuv path existed went through RGB, so their specs say so.

    A spec without `path` now means the yuv path; writing `rgb` into the old specs keeps a rerun of
    an old run (or a run queued before the upgrade) producing the same archive, byte for byte.
    """
    runs = {}
    for key, doc in tables.get("runs", {}).items():
        spec = doc.get("spec")
        if isinstance(spec, dict) and spec:
            spec = dict(spec)
            for section in ("preprocess", "inflate"):
                table = spec.get(section, {})
                if isinstance(table, dict):
                    spec[section] = {"path": "rgb", **table}
            doc = {**doc, "spec": spec}
        runs[key] = doc
    return {**tables, "runs": runs} if "runs" in tables else tables


#: MIGRATIONS[v] turns a file's tables at schema v into the same tables at schema v + 1.
MIGRATIONS: dict[int, Callable[[Tables], Tables]] = {1: _specs_keep_the_rgb_path}


def stamp(tables: Tables, kind: str) -> Tables:
    """The tables with the schema version, the file's kind and a fresh write token in `_meta`.

    `_meta` comes first, so that its token can be read from the head of the file alone: the
    token is new on every write, which is how a summary tells the version it summarises (see
    `ledger.summary_file`).
    """
    meta = {"1": {"schema": SCHEMA_VERSION, "kind": kind, "token": secrets.token_hex(8)}}
    return {META_TABLE: meta} | {name: table for name, table in tables.items() if name != META_TABLE}


def version_of(tables: Tables, path: Path, kind: str) -> int:
    """The schema version a file declares; refuses files of another kind or without a version."""
    meta = tables.get(META_TABLE, {}).get("1")
    if not isinstance(meta, dict) or not isinstance(meta.get("schema"), int):
        raise LedgerError(
            f"{path} has no schema version, so it is not a comma-tui ledger file; it was left untouched: "
            "move it out of the lab's ledger folder"
        )
    if meta.get("kind") != kind:
        raise LedgerError(
            f"{path} holds {meta.get('kind')!r} data where {kind!r} data belongs; it was left untouched: "
            "move it out of the lab's ledger folder"
        )
    return int(meta["schema"])


def migrate(tables: Tables, path: Path, kind: str) -> Tables:
    """The file's tables in the current schema, migrated forward step by step if older."""
    version = version_of(tables, path, kind)
    if version > SCHEMA_VERSION:
        raise LedgerError(
            f"{path} was written by a newer comma-tui (ledger schema {version}; this one reads up to "
            f"{SCHEMA_VERSION}): upgrade comma-tui to open this lab"
        )
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise LedgerError(
                f"{path} uses ledger schema {version}, which this comma-tui cannot migrate: "
                "open the lab once with the comma-tui version that made it, or restore a newer copy"
            )
        tables = step(tables)
        version += 1
    return tables
