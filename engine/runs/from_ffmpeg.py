"""An ffmpeg command line read as a run spec (`comma-tui spec from-ffmpeg "ffmpeg -i ... out.mkv"`).

It reads the encoder (-c:v, -crf, -preset, -g, -bf, -pix_fmt, -svtav1-params / -x265-params /
-x264-params, vp9's -cpu-used), and -vf: a `scale` becomes width, height and scaler (its size may
be an expression of iw and ih, worked out for the challenge clip's 1164x874), and the other
filters become `preprocess.filters`, in their order. When filters follow the scale, the whole
chain goes into `filters` as written, since a spec's own resize comes after its filters.

Every option that changes the frames and that a spec cannot say is returned as a note, one per
option, so nothing is dropped silently; options that only steer the ffmpeg program (-y,
-hide_banner, -loglevel, ...) are not. A filter this FFmpeg lacks (hqdn3d, a GPL filter) is a
note that names the stand-ins present.
"""

from __future__ import annotations

import ast
import math
import operator
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from engine.media.codecs import CODECS, PARAMS_OPTION, PIX_FMTS
from engine.media.filters import FilterChainError, check_chain
from engine.media.inflate_runtime import FPS, HEIGHT, WIDTH, split_chain
from engine.runs.spec import SCALERS, SourceSpec, SpecError, parse_spec, spec_to_toml

