"""libavfilter chains checked where a spec enters, against the FFmpeg inside this PyAV.

A chain is built into a real graph at the challenge clip's size and configured, so whatever
FFmpeg would refuse when the run starts is refused while the spec is read, as one line that names
the filter. PyAV's wheels leave out the GPL filters (hqdn3d, eq, boxblur, ...), so a name that
is absent is answered with the filters present that do the same job.
"""

from __future__ import annotations

import difflib
from functools import lru_cache

import av

from engine.media.ffmpeg_log import ffmpeg_log, reason
from engine.media.inflate_runtime import HEIGHT, WIDTH, build_graph, split_chain

# Filters people reach for that PyAV's FFmpeg lacks (GPL, or built on outside libraries), and
# the ones it has that do the same job.
STAND_INS: dict[str, tuple[str, ...]] = {
    "hqdn3d": ("atadenoise", "nlmeans", "fftdnoiz", "bm3d", "dctdnoiz"),
    "eq": ("colorlevels", "colorcontrast", "curves", "lutyuv", "huesaturation"),
    "boxblur": ("avgblur", "gblur"),
    "smartblur": ("bilateral", "gblur", "yaepblur"),
    "owdenoise": ("fftdnoiz", "dctdnoiz", "nlmeans"),
    "vaguedenoiser": ("fftdnoiz", "dctdnoiz", "nlmeans"),
    "pp": ("deblock",),
    "pp7": ("deblock", "dctdnoiz"),
    "spp": ("deblock", "dctdnoiz"),
    "uspp": ("deblock", "dctdnoiz"),
    "fspp": ("deblock", "dctdnoiz"),
    "delogo": ("removelogo",),
    "zscale": ("scale", "colorspace"),
}


class FilterChainError(ValueError):
    """A chain this FFmpeg cannot run; the message names the filter and what to use instead."""


def stand_ins(name: str) -> list[str]:
    """Filters present in this build that could replace `name`: known stand-ins, else close spellings."""
    present = av.filter.filters_available
    known = [f for f in STAND_INS.get(name, ()) if f in present]
    return known or difflib.get_close_matches(name, sorted(present), n=4, cutoff=0.6)


def _missing(name: str) -> str:
    why = " (a GPL filter, left out of PyAV's FFmpeg)" if name in STAND_INS else ""
    others = stand_ins(name)
    fix = (
        f": try {', '.join(others)}"
        if others
        else ": see the filters in `python -c 'import av; print(av.filter.filters_available)'`"
    )
    return f"no filter {name!r} in this FFmpeg{why}{fix}"


@lru_cache(maxsize=256)
def check_chain(chain: str, width: int = WIDTH, height: int = HEIGHT) -> None:
    """Refuse (FilterChainError) a chain that FFmpeg could not build for yuv420p frames of width x height."""
    try:
        filters = split_chain(chain)
    except ValueError as exc:
        raise FilterChainError(str(exc)) from None
    for name, _ in filters:
        if name not in av.filter.filters_available:
            raise FilterChainError(_missing(name))
    for end in range(1, len(filters) + 1):  # grown one filter at a time, so a refusal names its filter
        name, args = filters[end - 1]
        with ffmpeg_log() as lines:
            try:
                build_graph(filters[:end], width, height, "yuv420p")
            except (av.error.FFmpegError, ValueError) as exc:
                shown = name if args is None else f"{name}={args}"
                raise FilterChainError(
                    f"{shown}: {reason(lines, str(exc))}: see `ffmpeg -h filter={name}` for its options"
                ) from None
