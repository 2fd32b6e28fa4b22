"""Run specs: what to try, validated once where it enters (a TOML file, a form, a sweep).

A spec has sections `source, run, preprocess, encode, archive, inflate, score`, plus the section
of its codec when that is a plug-in (`[neural]` for `encode.codec = "neural"`) and of any stage
plug-in it turns on (see `engine.runs.codec`). Every key has a documented default except the
source, which a lab can supply. Unknown keys, wrong types and values out of range are
`SpecError`s that name the key and what it accepts. Inside the engine a `RunSpec` is trusted.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.defaults import DEFAULT_PREVIEW_PAIRS, MAX_PREVIEW_PAIRS, MIN_PREVIEW_PAIRS, SCORE_BATCH_SIZE
from engine.media.codecs import EncodeSettings
from engine.media.preprocess import Preprocess
from engine.scoring.early import DEFAULT_CONFIDENCE
from ledger.errors import UserError
from ledger.lab import EARLY_MODES
from ledger.records import Job

if TYPE_CHECKING:
    from ledger import Lab

SCALERS = ("lanczos", "bicubic", "bilinear", "area", "spline")
POSTFILTERS = ("none", "unsharp", "learned")
COMPRESSIONS = ("stored", "deflated")
QUANT_MODES = ("per-tensor", "per-channel")
LOSSES = ("pixel", "scorer")
PIXEL_LOSSES = ("l1", "mse")
_PARAM_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.,")


class SpecError(UserError):
    """A spec that cannot run; the message names the key and what it accepts."""


@dataclass(frozen=True)
class SourceSpec:
    """The clip to compress, the scorer's weights, and the size the rate divides by."""

    clip: str = ""
    models: str = ""
    original_bytes: int = 0  # 0 = the clip's file size


def stage_names(spec: Mapping[str, Any], job: str = Job.RUN) -> tuple[str, ...]:
    """The stages a run of `spec` (as stored: sections of plain values) goes through, in order.

    Its codec says the stages before the archive (see `engine.runs.codec`); archive, inflate and
    score are every run's. A codec that cannot be loaded shows only those. A rescore (`Job.RESCORE`)
    only inflates the kept archive and scores it.
    """
    if job == Job.RESCORE:
        return ("inflate", "score")
    if spec.get("run", {}).get("submission"):
        return ("archive", "inflate", "score")
    from engine.runs.registry import codec_of

    try:
        own = codec_of(spec).stages(spec)
    except UserError:
        own = ()
    return (*own, "archive", "inflate", "score")


def lab_source(lab: Lab) -> SourceSpec:
    """The lab's default source as the spec's [source] section."""
    source = lab.source()
    return SourceSpec(clip=str(source.clip), models=str(source.models), original_bytes=source.original_bytes or 0)


@dataclass(frozen=True)
class RunMeta:
    track: str = "main"
    label: str = ""
    notes: str = ""
    parent: str = ""
    seed: int = 0
    timeout: int = 0  # seconds, 0 = none
    submission: str = ""  # an official-layout folder to score instead of encoding


@dataclass(frozen=True)
class PreprocessSpec:
    path: str = "yuv"  # yuv: FFmpeg's way; rgb: through RGB, as specs recorded before it did
    width: int = 0  # 0 = the clip's own
    height: int = 0
    scaler: str = "lanczos"
    filters: str = ""  # a libavfilter chain before the resize (yuv path), e.g. "atadenoise"
    denoise: float = 0.0  # the rgb path's hqdn3d-style strength, 0 = off

    def settings(self) -> Preprocess:
        """What the preprocess stage does with the source frames."""
        return Preprocess(self.path, self.width, self.height, self.scaler, self.denoise, self.filters)


@dataclass(frozen=True)
class EncodeSpec:
    codec: str = "libsvtav1"
    crf: int = 35
    preset: str = ""  # "" = the codec's default
    keyint: int = 0
    pix_fmt: str = "yuv420p"
    film_grain: int = 0
    film_grain_denoise: bool = False
    params: str = ""  # key=value:key=value, passed to svtav1-params / x265-params / x264-params

    def settings(self) -> EncodeSettings:
        """The codec settings this spec asks for."""
        params = dict(item.split("=", 1) for item in self.params.split(":") if item)
        return EncodeSettings(
            codec=self.codec,
            crf=self.crf,
            preset=self.preset or None,
            keyint=self.keyint,
            pix_fmt=self.pix_fmt,
            film_grain=self.film_grain,
            film_grain_denoise=self.film_grain_denoise,
            params=params,
        )


@dataclass(frozen=True)
class ArchiveSpec:
    compression: str = "stored"


