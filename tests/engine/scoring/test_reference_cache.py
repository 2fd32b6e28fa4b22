"""The reference cache and the overlapped scoring path: same numbers, safe storage, clean threads."""

from __future__ import annotations

import dataclasses
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.media.video import FRAME_BYTES, iter_pair_batches, open_raw
from engine.scoring import evaluate as evaluate_module
from engine.scoring import networks
from engine.scoring.evaluate import Prefetch, evaluate, prepared_batches
from engine.scoring.model_inputs import prepare_inputs
from engine.scoring.reference_cache import HEADER, CacheKey, ReferenceCache, batch_sizes
from engine.scoring.scorer import ReferenceOutputs, Scorer
from ledger.errors import UserError

BATCH = 4  # 6 pairs in the test clip: a full batch and a short one


@pytest.fixture(scope="module")
def scorer(demo_assets) -> Scorer:
    return Scorer(demo_assets.models, device="cpu")


@pytest.fixture(scope="module")
def candidate(light_and_heavy) -> Path:
    return light_and_heavy["light"][1]


@pytest.fixture(scope="module")
def uncached(demo_assets, candidate: Path, scorer: Scorer):
    return evaluate(scorer, demo_assets.clip, candidate, 1000, batch_size=BATCH).distortions


def _assert_identical(a, b) -> None:
    assert a.posenet == b.posenet and a.segnet == b.segnet
    np.testing.assert_array_equal(a.posenet_per_pair, b.posenet_per_pair)
    np.testing.assert_array_equal(a.segnet_per_pair, b.segnet_per_pair)


def _count_reference_pairs(monkeypatch: pytest.MonkeyPatch, reference: Path) -> list[int]:
    """Count the pairs the scoring path decodes from `reference`."""
    decoded = [0]
    real = evaluate_module.iter_pairs

    def counting(path: Path) -> Iterator[np.ndarray]:
        for pair in real(path):
            if path == reference:
                decoded[0] += 1
            yield pair

    monkeypatch.setattr(evaluate_module, "iter_pairs", counting)
    return decoded


@pytest.mark.parametrize("threads", [1, 2])
def test_pairwise_inputs_from_one_thread_equal_the_evaluators_batch_conversion(demo_assets, threads: int) -> None:
    # ATen resizes with another kernel on one thread: the background thread (always one) must
    # still give what the evaluator's networks thread (`threads`) would.
    batch = next(iter_pair_batches(demo_assets.clip, 3))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        with torch.inference_mode():
            x = networks.to_model_input(torch.from_numpy(batch))
            pose, seg = networks.posenet_input(x), networks.segnet_input(x)
        torch.set_num_threads(1)
        ours = prepare_inputs(batch, torch.device("cpu"), threads=threads)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(ours.pose, pose) and torch.equal(ours.seg, seg)
    assert ours.pose.stride() == pose.stride() and ours.seg.stride() == seg.stride()  # same layouts too


def _thread_count_in_a_new_thread() -> int:
    seen: list[int] = []
    thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    return seen[0]


@pytest.fixture(scope="module")
def cold(demo_assets, candidate: Path, scorer: Scorer, tmp_path_factory: pytest.TempPathFactory):
    """A cache folder filled by one cold run, and that run's distortions."""
    folder = tmp_path_factory.mktemp("cache")
    result = evaluate(scorer, demo_assets.clip, candidate, 1000, batch_size=BATCH, cache=ReferenceCache(folder))
    return folder, result.distortions


