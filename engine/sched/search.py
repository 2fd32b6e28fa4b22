"""Search files (`search.toml`): the space the autopilot explores, validated once against the lab.

    track = "main"
    base = "r0012"                 # default: the track's floor
    objective = "score"            # or ["score", "bytes"] for a Pareto front
    budget = 40                    # runs the autopilot may queue
    parallel = 2                   # proposals queued at once (default: the scheduler's slots)
    sampler = "tpe"                # tpe, random, nsgaii or bruteforce
    seed = 0

    [axes]
    "encode.crf" = { low = 26, high = 46 }
    "encode.film_grain" = { choices = [0, 10, 16, 22, 30] }
    "preprocess.width" = { choices = [512, 640, 0] }   # height follows the clip's aspect

A point of the space is the base run's spec with the axes set to the point's values. Every bad
input is a `SearchError` of one line naming the key: unknown key, empty or inverted range, a
choice the spec refuses, a track without a base run.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from engine.media.container import open_clip
from engine.runs.spec import RunSpec, SpecError, lab_source, parse_spec, resolve_axis
from ledger import Ledger, RunRecord
from ledger.errors import UserError
from ledger.specdiff import format_value

SAMPLERS = ("tpe", "random", "nsgaii", "bruteforce")
OBJECTIVES = ("score", "bytes")
KEYS = ("track", "base", "objective", "budget", "parallel", "sampler", "seed", "axes")
WIDTH, HEIGHT = "preprocess.width", "preprocess.height"
# Sections that say how a run is run and scored, not what it tries: never part of a point.
_UNCOMPARED = ("run", "score")
_SHORT = {"film_grain": "fg", "unsharp_amount": "unsharp", "postfilter": "pf"}


class SearchError(UserError):
    """A search file the autopilot cannot explore; the message names the key and the fix."""


@dataclass(frozen=True)
class Axis:
    """One spec key the autopilot moves: a range (`low`..`high`, by `step` for whole numbers) or choices."""

    key: str  # section.key, e.g. "encode.crf"
    kind: str  # "int", "float" or "choice"
    low: float = 0.0
    high: float = 0.0
    step: int = 1
    choices: tuple[Any, ...] = ()

    def contains(self, value: Any) -> bool:
        """Whether `value` is a point of this axis."""
        if self.kind == "choice":
            return any(value == c and type(value) is type(c) for c in self.choices)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.kind == "int":
            return float(value).is_integer() and self.low <= value <= self.high and (value - self.low) % self.step == 0
        return self.low <= value <= self.high

    @property
    def short(self) -> str:
        """The axis as a label writes it: `crf`, `fg`, `width`."""
        name = self.key.split(".", 1)[1]
        return _SHORT.get(name, name)


@dataclass(frozen=True)
class Search:
    """A validated search: the base run's spec and the axes that move, and how to spend the budget."""

    track: str
    base: str  # the base run's id
    base_spec: RunSpec
    axes: tuple[Axis, ...]
    objectives: tuple[str, ...]
    budget: int
    parallel: int | None
    sampler: str
    seed: int
    aspect: tuple[int, int] | None  # the clip's width and height, when width is an axis

    def spec_at(self, params: Mapping[str, Any]) -> RunSpec:
        """The base spec with the axes set to `params` (height following width), validated."""
        data = self.base_spec.to_dict()
        for key, value in params.items():
            section, name = key.split(".", 1)
            data[section][name] = value
        if WIDTH in params:
            data["preprocess"]["height"] = self.height_for(int(params[WIDTH]))
        data["run"] = {**data["run"], "label": "", "notes": "", "parent": "", "track": self.track}
        try:
            return parse_spec(data)
        except SpecError as exc:
            raise SearchError(f"the point {self.label(params)}: {exc}") from None

    def height_for(self, width: int) -> int:
        """The even height that keeps the clip's aspect at `width` (0 stays the clip's own size)."""
        if not width or self.aspect is None:
            return 0
        clip_w, clip_h = self.aspect
        return max(16, 2 * round(width * clip_h / clip_w / 2))

    def params_of(self, spec: Mapping[str, Any]) -> dict[str, Any] | None:
        """The point a run's spec is, or None when it lies outside the space (other keys differ)."""
        base = self.base_spec.to_dict()
        params = {}
        for axis in self.axes:
            section, name = axis.key.split(".", 1)
            value = spec.get(section, {}).get(name)
            if not axis.contains(value):
                return None
            params[axis.key] = value
        moved = {a.key for a in self.axes} | ({HEIGHT} if WIDTH in params else set())
        for section, table in base.items():
            if section in _UNCOMPARED:
                continue
            theirs = spec.get(section, {})
            if any(theirs.get(k) != v for k, v in table.items() if f"{section}.{k}" not in moved):
                return None
        if WIDTH in params and spec.get("preprocess", {}).get("height") != self.height_for(params[WIDTH]):
            return None
        return params

    def label(self, params: Mapping[str, Any]) -> str:
        """What a proposal is called in the ledger: `auto: crf=33 fg=10`."""
        by_key = {a.key: a for a in self.axes}
        return "auto: " + " ".join(f"{by_key[k].short}={_short_value(v)}" for k, v in params.items())


