"""FFmpeg's own log lines, caught while a spec is checked, so its reasons reach the user's error line.

PyAV drops FFmpeg's log by default, and several refusals are only ever said there: a filter's
"No such option: foo", or x264 parsing `x264-params` and carrying on without the bad key.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import av
import av.logging

LogLine = tuple[int, str, str]  # (level, the component that said it, the message)


@contextmanager
def ffmpeg_log() -> Iterator[list[LogLine]]:
    """Catch FFmpeg's warnings and errors said on this thread inside the block (previous level restored after)."""
    previous = av.logging.get_level()
    av.logging.set_level(av.logging.WARNING)
    try:
        with av.logging.Capture() as lines:
            yield lines
    finally:
        av.logging.set_level(previous)


def reason(lines: list[LogLine], fallback: str) -> str:
    """The most telling line FFmpeg said: its first error (the cause, before the consequences)."""
    errors = [message.strip().rstrip(".") for level, _, message in lines if level <= av.logging.ERROR]
    return errors[0] if errors else fallback
