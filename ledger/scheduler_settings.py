"""The lab's `[scheduler]` settings: where its queue runs (local worker processes or a Ray cluster).

    [scheduler]
    backend = "ray"                         # "local" (the default) or "ray"
    ray_address = "http://127.0.0.1:8265"   # the Ray head's dashboard (its Jobs REST API)
    cpus_per_run = 1                        # what each run asks Ray for
    gpus_per_run = 1                        # 1 on GPU nodes, so that Ray pins each run to its own GPU

Checked where they enter (lab.toml, or `sched start --backend --ray-address`), trusted inside.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from ledger.errors import LedgerError

BACKENDS = ("local", "ray")
DEFAULT_RAY_ADDRESS = "http://127.0.0.1:8265"


@dataclass(frozen=True)
class SchedulerSettings:
    """How the lab's scheduler runs its queue."""

    backend: str = "local"
    ray_address: str = DEFAULT_RAY_ADDRESS
    cpus_per_run: float = 1.0
    gpus_per_run: float = 0.0

    def overridden(self, backend: str | None = None, ray_address: str | None = None) -> SchedulerSettings:
        """These settings with the command line's `--backend` and `--ray-address` (checked) on top."""
        changes: dict[str, Any] = {}
        if backend is not None:
            changes["backend"] = check_backend(backend, "--backend")
        if ray_address is not None:
            changes["ray_address"] = check_address(ray_address, "--ray-address")
        return replace(self, **changes)


def check_backend(value: object, where: str) -> str:
    """`local` or `ray`; anything else names `where` it came from."""
    if value not in BACKENDS:
        raise LedgerError(f"{where} {value!r} is not a scheduler backend: use one of {', '.join(BACKENDS)}")
    return str(value)


def check_address(value: object, where: str) -> str:
    """A Ray head's dashboard URL, `http://host:port` (a bare `host:port` gets `http://`)."""
    text = value.strip() if isinstance(value, str) else ""
    if text and "://" not in text:
        text = f"http://{text}"
    parts = urlsplit(text)
    try:
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and (parts.port or 1) > 0
    except ValueError:  # a port that is not a number
        ok = False
    if not ok:
        raise LedgerError(
            f"{where} {value!r} is not a Ray dashboard address: use http://HOST:PORT, e.g. {DEFAULT_RAY_ADDRESS}"
        )
    return text.rstrip("/")


def _resource(section: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise LedgerError(f"{where}: [scheduler] {key} {value!r} must be a number, 0 or more")
    return float(value)


def parse_settings(section: object, where: str) -> SchedulerSettings:
    """The `[scheduler]` table of `where` (a lab.toml) as settings; a bad key or value raises LedgerError."""
    if section is None:
        return SchedulerSettings()
    if not isinstance(section, Mapping):
        raise LedgerError(f"{where}: [scheduler] must be a table of settings")
    known = {"backend", "ray_address", "cpus_per_run", "gpus_per_run"}
    unknown = sorted(set(section) - known)
    if unknown:
        raise LedgerError(f"{where}: unknown [scheduler] keys {unknown}: it takes {sorted(known)}")
    settings = SchedulerSettings(
        backend=check_backend(section.get("backend", "local"), f"{where}: [scheduler] backend"),
        ray_address=check_address(section.get("ray_address", DEFAULT_RAY_ADDRESS), f"{where}: [scheduler] ray_address"),
        cpus_per_run=_resource(section, "cpus_per_run", 1.0, where),
        gpus_per_run=_resource(section, "gpus_per_run", 0.0, where),
    )
    if not settings.cpus_per_run and not settings.gpus_per_run:
        raise LedgerError(f"{where}: [scheduler] cpus_per_run and gpus_per_run cannot both be 0: a run needs one")
    return settings