def _short_value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else format_value(value)


def read_search_file(path: str | Path) -> dict[str, Any]:
    """A search file's tables, unvalidated; a missing or broken file is a SearchError naming it."""
    path = Path(path)
    if not path.is_file():
        raise SearchError(f"search file {path} not found: write one as the README shows (track, budget, [axes])")
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SearchError(f"search file {path} is not valid TOML ({exc}): fix the line it names") from None


def _whole(key: str, value: Any, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise SearchError(f"{key} = {value!r} must be a whole number >= {lo}")
    return value


def _base(ledger: Ledger, track: str, base: Any) -> RunRecord:
    if base is not None:
        if not isinstance(base, str):
            raise SearchError(f"base = {base!r} must be a run id such as r0012")
        try:
            record = ledger.get(base)
        except UserError as exc:
            raise SearchError(f"base: {exc}") from None
        if not record.measured:
            raise SearchError(f"base = {record.id} is {record.status}, not measured: pick a finished run")
        return record
    floor = ledger.floors().get(track)
    if floor is None:
        known = ", ".join(ledger.floors()) or "none yet"
        raise SearchError(
            f"track = {track!r} has no base run (no floor; tracks with one: {known}): measure a run first or set base"
        )
    return ledger.get(floor.id)  # the floor as a summary: its spec is in the full record


def _axis(key: Any, table: Any, base: RunSpec) -> Axis:
    if not isinstance(key, str):
        raise SearchError(f"axes: {key!r} is not a spec key")
    try:
        section, name = resolve_axis(key)
    except SpecError:
        raise SearchError(f"axes: unknown spec key {key!r}: use section.key, e.g. encode.crf") from None
    full = f"{section}.{name}"
    if full == HEIGHT:
        raise SearchError(f"axes: {full!r} follows the clip's aspect: make preprocess.width the axis instead")
    if section in _UNCOMPARED or section == "source":
        raise SearchError(f"axes: {full!r} does not change what a run tries: search encode, preprocess or inflate keys")
    if not isinstance(table, Mapping) or not ({"choices"} <= set(table) or {"low", "high"} <= set(table)):
        raise SearchError(f"axes: {full!r} needs {{ low = .., high = .. }} or {{ choices = [..] }}")
    extra = set(table) - {"low", "high", "step", "choices"}
    if extra:
        raise SearchError(f"axes: {full!r} has unknown field {sorted(extra)[0]!r}: use low, high, step or choices")
    kind = {f.name: str(f.type) for f in fields(getattr(base, section))}[name]
    if "choices" in table:
        choices = table["choices"]
        if not isinstance(choices, list) or not choices:
            raise SearchError(f"axes: {full!r} choices must be a non-empty list")
        typed = (_check_value(base, full, choice) for choice in choices)
        return Axis(full, "choice", choices=tuple(dict.fromkeys(typed)))
    if full == WIDTH:
        raise SearchError(f"axes: {full!r} takes choices (even widths, 0 = the clip's own), not a range")
    if kind not in ("int", "float"):
        raise SearchError(f"axes: {full!r} is not a number: give it choices = [..]")
    low, high, step = table["low"], table["high"], table.get("step", 1)
    for what, value in (("low", low), ("high", high), ("step", step)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise SearchError(f"axes: {full!r} {what} = {value!r} must be a number")
    if kind == "int" and not all(float(v).is_integer() for v in (low, high, step)):
        raise SearchError(f"axes: {full!r} takes whole numbers: low, high and step must be whole")
    if high <= low:
        raise SearchError(f"axes: {full!r} range {low}..{high} is empty or inverted: low must be below high")
    if step <= 0:
        raise SearchError(f"axes: {full!r} step = {step} must be positive")
    for value in (low, high):
        _check_value(base, full, int(value) if kind == "int" else float(value))
    if kind == "int":
        return Axis(full, "int", int(low), int(high), int(step))
    return Axis(full, "float", float(low), float(high))


def _check_value(base: RunSpec, key: str, value: Any) -> Any:
    """`value` as the spec types it (a choice of 1 on a float key is 1.0); refused values raise."""
    section, name = key.split(".", 1)
    data = base.to_dict()
    data[section][name] = value
    if key == WIDTH:
        data["preprocess"]["height"] = value  # the real height follows the aspect; it obeys the same rules
    try:
        return getattr(getattr(parse_spec(data), section), name)
    except SpecError as exc:
        raise SearchError(f"axes: {key!r} value {value!r} is refused by the spec: {exc}") from None


def _objectives(value: Any) -> tuple[str, ...]:
    names = (value,) if isinstance(value, str) else tuple(value) if isinstance(value, list) else None
    allowed = [("score",), ("score", "bytes")]
    if names not in allowed:
        raise SearchError(f'objective = {value!r}: use "score" or ["score", "bytes"]')
    return names


def _aspect(spec: RunSpec) -> tuple[int, int]:
    try:
        with open_clip(Path(spec.source.clip)) as container:
            stream = container.streams.video[0]
            return int(stream.codec_context.width), int(stream.codec_context.height)
    except UserError as exc:
        raise SearchError(
            f"axes: preprocess.width needs the clip's size, but {spec.source.clip} reads as: {exc}"
        ) from None


def parse_search(data: Mapping[str, Any], ledger: Ledger, budget: int | None = None) -> Search:
    """Validate a search file's tables against the lab; `budget` (from --budget) wins over the file's."""
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise SearchError(f"unknown key {unknown[0]!r} in the search file: it takes {', '.join(KEYS)}")
    track = data.get("track", "main")
    if not isinstance(track, str) or not track.strip():
        raise SearchError(f"track = {track!r} must be a track name, e.g. main")
    record = _base(ledger, track, data.get("base"))
    try:
        base_spec = parse_spec(record.spec, lab_source(ledger.lab))
    except SpecError as exc:
        raise SearchError(
            f"base = {record.id} has a spec that no longer validates ({exc}): pick another base"
        ) from None
    axes_table = data.get("axes")
    if not isinstance(axes_table, Mapping) or not axes_table:
        raise SearchError('the search file has no [axes]: add e.g. "encode.crf" = { low = 26, high = 46 }')
    axes = tuple(_axis(key, table, base_spec) for key, table in axes_table.items())
    if len({a.key for a in axes}) != len(axes):
        raise SearchError("axes: a spec key appears twice (e.g. crf and encode.crf): keep one")
    sampler = data.get("sampler", "tpe")
    if sampler not in SAMPLERS:
        raise SearchError(f"sampler = {sampler!r}: use one of {', '.join(SAMPLERS)}")
    parallel = data.get("parallel")
    seed = data.get("seed", 0)
    return Search(
        track=track,
        base=record.id,
        base_spec=base_spec,
        axes=axes,
        objectives=_objectives(data.get("objective", "score")),
        budget=_whole("budget", data.get("budget", 20) if budget is None else budget, 1),
        parallel=None if parallel is None else _whole("parallel", parallel, 1),
        sampler=sampler,
        seed=_whole("seed", seed, 0),
        aspect=_aspect(base_spec) if any(a.key == WIDTH for a in axes) else None,
    )


def load_search(path: str | Path, ledger: Ledger, budget: int | None = None) -> Search:
    """Read and validate a search file against the lab's ledger."""
    return parse_search(read_search_file(path), ledger, budget)
