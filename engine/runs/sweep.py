"""Sweeps: `crf=32..36`, `film_grain=0,22` or `crf=-2..+2` as text, and the specs they make.

A sweep is an axis and its values: a comma list whose items are single values or ranges `a..b`
(inclusive, step 1) or `a..b:step`. `grid` crosses several sweeps into one spec per point;
`neighbours` moves one axis at a time by offsets from a spec (the floor's, for around-floor).
Every point is validated before any is returned, so a bad axis or value queues nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import product
from typing import Any

from engine.runs.spec import RunSpec, SpecError, parse_axis_value, parse_spec, resolve_axis
from ledger.specdiff import format_value

MAX_POINTS = 500
_EXAMPLE = "e.g. crf=32..36, film_grain=0,22 or crf=20..40:5"


def _number(text: str) -> int | float | None:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _range(item: str, text: str) -> list[int | float]:
    body, _, step_text = item.partition(":")
    lo_text, _, hi_text = body.partition("..")
    lo, hi = _number(lo_text), _number(hi_text)
    step = _number(step_text) if step_text else 1
    if lo is None or hi is None or step is None:
        raise SpecError(f"range {item!r} in sweep {text!r} needs numbers: write a..b or a..b:step ({_EXAMPLE})")
    if step <= 0:
        raise SpecError(f"range {item!r} in sweep {text!r} has step {step}: the step must be positive")
    if hi < lo:
        raise SpecError(f"range {item!r} in sweep {text!r} runs backwards: write {hi_text.strip()}..{lo_text.strip()}")
    count = math.floor((hi - lo) / step + 1e-9) + 1
    if count > MAX_POINTS:
        raise SpecError(f"range {item!r} in sweep {text!r} has {count} values, over the limit of {MAX_POINTS}")
    if all(isinstance(v, int) for v in (lo, hi, step)):
        return [int(lo + i * step) for i in range(count)]
    return [round(lo + i * step, 10) for i in range(count)]


def parse_sweep(text: str) -> tuple[str, list[Any]]:
    """`axis=values` -> (axis, values): `crf=32..34` -> ("crf", [32, 33, 34]).

    Items of a comma list stay text (typed later by their axis: `true`, `lanczos`, `35`);
    ranges give numbers. Offsets for around-floor are written the same way: `crf=-2..+2`.
    A malformed sweep or an unknown axis raises SpecError naming it.
    """
    axis, sep, values = text.partition("=")
    axis = axis.strip()
    if not sep or not axis:
        raise SpecError(f"sweep {text!r} is not axis=values: write {_EXAMPLE}")
    resolve_axis(axis)
    items = [item.strip() for item in values.split(",")]
    if not any(items) or not all(items):
        raise SpecError(f"sweep {text!r} has an empty value: write values separated by commas, {_EXAMPLE}")
    parsed: list[Any] = []
    for item in items:
        parsed.extend(_range(item, text) if ".." in item else [item])
    return axis, parsed


def with_values(spec: RunSpec, point: Mapping[str, Any], label: str) -> RunSpec:
    """`spec` with every axis of `point` set at once, validated; SpecError names the point."""
    data = spec.to_dict()
    for axis, value in point.items():
        section, key = resolve_axis(axis)
        data[section][key] = value
    try:
        return parse_spec(data)
    except SpecError as exc:
        raise SpecError(f"sweep point {label}: {exc}") from None


def grid(spec: RunSpec, sweeps: Mapping[str, Sequence[Any]]) -> list[tuple[str, RunSpec]]:
    """One (label, spec) per point of the crossed sweeps, all validated; no sweeps: the spec itself."""
    axes: list[tuple[str, list[Any]]] = []
    seen: dict[tuple[str, str], str] = {}
    for axis, values in sweeps.items():
        where = resolve_axis(axis)
        if where in seen:
            raise SpecError(f"sweeps {seen[where]} and {axis} are the same axis: merge their values")
        seen[where] = axis
        typed = [parse_axis_value(axis, v) if isinstance(v, str) else v for v in values]
        typed = list(dict.fromkeys(typed))  # 34 twice is one point
        if not typed:
            raise SpecError(f"the sweep of {axis} has no values: {_EXAMPLE}")
        axes.append((axis, typed))
    size = math.prod(len(values) for _, values in axes)
    if size > MAX_POINTS:
        raise SpecError(f"the sweep has {size} points, over the limit of {MAX_POINTS}: split it")
    points = []
    for combo in product(*(values for _, values in axes)):
        point = {axis: value for (axis, _), value in zip(axes, combo, strict=True)}
        label = " ".join(f"{axis}={format_value(value)}" for axis, value in point.items())
        points.append((label, with_values(spec, point, label) if point else spec))
    return points


def neighbours(spec: RunSpec, axes: Mapping[str, Sequence[Any]]) -> list[tuple[str, RunSpec]]:
    """(label, spec) for each offset of each axis, one axis changed at a time; offset 0 is skipped."""
    points: dict[str, RunSpec] = {}
    for axis, offsets in axes.items():
        section, key = resolve_axis(axis)
        current = getattr(getattr(spec, section), key)
        if isinstance(current, bool) or not isinstance(current, int | float):
            raise SpecError(f"{section}.{key} is {current!r}, not a number: around-floor moves number axes such as crf")
        for offset in offsets:
            number = None if isinstance(offset, bool) else _number(str(offset))
            if number is None:
                raise SpecError(f"offset {offset!r} for {axis} is not a number: write e.g. {axis}=-2..+2 or -1,+1")
            if number == 0:
                continue
            value = current + number
            if isinstance(current, int):
                if not float(value).is_integer():
                    raise SpecError(f"{section}.{key} takes whole numbers: offset {offset} does not fit")
                value = int(value)
            label = f"{axis}={format_value(value)}"
            points[label] = with_values(spec, {axis: value}, label)
    if not points:
        raise SpecError("no neighbours to queue: every offset is 0; write e.g. crf=-2..+2")
    return list(points.items())
