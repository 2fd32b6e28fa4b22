"""The neural archive file and its standalone inflate: what training optimised is what ships and inflates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.codecs.neural import runtime_path
from engine.codecs.neural.model import Trainable
from engine.codecs.neural.runtime import FRAME_BYTES, Arch, decode_pairs, inflate_file, pack, unpack

ARCH = Arch(latent_dim=4, channels=8, upsample=6)
FRAMES = 5  # an odd count: the last pair's second frame is never written


@pytest.fixture(scope="module")
def model() -> Trainable:
    model = Trainable(ARCH, (FRAMES + 1) // 2, seed=3)
    with torch.no_grad():
        model.latents.mul_(3.0)  # latents spread wider than the seed's, as trained ones are
    return model


def test_the_shipped_file_decodes_what_the_quantised_training_pass_decodes(model: Trainable) -> None:
    shipped = unpack(pack(model.packed(8, 6, FRAMES), "lzma"))
    assert (shipped.arch, shipped.weight_bits, shipped.latent_bits, shipped.frames) == (ARCH, 8, 6, FRAMES)
    assert int(shipped.latent_codes.max()) <= 63
    index = torch.arange(3)
    with torch.no_grad():
        trained = model(index, (8, 6))
        inflated = decode_pairs(shipped.params(), shipped.latents(), ARCH)
        unquantised = model(index, None)
    assert torch.allclose(trained, inflated, atol=1e-4)
    assert not torch.allclose(unquantised, inflated, atol=1e-4)  # the quantisation is real


@pytest.mark.parametrize("entropy", ["lzma", "zlib", "bz2", "none"])
def test_every_entropy_coder_round_trips(model: Trainable, entropy: str) -> None:
    packed = model.packed(8, 8, FRAMES)
    again = unpack(pack(packed, entropy))
    assert np.array_equal(again.latent_codes, packed.latent_codes)
    assert all(np.array_equal(again.codes[n], packed.codes[n]) for n in packed.codes)


def test_a_damaged_file_is_a_clear_error(model: Trainable) -> None:
    data = pack(model.packed(8, 8, FRAMES), "none")
    with pytest.raises(ValueError, match="truncated"):
        unpack(data[:-10])
    with pytest.raises(ValueError, match="not a comma-tui neural archive"):
        unpack(b"PK" + data)


def test_the_exported_program_inflates_under_the_official_contract_as_the_lab_does(
    model: Trainable, tmp_path: Path
) -> None:
    archive, out = tmp_path / "archive", tmp_path / "out"
    archive.mkdir()
    (archive / "0.bin").write_bytes(pack(model.packed(8, 8, FRAMES), "lzma"))
    names = tmp_path / "names.txt"
    names.write_text("0.mkv\n")
    lab_raw = tmp_path / "lab.raw"
    assert inflate_file(archive / "0.bin", lab_raw, device=torch.device("cpu")) == FRAMES
    assert lab_raw.stat().st_size == FRAMES * FRAME_BYTES
    program = tmp_path / "inflate.py"
    program.write_bytes(runtime_path().read_bytes())  # alone in its folder, as export ships it
    done = subprocess.run(
        [sys.executable, str(program), str(archive), str(out), str(names)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": ""},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (out / "0.raw").read_bytes() == lab_raw.read_bytes()
    names.write_text("1.mkv\n")
    missing = subprocess.run(
        [sys.executable, str(program), str(archive), str(out), str(names)],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": ""},
        check=False,
    )
    assert missing.returncode == 1 and "1.bin is missing from the archive" in missing.stderr