@dataclass(frozen=True)
class InflateSpec:
    path: str = "yuv"  # yuv: upscale and filter in YUV, then RGB24; rgb: to RGB first, as before
    scaler: str = "lanczos"
    filters: str = ""  # a libavfilter chain after the upscale (yuv path), e.g. "unsharp=5:5:0.6"
    postfilter: str = "none"
    unsharp_size: int = 5
    unsharp_amount: float = 0.5
    # The learned post-filter ("long1000 QAT+EMA h64" by default).
    hidden: int = 64
    depth: int = 3
    steps: int = 1000
    lr: float = 2e-3
    batch: int = 8  # crops per step; 8 beat 4 at the same crops seen (demo assets, h64)
    crop: int = 128
    ema_decay: float = 0.997
    quant: str = "per-channel"
    loss: str | dict[str, float] = "pixel"
    pixel_loss: str = "l1"


@dataclass(frozen=True)
class ScoreSpec:
    device: str = "auto"
    batch_size: int = SCORE_BATCH_SIZE
    # Early verdicts: "auto" stops a run that has lost to its floor for sure (`engine.scoring.early`),
    # "off" always scores in full; "" takes the lab's default (`[score] early` in lab.toml, else auto).
    early: str = ""
    confidence: float = DEFAULT_CONFIDENCE
    # Pairs whose frames and class maps are kept for the compare view (`engine.scoring.previews`); 0: none.
    previews: int = DEFAULT_PREVIEW_PAIRS

    def early_mode(self, lab_default: str | None) -> str:
        """auto or off: the spec's own choice, else the lab's, else auto."""
        return self.early or lab_default or "auto"


@dataclass(frozen=True)
class RunSpec:
    """A whole experiment."""

    source: SourceSpec = field(default_factory=SourceSpec)
    run: RunMeta = field(default_factory=RunMeta)
    preprocess: PreprocessSpec = field(default_factory=PreprocessSpec)
    encode: EncodeSpec = field(default_factory=EncodeSpec)
    archive: ArchiveSpec = field(default_factory=ArchiveSpec)
    inflate: InflateSpec = field(default_factory=InflateSpec)
    score: ScoreSpec = field(default_factory=ScoreSpec)
    plugins: Mapping[str, Any] = field(default_factory=dict)  # plug-in sections: name -> its keys dataclass

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain nested dict, for the ledger and for writing back as TOML."""
        data = {name: asdict(getattr(self, name)) for name in CORE_SECTIONS}
        return data | {name: asdict(keys) for name, keys in self.plugins.items()}

    def with_value(self, axis: str, value: Any) -> RunSpec:
        """A copy with one axis changed (`crf` or `encode.crf`), validated like a file."""
        section, key = resolve_axis(axis, self)
        data = self.to_dict()
        data[section][key] = value
        return parse_spec(data)


_SECTION_CLASSES: dict[str, type] = {
    "source": SourceSpec,
    "run": RunMeta,
    "preprocess": PreprocessSpec,
    "encode": EncodeSpec,
    "archive": ArchiveSpec,
    "inflate": InflateSpec,
    "score": ScoreSpec,
}
CORE_SECTIONS = tuple(_SECTION_CLASSES)


def _plugin_sections() -> dict[str, type]:
    from engine.runs.registry import registry

    return registry().sections()


def _axis_sections(spec: RunSpec | None) -> dict[str, type]:
    """Where an axis is looked for: the core sections, and the spec's own plug-in sections.

    Without a spec, a plug-in section is searched only for keys no core section has, so
    `steps` stays the learned post-filter's (`inflate.steps`) and `latent_dim` is the neural codec's.
    """
    if spec is not None:
        return _SECTION_CLASSES | {name: type(keys) for name, keys in spec.plugins.items()}
    return _SECTION_CLASSES | _plugin_sections()


def resolve_axis(axis: str, spec: RunSpec | None = None) -> tuple[str, str]:
    """`crf` -> ("encode", "crf"); `inflate.scaler` stays explicit; ambiguous or unknown is an error."""
    sections = _axis_sections(spec)
    if "." in axis:
        section, key = axis.split(".", 1)
        if section in sections and key in {f.name for f in fields(sections[section])}:
            return section, key
        raise SpecError(f"unknown axis {axis!r}: use section.key, e.g. encode.crf or inflate.scaler")
    owners = [s for s, cls in sections.items() if axis in {f.name for f in fields(cls)}]
    if spec is None and len(owners) > 1:
        owners = [s for s in owners if s in _SECTION_CLASSES] or owners
    if len(owners) == 1:
        return owners[0], axis
    if not owners:
        raise SpecError(f"unknown axis {axis!r}: see the spec keys in the README (e.g. crf, film_grain, width)")
    choices = ", ".join(f"{o}.{axis}" for o in owners)
    raise SpecError(f"axis {axis!r} is in several sections: say which ({choices})")


def _weights(where: str, value: Any) -> dict[str, float]:
    """A table of named weights, e.g. `{ segnet = 1, pixel = 0.1 }`; the names are the codec's to check."""
    if not isinstance(value, Mapping):
        raise SpecError(f"{where} = {value!r} must be a table of weights, e.g. {{ segnet = 1.0, pixel = 0.1 }}")
    weights = {str(k): _typed(f"{where}.{k}", v, float) for k, v in value.items()}
    for k, v in weights.items():
        in_range(f"{where}.{k}", v, 0.0, 1e6)
    return weights


