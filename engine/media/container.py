"""Opening a clip: the one door every reader of a clip goes through, without loading torch.

It names what is wrong before FFmpeg would say "Invalid data found when processing input": a
missing file, a Git LFS pointer left by a checkout without `git lfs pull`, a file that is not a
video.
"""

from __future__ import annotations

from pathlib import Path

import av

from engine.lfs import refuse_lfs_pointer
from ledger.errors import UserError


def open_clip(path: Path) -> av.container.InputContainer:
    """Open a clip (mkv, mp4, raw .hevc, ...) for decoding; user errors name the file and the fix."""
    if not path.is_file():
        raise UserError(f"clip not found: {path}: check the path (videos/0.mkv in the challenge repo)")
    refuse_lfs_pointer(path, "a video")
    fmt = "hevc" if path.suffix == ".hevc" else None
    try:
        container = av.open(str(path), format=fmt)
    except (av.error.FFmpegError, OSError) as exc:
        raise UserError(f"cannot read clip {path}: {exc}; pass a video PyAV can open") from None
    if not container.streams.video:
        container.close()
        raise UserError(f"clip {path} has no video stream: pass a video file")
    return container


def _count_hevc_pictures(path: Path) -> int:
    """Pictures in a raw HEVC bitstream: VCL NAL units that start a new picture."""
    data = path.read_bytes()
    pictures, i = 0, 0
    while (i := data.find(b"\x00\x00\x01", i)) >= 0:
        header = i + 3
        if header + 2 < len(data):
            nal_type = (data[header] >> 1) & 0x3F
            # first_slice_segment_in_pic_flag is the slice header's first bit
            if nal_type <= 31 and data[header + 2] & 0x80:
                pictures += 1
        i = header
    return pictures


def count_clip_frames(path: Path) -> int:
    """Number of frames in a clip, without decoding pixels."""
    container = open_clip(path)
    try:
        if path.suffix == ".hevc":
            return _count_hevc_pictures(path)
        stream = container.streams.video[0]
        if stream.frames:
            return int(stream.frames)
        # Matroska and raw bitstreams carry no frame count: count the packets that hold data.
        return sum(1 for packet in container.demux(stream) if packet.size > 0)
    finally:
        container.close()
