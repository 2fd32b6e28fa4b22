"""`comma-tui init` and `comma-tui ledger ...`, driven through `comma_tui.cli.main`."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from comma_tui.cli import main
from ledger import Lab, Ledger
from tests.ledger.fixtures import make_lab, measured, spec
from tests.sources import lfs_pointer, small_source


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    lab = make_lab(tmp_path)
    ledger = Ledger(lab)
    first = measured(ledger, 2.19)
    measured(ledger, 2.21, parent=first.id, the_spec=spec(crf=35))
    measured(ledger, 2.10, parent=first.id, the_spec=spec(crf=33), track="small")
    ledger.add_run(spec(crf=36), label="waiting in line")
    return lab


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("comma-tui: error: ")
    return lines[0]


def test_init_makes_a_lab(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip, models = small_source(tmp_path)
    root = tmp_path / "newlab"
    argv = ["init", str(root), "--clip", str(clip), "--models", str(models)]
    code, out, _ = run(capsys, *argv, "--original-bytes", "123")
    assert code == 0 and f"made lab {root.resolve()}" in out and "123 bytes" in out
    assert Lab.open(root).source().original_bytes == 123
    code, _, err = run(capsys, *argv)
    assert code == 2 and "already holds a lab" in one_line_error(err)


def test_init_with_a_missing_clip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "init", str(tmp_path / "lab"), "--clip", "nope.mkv", "--models", str(tmp_path))
    assert code == 2 and "clip" in one_line_error(err) and "not found" in err


@pytest.mark.parametrize("pointer", ["videos/0.mkv", "models/posenet.safetensors", "models/segnet.safetensors"])
def test_init_refuses_a_checkout_without_git_lfs_pull(tmp_path: Path, capsys, pointer: str) -> None:
    clip, models = small_source(tmp_path / "checkout")
    lfs_pointer(tmp_path / "checkout" / pointer)
    code, _, err = run(capsys, "init", str(tmp_path / "lab"), "--clip", str(clip), "--models", str(models))
    assert code == 2 and f"{pointer} is a Git LFS pointer" in one_line_error(err)
    assert "run git lfs pull in the challenge checkout" in err
    assert not (tmp_path / "lab").exists()


def test_init_on_a_read_only_disk_is_one_line(tmp_path: Path, capsys, mount) -> None:
    clip, models = small_source(tmp_path)
    read_only = mount(1, read_only=True)
    code, _, err = run(capsys, "init", str(read_only / "lab"), "--clip", str(clip), "--models", str(models))
    assert code == 2 and f"{read_only / 'lab'} is on a read-only filesystem: remount it" in one_line_error(err)


def test_no_lab_says_how_to_make_one(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "ledger", "list")
    assert code == 2 and "comma-tui init DIR --clip" in one_line_error(err)
    code, _, err = run(capsys, "ledger", "list", "--lab", str(tmp_path))
    assert code == 2 and "comma-tui init DIR --clip" in one_line_error(err)


def test_list_table_marks_floors_and_filters(lab: Lab, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    code, out, _ = run(capsys, "ledger", "list", "--lab", str(lab.root))
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:5] == ["id", "track", "label", "status", "score"]
    assert lines[1].startswith("r0001*") and "promoted" in lines[1] and "2.190" in lines[1]
    assert lines[2].startswith("r0002 ") and "+0.020" in lines[2] and "rejected" in lines[2]
    assert lines[3].startswith("r0003*") and "small" in lines[3]
    assert "waiting in line" in lines[4] and "queued" in lines[4]
    assert lines[-1].startswith("4 runs; * floor: main r0001 2.190, small r0003 2.100")
    monkeypatch.chdir(lab.runs_dir)  # the lab holding the current folder
    code, out, _ = run(capsys, "ledger", "list", "--verdict", "rejected")
    assert code == 0 and [line.split()[0] for line in out.splitlines()[1:-1]] == ["r0002"]
    assert out.splitlines()[-1].startswith("1 of 4 runs")
    code, out, _ = run(capsys, "ledger", "list", "--track", "nowhere")
    assert code == 0 and out.strip() == "no runs match these filters"
    code, out, _ = run(capsys, "ledger", "list", "--sort", "score", "--reverse", "--status", "done")
    assert [line.split()[0] for line in out.splitlines()[1:-1]] == ["r0002", "r0001*", "r0003*"]


def test_list_json(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "ledger", "list", "--lab", str(lab.root), "--json", "--text", "crf=35")
    rows = json.loads(out)
    assert code == 0 and [r["id"] for r in rows] == ["r0002"]
    assert rows[0]["delta_vs_floor"] == pytest.approx(0.02) and rows[0]["metrics"]["score"] == 2.21


def test_list_on_an_empty_lab(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lab = make_lab(tmp_path)
    code, out, _ = run(capsys, "ledger", "list", "--lab", str(lab.root))
    assert code == 0 and out.startswith("no runs yet")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["list", "--status", "finished"], "unknown status 'finished'"),
        (["list", "--verdict", "good"], "unknown verdict 'good'"),
        (["list", "--sort", "size"], "cannot sort by 'size'"),
        (["show", "r0099"], "no run r0099 in "),
        (["show", "banana"], "is not a run id"),
        (["promote", "r0004", "--note", "x"], "r0004 is queued: only measured"),
        (["reject", "r0001", "--note", " "], "needs a note"),
        (["export", "--format", "xlsx"], "unknown export format 'xlsx'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(lab: Lab, capsys, args: list[str], message: str) -> None:
    code, out, err = run(capsys, "ledger", *args, "--lab", str(lab.root))
    assert code == 2 and out == "" and message in one_line_error(err)


def test_show_has_prior_current_delta(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "ledger", "show", "r0002", "--lab", str(lab.root))
    assert code == 0
    assert out.startswith("r0002  track main  done  rejected")
    assert "+0.020 vs floor 2.190 (r0001); changed crf 34 -> 35" in out
    table = [line.split() for line in out.splitlines() if line.split()[:1] in (["score"], ["bytes"], ["PoseNet"])]
    assert table[0] == ["score", "2.190", "2.210", "+0.020"]
    assert table[1] == ["bytes", "100,000", "100,000", "±0"]
    assert "Floor r0001" in out and "Current r0002" in out and "Delta" in out
    assert "[encode] codec=" in out and "artifacts:" in out and "stages: encode 1.5s, score 2.0s" in out


def test_show_queued_and_json(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "ledger", "show", "r4", "--lab", str(lab.root))
    assert code == 0 and "queued" in out.splitlines()[0] and "Prior" not in out
    code, out, _ = run(capsys, "ledger", "show", "r0003", "--lab", str(lab.root), "--json")
    data = json.loads(out)
    assert data["id"] == "r0003" and data["prior"] == "r0001" and data["verdict"] == "promoted"


def test_promote_and_reject_by_hand(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "ledger", "promote", "r0002", "--note", "smaller decoder", "--lab", str(lab.root))
    assert code == 0 and out.splitlines() == [
        "r0002 promoted by hand: smaller decoder",
        "floor of track main: r0002 (2.210)",
    ]
    record = Ledger(lab).get("r0002")
    assert record.verdict == "promoted" and record.overrides[0].note == "smaller decoder"
    code, out, _ = run(capsys, "ledger", "reject", "r0002", "--note", "oops", "--lab", str(lab.root))
    assert code == 0 and "floor of track main: r0001" in out
    code, out, _ = run(capsys, "ledger", "show", "r0002", "--lab", str(lab.root))
    assert "rejected by hand" in out and "promoted by hand" in out


def test_export_formats(lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "ledger", "export", "--format", "csv", "--lab", str(lab.root))
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [r["id"] for r in rows] == ["r0001", "r0002", "r0003", "r0004"]
    target = tmp_path / "runs.json"
    code, out, _ = run(capsys, "ledger", "export", "--format", "json", "--output", str(target), "--lab", str(lab.root))
    assert code == 0 and out.strip() == f"wrote 4 runs to {target}"
    assert [d["id"] for d in json.loads(target.read_text())] == ["r0001", "r0002", "r0003", "r0004"]
    code, out, _ = run(capsys, "ledger", "export", "--format", "md", "--track", "small", "--lab", str(lab.root))
    assert code == 0 and len(out.splitlines()) == 3 and "| r0003 | small |" in out
    bad = str(tmp_path / "no" / "x.md")
    code, _, err = run(capsys, "ledger", "export", "--format", "md", "--output", bad, "--lab", str(lab.root))
    assert code == 2 and f"cannot write {bad}" in one_line_error(err)


def test_ledger_alone_prints_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "ledger")
    assert code == 0 and "list" in out and "export" in out


def test_missing_note_is_an_argparse_error(lab: Lab) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["ledger", "promote", "r0001", "--lab", str(lab.root)])
    assert caught.value.code == 2


def test_show_compares_a_run_with_what_the_console_compares_it_with(lab: Lab, capsys) -> None:
    # r0004 is queued on main: both `ledger show --json` and the detail screen name the floor it faces.
    from comma_tui.lab_client import LabClient

    code, out, _ = run(capsys, "ledger", "show", "r0004", "--lab", str(lab.root), "--json")
    detail = LabClient(lab).detail("r0004")
    assert code == 0 and json.loads(out)["prior"] == "r0001"
    assert detail.prior is not None and (detail.prior.run.id, detail.prior.kind) == ("r0001", "floor")


def test_list_takes_several_statuses_and_names_unlabelled_runs_as_the_console_does(lab: Lab, capsys) -> None:
    ledger = Ledger(lab)
    failed = ledger.add_run(spec(crf=40), status="running")
    ledger.record_failure(failed.id, "exit status 1")
    code, out, _ = run(capsys, "ledger", "list", "--status", "done", "--status", "failed", "--lab", str(lab.root))
    ids = [line.split()[0].rstrip("*") for line in out.splitlines()[1:-1]]
    assert code == 0 and ids == ["r0001", "r0002", "r0003", failed.id]
    from comma_tui.widgets.format import run_label

    assert run_label(ledger.get("r0002")) in out  # no label: what it tried, as in the console


def test_archive_moves_runs_out_of_list_and_back(lab: Lab, capsys) -> None:
    at = ("--lab", str(lab.root))
    code, out, _ = run(capsys, "ledger", "archive", "r0002", *at)
    assert code == 0 and out.startswith("archived r0002: out of the views, kept on disk")
    listed = run(capsys, "ledger", "list", *at)[1]
    assert "r0002" not in listed and "r0003" in listed
    archived = run(capsys, "ledger", "list", "--archived", *at)[1]
    assert [line.split()[0] for line in archived.splitlines()[1:-1]] == ["r0002"]
    code, _, err = run(capsys, "ledger", "archive", "r0004", *at)
    assert code == 2 and "r0004 is queued: cancel it before archiving it" in one_line_error(err)
    assert run(capsys, "ledger", "archive", "r0002", "--restore", *at)[0] == 0
    assert "r0002" in run(capsys, "ledger", "list", *at)[1]


def test_demo_applies_to_every_command(tmp_path: Path, monkeypatch, capsys) -> None:
    from comma_tui import demo
    from tests.comma_tui.app_fixtures import stand_in_assets

    made = stand_in_assets(tmp_path / "data" / "demo-lab" / "assets")
    demo_lab = Lab.create(tmp_path / "data" / "demo-lab", made.clip, made.models)
    Ledger(demo_lab).add_run(spec(), label="first svt-av1")
    monkeypatch.setenv(demo.DATA_ENV, str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # no lab here
    code, out, _ = run(capsys, "--demo", "ledger", "list")
    assert code == 0 and "first svt-av1" in out
    code, out, _ = run(capsys, "ledger", "list", "--demo")  # typed last, as with a command's own options
    assert code == 0 and "first svt-av1" in out
    with pytest.raises(SystemExit) as bad:
        run(capsys, "ledger", "list", "--demo", "--bogus")
    assert bad.value.code == 2 and "unrecognized arguments: --bogus" in capsys.readouterr().err
    code, _, err = run(capsys, "--demo", "--lab", str(tmp_path), "ledger", "list")
    assert code == 2 and "--lab DIR or --demo, not both" in one_line_error(err)


def test_init_for_a_ray_cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip, models = small_source(tmp_path)
    argv = ["init", str(tmp_path / "lab"), "--clip", str(clip), "--models", str(models)]
    code, out, _ = run(capsys, *argv, "--backend", "ray", "--ray-address", "gpu-box:8265", "--gpus-per-run", "1")
    assert code == 0 and "Ray jobs on http://gpu-box:8265, each asking 1 GPU, 1 CPU" in out
    settings = Lab.open(tmp_path / "lab").scheduler_settings()
    assert (settings.backend, settings.ray_address, settings.gpus_per_run) == ("ray", "http://gpu-box:8265", 1.0)
    code, _, err = run(capsys, argv[0], str(tmp_path / "bad"), *argv[2:], "--cpus-per-run", "-2")
    assert code == 2 and "[scheduler] cpus_per_run -2.0 must be a number, 0 or more" in one_line_error(err)
    assert not (tmp_path / "bad").exists()
