"""The lab folder: `Lab.create`, `Lab.open`, `Lab.find`, lab.toml read back (source, id, scheduler settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ledger import Lab, LedgerError, Source
from ledger.scheduler_settings import SchedulerSettings
from tests.ledger.fixtures import make_lab


def test_create_lays_out_the_folder_and_reads_back(tmp_path: Path) -> None:
    lab = make_lab(tmp_path)
    assert lab.root == (tmp_path / "lab").resolve()
    for folder in (lab.root, lab.runs_dir, lab.cache_dir, lab.ledger_dir):
        assert folder.is_dir()
    assert lab.config_path == lab.root / "lab.toml" and lab.config_path.is_file()
    assert lab.source() == Source(clip=tmp_path / "clip.mkv", models=tmp_path / "models", original_bytes=1_000_000)
    assert lab.epsilon() == 0.005
    assert lab.run_dir("r0042") == lab.runs_dir / "r0042"
    assert Lab(tmp_path / "lab") == lab and hash(Lab(tmp_path / "lab")) == hash(lab)


def test_create_without_original_bytes_and_odd_paths(tmp_path: Path) -> None:
    odd = tmp_path / 'a "quoted" \\ dir ünï'
    odd.mkdir()
    (odd / "clip.mkv").touch()
    (odd / "models").mkdir()
    lab = Lab.create(tmp_path / "lab", odd / "clip.mkv", odd / "models")
    assert lab.source() == Source(clip=odd / "clip.mkv", models=odd / "models", original_bytes=None)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"clip": "missing.mkv"}, "clip .* not found"),
        ({"models": "missing"}, "models folder .* not found"),
        ({"original_bytes": 0}, "must be positive"),
        ({"epsilon": -1.0}, "non-negative"),
    ],
)
def test_create_refuses_bad_input(tmp_path: Path, change: dict, message: str) -> None:
    (tmp_path / "clip.mkv").touch()
    (tmp_path / "models").mkdir()
    args: dict[str, Any] = {"clip": tmp_path / "clip.mkv", "models": tmp_path / "models"}
    args |= {k: tmp_path / v if isinstance(v, str) else v for k, v in change.items()}
    with pytest.raises(LedgerError, match=message):
        Lab.create(tmp_path / "lab", **args)
    assert not (tmp_path / "lab" / "lab.toml").exists()


def test_create_refuses_to_overwrite_a_lab(tmp_path: Path) -> None:
    lab = make_lab(tmp_path)
    before = lab.config_path.read_bytes()
    with pytest.raises(LedgerError, match="already holds a lab"):
        Lab.create(lab.root, tmp_path / "clip.mkv", tmp_path / "models")
    assert lab.config_path.read_bytes() == before


def test_find_walks_up_and_open_is_strict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = make_lab(tmp_path)
    deep = lab.runs_dir / "r0001" / "logs"
    deep.mkdir(parents=True)
    assert Lab.find(deep) == lab
    monkeypatch.chdir(deep)
    assert Lab.find() == lab and Lab.find(None) == lab
    assert Lab.open(lab.root) == lab
    with pytest.raises(LedgerError, match=r"no lab in .*comma-tui init DIR --clip"):
        Lab.open(deep)


def test_find_without_a_lab_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(LedgerError) as caught:
        Lab.find(tmp_path)
    message = str(caught.value)
    assert str(tmp_path) in message and "comma-tui init DIR --clip CLIP --models MODELS" in message
    assert "\n" not in message


def test_hand_edited_lab_toml(tmp_path: Path) -> None:
    lab = make_lab(tmp_path)
    lab.config_path.write_text(
        '[source]\nclip = "videos/0.mkv"\nmodels = "/abs/models"\n\n[promotion]\nepsilon = 0.01\n'
    )
    assert lab.source() == Source(clip=lab.root / "videos/0.mkv", models=Path("/abs/models"))
    assert lab.epsilon() == 0.01


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[source\n", "not valid TOML"),
        ("[promotion]\nepsilon = 'big'\n", "epsilon"),
        ("[other]\n", "lacks \\[source\\]"),
        ('[source]\nclip = "c"\nmodels = "m"\noriginal_bytes = -3\n', "original_bytes"),
    ],
)
def test_broken_lab_toml_names_the_file(tmp_path: Path, text: str, message: str) -> None:
    lab = make_lab(tmp_path)
    lab.config_path.write_text(text)
    with pytest.raises(LedgerError, match=message) as caught:
        lab.source() if "epsilon" not in message else lab.epsilon()
    assert str(lab.config_path) in str(caught.value)


def test_a_new_lab_has_an_id_and_local_scheduler_settings(tmp_path: Path) -> None:
    lab = make_lab(tmp_path)
    other = Lab.create(tmp_path / "other", tmp_path / "clip.mkv", tmp_path / "models")
    assert lab.lab_id() is not None and lab.lab_id() != other.lab_id() and lab.ensure_id() == lab.lab_id()
    assert lab.scheduler_settings() == SchedulerSettings()
    ray = SchedulerSettings("ray", "http://gpu-box:8265", cpus_per_run=4, gpus_per_run=1)
    made = Lab.create(tmp_path / "ray", tmp_path / "clip.mkv", tmp_path / "models", scheduler=ray)
    assert made.scheduler_settings() == ray


def test_an_older_lab_gets_an_id_once_and_keeps_its_text(tmp_path: Path) -> None:
    lab = make_lab(tmp_path)
    lab.config_path.write_text('# mine\n[source]\nclip = "c.mkv"\nmodels = "m"\n')
    assert lab.lab_id() is None
    made = lab.ensure_id()
    assert lab.lab_id() == made == lab.ensure_id()
    assert lab.config_path.read_text().startswith('# mine\n[source]\nclip = "c.mkv"\nmodels = "m"\n')
    lab.config_path.write_text('[source]\nclip = "c"\nmodels = "m"\n[lab]\nname = "x"\n')
    with pytest.raises(LedgerError, match=r"\[lab\] has no id: add id = "):
        lab.ensure_id()


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('backend = "ray"\nray_address = "gpu-box:8265/"', SchedulerSettings("ray", "http://gpu-box:8265")),
        ("cpus_per_run = 2\ngpus_per_run = 0.5", SchedulerSettings(cpus_per_run=2.0, gpus_per_run=0.5)),
        ("", SchedulerSettings()),
    ],
)
def test_scheduler_settings_read_back(tmp_path: Path, table: str, expected: SchedulerSettings) -> None:
    lab = make_lab(tmp_path)
    lab.config_path.write_text(lab.config_path.read_text().replace("[scheduler]", "[old]") + f"[scheduler]\n{table}\n")
    assert lab.scheduler_settings() == expected


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('backend = "slurm"', r"\[scheduler\] backend 'slurm' is not a scheduler backend: use one of local, ray"),
        ('ray_address = "ray://head:10001"', r"ray_address 'ray://head:10001' is not a Ray dashboard address"),
        ("gpus_per_run = -1", r"\[scheduler\] gpus_per_run -1 must be a number, 0 or more"),
        ("cpus_per_run = 0", "cpus_per_run and gpus_per_run cannot both be 0"),
        ("slots = 4", r"unknown \[scheduler\] keys \['slots'\]"),
    ],
)
def test_bad_scheduler_settings_name_the_key_and_the_file(tmp_path: Path, table: str, message: str) -> None:
    lab = make_lab(tmp_path)
    lab.config_path.write_text(lab.config_path.read_text().replace("[scheduler]", "[old]") + f"[scheduler]\n{table}\n")
    with pytest.raises(LedgerError, match=message) as caught:
        lab.scheduler_settings()
    assert str(lab.config_path) in str(caught.value) and "\n" not in str(caught.value)


def test_command_line_overrides_are_checked() -> None:
    settings = SchedulerSettings().overridden(backend="ray", ray_address="10.0.0.5:8265")
    assert (settings.backend, settings.ray_address) == ("ray", "http://10.0.0.5:8265")
    with pytest.raises(LedgerError, match="--ray-address 'nowhere://' is not a Ray dashboard address"):
        SchedulerSettings().overridden(ray_address="nowhere://")
