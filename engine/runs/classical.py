"""The built-in run kind of the PyAV codecs: preprocess+encode, an optional post-filter, and its inflate.

Its sections are the core ones (`[preprocess]`, `[encode]`, `[inflate]`); a learned post-filter
adds two stages between encode and archive (train-data, train): it keeps only a bounded random
subset of frame pairs (engine.runs.postfilter), and its file ships inside archive.zip, so its
bytes are scored. Stage plug-ins hook in here: a preprocess plug-in changes the decoded source
frames before the filter graph, a post-filter plug-in runs after any built-in post-filter, and
its inflate-side module ships beside inflate.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.media import inflate_runtime
from engine.media.codecs import CODECS, CRF_RANGE, PIX_FMTS, PRESETS, params_problem
from engine.media.filters import FilterChainError, check_chain
from engine.media.inflate_runtime import LEARNED_FILTER_FILE, PATHS, VIDEO_SUFFIX
from engine.media.video import CLIP_FPS, SEQ_LEN
from engine.runs.codec import Codec, Encoded, InflateProgram, Job, PostFilterPlugin, PreprocessPlugin
from engine.runs.progress import Stages
from engine.runs.registry import stage_plugins
from engine.runs.spec import (
    PIXEL_LOSSES,
    POSTFILTERS,
    QUANT_MODES,
    SCALERS,
    InflateSpec,
    PreprocessSpec,
    RunSpec,
    SpecError,
    in_range,
    one_of,
)

if TYPE_CHECKING:
    from engine.scoring.scorer import Scorer

VIDEO_NAME = "0" + VIDEO_SUFFIX
_PARAM_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.,")


def _check_params(codec: str, params: str) -> None:
    if not params:
        return
    if codec == "libvpx-vp9":
        raise SpecError("encode.params is not supported for libvpx-vp9: use crf, preset and keyint")
    for item in params.split(":"):
        key, sep, value = item.partition("=")
        if not sep or not key or not value or not set(item) - {"="} <= _PARAM_CHARS:
            raise SpecError(
                f"encode.params item {item!r} is not key=value: write key=value:key=value "
                "(letters, digits, - _ . , only)"
            )
    problem = params_problem(codec, params)
    if problem:
        raise SpecError(f"encode.params = {params!r}: {codec} refuses it ({problem}): fix or remove that key")


def _check_chain(where: str, chain: str) -> None:
    if not chain:
        return
    try:
        check_chain(chain)
    except FilterChainError as exc:
        raise SpecError(f"{where} = {chain!r}: {exc}") from None


def _check_paths(p: PreprocessSpec, i: InflateSpec) -> None:
    one_of("preprocess.path", p.path, PATHS)
    one_of("inflate.path", i.path, PATHS)
    if p.path == "yuv" and p.denoise:
        raise SpecError(
            "preprocess.denoise is the rgb path's own denoiser: on path = 'yuv' use filters = 'atadenoise' "
            "(or nlmeans, fftdnoiz), or set preprocess.path = 'rgb'"
        )
    for where, section in (("preprocess", p), ("inflate", i)):
        if section.path == "rgb" and section.filters:
            raise SpecError(f"{where}.filters run on the yuv path: set {where}.path = 'yuv' or clear the filters")
        _check_chain(f"{where}.filters", section.filters)


def _check_preprocess(p: PreprocessSpec) -> None:
    for key, value in (("preprocess.width", p.width), ("preprocess.height", p.height)):
        if value and (value < 16 or value % 2):
            raise SpecError(f"{key} = {value} must be an even number of pixels >= 16 (or 0 for the clip's own)")
    if bool(p.width) != bool(p.height):
        raise SpecError("preprocess.width and preprocess.height go together: set both, or neither")
    one_of("preprocess.scaler", p.scaler, SCALERS)
    in_range("preprocess.denoise", p.denoise, 0.0, 30.0)


def _check_encode(spec: RunSpec) -> None:
    e = spec.encode
    lo, hi = CRF_RANGE[e.codec]
    in_range(f"encode.crf (for {e.codec})", e.crf, lo, hi)
    if e.preset:
        one_of(f"encode.preset (for {e.codec})", e.preset, PRESETS[e.codec])
    in_range("encode.keyint", e.keyint, 0, 10_000)
    one_of("encode.pix_fmt", e.pix_fmt, PIX_FMTS)
    if e.pix_fmt == "yuv420p10le" and e.codec == "libx264":
        raise SpecError("encode.pix_fmt = 'yuv420p10le' needs a 10-bit codec: use libsvtav1, libx265 or libvpx-vp9")
    in_range("encode.film_grain", e.film_grain, 0, 50)
    if (e.film_grain or e.film_grain_denoise) and e.codec != "libsvtav1":
        raise SpecError("encode.film_grain is an svt-av1 feature: set encode.codec = 'libsvtav1' or film_grain = 0")
    _check_params(e.codec, e.params)


def _check_inflate(i: InflateSpec) -> None:
    one_of("inflate.scaler", i.scaler, SCALERS)
    one_of("inflate.postfilter", i.postfilter, POSTFILTERS)
    if i.unsharp_size % 2 == 0 or not 3 <= i.unsharp_size <= 23:
        raise SpecError(f"inflate.unsharp_size = {i.unsharp_size} must be odd, 3..23")
    in_range("inflate.unsharp_amount", i.unsharp_amount, -2.0, 5.0)
    in_range("inflate.hidden", i.hidden, 1, 256)
    in_range("inflate.depth", i.depth, 2, 16)
    in_range("inflate.steps", i.steps, 0, 1_000_000)
    in_range("inflate.lr", i.lr, 0.0, 1.0)
    in_range("inflate.batch", i.batch, 1, 256)
    in_range("inflate.crop", i.crop, 8, 874)
    in_range("inflate.ema_decay", i.ema_decay, 0.0, 1.0)
    one_of("inflate.quant", i.quant, QUANT_MODES)
    one_of("inflate.pixel_loss", i.pixel_loss, PIXEL_LOSSES)


def _plugins(spec: RunSpec | Mapping[str, Any]) -> tuple[list[PreprocessPlugin], list[PostFilterPlugin]]:
    on = stage_plugins(spec.plugins if isinstance(spec, RunSpec) else spec)
    pre = [p for p in on if isinstance(p, PreprocessPlugin)]
    post = [p for p in on if isinstance(p, PostFilterPlugin)]
    return pre, post


def encode_stage(spec: RunSpec, clip: Path, frames: int, out: Path, progress: Callable[[int, int], None]) -> Path:
    """Decode the source, filter and shrink it, and encode it; returns the encoded file."""
    from engine.media.codecs import encode_frames
    from engine.media.preprocess import preprocessed

    video = out / VIDEO_NAME
    settings = spec.encode.settings()
    steps = [partial(plugin.frames, spec) for plugin in _plugins(spec)[0]]
    source = preprocessed(clip, spec.preprocess.settings(), settings.pix_fmt, steps)
    encode_frames(video, source, settings, CLIP_FPS, lambda done: progress(done, frames))
    return video


def train_stage(
    spec: RunSpec, clip: Path, frames: int, video: Path, scorer: Scorer, work: Path, stages: Stages
) -> tuple[Path, dict[str, Any]]:
    """Learn the post-filter on this run's own encode; returns postfilter.bin and its summary.

    `train-data` decodes the encode, upscaled as inflate will, beside the clip and keeps a random
    subset of pairs; `train` fits the filter on the scorer's device and writes the int8 file.
    """
    from engine.runs.postfilter import gather_pairs, train_filter, write_filter

    i, log = spec.inflate, stages.log
    with stages.stage("train-data") as clock:
        pairs = gather_pairs(video, clip, i, frames, spec.run.seed, progress=clock)
    log(f"post-filter: training on {len(pairs)} of {frames // SEQ_LEN} pairs, {i.steps} steps on {scorer.device}")
    with stages.stage("train") as clock:
        trained = train_filter(pairs, i, spec.run.seed, scorer, scorer.device, clock, log)
    path = work / LEARNED_FILTER_FILE
    size = write_filter(path, trained.packed)
    summary = {"bytes": size, "hidden": i.hidden, "depth": i.depth, "quant": i.quant, "loss": i.loss}
    summary |= {"pairs": len(pairs)} | trained.summary()
    log(
        f"post-filter: {size:,} bytes, probe loss {summary['loss_first']:.6f} -> {summary['loss_last']:.6f} "
        f"(best {summary['loss_best']:.6f} at step {summary['loss_best_step']}), {summary['steps_per_s']} steps/s"
    )
    return path, summary


def _plugin_options(spec: RunSpec, plugin: PostFilterPlugin) -> str:
    return json.dumps(asdict(plugin.section_of(spec)), sort_keys=True, separators=(",", ":"))


def _runtime_name(plugin: PostFilterPlugin) -> str:
    return f"postfilter_{plugin.section}.py"


class ClassicalCodec(Codec):
    """svt-av1, x265, x264 and vp9 through PyAV, with the built-in and plug-in post-filters."""

    name = "classical"
    codecs = CODECS

    def check(self, spec: RunSpec) -> None:
        """The [preprocess], [encode] and [inflate] rules."""
        _check_preprocess(spec.preprocess)
        _check_paths(spec.preprocess, spec.inflate)
        _check_encode(spec)
        _check_inflate(spec.inflate)
        if _plugins(spec)[0] and spec.preprocess.path != "yuv":
            raise SpecError("preprocess plug-ins run on the yuv path: set preprocess.path = 'yuv'")

    def stages(self, spec: Mapping[str, Any]) -> tuple[str, ...]:
        """encode, then the learned post-filter's training and any post-filter plug-in's stages."""
        inflate = spec.get("inflate", {})
        train = (
            ("train-data", "train") if isinstance(inflate, Mapping) and inflate.get("postfilter") == "learned" else ()
        )
        own = tuple(stage for plugin in _plugins(spec)[1] for stage in plugin.stages())
        return ("encode", *train, *own)

    def encode(self, job: Job) -> Encoded:
        """Encode the clip; train the learned post-filter and let post-filter plug-ins add their files."""
        spec = job.spec
        with job.stages.stage("encode") as clock:
            video = encode_stage(spec, job.clip, job.frames, job.work, clock)
        files, extra = {VIDEO_NAME: video}, {}
        if spec.inflate.postfilter == "learned":
            files[LEARNED_FILTER_FILE], extra["postfilter"] = train_stage(
                spec, job.clip, job.frames, video, job.scorer, job.work, job.stages
            )
        for plugin in _plugins(spec)[1]:
            files |= plugin.prepare(job, video)
        return Encoded(files, extra)

    def inflate(self, spec: RunSpec, archive_dir: Path, raw: Path, progress: Callable[[int], None]) -> int:
        """Decode the archive's video, upscale, filter and post-filter it, as the exported inflate.py does."""
        i = spec.inflate
        filters = [inflate_runtime.make_postfilter(i.postfilter, archive_dir, i.unsharp_size, i.unsharp_amount)]
        for plugin in _plugins(spec)[1]:
            options = json.loads(_plugin_options(spec, plugin))
            filters.append(inflate_runtime.plugin_filter(plugin.runtime, archive_dir, options))
        postfilter = inflate_runtime.chain_filters(filters)
        return inflate_runtime.inflate_video(
            archive_dir / VIDEO_NAME, raw, i.scaler, postfilter, progress, i.path, i.filters
        )

    def program(self, spec: RunSpec) -> InflateProgram:
        """inflate.py (engine/media/inflate_runtime.py, verbatim) with the run's inflate flags."""
        files = {"inflate.py": Path(inflate_runtime.__file__)}
        args = inflate_args(spec)
        for plugin in _plugins(spec)[1]:
            files[_runtime_name(plugin)] = Path(plugin.runtime)
            args += ["--plugin", f"{_runtime_name(plugin)}={_plugin_options(spec, plugin)}"]
        return InflateProgram(files, tuple(args))


def inflate_args(spec: RunSpec) -> list[str]:
    """The inflate.py flags that reproduce a spec's inflate stage (plug-ins aside)."""
    i = spec.inflate
    args = ["--path", i.path, "--scaler", i.scaler]
    if i.filters:
        args += ["--filters", i.filters]
    args += ["--postfilter", i.postfilter]
    if i.postfilter == "unsharp":
        args += ["--unsharp-size", str(i.unsharp_size), "--unsharp-amount", repr(i.unsharp_amount)]
    # `--postfilter learned` needs nothing more: the filter's shape and weights are in
    # postfilter.bin inside archive.zip, so the training keys (hidden, steps, ...) stay out of inflate.
    return args
