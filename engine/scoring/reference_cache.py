"""Reference outputs kept per clip, scorer and batch layout, so a lab pays for the reference once.

Every run scores against the same reference clip, and the reference side's network outputs
depend only on that clip, the weights, where and how they ran (device, CPU threads, torch) and
the batch layout: CPU kernels round a few SegNet near-ties differently at other batch sizes.
All of that is the key. An entry is a folder, one file per batch, so it streams both ways:

    <cache_dir>/reference/<key digest>/
        header.json        format, the key, and per batch: file, pairs, sha256
        batch-00000.npz    pose (B, 12) float32 and seg (B, 384, 512) uint8, deflated

An entry is written into a `.partial-*` folder, every file fsynced, and renamed into place
whole, so a reader sees a complete entry or none. Opening one checks the header against the key
and every file against its checksum; anything wrong is logged, removed, and rebuilt by the
caller (`open` returns None), never a crash.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from engine.scoring import networks
from engine.scoring.scorer import ReferenceOutputs, Scorer
from engine.scoring.weights import file_sha256
from ledger.files import fsync_folder, write_synced

FORMAT = 1
SUBDIR = "reference"
HEADER = "header.json"
_PARTIAL = ".partial-"
_STALE_PARTIAL_S = 24 * 3600
_log = logging.getLogger(__name__)

Log = Callable[[str], None]


class CacheCorrupt(Exception):
    """A cache entry does not hold what its header promises."""


_clip_hashes: dict[tuple[str, int, int], str] = {}


def clip_sha256(path: Path) -> str:
    """The clip's sha256, remembered per (path, size, mtime) so a long session hashes it once."""
    stat = path.stat()
    memo = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if memo not in _clip_hashes:
        _clip_hashes[memo] = file_sha256(path)
    return _clip_hashes[memo]


@dataclass(frozen=True)
class CacheKey:
    """What reference outputs depend on; two runs share an entry only if every field agrees."""

    clip_sha256: str
    scorer: str
    device: str
    threads: int
    torch: str
    batch_size: int
    pairs: int

    @classmethod
    def for_run(cls, clip: Path, scorer: Scorer, batch_size: int, pairs: int) -> CacheKey:
        """The key of `clip` scored by `scorer` in batches of `batch_size` pairs."""
        numerics = scorer.numerics_key()
        return cls(
            clip_sha256=clip_sha256(clip),
            scorer=str(numerics["scorer"]),
            device=str(numerics["device"]),
            threads=int(numerics["threads"]),  # type: ignore[call-overload]
            torch=str(numerics["torch"]),
            batch_size=batch_size,
            pairs=pairs,
        )

    @property
    def digest(self) -> str:
        """The entry's folder name: a hash of every field."""
        canonical = json.dumps(asdict(self) | {"format": FORMAT}, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]

    def batch_sizes(self) -> list[int]:
        """Pairs in each batch, in order; the last one may be short."""
        return batch_sizes(self.pairs, self.batch_size)


def batch_sizes(pairs: int, batch_size: int) -> list[int]:
    """Pairs per batch, in order: full batches, then what is left."""
    full, rest = divmod(pairs, batch_size)
    return [batch_size] * full + ([rest] if rest else [])


