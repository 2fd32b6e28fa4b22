"""A lab: the folder that holds one line of experiments on one clip.

    lab.toml          the lab's id, the default source (clip, scorer models, original size), settings
    ledger/           the run history, the queue's state and live progress (see `Ledger`)
    runs/<run_id>/    each run's artifacts: archive, logs, per-pair distortions
    cache/            anything the engine may rebuild (decoded references, network outputs)

`lab.toml` is written by `comma-tui init` and may be edited by hand; relative paths in it are
relative to the lab folder.
"""

from __future__ import annotations

import math
import re
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.errors import LedgerError
from ledger.promotion import DEFAULT_EPSILON
from ledger.scheduler_settings import SchedulerSettings, parse_settings

CONFIG_NAME = "lab.toml"
EARLY_MODES = ("auto", "off")
INIT_HINT = "comma-tui init DIR --clip CLIP --models MODELS"
_LAB_ID = re.compile(r"^[a-z0-9]{6,32}$")
_ID_COMMENT = "# This lab's own id: it names the lab's jobs on a shared cluster."


@dataclass(frozen=True)
class Source:
    """The lab's default source: the clip, the scorer's model folder, the uncompressed size."""

    clip: Path
    models: Path
    original_bytes: int | None = None


class Lab:
    """The layout of a lab folder. Making one writes `lab.toml`; nothing else is written here."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.config_path = self.root / CONFIG_NAME
        # Not "ledger": a folder of that name in the working directory would shadow the ledger
        # package for `python -m` runs started there.
        self.ledger_dir = self.root / "db"
        self.runs_dir = self.root / "runs"
        self.cache_dir = self.root / "cache"

    def __repr__(self) -> str:
        return f"Lab({str(self.root)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Lab) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    @classmethod
    def create(
        cls,
        root: str | Path,
        clip: str | Path,
        models: str | Path,
        original_bytes: int | None = None,
        epsilon: float = DEFAULT_EPSILON,
        scheduler: SchedulerSettings | None = None,
    ) -> Lab:
        """Make a lab in `root` (made if missing) for this clip and scorer; refuses to overwrite one."""
        lab = cls(root)
        clip, models = Path(clip).expanduser().resolve(), Path(models).expanduser().resolve()
        if lab.config_path.exists():
            raise LedgerError(f"{lab.root} already holds a lab ({CONFIG_NAME}): use it with --lab {lab.root}")
        if lab.root.exists() and not lab.root.is_dir():
            raise LedgerError(f"{lab.root} is a file, not a folder: pick a folder for the lab")
        if not clip.is_file():
            raise LedgerError(f"clip {clip} not found: pass --clip the challenge's videos/0.mkv (or a demo clip)")
        if not models.is_dir():
            raise LedgerError(
                f"models folder {models} not found: pass --models the challenge repo's models/ folder "
                "(or make demo weights with comma-tui demo-assets DIR)"
            )
        if original_bytes is not None and original_bytes <= 0:
            raise LedgerError(f"--original-bytes {original_bytes} must be positive")
        if not (math.isfinite(epsilon) and epsilon >= 0):
            raise LedgerError(f"promotion epsilon {epsilon} must be a non-negative number")
        for folder in (lab.root, lab.ledger_dir, lab.runs_dir, lab.cache_dir):
            folder.mkdir(parents=True, exist_ok=True)
        text = _config_text(new_lab_id(), clip, models, original_bytes, epsilon, scheduler or SchedulerSettings())
        lab.config_path.write_text(text, encoding="utf-8")
        return lab

    @classmethod
    def open(cls, root: str | Path) -> Lab:
        """The lab in exactly this folder (as `--lab DIR` names it)."""
        lab = cls(root)
        if not lab.config_path.is_file():
            raise LedgerError(f"no lab in {lab.root} (no {CONFIG_NAME}): make one with {INIT_HINT}")
        return lab

    @classmethod
    def locate(cls, root: str | Path | None) -> Lab:
        """The lab in `root` when one is named (`--lab DIR`), else the lab holding the current folder."""
        return cls.open(root) if root is not None else cls.find()

    @classmethod
    def find(cls, start: str | Path | None = None) -> Lab:
        """The lab holding `start` (default: the current folder), looking upwards like git does."""
        here = Path(start or Path.cwd()).expanduser().resolve()
        for folder in (here, *here.parents):
            if (folder / CONFIG_NAME).is_file():
                return cls(folder)
        raise LedgerError(
            f"no lab in {here} or its parents (no {CONFIG_NAME}): make one with {INIT_HINT}, or pass --lab DIR"
        )

    def run_dir(self, run_id: str) -> Path:
        """The artifacts folder of a run (not made here)."""
        return self.runs_dir / run_id

    def config(self) -> dict[str, Any]:
        """`lab.toml` as a dict; a missing or broken file raises LedgerError naming it."""
        try:
            with open(self.config_path, "rb") as f:
                return tomllib.load(f)
        except FileNotFoundError:
            raise LedgerError(f"no lab in {self.root} (no {CONFIG_NAME}): make one with {INIT_HINT}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise LedgerError(f"{self.config_path} is not valid TOML ({exc}): fix it by hand") from None

    def source(self) -> Source:
        """The default `[source]` of the lab's runs."""
        section = self.config().get("source")
        if not isinstance(section, dict) or "clip" not in section or "models" not in section:
            raise LedgerError(f"{self.config_path} lacks [source] clip and models: add them, as {INIT_HINT} writes")
        original = section.get("original_bytes")
        if original is not None and (not isinstance(original, int) or original <= 0):
            raise LedgerError(f"{self.config_path}: [source] original_bytes {original!r} must be a positive integer")
        return Source(clip=self._path(section["clip"]), models=self._path(section["models"]), original_bytes=original)

    def epsilon(self) -> float:
        """How much a run must lower the floor to be promoted (`[promotion] epsilon`)."""
        value = self.config().get("promotion", {}).get("epsilon", DEFAULT_EPSILON)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise LedgerError(f"{self.config_path}: [promotion] epsilon {value!r} must be a non-negative number")
        return float(value)

    def early(self) -> str | None:
        """The lab's default for early verdicts (`[score] early`: auto or off), or None when unset."""
        value = self.config().get("score", {}).get("early")
        if value is not None and value not in EARLY_MODES:
            raise LedgerError(f"{self.config_path}: [score] early {value!r} must be one of {', '.join(EARLY_MODES)}")
        return value

    def scheduler_settings(self) -> SchedulerSettings:
        """Where the queue runs (`[scheduler]`; local worker processes when the table is absent)."""
        return parse_settings(self.config().get("scheduler"), str(self.config_path))

    def lab_id(self) -> str | None:
        """The lab's own id (`[lab] id`), which names its jobs on a shared cluster; None in labs made before ids."""
        section = self.config().get("lab")
        value = section.get("id") if isinstance(section, dict) else None
        if value is None:
            return None
        if not isinstance(value, str) or not _LAB_ID.match(value):
            raise LedgerError(f"{self.config_path}: [lab] id {value!r} must be 6 to 32 lower-case letters and digits")
        return value

    def ensure_id(self) -> str:
        """The lab's id, first giving an older lab one (a `[lab]` table appended to lab.toml)."""
        found = self.lab_id()
        if found is not None:
            return found
        if isinstance(self.config().get("lab"), dict):
            raise LedgerError(f'{self.config_path}: [lab] has no id: add id = "{new_lab_id()}" under [lab]')
        made = new_lab_id()
        with open(self.config_path, "a", encoding="utf-8") as f:
            f.write(f"\n[lab]\n{_ID_COMMENT}\nid = {_toml_string(made)}\n")
        return made

    def _path(self, value: object) -> Path:
        if not isinstance(value, str) or not value:
            raise LedgerError(f"{self.config_path}: [source] paths must be strings, not {value!r}")
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.root / path


