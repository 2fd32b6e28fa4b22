"""Stage plug-ins for the PyAV codecs: a preprocess step and a post-filter, each with its own section."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av

from engine.runs.codec import PostFilterPlugin, PreprocessPlugin
from engine.runs.spec import RunSpec, in_range
from tests.engine.runs.toy_plugin import bar_runtime


@dataclass(frozen=True)
class MaskKeys:
    """The [mask] section: how many top rows of luma go black before the encode."""

    rows: int = 64


class TopMask(PreprocessPlugin):
    """Black luma on the top `rows` rows of every source frame (yuv420p)."""

    section = "mask"
    keys = MaskKeys

    def check(self, spec: RunSpec) -> None:
        """rows fit the frame."""
        in_range("mask.rows", self.section_of(spec).rows, 2, 800)

    def frames(self, spec: RunSpec, frames: Iterable[av.VideoFrame]) -> Iterator[av.VideoFrame]:
        """The frames with their top rows' luma at 16 (black in limited range)."""
        rows = self.section_of(spec).rows
        for frame in frames:
            planes = frame.to_ndarray(format="yuv420p")
            planes[:rows] = 16
            yield av.VideoFrame.from_ndarray(planes, format="yuv420p")


@dataclass(frozen=True)
class BarKeys:
    """The [bar] section."""

    rows: int = 32
    level: int = 200


class BottomBar(PostFilterPlugin):
    """A grey bar over the bottom rows of every inflated frame."""

    section = "bar"
    keys = BarKeys
    runtime = Path(bar_runtime.__file__)
