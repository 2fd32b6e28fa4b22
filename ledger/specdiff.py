"""What changed between a run's spec and its parent's, as a person would write it: `crf 34 -> 35`.

A spec is a nested dict of sections (`source, run, preprocess, encode, archive, inflate,
score`). Both specs are flattened to dotted paths (`encode.crf`); each path whose value differs
becomes one axis. An axis is named by its bare key (`crf`) when no other key of either spec has
that name, else by its full path (`encode.preset` beside `archive.preset`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

# Bookkeeping, not something the run tried: a child always differs from its parent here.
IGNORED = frozenset({"run.label", "run.notes", "run.parent", "run.track", "run.timeout"})
_MISSING = object()


def flatten(spec: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"encode": {"crf": 35}}` -> `{"encode.crf": 35}`; lists and scalars are leaves."""
    flat: dict[str, Any] = {}
    for key, value in spec.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def format_value(value: Any) -> str:
    """A spec value as it reads in a changed axis: 35, 0.5, slow, true, [1, 2], unset."""
    if value is _MISSING or value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return value if value and not value.isspace() else json.dumps(value)
    if isinstance(value, Mapping) and not value:
        return "{}"
    return json.dumps(value, separators=(", ", ": "), default=str)


def _axis_names(paths: list[str], all_paths: set[str]) -> dict[str, str]:
    counts = Counter(p.rsplit(".", 1)[-1] for p in all_paths)
    return {p: (bare if counts[bare] == 1 else p) for p in paths for bare in [p.rsplit(".", 1)[-1]]}


def changed_axes(parent_spec: Mapping[str, Any], spec: Mapping[str, Any]) -> list[str]:
    """The axes on which `spec` differs from `parent_spec`, in the spec's order, e.g. `crf 34 -> 35`."""
    old = {p: v for p, v in flatten(parent_spec).items() if p not in IGNORED}
    new = {p: v for p, v in flatten(spec).items() if p not in IGNORED}
    order = list(new) + [p for p in old if p not in new]
    differing = [p for p in order if not _same(old.get(p, _MISSING), new.get(p, _MISSING))]
    names = _axis_names(differing, set(old) | set(new))
    return [
        f"{names[p]} {format_value(old.get(p, _MISSING))} -> {format_value(new.get(p, _MISSING))}" for p in differing
    ]


def _same(a: Any, b: Any) -> bool:
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    return bool(a == b)


def check_spec(spec: Any) -> dict[str, Any]:
    """The spec as a plain dict, or ValueError when it is not a JSON-ready dict of sections."""
    if not isinstance(spec, Mapping):
        raise ValueError(f"a run spec is a dict of sections, not {type(spec).__name__}")
    for name, section in spec.items():
        if not isinstance(name, str):
            raise ValueError(f"spec section names are strings, not {name!r}")
        if not isinstance(section, Mapping):
            raise ValueError(f"spec section {name!r} is a dict of settings, not {type(section).__name__}")
    try:
        plain = json.loads(json.dumps(spec, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"a run spec must be plain JSON data (str, numbers, bools, lists, dicts): {exc}") from None
    return plain


def brief(spec: Mapping[str, Any]) -> str:
    """What a run tried, in a few words, for a run with no label: `svtav1 crf35 fg22 524x394`."""
    encode = spec.get("encode", {}) if isinstance(spec, Mapping) else {}
    pre = spec.get("preprocess", {}) if isinstance(spec, Mapping) else {}
    encode = encode if isinstance(encode, Mapping) else {}
    pre = pre if isinstance(pre, Mapping) else {}
    parts = [str(encode.get("codec", "")).removeprefix("lib"), f"crf{encode.get('crf', '?')}"]
    if encode.get("film_grain"):
        parts.append(f"fg{encode['film_grain']}")
    if pre.get("width"):
        parts.append(f"{pre['width']}x{pre.get('height', '?')}")
    return " ".join(p for p in parts if p)
