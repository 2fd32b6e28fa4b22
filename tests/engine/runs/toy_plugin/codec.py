"""The toy codec: the clip shrunk by an integer factor, zlib-compressed, blown back up by repetition."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.runs.codec import Codec, Encoded, InflateProgram, Job
from engine.runs.spec import RunSpec, in_range
from tests.engine.runs.toy_plugin import toy_inflate

ARCHIVE_NAME = "0.toy"


@dataclass(frozen=True)
class ToyKeys:
    """The [toy] section."""

    scale: int = 16


class ToyCodec(Codec):
    """Every `scale`-th pixel of every frame."""

    name = "toy"
    codecs = ("toy",)
    section = "toy"
    keys = ToyKeys

    def check(self, spec: RunSpec) -> None:
        """scale is a whole factor from 1 to 64."""
        in_range("toy.scale", self.section_of(spec).scale, 1, 64)

    def stages(self, spec: Mapping[str, Any]) -> tuple[str, ...]:
        """One stage of its own."""
        return ("shrink",)

    def encode(self, job: Job) -> Encoded:
        """Shrink every frame into one zlib block."""
        from engine.media.video import iter_frames

        scale = self.section_of(job.spec).scale
        shrunk = []
        with job.stages.stage("shrink") as clock:
            for index, frame in enumerate(iter_frames(job.clip)):
                shrunk.append(frame[::scale, ::scale].copy())
                clock(index + 1, job.frames)
        height, width = shrunk[0].shape[:2]
        path = job.work / ARCHIVE_NAME
        header = f"{height} {width} {scale} {len(shrunk)}\n".encode()
        path.write_bytes(header + zlib.compress(b"".join(f.tobytes() for f in shrunk), 9))
        job.log(f"toy: {len(shrunk)} frames at {width}x{height}")
        return Encoded({ARCHIVE_NAME: path}, {"toy": {"width": width, "height": height}})

    def inflate(self, spec: RunSpec, archive_dir: Path, raw: Path, progress: Callable[[int], None]) -> int:
        """The shipped program's own inflate."""
        return toy_inflate.inflate_file(archive_dir / ARCHIVE_NAME, raw, progress)

    def program(self, spec: RunSpec) -> InflateProgram:
        """toy_inflate.py as inflate.py."""
        return InflateProgram({"inflate.py": Path(toy_inflate.__file__)})
