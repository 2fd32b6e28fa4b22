"""Gated runs for the scheduler's process tests (local workers and Ray jobs alike).

A gated run is a submission whose inflate.sh (in a session of its own, as the engine runs it)
says its pid, waits while its `hold.txt` exists, then writes the reference frames (or fails on
purpose). A test holds runs as long as it needs them running, and releases them to finish;
nothing waits on a fixed sleep.
"""

from __future__ import annotations

import contextlib
import os
import signal
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.demo.assets import make_demo_assets
from engine.media.video import RawWriter, iter_frames
from engine.runs.spec import lab_source, parse_spec
from engine.sched import control
from engine.sched.pool import alive
from engine.sched.state import SchedulerPaths
from ledger import Lab, Ledger

FRAMES = 2  # one pair: a run that gets as far as scoring is scored in seconds
INFLATE = """#!/bin/bash
# A test submission: says its pid, waits while hold.txt exists, then fails on purpose if told
# to (fail.txt) or writes the reference frames.
here="$(dirname "$0")"
echo $$ >> "$here/pids.txt"
while [ -e "$here/hold.txt" ]; do sleep 0.05; done
if [ -e "$here/fail.txt" ]; then echo "failing on purpose"; exit 1; fi
cp "{reference}" "$2/0.raw"
"""


@dataclass(frozen=True)
class Assets:
    """A tiny demo clip and scorer, and the clip decoded as a .raw (what a perfect inflate writes)."""

    clip: Path
    models: Path
    reference: Path


def make_assets(root: Path) -> Assets:
    """Demo assets of `FRAMES` frames in `root`."""
    demo = make_demo_assets(root / "demo", frames=FRAMES)
    reference = root / "reference.bin"
    with RawWriter(reference) as writer:
        for frame in iter_frames(demo.clip):
            writer.write(frame)
    return Assets(demo.clip, demo.models, reference)


@dataclass(frozen=True)
class Gated:
    """A queued gated run and its submission folder."""

    id: str
    folder: Path

    def release(self, fail: bool = False) -> None:
        """Let the run go on: to be scored, or (`fail`) to fail at once without scoring."""
        if fail:
            (self.folder / "fail.txt").write_text("fail\n")
        (self.folder / "hold.txt").unlink(missing_ok=True)

    def inflate_pids(self) -> list[int]:
        """The pids of the inflate.sh processes that ran so far."""
        try:
            return [int(p) for p in (self.folder / "pids.txt").read_text().split()]
        except FileNotFoundError:
            return []


def queue_gated(lab: Lab, assets: Assets, folder: Path, name: str) -> Gated:
    """Queue a run that holds in its inflate stage until released; its submission goes in `folder`."""
    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / "archive.zip", "w") as zf:
        zf.writestr("payload.bin", b"\0" * 64)
    (folder / "inflate.sh").write_text(INFLATE.format(reference=assets.reference))
    (folder / "hold.txt").write_text("held\n")
    spec = parse_spec({"run": {"submission": str(folder), "label": name}}, lab_source(lab))
    record = Ledger(lab).add_run(spec.to_dict(), label=name)
    return Gated(record.id, folder)


@contextlib.contextmanager
def schedulers(lab: Lab, leftovers: Callable[[], None], stop_timeout: float) -> Iterator[Callable[..., int]]:
    """Start schedulers on `lab` (`start(**control.start kwargs)`); at the end stop them, then end
    what their runs left (`leftovers`), and print the scheduler's log (pytest shows it on failure)."""
    started: list[int] = []

    def start(**kwargs: object) -> int:
        pid = control.start(lab, **kwargs)  # type: ignore[arg-type]
        started.append(pid)
        return pid

    try:
        yield start
    finally:
        try:
            control.stop(lab, now=True, wait=True, timeout=stop_timeout)
        finally:
            for pid in started:
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
            leftovers()
            log = SchedulerPaths.of(lab).log
            print(log.read_text() if log.exists() else "no scheduler log")