def _typed(where: str, value: Any, kind: type) -> Any:
    if kind is dict:
        return _weights(where, value)
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise SpecError(f"{where} = {value!r} must be true or false")
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise SpecError(f"{where} = {value!r} must be a whole number")
    if kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise SpecError(f"{where} = {value!r} must be a number")
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # presets may be written as numbers
    raise SpecError(f"{where} = {value!r} must be a string")


def one_of(where: str, value: str, allowed: tuple[str, ...]) -> None:
    """SpecError unless `value` is one of `allowed` (for plug-ins' checks too)."""
    if value not in allowed:
        raise SpecError(f"{where} = {value!r} is not allowed: use one of {', '.join(allowed)}")


def in_range(where: str, value: float, lo: float, hi: float) -> None:
    """SpecError unless lo <= value <= hi (for plug-ins' checks too)."""
    if not lo <= value <= hi:
        raise SpecError(f"{where} = {value} is out of range: use {lo}..{hi}")


def _check_loss(loss: Any) -> str | dict[str, float]:
    if isinstance(loss, str):
        one_of("inflate.loss", loss, LOSSES)
        return loss
    if isinstance(loss, Mapping):
        weights = {}
        for k, v in loss.items():
            one_of("inflate.loss key", k, LOSSES)
            weights[k] = _typed(f"inflate.loss.{k}", v, float)
            in_range(f"inflate.loss.{k}", weights[k], 0.0, 1e6)
        if not weights or not any(weights.values()):
            raise SpecError("inflate.loss table has no positive weight: e.g. loss = { pixel = 1.0, scorer = 0.5 }")
        return weights
    raise SpecError(f"inflate.loss = {loss!r} must be pixel, scorer, or a table of weights")


def _validate(spec: RunSpec) -> None:
    """The checks of the sections every kind has; the codec and the stage plug-ins check theirs."""
    from engine.runs.registry import codec_named, registry

    one_of("archive.compression", spec.archive.compression, COMPRESSIONS)
    if spec.score.batch_size < 1:
        raise SpecError(f"score.batch_size = {spec.score.batch_size} must be at least 1")
    if spec.score.early:
        one_of("score.early", spec.score.early, EARLY_MODES)
    if not 0.5 <= spec.score.confidence < 1:
        raise SpecError(
            f"score.confidence = {spec.score.confidence} is out of range: use 0.5 <= confidence < 1, e.g. 0.999"
        )
    if spec.score.previews != 0 and not MIN_PREVIEW_PAIRS <= spec.score.previews <= MAX_PREVIEW_PAIRS:
        raise SpecError(
            f"score.previews = {spec.score.previews} is out of range: use 0 (none) or "
            f"{MIN_PREVIEW_PAIRS}..{MAX_PREVIEW_PAIRS} pairs, e.g. {DEFAULT_PREVIEW_PAIRS}"
        )
    if spec.run.timeout < 0:
        raise SpecError(f"run.timeout = {spec.run.timeout} must be >= 0 seconds (0 = no limit)")
    if spec.source.original_bytes < 0:
        raise SpecError(
            f"source.original_bytes = {spec.source.original_bytes} must be positive (or 0 for the clip's size)"
        )
    codec_named(spec.encode.codec).check(spec)
    for section in spec.plugins:
        stage = registry().stages.get(section)
        if stage is not None:
            stage.check(spec)


def _own_sections(data: Mapping[str, Any]) -> dict[str, type]:
    """The sections a spec may have: the core ones, its codec's, and the stage plug-ins' it has."""
    from engine.runs.registry import DEFAULT_CODEC, codec_named, registry

    encode = data.get("encode", {})
    name = encode.get("codec", DEFAULT_CODEC) if isinstance(encode, Mapping) else DEFAULT_CODEC
    codec = codec_named(name) if isinstance(name, str) else None
    own = dict(_SECTION_CLASSES)
    if codec is not None and codec.section and codec.keys is not None:
        own[codec.section] = codec.keys
    stages = registry().stages
    own |= {s: stages[s].keys for s in data if s in stages and stages[s].keys is not None}  # type: ignore[misc]
    plugin_sections = registry().sections()
    for section in data:
        if section in own:
            continue
        if section in plugin_sections:
            owners = [c for c, kind in registry().codecs.items() if kind.section == section]
            raise SpecError(f"[{section}] is for encode.codec = {owners[0]!r}: set that codec, or remove the section")
        raise SpecError(f"unknown section [{section}]: sections are {', '.join(own)}")
    return own


