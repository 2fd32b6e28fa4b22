"""The codec plug-in API from outside: a toy codec found only through an entry point runs like a built-in.

The toy distribution is a `.dist-info` folder with an `entry_points.txt` on the path (in this
process and, through PYTHONPATH, in the scheduler's and its workers'), as pip would leave it.
"""

from __future__ import annotations

import os
import signal
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from comma_tui.cli import main
from comma_tui.lab_client import LabClient
from comma_tui.widgets.queue_pane import stage_bars
from engine.media.video import HEIGHT, WIDTH
from engine.runs import registry
from engine.runs.spec import SourceSpec, SpecError, lab_source, parse_spec, stage_names
from engine.sched import control
from engine.sched.pool import alive, kill_run, run_tag
from ledger import Lab, Ledger, RunRecord
from tests import polling

TOY_STAGES = ("shrink", "archive", "inflate", "score")


def _install(site: Path, name: str, entry_points: str) -> None:
    info = site / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[comma_tui.codecs]\n{entry_points}\n")


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The toy codec installed (and a plug-in that does not import); uninstalled afterwards."""
    site = tmp_path / "site"
    _install(site, "toy_codec", "toy = tests.engine.runs.toy_plugin.codec:ToyCodec")
    _install(
        site,
        "toy_stages",
        "mask = tests.engine.runs.toy_plugin.stages:TopMask\nbar = tests.engine.runs.toy_plugin.stages:BottomBar",
    )
    _install(site, "broken_codec", "broken = no_such_module_anywhere:Codec")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p))
    registry.reload()
    yield site
    monkeypatch.undo()
    registry.reload()


@pytest.fixture
def lab(demo_assets, tmp_path: Path) -> Lab:
    return Lab.create(tmp_path / "lab", demo_assets.clip, demo_assets.models)


def _record(lab: Lab, label: str) -> RunRecord:
    """The full record of the run labelled `label` (lists hold summaries)."""
    ledger = Ledger(lab)
    (record,) = ledger.records(ledger.runs(text=label))
    return record


def _stop_scheduler(lab: Lab) -> None:
    try:
        control.stop(lab, now=True, wait=True, timeout=30)
    finally:
        ledger = Ledger(lab)
        for record in ledger.records(ledger.all()):  # full records: summaries hold no pid
            if record.pid and alive(record.pid):
                os.kill(record.pid, signal.SIGKILL)
            kill_run(run_tag(lab.root, record.id), record.pid, grace=1.0)


def test_a_toy_codec_runs_through_the_queue_the_console_export_and_official_scoring(
    toy: Path, lab: Lab, tmp_path: Path
) -> None:
    spec = parse_spec({"encode": {"codec": "toy"}, "toy": {"scale": 8}, "run": {"label": "toy"}}, lab_source(lab))
    ledger = Ledger(lab)
    queued = ledger.add_run(spec.to_dict(), label="toy")
    client, seen = LabClient(lab), []

    def shown_or_ended() -> bool:
        # The console's queue pane draws a running run's own stages, from what the lab client hands it.
        snapshot = client.snapshot()
        if snapshot is not None and queued.id in snapshot.stages:
            seen.append(snapshot.stages[queued.id])
        return bool(seen) or Ledger(lab).get(queued.id).status not in ("queued", "running")

    control.start(lab, 1)
    try:
        polling.wait_until(shown_or_ended, 300, "the toy run in the queue pane")
        polling.wait_until(lambda: Ledger(lab).get(queued.id).status not in ("queued", "running"), 600, "the toy run")
    finally:
        _stop_scheduler(lab)
    assert seen and seen[0] == TOY_STAGES
    assert stage_bars(seen[0], None, 80).plain.split()[::2] == ["shr", "arc", "inf", "scr"]
    record = Ledger(lab).get(queued.id)
    assert record.status == "done", record.log_tail
    assert record.metrics is not None and list(record.stage_timings) == list(TOY_STAGES)
    with zipfile.ZipFile(Path(record.artifacts) / "archive.zip") as zf:
        assert zf.namelist() == ["0.toy"]

    dest = tmp_path / "submission"
    assert main(["export", record.id, str(dest), "--lab", str(lab.root)]) == 0
    assert sorted(p.name for p in dest.iterdir()) == ["archive.zip", "inflate.py", "inflate.sh", "spec.toml"]
    assert "import engine" not in (dest / "inflate.py").read_text()  # it ships standalone
    assert main(["run", "--submission", str(dest), "--lab", str(lab.root), "--label", "toy-exported"]) == 0
    exported = _record(lab, "toy-exported")
    assert exported.metrics == record.metrics


def test_stage_plugins_change_the_source_and_the_inflate_and_their_code_ships(
    toy: Path, lab: Lab, tmp_path: Path
) -> None:
    spec = tmp_path / "staged.toml"
    spec.write_text(
        '[run]\nlabel = "staged"\n[preprocess]\nwidth = 128\nheight = 96\n[encode]\ncrf = 30\npreset = 12\n'
        "[mask]\nrows = 128\n[bar]\nrows = 40\nlevel = 200\n"
    )
    assert main(["run", str(spec), "--lab", str(lab.root), "--keep-raw"]) == 0
    record = _record(lab, "staged")
    assert record.status == "done" and list(record.stage_timings) == ["encode", "archive", "inflate", "score"]
    frames = np.fromfile(Path(record.artifacts) / "0.raw", np.uint8).reshape(-1, HEIGHT, WIDTH, 3)
    assert (frames[:, -40:] == 200).all()  # the post-filter ran on every inflated frame
    assert frames[:, :64].mean() < 40 < frames[:, 200:-40].mean()  # the masked source rows came back dark

    dest = tmp_path / "submission"
    assert main(["export", record.id, str(dest), "--lab", str(lab.root)]) == 0
    assert (dest / "postfilter_bar.py").read_bytes() == (
        Path(__file__).parent / "toy_plugin" / "bar_runtime.py"
    ).read_bytes()
    assert '--plugin \'postfilter_bar.py={"level":200,"rows":40}\'' in (dest / "inflate.sh").read_text()
    assert main(["run", "--submission", str(dest), "--lab", str(lab.root), "--label", "staged-exported"]) == 0
    assert _record(lab, "staged-exported").metrics == record.metrics


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ({"encode": {"codec": "toy"}, "toy": {"scale": 0}}, "toy.scale = 0 is out of range: use 1..64"),
        ({"encode": {"codec": "toy"}, "toy": {"colour": 1}}, "unknown key toy.colour: [toy] takes scale"),
        ({"toy": {"scale": 4}}, "[toy] is for encode.codec = 'toy': set that codec, or remove the section"),
        ({"encode": {"codec": "broken"}}, "encode.codec = 'broken': its plug-in did not load"),
        ({"encode": {"codec": "nope"}}, "encode.codec = 'nope' is not allowed: use one of"),
        ({"mask": {"rows": 1}}, "mask.rows = 1 is out of range: use 2..800"),
        ({"mask": {"rows": 8}, "preprocess": {"path": "rgb"}}, "preprocess plug-ins run on the yuv path"),
    ],
)
def test_a_plugins_keys_are_checked_like_the_rest(toy: Path, tables: dict, message: str) -> None:
    with pytest.raises((SpecError, registry.PluginError)) as caught:
        parse_spec(tables, SourceSpec(clip="c.mkv", models="m"))
    text = str(caught.value)
    assert message in text and "\n" not in text


def test_the_registry_lists_built_ins_and_plugins_and_why_one_did_not_load(toy: Path) -> None:
    found = registry.registry()
    assert {"toy", "neural", "libsvtav1", "libx264"} <= set(found.codecs)
    assert "does not import" in found.broken["broken"]
    assert stage_names({"encode": {"codec": "toy"}, "toy": {"scale": 8}}) == TOY_STAGES


def test_a_run_of_a_plugin_no_longer_installed_still_shows_its_shared_stages() -> None:
    assert "toy" not in registry.registry().codecs
    assert stage_names({"encode": {"codec": "toy"}, "toy": {"scale": 8}}) == ("archive", "inflate", "score")
