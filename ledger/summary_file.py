"""A segment's summary on disk: `runs-0042.sum` beside `runs-0042.json`, a cache never trusted blind.

The summary holds the `RunSummary` columns of the segment's runs in a form that opens in tens of
microseconds: one line of JSON (what it summarises, the category values, the lengths and
checksums of the parts), then the numeric columns as one little-endian float64 matrix
(`SummaryTable.matrix`), then each text column and finally the search texts as NUL-ended UTF-8
(`ledger.table.text_block`). The search texts, the largest part, are read only when a search
first needs them.

It is only a cache of its segment. It names the version of the segment it was made from (the
write token `ledger.schema.stamp` puts in the segment's head, its size and its mtime), the
schema its records were read in (a migration may change what a column reads) and the columns
it holds, and carries checksums of its parts. A reader uses it only when all of that matches
the segment on disk now; anything else (no summary, an older segment version, other
columns, a torn or damaged file) reads as None, and the caller rebuilds it from the segment.
So a summary can never disagree with its records, whichever step of a write a crash cut short.

Writers write the segment first (durably), then its summary; a summary is written atomically
but not fsynced, since losing one costs a rebuild, never a run.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from ledger.files import atomic_write
from ledger.schema import SCHEMA_VERSION
from ledger.storage import Version
from ledger.summary import COLUMNS
from ledger.table import CATEGORIES, END, NUMERIC, TEXTS, SummaryTable, Texts

FORMAT = 1
SUFFIX = ".sum"
_COLUMNS = [[c.name, c.kind] for c in COLUMNS]
_FLOAT = np.dtype("<f8")
#: Enough for the header in one read; the parts it announces are then read into buffers of
#: their own size (a read into a larger buffer than needed costs more than the read).
_FIRST_READ = 1 << 12


def summary_path(segment: Path) -> Path:
    """Where the summary of a segment file lives."""
    return segment.with_suffix(SUFFIX)


def write_summary(path: Path, version: Version, table: SummaryTable) -> bool:
    """Write a segment's summary atomically; False when the folder does not let us (a read-only lab)."""
    texts = [table.texts[name].block() for name in TEXTS]
    body = table.matrix.astype(_FLOAT).tobytes() + b"".join(texts)
    search = b"".join(table.search_blocks())
    header = {
        "format": FORMAT,
        "schema": SCHEMA_VERSION,
        "version": list(version),
        "rows": len(table),
        "columns": _COLUMNS,
        "categories": table.categories,
        "texts": [len(t) for t in texts],
        "body": [len(body), zlib.crc32(body)],
        "search": [len(search), zlib.crc32(search)],
    }
    try:
        atomic_write(path, orjson.dumps(header) + b"\n" + body + search, durable=False)
    except OSError:
        return False
    return True


def read_summary(path: Path, version: Version, rebuild_search: Callable[[np.ndarray], bytes]) -> SummaryTable | None:
    """The summary in `path` if it is whole and summarises exactly `version` of its segment, else None.

    Its search texts are read when first asked for; if the file changed by then, they come
    from `rebuild_search` (given the run numbers) instead.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        data = os.read(fd, _FIRST_READ)
        while b"\n" not in data and len(data) < size:
            data += os.read(fd, _FIRST_READ)
        end = data.find(b"\n")
        header = _header(data[:end], version) if end > 0 else None
        if header is None:
            return None
        (body_len, body_crc), (search_len, search_crc) = header["body"], header["search"]
        start = end + 1 + body_len
        if size != start + search_len:
            return None
        body = _read_at(fd, end + 1, body_len)
    except OSError:
        return None
    finally:
        os.close(fd)
    count = header["rows"]
    numbers = len(NUMERIC) * count * _FLOAT.itemsize
    if len(body) != body_len or numbers + sum(header["texts"]) != body_len or zlib.crc32(body) != body_crc:
        return None
    matrix = np.frombuffer(body, _FLOAT, len(NUMERIC) * count).reshape(len(NUMERIC), count)
    texts, at = {}, numbers
    for name, length in zip(TEXTS, header["texts"], strict=True):
        block = bytes(body[at : at + length])
        if block.count(END) != count:
            return None
        texts[name] = Texts([block], [count])
        at += length

    @cache
    def search() -> bytes:
        found = _read_search(path, start, search_len, search_crc)
        return rebuild_search(table.numbers) if found is None else found

    table = SummaryTable(matrix, header["categories"], texts, [search])
    return table


def _header(line: bytes, version: Version) -> dict[str, Any] | None:
    try:
        header = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(header, dict) or header.get("format") != FORMAT or header.get("schema") != SCHEMA_VERSION:
        return None
    if header.get("columns") != _COLUMNS or header.get("version") != list(version):
        return None
    categories = header.get("categories")
    if (
        not isinstance(header.get("rows"), int)
        or not isinstance(categories, dict)
        or set(categories) != set(CATEGORIES)
    ):
        return None
    texts = header.get("texts")
    if not isinstance(texts, list) or len(texts) != len(TEXTS):
        return None
    if not all(isinstance(header.get(key), list) and len(header[key]) == 2 for key in ("body", "search")):
        return None
    return header


def _read_at(fd: int, offset: int, length: int) -> bytearray:
    """`length` bytes from `offset` (fewer at the end of the file), read into one buffer."""
    buffer = bytearray(length)
    done = 0
    while done < length:
        got = os.preadv(fd, [memoryview(buffer)[done:]], offset + done)
        if got == 0:
            return buffer[:done]
        done += got
    return buffer


def _read_search(path: Path, start: int, length: int, crc: int) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        raw = bytes(_read_at(fd, start, length))
    except OSError:
        return None
    finally:
        os.close(fd)
    return raw if len(raw) == length and zlib.crc32(raw) == crc else None