@dataclass(frozen=True)
class CachedReference:
    """A verified entry: its batches stream back one at a time as numpy arrays."""

    folder: Path
    key: CacheKey
    files: tuple[tuple[str, int, str], ...]  # (file name, pairs, sha256) per batch

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(pose (B, 12) float32, seg (B, 384, 512) uint8) per batch; CacheCorrupt if a file changed."""
        for name, pairs, sha in self.files:
            yield _read_batch(self.folder / name, pairs, sha)


def _read_batch(path: Path, pairs: int, sha: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CacheCorrupt(f"{path.name} cannot be read ({exc})") from None
    if hashlib.sha256(data).hexdigest() != sha:
        raise CacheCorrupt(f"{path.name} does not match its checksum")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            pose, seg = arrays["pose"], arrays["seg"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise CacheCorrupt(f"{path.name} is not a batch file ({exc})") from None
    shapes = {"pose": (pairs, networks.POSE_OUT), "seg": (pairs, networks.MODEL_H, networks.MODEL_W)}
    if (pose.dtype, pose.shape, seg.dtype, seg.shape) != (np.float32, shapes["pose"], np.uint8, shapes["seg"]):
        raise CacheCorrupt(f"{path.name} holds {pose.dtype}{pose.shape} / {seg.dtype}{seg.shape}, not {pairs} pairs")
    return pose, seg


class ReferenceCache:
    """The reference entries of one cache folder (a lab's `cache/`)."""

    def __init__(self, cache_dir: str | os.PathLike[str], log: Log | None = None) -> None:
        self.root = Path(cache_dir) / SUBDIR
        self.log: Log = log or _log.warning

    def entry(self, key: CacheKey) -> Path:
        """Where the entry for `key` lives (whether or not it exists)."""
        return self.root / key.digest

    def open(self, key: CacheKey) -> CachedReference | None:
        """The verified entry for `key`, or None; a damaged entry is logged and removed first."""
        folder = self.entry(key)
        if not folder.is_dir():
            return None
        try:
            return self._verify(folder, key)
        except CacheCorrupt as exc:
            self.discard(folder, str(exc))
            return None

    def _verify(self, folder: Path, key: CacheKey) -> CachedReference:
        try:
            header = json.loads((folder / HEADER).read_text())
            if header.get("format") != FORMAT or header.get("key") != asdict(key):
                raise CacheCorrupt("its header is for another key or format")
            files = tuple((str(b["file"]), int(b["pairs"]), str(b["sha256"])) for b in header["batches"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CacheCorrupt(f"its header cannot be read ({exc})") from None
        if [pairs for _, pairs, _ in files] != key.batch_sizes():
            raise CacheCorrupt("its batches do not cover the clip's pairs")
        for name, _, sha in files:
            path = folder / name
            if Path(name).name != name or not path.is_file() or file_sha256(path) != sha:
                raise CacheCorrupt(f"{name} is missing or does not match its checksum")
        return CachedReference(folder, key, files)

    def discard(self, folder: Path, reason: str) -> None:
        """Log why an entry is unusable and remove it (moved aside first, so readers never see half)."""
        self.log(f"reference cache {folder.name} is unusable ({reason}): removed, it will be rebuilt")
        doomed = folder.with_name(f"{folder.name}.corrupt-{uuid.uuid4().hex[:8]}")
        try:
            folder.rename(doomed)
        except OSError:
            return  # already gone: another process got there first
        shutil.rmtree(doomed, ignore_errors=True)

    def writer(self, key: CacheKey) -> CacheWriter:
        """A writer that builds the entry for `key` batch by batch."""
        return CacheWriter(self, key)

    def sweep(self) -> None:
        """Remove what crashed writers left behind (partial and corrupt folders over a day old)."""
        cutoff = time.time() - _STALE_PARTIAL_S
        for path in self.root.iterdir():
            try:
                stale = (_PARTIAL in path.name or ".corrupt-" in path.name) and path.stat().st_mtime < cutoff
            except OSError:
                continue  # removed meanwhile by another process
            if stale:
                shutil.rmtree(path, ignore_errors=True)


class CacheWriter:
    """Writes one entry into a partial folder and renames it into place on `commit`.

    The cache only saves time, so a failing disk must not fail a run: the first OSError is
    logged, the partial entry dropped, and the writer does nothing from then on.
    """

    def __init__(self, cache: ReferenceCache, key: CacheKey) -> None:
        self.cache = cache
        self.key = key
        self.partial = cache.root / f"{key.digest}{_PARTIAL}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._files: list[dict[str, object]] = []
        self.failed = False
        try:
            cache.root.mkdir(parents=True, exist_ok=True)
            cache.sweep()
            self.partial.mkdir()
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        self.failed = True
        self.cache.log(f"reference cache cannot be written in {self.cache.root} ({exc}): scoring goes on without it")
        self.abort()

    def add(self, ref: ReferenceOutputs) -> None:
        """Append the next batch's reference outputs."""
        if self.failed:
            return
        pose = ref.pose.detach().cpu().numpy().astype(np.float32, copy=False)
        seg = ref.seg.detach().cpu().numpy().astype(np.uint8, copy=False)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, pose=pose, seg=seg)
        data = buffer.getvalue()
        name = f"batch-{len(self._files):05d}.npz"
        try:
            write_synced(self.partial / name, data)
        except OSError as exc:
            self._fail(exc)
            return
        self._files.append({"file": name, "pairs": int(pose.shape[0]), "sha256": hashlib.sha256(data).hexdigest()})

    def commit(self) -> Path | None:
        """Write the header and move the entry into place; returns its folder (None if writing failed)."""
        if self.failed:
            return None
        if [f["pairs"] for f in self._files] != self.key.batch_sizes():
            self.abort()
            raise ValueError(f"cache entry has batches {[f['pairs'] for f in self._files]}, not the clip's")
        header = {"format": FORMAT, "key": asdict(self.key), "batches": self._files}
        final = self.cache.entry(self.key)
        try:
            write_synced(self.partial / HEADER, json.dumps(header, indent=1).encode())
            fsync_folder(self.partial)
        except OSError as exc:
            self._fail(exc)
            return None
        try:
            self.partial.rename(final)
        except OSError:
            # Another process committed the same entry first; theirs is as good as ours.
            self.abort()
            return final
        fsync_folder(final.parent)
        return final

    def abort(self) -> None:
        """Drop the partial entry."""
        shutil.rmtree(self.partial, ignore_errors=True)

    def __enter__(self) -> CacheWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is not None:
            self.abort()
