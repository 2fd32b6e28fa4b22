"""Spec diffs: `crf 34 -> 35`, bare names where unambiguous, plain-data checks."""

from __future__ import annotations

import pytest

from ledger.specdiff import changed_axes, check_spec, flatten, format_value


def test_flatten() -> None:
    spec = {"encode": {"crf": 35, "params": {"qm": 1}, "empty": {}}, "archive": {"files": [1, 2]}}
    assert flatten(spec) == {"encode.crf": 35, "encode.params.qm": 1, "encode.empty": {}, "archive.files": [1, 2]}


def test_changed_axes_use_bare_names_when_unambiguous() -> None:
    old = {"encode": {"crf": 34, "preset": 8}, "archive": {"preset": 1}, "run": {"seed": 0}}
    new = {"encode": {"crf": 35, "preset": 9}, "archive": {"preset": 1}, "run": {"seed": 0}}
    assert changed_axes(old, new) == ["crf 34 -> 35", "encode.preset 8 -> 9"]
    assert changed_axes(old, old) == []


def test_added_and_removed_axes() -> None:
    old = {"encode": {"crf": 34, "tune": "psnr"}}
    new = {"encode": {"crf": 34, "film_grain": 22}}
    assert changed_axes(old, new) == ["film_grain unset -> 22", "tune psnr -> unset"]


def test_types_are_told_apart() -> None:
    assert changed_axes({"a": {"x": 1}}, {"a": {"x": True}}) == ["x 1 -> true"]
    assert changed_axes({"a": {"x": 1}}, {"a": {"x": 1.0}}) == []
    assert changed_axes({"a": {"x": [1, 2]}}, {"a": {"x": [1, 3]}}) == ["x [1, 2] -> [1, 3]"]


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "unset"), (False, "false"), (0.5, "0.5"), (35.0, "35.0"), ("slow", "slow"), ("", '""'), ({}, "{}")],
)
def test_format_value(value: object, text: str) -> None:
    assert format_value(value) == text


def test_check_spec() -> None:
    assert check_spec({"encode": {"crf": 35, "tags": ("a",)}}) == {"encode": {"crf": 35, "tags": ["a"]}}
    for bad, message in [
        ([1], "dict of sections"),
        ({"encode": 3}, "dict of settings"),
        ({1: {}}, "names are strings"),
        ({"encode": {"x": {1, 2}}}, "plain JSON"),
        ({"encode": {"x": float("inf")}}, "plain JSON"),
    ]:
        with pytest.raises(ValueError, match=message):
            check_spec(bad)
