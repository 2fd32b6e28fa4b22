"""Run specs: defaults, validation at the edge, axes, and TOML round trips."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.runs.spec import (
    RunSpec,
    SourceSpec,
    SpecError,
    load_spec,
    parse_axis_value,
    parse_spec,
    resolve_axis,
    spec_to_toml,
)

SOURCE = {"clip": "/data/videos/0.mkv", "models": "/data/models"}


def spec(**sections: dict) -> RunSpec:
    return parse_spec({"source": SOURCE, **sections})


def test_every_key_but_the_source_has_a_default() -> None:
    s = spec()
    assert s.encode.codec == "libsvtav1" and s.archive.compression == "stored"
    assert s.run.track == "main" and s.score.batch_size == 16
    assert (s.inflate.hidden, s.inflate.depth, s.inflate.steps, s.inflate.ema_decay) == (64, 3, 1000, 0.997)
    with pytest.raises(SpecError, match=r"no \[source\] clip and models"):
        parse_spec({})


def test_a_lab_supplies_the_source_and_a_spec_may_override_part_of_it() -> None:
    lab = SourceSpec(clip="/lab/0.mkv", models="/lab/models", original_bytes=100)
    assert parse_spec({}, lab).source == lab
    assert parse_spec({"source": {"original_bytes": 5}}, lab).source.original_bytes == 5


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"encode": {"codec": "h266"}}, r"encode.codec = 'h266' is not allowed: use one of libsvtav1, libx265"),
        ({"encode": {"crf": 70}}, r"encode.crf \(for libsvtav1\) = 70 is out of range: use 0..63"),
        ({"encode": {"codec": "libx265", "crf": 52}}, r"for libx265\) = 52 is out of range: use 0..51"),
        ({"preprocess": {"width": 525, "height": 394}}, r"preprocess.width = 525 must be an even number"),
        ({"preprocess": {"width": 524}}, r"width and preprocess.height go together"),
        ({"encode": {"crf": "high"}}, r"encode.crf = 'high' must be a whole number"),
        ({"encode": {"preset": "turbo"}}, r"encode.preset \(for libsvtav1\) = 'turbo' is not allowed"),
        ({"encode": {"film_grain": 8, "codec": "libx264"}}, r"film_grain is an svt-av1 feature"),
        ({"encode": {"params": "tune=0:rm -rf /"}}, r"encode.params item 'rm -rf /' is not key=value"),
        ({"encode": {"crff": 30}}, r"unknown key encode.crff: \[encode\] takes codec, crf"),
        ({"encoder": {"crf": 30}}, r"unknown section \[encoder\]"),
        (
            {"inflate": {"postfilter": "magic"}},
            r"inflate.postfilter = 'magic' is not allowed: use one of none, unsharp",
        ),
        ({"inflate": {"unsharp_size": 4}}, r"inflate.unsharp_size = 4 must be odd"),
        ({"inflate": {"loss": {"pixel": 0}}}, r"inflate.loss table has no positive weight"),
        ({"archive": {"compression": "xz"}}, r"archive.compression = 'xz' is not allowed: use one of stored, deflated"),
        ({"preprocess": {"path": "bgr"}}, r"preprocess.path = 'bgr' is not allowed: use one of yuv, rgb"),
        ({"preprocess": {"denoise": 4}}, r"preprocess.denoise is the rgb path's own denoiser: on path = 'yuv' use"),
        ({"preprocess": {"path": "rgb", "filters": "atadenoise"}}, r"preprocess.filters run on the yuv path"),
        ({"inflate": {"path": "rgb", "filters": "unsharp"}}, r"inflate.filters run on the yuv path"),
        ({"preprocess": {"filters": "hqdn3d"}}, r"preprocess.filters = 'hqdn3d': no filter 'hqdn3d'.*try atadenoise"),
        (
            {"inflate": {"filters": "unsharp=lx=4"}},
            r"inflate.filters = 'unsharp=lx=4': unsharp=lx=4: Invalid even size for luma matrix",
        ),
        ({"encode": {"codec": "libx264", "params": "nonsense-key=5"}}, r"libx264 refuses it \(Error parsing option"),
    ],
)
def test_bad_values_name_the_key_and_what_it_accepts(sections: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        spec(**sections)


def test_new_specs_take_the_yuv_path_and_the_rgb_path_keeps_its_denoiser() -> None:
    s = spec()
    assert (s.preprocess.path, s.inflate.path, s.preprocess.filters, s.inflate.filters) == ("yuv", "yuv", "", "")
    old = spec(preprocess={"path": "rgb", "denoise": 4.0}, inflate={"path": "rgb"})
    assert old.preprocess.settings().denoise == 4.0 and old.preprocess.settings().path == "rgb"
    with pytest.raises(SpecError, match=r"axis 'path' is in several sections: say which \(preprocess.path"):
        resolve_axis("path")


def test_params_pass_through_to_the_codec() -> None:
    s = spec(encode={"params": "tune=0:enable-qm=1", "film_grain": 22, "keyint": 240})
    settings = s.encode.settings()
    assert settings.params == {"tune": "0", "enable-qm": "1"}
    assert settings.film_grain == 22 and settings.keyint == 240


def test_axes_resolve_by_bare_name_unless_ambiguous() -> None:
    assert resolve_axis("crf") == ("encode", "crf")
    assert resolve_axis("inflate.scaler") == ("inflate", "scaler")
    with pytest.raises(SpecError, match=r"axis 'scaler' is in several sections: say which \(preprocess.scaler"):
        resolve_axis("scaler")
    with pytest.raises(SpecError, match="unknown axis 'qp'"):
        resolve_axis("qp")
    assert parse_axis_value("crf", "34") == 34
    assert parse_axis_value("film_grain_denoise", "true") is True
    with pytest.raises(SpecError, match="encode.crf value 'x' is not a whole number"):
        parse_axis_value("crf", "x")


def test_with_value_changes_one_axis_and_revalidates() -> None:
    base = spec(encode={"crf": 34})
    assert base.with_value("crf", 35).encode.crf == 35
    assert base.encode.crf == 34
    with pytest.raises(SpecError, match="out of range"):
        base.with_value("encode.crf", 99)


def test_toml_round_trip(tmp_path: Path) -> None:
    s = spec(
        run={"label": 'a "quoted" label', "track": "av1"},
        encode={"crf": 33, "film_grain": 22, "params": "tune=0"},
        preprocess={"filters": "atadenoise,scale='min(iw,1000)':-2"},
        inflate={"postfilter": "unsharp", "unsharp_amount": 0.75, "loss": {"pixel": 1.0, "scorer": 0.5}},
    )
    path = tmp_path / "spec.toml"
    path.write_text(spec_to_toml(s))
    assert load_spec(path) == s


def test_relative_source_paths_are_taken_from_the_spec_folder(tmp_path: Path) -> None:
    path = tmp_path / "exp" / "spec.toml"
    path.parent.mkdir()
    path.write_text('[source]\nclip = "../videos/0.mkv"\nmodels = "../models"\n')
    loaded = load_spec(path)
    assert loaded.source.clip == str(tmp_path / "videos" / "0.mkv")


def test_unreadable_spec_files(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[encode\ncrf = ")
    with pytest.raises(SpecError, match="is not valid TOML"):
        load_spec(bad)
