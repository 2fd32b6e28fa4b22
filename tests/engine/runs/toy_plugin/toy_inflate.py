"""The toy codec's inflate program: numpy only, run as `inflate.py ARCHIVE_DIR OUT_DIR NAMES_FILE`.

<name>.toy is a header line `height width scale frames`, then zlib of the frames shrunk by
`scale` (uint8 RGB, frame after frame). Inflate repeats each pixel `scale` times both ways and
crops to 874x1164.
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

HEIGHT, WIDTH = 874, 1164


def inflate_file(source: Path, raw: Path, progress: Callable[[int], None] | None = None) -> int:
    """Write the frames of one .toy file into `raw`; returns how many."""
    head, _, body = source.read_bytes().partition(b"\n")
    height, width, scale, frames = (int(v) for v in head.split())
    small = np.frombuffer(zlib.decompress(body), np.uint8).reshape(frames, height, width, 3)
    with open(raw, "wb") as out:
        for index, frame in enumerate(small):
            big = frame.repeat(scale, axis=0).repeat(scale, axis=1)[:HEIGHT, :WIDTH]
            out.write(np.ascontiguousarray(big).tobytes())
            if progress:
                progress(index + 1)
    return frames


def main(argv: list[str]) -> int:
    """The official contract."""
    archive_dir, out_dir, names = (Path(a) for a in argv[:3])
    out_dir.mkdir(parents=True, exist_ok=True)
    for line in names.read_text().splitlines():
        stem = Path(line.strip()).stem
        if stem:
            inflate_file(archive_dir / f"{stem}.toy", out_dir / f"{stem}.raw")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