def test_cold_and_warm_scores_equal_uncached_bit_for_bit(
    demo_assets, candidate: Path, scorer: Scorer, uncached, cold, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, cold_distortions = cold
    _assert_identical(cold_distortions, uncached)
    (entry,) = (folder / "reference").iterdir()
    assert sorted(p.name for p in entry.iterdir()) == ["batch-00000.npz", "batch-00001.npz", HEADER]
    decoded = _count_reference_pairs(monkeypatch, demo_assets.clip)
    cache = ReferenceCache(folder)
    threads = torch.get_num_threads()
    warm = evaluate(scorer, demo_assets.clip, candidate, 1000, batch_size=BATCH, cache=cache).distortions
    _assert_identical(warm, uncached)
    assert decoded[0] == 1  # warm: only the first pair, for the plausibility check
    # The one-thread background thread left torch's thread counts as they were, here and for new threads.
    assert torch.get_num_threads() == threads == _thread_count_in_a_new_thread()


def test_a_corrupt_entry_is_logged_rebuilt_and_scores_the_same(
    demo_assets, candidate: Path, scorer: Scorer, uncached, cold, tmp_path: Path
) -> None:
    shutil.copytree(cold[0], tmp_path, dirs_exist_ok=True)
    (entry,) = (tmp_path / "reference").iterdir()
    damaged = entry / "batch-00001.npz"
    damaged.write_bytes(damaged.read_bytes()[:-10] + b"0123456789")
    logged: list[str] = []
    cache = ReferenceCache(tmp_path, logged.append)
    rebuilt = evaluate(scorer, demo_assets.clip, candidate, 1000, batch_size=BATCH, cache=cache).distortions
    _assert_identical(rebuilt, uncached)
    assert len(logged) == 1 and "batch-00001.npz" in logged[0] and "rebuilt" in logged[0]
    key = CacheKey.for_run(demo_assets.clip, scorer, BATCH, 6)
    assert cache.open(key) is not None  # a fresh, valid entry is back in place
    assert [p.name for p in (tmp_path / "reference").iterdir()] == [entry.name]  # nothing left lying around


def _fake_outputs(pairs: int, seed: int) -> ReferenceOutputs:
    g = torch.Generator().manual_seed(seed)
    pose = torch.randn(pairs, 12, generator=g)
    seg = torch.randint(0, 5, (pairs, networks.MODEL_H, networks.MODEL_W), generator=g, dtype=torch.uint8)
    return ReferenceOutputs(pose, seg)


def _write_entry(cache: ReferenceCache, key: CacheKey) -> list[ReferenceOutputs]:
    outputs = [_fake_outputs(n, i) for i, n in enumerate(batch_sizes(key.pairs, key.batch_size))]
    with cache.writer(key) as writer:
        for ref in outputs:
            writer.add(ref)
        writer.commit()
    return outputs


@pytest.fixture
def key(demo_assets, scorer: Scorer) -> CacheKey:
    return CacheKey.for_run(demo_assets.clip, scorer, BATCH, 6)


def test_entries_stream_back_exactly_what_was_written(tmp_path: Path, key: CacheKey) -> None:
    cache = ReferenceCache(tmp_path)
    written = _write_entry(cache, key)
    entry = cache.open(key)
    assert entry is not None
    for (pose, seg), ref in zip(entry, written, strict=True):
        assert pose.dtype == np.float32 and np.array_equal(pose, ref.pose.numpy())
        assert seg.dtype == np.uint8 and np.array_equal(seg, ref.seg.numpy())


@pytest.mark.usefixtures("no_folder_fsync")
def test_a_filesystem_that_cannot_fsync_a_folder_still_keeps_entries(tmp_path: Path, key: CacheKey) -> None:
    cache = ReferenceCache(tmp_path)
    written = _write_entry(cache, key)
    entry = cache.open(key)
    assert entry is not None and len(list(entry)) == len(written)


@pytest.mark.parametrize(
    "damage",
    [
        lambda entry: (entry / HEADER).write_text("{not json"),
        lambda entry: (entry / HEADER).unlink(),
        lambda entry: (entry / "batch-00000.npz").unlink(),
        lambda entry: (entry / "batch-00000.npz").write_bytes(b"PK\x03\x04 truncated"),
    ],
    ids=["garbled-header", "no-header", "missing-batch", "truncated-batch"],
)
def test_damaged_entries_are_logged_and_removed_never_raised(tmp_path: Path, key: CacheKey, damage) -> None:
    logged: list[str] = []
    cache = ReferenceCache(tmp_path, logged.append)
    _write_entry(cache, key)
    damage(cache.entry(key))
    assert cache.open(key) is None
    assert len(logged) == 1 and "unusable" in logged[0]
    assert not any((tmp_path / "reference").iterdir())
    _write_entry(cache, key)  # and the slot can be filled again
    assert cache.open(key) is not None


def test_keys_isolate_batch_size_scorer_clip_and_threads(
    tmp_path: Path, key: CacheKey, demo_assets, reference_raw: Path, scorer: Scorer
) -> None:
    others = [
        CacheKey.for_run(demo_assets.clip, scorer, BATCH + 1, 6),
        CacheKey.for_run(reference_raw, scorer, BATCH, 6),  # same frames, another file
        dataclasses.replace(key, scorer="0" * 64),
        dataclasses.replace(key, threads=key.threads + 1),
        dataclasses.replace(key, device="cuda:Some GPU"),
        dataclasses.replace(key, pairs=5),
    ]
    assert len({key.digest, *(k.digest for k in others)}) == len(others) + 1
    logged: list[str] = []
    cache = ReferenceCache(tmp_path, logged.append)
    _write_entry(cache, key)
    assert all(cache.open(other) is None for other in others)
    assert cache.open(key) is not None and not logged  # the others never touched it


def test_an_entry_whose_header_names_another_key_is_rebuilt(tmp_path: Path, key: CacheKey) -> None:
    logged: list[str] = []
    cache = ReferenceCache(tmp_path, logged.append)
    _write_entry(cache, key)
    other = dataclasses.replace(key, batch_size=3)
    shutil.copytree(cache.entry(key), cache.entry(other))
    assert cache.open(other) is None and "another key" in logged[0]
    header = json.loads((cache.entry(key) / HEADER).read_text())
    assert header["key"]["batch_size"] == BATCH and cache.open(key) is not None


def test_a_batch_damaged_mid_run_falls_back_to_decoding(demo_assets, reference_raw: Path, tmp_path: Path, key) -> None:
    cache = ReferenceCache(tmp_path)
    _write_entry(cache, key)
    entry = cache.open(key)
    assert entry is not None
    (entry.folder / "batch-00001.npz").write_bytes(b"changed after it was checked")
    reported: list[str] = []
    sizes = batch_sizes(6, BATCH)
    works = list(
        prepared_batches(
            demo_assets.clip, reference_raw, sizes, torch.device("cpu"), entry, lambda exc: reported.append(str(exc))
        )
    )
    assert works[0].reference_outputs is not None and works[0].reference_inputs is None
    assert works[1].reference_outputs is None and works[1].reference_inputs is not None
    assert len(reported) == 1 and "checksum" in reported[0]
    *_, last = iter_pair_batches(demo_assets.clip, BATCH)  # decoding resumed at the damaged batch
    expected = prepare_inputs(last, torch.device("cpu"))
    assert torch.equal(works[1].reference_inputs.pose, expected.pose)
    assert torch.equal(works[1].reference_inputs.seg, expected.seg)


def test_prefetch_keeps_order_and_stays_one_item_ahead() -> None:
    made: list[int] = []

    def source() -> Iterator[int]:
        for i in range(6):
            made.append(i)
            yield i

    seen = []
    with Prefetch(source(), depth=1) as items:
        for item in items:
            seen.append(item)
            threading.Event().wait(0.02)  # give the thread every chance to run ahead
            assert len(made) <= item + 2  # the one in use and the next, no more
    assert seen == list(range(6))


def test_prefetch_hands_the_threads_error_to_the_consumer_unchanged() -> None:
    error = UserError("candidate 0.raw is 5 bytes: write packed RGB24")

    def source() -> Iterator[int]:
        yield 1
        raise error

    items = Prefetch(source())
    assert next(items) == 1
    with pytest.raises(UserError) as caught:
        next(items)
    assert caught.value is error and str(caught.value) == "candidate 0.raw is 5 bytes: write packed RGB24"
    assert not items.running


def test_prefetch_stops_its_thread_when_the_consumer_stops_early() -> None:
    closed = threading.Event()

    def endless() -> Iterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    with Prefetch(endless()) as items:
        assert next(items) == 0
    assert not items.running and closed.is_set()


def test_errors_in_the_decoding_thread_reach_evaluate_as_user_errors(
    demo_assets, reference_raw: Path, scorer: Scorer, tmp_path: Path
) -> None:
    planar = tmp_path / "planar.raw"
    frames = open_raw(reference_raw)
    planar.write_bytes(np.ascontiguousarray(frames.transpose(0, 3, 1, 2)).tobytes())
    assert planar.stat().st_size == len(frames) * FRAME_BYTES
    with pytest.raises(UserError, match="look nothing like the reference"):
        evaluate(scorer, demo_assets.clip, planar, 0, batch_size=BATCH, cache=ReferenceCache(tmp_path / "c"))
    assert not [t for t in threading.enumerate() if t.name == "score-prefetch"]
    assert not any((tmp_path / "c" / "reference").iterdir())  # no half-written entry left behind


def test_a_cache_that_cannot_be_written_is_logged_and_skipped(tmp_path: Path, key: CacheKey) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be")
    logged: list[str] = []
    writer = ReferenceCache(blocked, logged.append).writer(key)
    for ref in [_fake_outputs(n, 0) for n in batch_sizes(key.pairs, key.batch_size)]:
        writer.add(ref)
    assert writer.commit() is None and writer.failed
    assert len(logged) == 1 and "scoring goes on without it" in logged[0]


def test_score_cli_with_cache_gives_the_same_report_cold_and_warm(
    demo_assets, candidate: Path, tmp_path, capsys
) -> None:
    from comma_tui.cli import main

    args = ["score", "--reference", str(demo_assets.clip), "--candidate", str(candidate)]
    args += ["--models", str(demo_assets.models), "--archive-bytes", "1000", "--json", "--cache", str(tmp_path)]
    reports = []
    for _ in range(2):
        assert main(args) == 0
        reports.append(json.loads(capsys.readouterr().out))
    assert reports[0] == reports[1]
    assert len(list((tmp_path / "reference").iterdir())) == 1
