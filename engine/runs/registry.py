"""The codec registry: the built-in run kinds and every plug-in registered under `comma_tui.codecs`.

A distribution adds a run kind (a `Codec`) or a stage (a `PreprocessPlugin` or a
`PostFilterPlugin`) by declaring an entry point in that group, e.g. in its pyproject.toml:

    [project.entry-points."comma_tui.codecs"]
    toy = "toy_codec:ToyCodec"

The built-in kinds (the PyAV codecs, the neural codec) are listed here rather than in our own
metadata, so that an editable install whose metadata is stale still finds them. A plug-in that
fails to load does not stop the lab: a spec that asks for it gets a one-line error saying why.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields, is_dataclass
from importlib.metadata import entry_points
from typing import Any

from engine.runs.codec import Codec, Plugin, PostFilterPlugin, PreprocessPlugin
from ledger.errors import UserError

GROUP = "comma_tui.codecs"
BUILTIN = {
    "classical": "engine.runs.classical:ClassicalCodec",
    "neural": "engine.codecs.neural.codec:NeuralCodec",
}
DEFAULT_CODEC = "libsvtav1"


class PluginError(UserError):
    """A spec asks for a plug-in that failed to load."""


@dataclass(frozen=True)
class Registry:
    """Every loaded plug-in, by what a spec names it with."""

    codecs: dict[str, Codec]  # by [encode] codec value
    stages: dict[str, PreprocessPlugin | PostFilterPlugin]  # stage plug-ins, by section
    broken: dict[str, str]  # entry-point name -> why it did not load

    def sections(self) -> dict[str, type]:
        """Every plug-in section and its keys class."""
        plugins: list[Plugin] = [*self.codecs.values(), *self.stages.values()]
        return {p.section: p.keys for p in plugins if p.section and p.keys is not None}


def _load(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _problem(plugin: Any) -> str:
    """Why a loaded class cannot serve as a plug-in ("" when it can)."""
    if not isinstance(plugin, type) or not issubclass(plugin, Plugin):
        return "it is not a Codec, PreprocessPlugin or PostFilterPlugin subclass"
    if plugin.section and not (isinstance(plugin.keys, type) and is_dataclass(plugin.keys)):
        return f"its section [{plugin.section}] has no keys dataclass"
    if plugin.keys is not None and any(
        f.default is MISSING and f.default_factory is MISSING for f in fields(plugin.keys)
    ):
        return "every key needs a default"
    if issubclass(plugin, Codec) and not getattr(plugin, "codecs", ()):
        return "it names no [encode] codec values"
    if issubclass(plugin, PreprocessPlugin | PostFilterPlugin) and not plugin.section:
        return "a stage plug-in needs a section (a spec turns it on by having it)"
    return ""


def _add(found: Registry, name: str, cls: type, taken_sections: set[str]) -> None:
    problem = _problem(cls)
    plugin = cls() if not problem else None
    if isinstance(plugin, Codec):
        clash = [c for c in plugin.codecs if c in found.codecs]
        if clash:
            problem = f"encode.codec {clash[0]!r} is taken by {found.codecs[clash[0]].name}"
    if plugin is not None and plugin.section in taken_sections:
        problem = f"section [{plugin.section}] is taken"
    if problem or plugin is None:
        found.broken[name] = problem
        return
    if plugin.section:
        taken_sections.add(plugin.section)
    if isinstance(plugin, Codec):
        found.codecs.update(dict.fromkeys(plugin.codecs, plugin))
    else:
        found.stages[plugin.section] = plugin  # type: ignore[assignment]


@functools.cache
def registry() -> Registry:
    """The built-ins and the installed plug-ins (read once per process; `reload` reads them again)."""
    from engine.runs.spec import CORE_SECTIONS

    found = Registry({}, {}, {})
    taken = set(CORE_SECTIONS)
    for name, target in BUILTIN.items():
        _add(found, name, _load(target), taken)
    for point in sorted(entry_points(group=GROUP), key=lambda p: p.name):
        if point.name in BUILTIN:
            found.broken[point.name] = f"{point.name!r} is a built-in kind"
            continue
        try:
            cls = point.load()
        except Exception as exc:  # a third-party module: whatever it raises, the lab goes on without it
            found.broken[point.name] = f"{point.value} does not import ({exc!r})"
            continue
        _add(found, point.name, cls, taken)
    return found


def reload() -> Registry:
    """Read the installed plug-ins again (after installing one into a running process)."""
    registry.cache_clear()
    return registry()


def codec_named(name: str) -> Codec:
    """The kind that runs `[encode] codec = name`; `PluginError` for one that failed to load."""
    found = registry()
    if name in found.codecs:
        return found.codecs[name]
    if name in found.broken:
        raise PluginError(f"encode.codec = {name!r}: its plug-in did not load ({found.broken[name]}): fix or remove it")
    from engine.runs.spec import SpecError

    raise SpecError(f"encode.codec = {name!r} is not allowed: use one of {', '.join(found.codecs)}")


def codec_of(spec: Mapping[str, Any]) -> Codec:
    """The kind of a spec as stored (sections of plain values)."""
    encode = spec.get("encode")
    name = encode.get("codec", DEFAULT_CODEC) if isinstance(encode, Mapping) else DEFAULT_CODEC
    return codec_named(str(name))


def stage_plugins(spec: Mapping[str, Any]) -> list[PreprocessPlugin | PostFilterPlugin]:
    """The stage plug-ins a spec turns on (it has their sections), in registry order."""
    return [plugin for section, plugin in registry().stages.items() if section in spec]