# Options that steer the ffmpeg program and change no frame.
_PROGRAM_FLAGS = frozenset({"-y", "-n", "-nostdin", "-hide_banner", "-nostats", "-stats", "-an", "-sn", "-dn"})
_PROGRAM_OPTIONS = frozenset({"-loglevel", "-v", "-progress", "-stats_period"})
_FLAGS = _PROGRAM_FLAGS | {"-vn", "-shortest", "-bitexact"}
_CODEC_DEFAULT_CRF = {"libx264": 23, "libx265": 28, "libsvtav1": 35}
_NAMES = {"-c": "codec", "-c:v": "codec", "-codec": "codec", "-codec:v": "codec", "-vcodec": "codec"}
_NAMES |= {"-vf": "vf", "-filter:v": "vf"}
_NAMES |= {f"-{p}": p for p in PARAMS_OPTION.values()}
_FUNCTIONS: dict[str, Callable[..., float]] = {
    "trunc": math.trunc,
    "floor": math.floor,
    "ceil": math.ceil,
    "round": round,
    "min": min,
    "max": max,
    "abs": abs,
}
_OPERATORS: dict[type, Callable[..., float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


class FromFfmpegError(SpecError):
    """A command line that cannot become a spec at all; the message says what it lacks."""


@dataclass
class Translation:
    """The spec sections a command line comes to, and what of it a spec cannot say."""

    sections: dict[str, dict[str, Any]] = field(default_factory=lambda: {"preprocess": {"path": "yuv"}, "encode": {}})
    notes: list[str] = field(default_factory=list)

    @property
    def preprocess(self) -> dict[str, Any]:
        return self.sections["preprocess"]

    @property
    def encode(self) -> dict[str, Any]:
        return self.sections["encode"]


def _evaluate(expr: str, names: dict[str, float]) -> float:
    """An FFmpeg size expression of arithmetic, iw/ih and trunc/floor/ceil/round/min/max/abs."""

    def value(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return node.value
        if isinstance(node, ast.Name) and node.id in names:
            return names[node.id]
        if isinstance(node, ast.BinOp | ast.UnaryOp) and type(node.op) in _OPERATORS:
            operands = (node.left, node.right) if isinstance(node, ast.BinOp) else (node.operand,)
            return _OPERATORS[type(node.op)](*(value(o) for o in operands))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS:
            return _FUNCTIONS[node.func.id](*(value(a) for a in node.args))
        raise ValueError(expr)

    return value(ast.parse(expr.strip(), mode="eval").body)


def _scale_size(args: dict[str, str]) -> tuple[int, int]:
    """The output size of a `scale` filter on the challenge clip, as FFmpeg works it out; ValueError if unsure."""
    names = {"iw": WIDTH, "ih": HEIGHT, "in_w": WIDTH, "in_h": HEIGHT, "a": WIDTH / HEIGHT, "sar": 1.0}
    w, h = (_evaluate(args.get(k, "iw" if k == "w" else "ih"), names) for k in ("w", "h"))
    if w < 0 and h < 0:
        raise ValueError("both sides keep the aspect")
    if w < 0:  # -n: keep the aspect, a multiple of n
        w = round(h * WIDTH / (HEIGHT * -w)) * -w
    if h < 0:
        h = round(w * HEIGHT / (WIDTH * -h)) * -h
    return int(w), int(h)


def _scale_options(args: str | None) -> dict[str, str]:
    """A scale filter's options by name (w, h, flags, ...), positional ones named as FFmpeg names them."""
    options: dict[str, str] = {}
    for position, item in enumerate((args or "").split(":") if args else []):
        key, sep, value = item.partition("=")
        if sep:
            options[{"width": "w", "height": "h", "sws_flags": "flags"}.get(key, key)] = value
        else:
            options[("w", "h", "flags")[position] if position < 3 else f"#{position}"] = item
    return options


def _lift_scale(t: Translation, args: str | None) -> bool:
    """Put a scale into width, height and scaler; False if it says more than those can."""
    options = _scale_options(args)
    flags = options.pop("flags", "bicubic").split("+")  # bicubic: the scale filter's own default
    if set(options) - {"w", "h"} or len(flags) != 1 or flags[0] not in SCALERS:
        return False
    try:
        width, height = _scale_size(options)
    except (ValueError, SyntaxError, TypeError, ZeroDivisionError):
        return False
    if width % 2 or height % 2 or min(width, height) < 16:
        return False
    t.preprocess.update(width=width, height=height, scaler=flags[0])
    return True


def _read_vf(t: Translation, chain: str) -> None:
    """-vf: scale to width/height/scaler, format to pix_fmt, the rest to filters (absent ones noted)."""
    try:
        parsed = split_chain(chain)
    except ValueError as exc:
        t.notes.append(f"-vf {chain}: {exc}; left out")
        return
    kept: list[tuple[str, str | None]] = []
    for name, args in parsed:
        text = name if args is None else f"{name}={args}"
        try:
            check_chain(text)
        except FilterChainError as exc:
            t.notes.append(f"-vf {text}: {exc}; left out")
            continue
        kept.append((name, args))
    if kept and kept[-1][0] == "format" and kept[-1][1] in PIX_FMTS:
        t.encode.setdefault("pix_fmt", kept.pop()[1])
    scales = [i for i, (name, _) in enumerate(kept) if name == "scale"]
    if len(scales) == 1 and scales[0] == len(kept) - 1 and _lift_scale(t, kept[-1][1]):
        kept.pop()
    t.preprocess["filters"] = ",".join(name if args is None else f"{name}={args}" for name, args in kept)


def _read_params(t: Translation, codec: str, text: str) -> None:
    """-<codec>-params: svt-av1's film grain and keyint become their own keys, the rest stays params."""
    items = dict(item.partition("=")[::2] for item in text.split(":") if item)
    if codec == "libsvtav1":
        lifted = {"film-grain": "film_grain", "film-grain-denoise": "film_grain_denoise", "keyint": "keyint"}
        for key, spec_key in lifted.items():
            if items.get(key, "").isdigit():
                number = int(items.pop(key))
                t.encode[spec_key] = bool(number) if spec_key == "film_grain_denoise" else number
    t.encode["params"] = ":".join(f"{k}={v}" for k, v in items.items())


def _tokens(command: str) -> Iterator[str]:
    words = shlex.split(command.replace("\\\n", " "))
    if words and ("ffmpeg" in PurePath(words[0]).name or words[0].startswith("$")):
        words = words[1:]
    return iter(words)


def _options(command: str) -> tuple[dict[str, str], list[tuple[str, str]], list[str]]:
    """(the options a spec can say, by name; every other option with its value; the files named)."""
    known: dict[str, str] = {}
    other: list[tuple[str, str]] = []
    files: list[str] = []
    tokens = _tokens(command)
    for token in tokens:
        if not token.startswith("-") or token == "-":
            files.append(token)
            continue
        value = "" if token in _FLAGS else next(tokens, "")
        name = _NAMES.get(token) or token.lstrip("-").split(":")[0]
        if token in _NAMES or name in ("crf", "preset", "g", "bf", "pix_fmt", "cpu-used"):
            known[name] = value
        elif token not in _PROGRAM_FLAGS and token not in _PROGRAM_OPTIONS:
            other.append((token, value))
    return known, other, files


def _note_others(t: Translation, codec: str, other: list[tuple[str, str]], files: list[str]) -> None:
    """What the pipeline does anyway passes; everything else becomes a note."""
    matches = {("-r", str(FPS)), ("-r:v", str(FPS)), ("-fflags", "+genpts")}  # the clip's rate; our own timestamps
    if codec == "libvpx-vp9":  # constant quality as comma-tui runs vp9
        matches |= {("-b:v", "0"), ("-deadline", "good"), ("-row-mt", "1")}
    for option, value in other:
        if option == "-vn":
            raise FromFfmpegError("the line drops the video (-vn): there is nothing to encode")
        if (option, value) in matches or option == "-i":
            continue
        t.notes.append(f"{option} {value}".strip() + ": a spec cannot say this; left out")
    if len([o for o, _ in other if o == "-i"]) > 1:
        t.notes.append("several -i inputs: a spec encodes the lab's one clip")
    if files and PurePath(files[-1]).suffix not in ("", ".mkv"):
        t.notes.append(f"{files[-1]}: comma-tui writes Matroska (.mkv); the encoded frames are the same")


def _number(option: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise FromFfmpegError(
            f"-{option} {value!r} is not a number: paste the line with its values filled in"
        ) from None


def spec_from_ffmpeg(command: str) -> Translation:
    """The spec sections (preprocess, encode) of an ffmpeg command line, and notes on what they leave out."""
    try:
        known, other, files = _options(command)
    except ValueError as exc:
        raise FromFfmpegError(f"cannot read the command line ({exc}): paste it as the shell would run it") from None
    codec = known.get("codec", "")
    if codec not in CODECS:
        given = f"-c:v {codec}" if codec else "no -c:v"
        raise FromFfmpegError(f"the line has {given}: a spec encodes with {', '.join(CODECS)}")
    t = Translation()
    t.encode["codec"] = codec
    crf = known.get("crf") or str(_CODEC_DEFAULT_CRF.get(codec, ""))
    if crf:
        t.encode["crf"] = round(_number("crf", crf))
        if _number("crf", crf) != t.encode["crf"]:
            t.notes.append(f"-crf {crf}: a spec's crf is a whole number; used {t.encode['crf']}")
    else:
        t.notes.append("no -crf: comma-tui runs libvpx-vp9 in constant quality, crf 35 unless set")
    preset = known.get("cpu-used" if codec == "libvpx-vp9" else "preset")
    if preset:
        t.encode["preset"] = preset
    if "g" in known:
        t.encode["keyint"] = round(_number("g", known["g"]))
    params_option = PARAMS_OPTION.get(codec)
    params = known.get(params_option, "") if params_option else ""
    if "bf" in known and codec in ("libx264", "libx265"):
        bframes = round(_number("bf", known["bf"]))
        params = ":".join(p for p in (f"bframes={bframes}", params) if p)  # as FFmpeg's wrapper sets it
    elif "bf" in known:
        t.notes.append(f"-bf {known['bf']}: {codec} takes no B-frame count here; left out")
    _read_params(t, codec, params)
    if "pix_fmt" in known:
        if known["pix_fmt"] in PIX_FMTS:
            t.encode["pix_fmt"] = known["pix_fmt"]
        else:
            t.notes.append(f"-pix_fmt {known['pix_fmt']}: a spec encodes {' or '.join(PIX_FMTS)}; left out")
    if "vf" in known:
        _read_vf(t, known["vf"])
    _note_others(t, codec, other, files)
    for option, value in known.items():
        if option in PARAMS_OPTION.values() and option != params_option:
            t.notes.append(f"-{option} {value}: not {codec}'s parameters; left out")
    return t


def spec_text(translation: Translation, command: str) -> str:
    """The translation as a TOML spec ([preprocess] and [encode] in full), validated like any spec.

    The source stays out: a lab supplies its clip, as for any spec without [source].
    """
    spec = parse_spec(translation.sections, SourceSpec(clip="(the lab's)", models="(the lab's)"))
    header = "# comma-tui spec from-ffmpeg: " + " ".join(command.replace("\\\n", " ").split()) + "\n"
    return header + spec_to_toml(spec, ("preprocess", "encode"))
