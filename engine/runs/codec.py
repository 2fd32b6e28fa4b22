"""The codec plug-in API: what a run kind declares and does, so that anyone can add one.

A run kind (a "codec") is a `Codec` subclass registered under the entry-point group
`comma_tui.codecs` (see `engine.runs.registry`). It declares:
- the `[encode] codec` values it runs (`codecs`), and its own spec section and keys (`section`,
  `keys`: a frozen dataclass whose fields, types and defaults are the keys), checked with the
  same one-line `SpecError`s as every spec (`check` adds the ranges and cross-key rules);
- its stages before the shared `archive`, `inflate` and `score` (`stages`), which it runs inside
  `encode` through `job.stages`, each reporting progress with an ETA;
- what it writes into archive.zip (`encode` returns the files), how the lab inflates it
  (`inflate`), and the inflate program `comma-tui export` ships (`program`), which must run as
  `inflate.sh ARCHIVE_DIR OUT_DIR NAMES_FILE` with torch and numpy at most, on CPU or CUDA.
The pipeline (`engine.runs.pipeline`) does the rest the same way for every kind: the checks
before a run, the archive, unpacking it as the evaluator does, scoring, and the record.

A codec class is imported whenever a spec is read (the console reads specs), so its module must
stay light: import torch and the heavy parts inside `encode` and `inflate`.

Plug-ins may add stages to the built-in PyAV codecs too (`StagePlugin`): a preprocessing step on
the source frames before the encode, or a post-filter on the inflated frames that ships its own
inflate-side module. A spec turns one on by having its section.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import av
    import numpy as np

    from engine.runs.progress import Stages
    from engine.runs.spec import RunSpec
    from engine.scoring.scorer import Scorer

#: A codec's resumable state in its run's folder: kept when the run fails, is interrupted or is
#: cancelled (a later run can start from it), removed with nothing else.
CHECKPOINT_NAME = "checkpoint.pt"

Log = Callable[[str], None]


@dataclass(frozen=True)
class Job:
    """What a codec's `encode` is handed: the spec and the run's places, clip, scorer and stages."""

    spec: RunSpec
    run_dir: Path  # the run's folder: its files stay (a checkpoint, a curve); `work` is removed at the end
    work: Path
    clip: Path
    frames: int
    scorer: Scorer
    stages: Stages
    cache_dir: Path | None = None  # the lab's cache (reference network outputs), when there is a lab

    @property
    def log(self) -> Log:
        """The run's log."""
        return self.stages.log


@dataclass(frozen=True)
class Encoded:
    """What `encode` made: the files archive.zip holds (name -> file) and a summary for the run's record."""

    files: dict[str, Path]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InflateProgram:
    """What `export` ships besides archive.zip: files (name in the submission -> file) and inflate.py's flags.

    `files` must hold `inflate.py`; inflate.sh runs `python3 inflate.py ARCHIVE_DIR OUT_DIR NAMES_FILE *args`.
    """

    files: dict[str, Path]
    args: tuple[str, ...] = ()


class Plugin(ABC):  # noqa: B024 - the shared declarations of codecs and stage plug-ins; no method is required here
    """What every plug-in declares: its spec section and keys."""

    section: ClassVar[str] = ""  # its own [section]; "" = none
    keys: ClassVar[type | None] = None  # a frozen dataclass: the section's keys, types and defaults

    def check(self, spec: RunSpec) -> None:  # noqa: B027 - optional
        """Raise `SpecError` for values out of range or keys that do not go together."""

    def preflight(self, spec: RunSpec, runs_dir: Path) -> None:  # noqa: B027 - optional
        """Checks that need the lab (its runs' folders), in a moment and without torch; raise `UserError`."""

    def section_of(self, spec: RunSpec) -> Any:
        """This plug-in's keys in `spec` (an instance of `keys`)."""
        return spec.plugins[self.section]


class Codec(Plugin):
    """A run kind: spec -> archive files -> inflated frames, and the program that inflates them anywhere."""

    name: ClassVar[str]  # the kind's name, as registered
    codecs: ClassVar[tuple[str, ...]]  # the [encode] codec values it runs

    def stages(self, spec: Mapping[str, Any]) -> tuple[str, ...]:
        """Its stages before archive, inflate and score, for a spec as stored (sections of plain values)."""
        return ("encode",)

    @abstractmethod
    def encode(self, job: Job) -> Encoded:
        """Run the stages before the archive (each inside `job.stages.stage(name)`); files go under `job.work`."""

    @abstractmethod
    def inflate(self, spec: RunSpec, archive_dir: Path, raw: Path, progress: Callable[[int], None]) -> int:
        """Rebuild the clip's frames from the unpacked archive into `raw` (874x1164 RGB24); returns the count."""

    @abstractmethod
    def program(self, spec: RunSpec) -> InflateProgram:
        """The inflate program export ships for a run of `spec`."""


class PreprocessPlugin(Plugin):
    """A step on the source frames before the PyAV encode (on for a spec with its section)."""

    role: ClassVar[str] = "preprocess"

    @abstractmethod
    def frames(self, spec: RunSpec, frames: Iterable[av.VideoFrame]) -> Iterator[av.VideoFrame]:
        """The decoded source frames (the clip's size and pixel format), changed; same count."""


class PostFilterPlugin(Plugin):
    """A filter on the inflated RGB frames (on for a spec with its section), after any built-in post-filter.

    `runtime` is a standalone module (torch, av and numpy at most) shipped beside inflate.py as
    `postfilter_<section>.py`. It defines `make(archive_dir, options) -> callable` that turns one
    (874, 1164, 3) uint8 frame into another; `options` are the section's keys. The lab's inflate
    loads the same file, so the export inflates as the lab did. `prepare` may add files to the
    archive (a learned filter's weights), in stages of its own (`stages`).
    """

    role: ClassVar[str] = "postfilter"
    runtime: ClassVar[Path]

    def stages(self) -> tuple[str, ...]:
        """Its stages, run after the encode and before the archive."""
        return ()

    def prepare(self, job: Job, video: Path) -> dict[str, Path]:
        """Files for archive.zip, made from the run's encode `video`."""
        return {}


PostFilter = Callable[["np.ndarray"], "np.ndarray"]
