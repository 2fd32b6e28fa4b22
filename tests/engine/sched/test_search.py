"""Search files: a valid one read against the lab, and each bad input as one line naming its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.sched.search import SearchError, load_search, parse_search
from ledger import Ledger
from tests.engine.sched.autopilot_lab import make_lab, measure, spec_with

GOOD = """\
track = "main"
objective = ["score", "bytes"]
budget = 12
sampler = "random"

[axes]
crf = { low = 26, high = 46, step = 2 }
"encode.film_grain" = { choices = [0, 10, 22] }
"preprocess.width" = { choices = [256, 0] }
"inflate.unsharp_amount" = { choices = [0, 1] }
"""


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    lab = make_lab(tmp_path)
    ledger = Ledger(lab)
    measure(ledger, spec_with(lab, crf=34), 1.9)
    return ledger


def test_a_good_search_file_reads_against_the_floor(tmp_path: Path, ledger: Ledger) -> None:
    path = tmp_path / "search.toml"
    path.write_text(GOOD)
    search = load_search(path, ledger, budget=5)
    assert search.base == ledger.floors()["main"].id and search.budget == 5  # --budget wins
    assert search.objectives == ("score", "bytes") and search.sampler == "random"
    crf, grain, width, amount = search.axes
    assert (crf.kind, crf.low, crf.high, crf.step) == ("int", 26, 46, 2)
    assert grain.choices == (0, 10, 22) and width.choices == (256, 0)
    assert amount.choices == (0.0, 1.0)  # typed as the spec types them
    assert crf.contains(30) and not crf.contains(31) and not crf.contains(48)
    # The height follows the clip's aspect, even; width 0 is the clip's own size.
    assert search.aspect is not None
    w, h = search.aspect
    spec = search.spec_at({"encode.crf": 30, "encode.film_grain": 10, "preprocess.width": 256})
    assert spec.preprocess.height == 2 * round(256 * h / w / 2) and spec.preprocess.height % 2 == 0
    assert search.spec_at({"preprocess.width": 0}).preprocess.height == 0
    point = {"encode.crf": 30, "encode.film_grain": 10, "preprocess.width": 256, "inflate.unsharp_amount": 1.0}
    assert search.params_of(search.spec_at(point).to_dict()) == point
    assert search.label(point) == "auto: crf=30 fg=10 width=256 unsharp=1"


def test_a_run_with_other_keys_is_not_a_point_of_the_space(tmp_path: Path, ledger: Ledger) -> None:
    path = tmp_path / "search.toml"
    path.write_text(GOOD)
    search = load_search(path, ledger)
    other = spec_with(ledger.lab, crf=30, preset="4")
    assert search.params_of(other) is None
    assert search.params_of(spec_with(ledger.lab, crf=31)) is None  # off the step


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("[axes]\n'encode.crff' = { low = 20, high = 30 }", "unknown spec key 'encode.crff'"),
        ("[axes]\ncrf = { low = 40, high = 30 }", "'encode.crf' range 40..30 is empty or inverted"),
        ("[axes]\ncrf = { low = 30, high = 30 }", "'encode.crf' range 30..30 is empty or inverted"),
        ("[axes]\ncrf = { low = 20, high = 99 }", "'encode.crf' value 99 is refused by the spec"),
        ("[axes]\nfilm_grain = { choices = [0, 99] }", "'encode.film_grain' value 99 is refused"),
        ("[axes]\n'preprocess.scaler' = { choices = ['lanczos', 'fuzzy'] }", "'preprocess.scaler' value 'fuzzy'"),
        ("[axes]\nheight = { choices = [128] }", "'preprocess.height' follows the clip's aspect"),
        ("[axes]\ncrf = { choices = [] }", "'encode.crf' choices must be a non-empty list"),
        ("[axes]\ncrf = { lo = 1 }", "'encode.crf' needs { low = .., high = .. }"),
        ("[axes]\ncrf = { low = 26.5, high = 40 }", "'encode.crf' takes whole numbers"),
        ("track = 'night'\n[axes]\ncrf = { low = 26, high = 40 }", "track = 'night' has no base run"),
        ("base = 'r0099'\n[axes]\ncrf = { low = 26, high = 40 }", "base: no run r0099"),
        ("budget = 0\n[axes]\ncrf = { low = 26, high = 40 }", "budget = 0 must be a whole number >= 1"),
        ("objective = 'speed'\n[axes]\ncrf = { low = 26, high = 40 }", "objective = 'speed'"),
        ("sampler = 'cmaes'\n[axes]\ncrf = { low = 26, high = 40 }", "sampler = 'cmaes': use one of tpe"),
        ("budjet = 3\n[axes]\ncrf = { low = 26, high = 40 }", "unknown key 'budjet'"),
        ("track = 'main'", "no [axes]"),
    ],
)
def test_bad_search_files_are_one_line_errors_naming_the_key(
    tmp_path: Path, ledger: Ledger, text: str, said: str
) -> None:
    path = tmp_path / "search.toml"
    path.write_text(text)
    with pytest.raises(SearchError) as caught:
        load_search(path, ledger)
    message = str(caught.value)
    assert said in message and "\n" not in message


def test_a_missing_or_broken_file_names_the_file(tmp_path: Path, ledger: Ledger) -> None:
    with pytest.raises(SearchError, match="not found"):
        load_search(tmp_path / "nowhere.toml", ledger)
    (tmp_path / "broken.toml").write_text("[axes\n")
    with pytest.raises(SearchError, match="not valid TOML"):
        load_search(tmp_path / "broken.toml", ledger)
    with pytest.raises(SearchError, match="must be a track name"):
        parse_search({"track": 3, "axes": {"crf": {"low": 1, "high": 2}}}, ledger)