def _section(name: str, cls: type, table: Any) -> Any:
    if not isinstance(table, Mapping):
        raise SpecError(f"[{name}] must be a table of keys")
    known = {f.name: f for f in fields(cls)}
    extra = set(table) - set(known)
    if extra:
        key = sorted(extra)[0]
        raise SpecError(f"unknown key {name}.{key}: [{name}] takes {', '.join(known)}")
    values = {}
    for key, value in table.items():
        if name == "inflate" and key == "loss":
            values[key] = _check_loss(value)
            continue
        values[key] = _typed(f"{name}.{key}", value, _kind(known[key].type))
    return cls(**values)


def _kind(annotation: Any) -> type:
    text = str(annotation)
    return {"int": int, "float": float, "bool": bool, "str": str}.get(text, dict if text.startswith("dict") else str)


def parse_spec(data: Mapping[str, Any], default_source: SourceSpec | None = None) -> RunSpec:
    """Build and validate a spec from nested tables; a missing [source] takes the lab's."""
    own = _own_sections(data)
    sections = {name: _section(name, cls, data.get(name, {})) for name, cls in own.items()}
    source: SourceSpec = sections["source"]
    if default_source is not None and "source" not in data:
        source = default_source
    elif default_source is not None:
        source = replace(default_source, **{k: v for k, v in asdict(source).items() if k in data.get("source", {})})
    if not source.clip or not source.models:
        raise SpecError("spec has no [source] clip and models: add them, or run inside a lab (comma-tui init)")
    sections["source"] = source
    plugins = {name: sections.pop(name) for name in list(sections) if name not in _SECTION_CLASSES}
    spec = RunSpec(**sections, plugins=plugins)
    _validate(spec)
    return spec


def read_spec_file(path: str | Path) -> dict[str, Any]:
    """A TOML spec file's tables, unvalidated; relative source paths are taken from its folder."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"spec {path} not found: pass a .toml run spec (see the README's spec keys)")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"spec {path} is not valid TOML ({exc}): fix the line it names") from None
    source = data.get("source")
    if isinstance(source, dict):
        for key in ("clip", "models"):
            if isinstance(source.get(key), str) and source[key] and not Path(source[key]).is_absolute():
                source[key] = str((path.parent / source[key]).resolve())
    return data


def load_spec(path: str | Path, default_source: SourceSpec | None = None) -> RunSpec:
    """Read and validate a TOML spec file; a missing [source] takes `default_source`."""
    return parse_spec(read_spec_file(path), default_source)


def spec_source(path: str | Path) -> SourceSpec | None:
    """The spec file's own [source] when it names both clip and models (the whole spec validated), else None."""
    data = read_spec_file(path)
    source = data.get("source")
    if not isinstance(source, Mapping) or not source.get("clip") or not source.get("models"):
        return None
    return parse_spec(data).source


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def spec_to_toml(spec: RunSpec, sections: tuple[str, ...] = ()) -> str:
    """The spec (or only these sections of it) as a TOML file that `load_spec` reads back to the same spec."""
    lines: list[str] = []
    for section, table in spec.to_dict().items():
        if sections and section not in sections:
            continue
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in table.items())
        lines.append("")
    return "\n".join(lines)


def parse_axis_value(axis: str, text: str, spec: RunSpec | None = None) -> Any:
    """A sweep or form value as the type its axis takes (`35`, `0.5`, `true`, `lanczos`, `pixel=1,segnet=0.5`)."""
    section, key = resolve_axis(axis, spec)
    kind = str({f.name: f for f in fields(_axis_sections(spec)[section])}[key].type)
    if "dict" in kind and "=" in text:
        return _weights_text(f"{section}.{key}", text)
    converters: dict[str, Callable[[str], Any]] = {
        "int": int,
        "float": float,
        "bool": lambda t: {"true": True, "false": False, "1": True, "0": False}[t.lower()],
    }
    try:
        return converters.get(kind, str)(text.strip())
    except (ValueError, KeyError):
        wanted = {"int": "a whole number", "float": "a number", "bool": "true or false"}.get(kind, kind)
        raise SpecError(f"{section}.{key} value {text!r} is not {wanted}") from None


def _weights_text(where: str, text: str) -> dict[str, float]:
    weights = {}
    for item in text.split(","):
        name, _, weight = item.partition("=")
        try:
            weights[name.strip()] = float(weight)
        except ValueError:
            raise SpecError(f"{where} weight {item!r} is not name=number (e.g. pixel=1,scorer=0.5)") from None
    return weights
