"""libavfilter chains: read as libavfilter reads them, and refused where the spec enters with the reason and a fix."""

from __future__ import annotations

import pytest

from engine.media.filters import FilterChainError, check_chain
from engine.media.inflate_runtime import split_chain


def test_a_chain_splits_at_commas_outside_quotes_and_escapes() -> None:
    assert split_chain("atadenoise, unsharp=5:5:0.6") == [("atadenoise", None), ("unsharp", "5:5:0.6")]
    assert split_chain("scale='min(iw,1000)':-2,null") == [("scale", "min(iw,1000):-2"), ("null", None)]
    assert split_chain(r"scale=min(iw\,1000):-2") == [("scale", "min(iw,1000):-2")]
    with pytest.raises(ValueError, match="no \\[labels\\]"):
        split_chain("[in]null[out]")
    with pytest.raises(ValueError, match="empty filter"):
        split_chain("null,,null")


def test_chains_this_ffmpeg_runs_pass() -> None:
    check_chain("atadenoise,unsharp=5:5:0.6")
    check_chain("scale=trunc(iw*0.45/2)*2:trunc(ih*0.45/2)*2:flags=lanczos,nlmeans=s=2")


@pytest.mark.parametrize(
    ("chain", "says"),
    [
        (
            "hqdn3d=1.5:0:0:0",
            "no filter 'hqdn3d' in this FFmpeg (a GPL filter, left out of PyAV's FFmpeg): try atadenoise",
        ),
        ("atadenoise,eq=contrast=1.05", "no filter 'eq'"),
        ("atadenoize", "no filter 'atadenoize' in this FFmpeg: try atadenoise"),
        ("unsharp=foo=3", "unsharp=foo=3: No such option: foo: see `ffmpeg -h filter=unsharp`"),
        ("atadenoise,unsharp=5:5:99", "unsharp=5:5:99: Value 99.000000 for parameter 'luma_amount' out of range"),
        ("crop=2000:2000", "crop=2000:2000: Invalid too big"),
    ],
)
def test_a_chain_this_ffmpeg_cannot_run_names_the_filter_and_the_way_out(chain: str, says: str) -> None:
    with pytest.raises(FilterChainError) as caught:
        check_chain(chain)
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_the_stand_ins_offered_are_present() -> None:
    with pytest.raises(FilterChainError) as caught:
        check_chain("eq=contrast=1.05")
    offered = str(caught.value).split("try ")[1].split(", ")
    for name in offered:
        check_chain(name)