def _toml_string(text: str) -> str:
    escapes = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
    out = []
    for ch in text:
        if ch in escapes:
            out.append(escapes[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def new_lab_id() -> str:
    """A fresh lab id: 12 random hex digits."""
    return secrets.token_hex(6)


def _config_text(
    lab_id: str, clip: Path, models: Path, original_bytes: int | None, epsilon: float, scheduler: SchedulerSettings
) -> str:
    lines = [
        "# A comma-tui lab. Edit freely; relative paths are relative to this folder.",
        "",
        "[lab]",
        _ID_COMMENT,
        f"id = {_toml_string(lab_id)}",
        "",
        "[source]",
        f"clip = {_toml_string(str(clip))}",
        f"models = {_toml_string(str(models))}",
    ]
    if original_bytes is not None:
        lines.append(f"original_bytes = {int(original_bytes)}")
    else:
        lines.append("# original_bytes = N  (default: the uncompressed size of the clip)")
    lines += [
        "",
        "[promotion]",
        "# A run is promoted when it lowers its track's floor by more than this.",
        f"epsilon = {epsilon!r}",
        "",
        "[score]",
        "# auto: a run that has clearly lost to its floor is rejected early (a spec's [score] early wins).",
        'early = "auto"',
        "",
        "[scheduler]",
        '# Where the queue runs: "local" (worker processes here) or "ray" (jobs on a Ray cluster, which must',
        "# see this lab at the same path on every node).",
        f"backend = {_toml_string(scheduler.backend)}",
        f"ray_address = {_toml_string(scheduler.ray_address)}",
        "# What each run asks Ray for: on GPU nodes, gpus_per_run = 1 gives each run a GPU of its own.",
        f"cpus_per_run = {scheduler.cpus_per_run:g}",
        f"gpus_per_run = {scheduler.gpus_per_run:g}",
        "",
    ]
    return "\n".join(lines)
