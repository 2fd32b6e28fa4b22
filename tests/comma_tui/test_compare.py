"""The compare view driven by Pilot: opened from the detail screen and from review mode, keys, and why-nothing lines."""

from __future__ import annotations

import numpy as np
import pytest
from textual.widgets import Static

from comma_tui.screens.compare import CompareScreen
from comma_tui.screens.review import ReviewScreen
from comma_tui.screens.run_detail import RunDetailScreen
from comma_tui.widgets.graphics import graphics_widget, load_graphics, view_crop
from comma_tui.widgets.halfblock import UPPER_HALF, HalfBlockImage, View, halfblock_lines
from comma_tui.widgets.panel_images import disagreement
from ledger import Lab
from tests.comma_tui.app_fixtures import PREVIEW_PAIRS, road_scene
from tests.comma_tui.pilot import open_console, select, wait_for

pytestmark = pytest.mark.anyio


def _text(screen: CompareScreen, widget_id: str) -> str:
    return str(screen.query_one(f"#{widget_id}", Static).content)


async def test_compare_view_from_detail_moves_between_pairs_and_panels(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, roles = lab
    async with open_console(the_lab) as (app, pilot, table):
        await select(pilot, table, roles["rejected"])
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.compare is not None)
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        assert f"pair {PREVIEW_PAIRS[0]} of 30" in _text(screen, "compare-title")
        assert f"frame {2 * PREVIEW_PAIRS[0] + 1}: the last of pair" in _text(screen, "compare-note")
        assert "SegNet sees" in _text(screen, "compare-note")
        await pilot.press("right")
        assert f"pair {PREVIEW_PAIRS[1]} of 30" in _text(screen, "compare-title")
        await pilot.press("left", "left")  # wraps round to the last pair
        assert f"pair {PREVIEW_PAIRS[-1]} of 30" in _text(screen, "compare-title")
        await pilot.press("right", "w")  # the worst SegNet pair of the run: the car goes most there
        assert f"pair {PREVIEW_PAIRS[-1]} of 30" in _text(screen, "compare-title")

        labels = [_text(screen, "right-label")]
        for _ in range(3):
            await pilot.press("d")
            labels.append(_text(screen, "right-label"))
        assert labels == ["disagreement", "difference x4", "candidate classes", "disagreement"]
        assert _text(screen, "left-label") == "reference"
        await pilot.press("f")
        assert _text(screen, "left-label") == f"floor {roles['floor']}"
        await pilot.press("f")
        assert _text(screen, "left-label") == "reference"

        assert app.screen.check_action("pan", (1, 0)) is None  # nothing to pan at the whole frame
        await pilot.press("z", "z", "l", "shift+down")
        assert screen.view.zoom == 4 and screen.view.x > 0.5 and screen.view.y > 0.5
        assert "zoom x4" in _text(screen, "compare-note")
        images = [screen.query_one(f"#{n}-image", HalfBlockImage) for n in ("left", "middle", "right")]
        assert all(image.view == screen.view for image in images)  # every panel zoom- and pan-synced
        await pilot.press("Z", "Z")
        assert screen.view.zoom == 1
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))


async def test_compare_view_from_review_and_runs_with_nothing_to_show(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, roles = lab
    async with open_console(the_lab) as (app, pilot, table):
        await pilot.press("v")
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen))
        await pilot.press("i")  # the newest rejection was scored with no previews kept
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.compare is not None)
        assert "has no previews" in _text(app.screen, "compare-note")  # type: ignore[arg-type]
        assert app.screen.check_action("step", (1,)) is None
        await pilot.press("escape")
        review = app.screen
        assert isinstance(review, ReviewScreen)
        for _ in range(6):
            if (run := review.selected_run()) is not None and run.id == roles["rejected"]:
                break
            await pilot.press("down")
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.compare is not None)
        assert f"{roles['rejected']} · pair {PREVIEW_PAIRS[0]}" in _text(app.screen, "compare-title")  # type: ignore[arg-type]
        await pilot.press("escape", "escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ReviewScreen))

        await select(pilot, table, roles["failed"])
        await pilot.press("enter", "i")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.compare is not None)
        assert _text(app.screen, "compare-note") == f"{roles['failed']} failed before it was scored: no frames to show"  # type: ignore[arg-type]


def test_half_blocks_put_two_pixels_in_a_cell_and_keep_the_aspect() -> None:
    image = np.zeros((4, 4, 3), dtype=np.uint8)
    image[:2] = (255, 0, 0)  # top half red, bottom half blue
    image[2:] = (0, 0, 255)
    lines = halfblock_lines(image, 8, 2)
    text = "".join(seg.text for seg in lines[0])
    assert text.strip() == UPPER_HALF * 4  # 4x4 pixels fit 4 cells wide, 2 tall; centred in 8
    first = next(seg for seg in lines[0] if seg.text == UPPER_HALF)
    assert first.style is not None and first.style.color is not None and first.style.bgcolor is not None
    assert first.style.color.triplet == (255, 0, 0) and first.style.bgcolor.triplet == (255, 0, 0)
    last = next(seg for seg in lines[1] if seg.text == UPPER_HALF)
    assert last.style is not None and last.style.bgcolor is not None and last.style.bgcolor.triplet == (0, 0, 255)
    # Zoomed in 2x on the bottom-right: the window holds only blue.
    zoomed = halfblock_lines(image, 4, 2, View(zoom=2, x=1.0, y=1.0))
    styles = {seg.style.bgcolor.triplet for line in zoomed for seg in line if seg.style and seg.style.bgcolor}
    assert styles == {(0, 0, 255)}


def test_disagreement_tints_only_the_pixels_whose_class_differs() -> None:
    frame, classes = road_scene()
    changed = classes.copy()
    changed[classes == 1] = 0  # the lane marks lost
    shown = disagreement(frame, classes, changed)
    differ = classes != changed
    assert differ.any()
    assert np.abs(shown[~differ] - frame[~differ] * 0.3).max() <= 0.5  # agreeing pixels only dimmed
    assert (shown[differ].astype(int) - frame[differ] * 0.3).max() > 20  # visibly tinted, not just dimmed


async def test_the_graphics_key_is_greyed_out_without_a_graphics_terminal(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, roles = lab
    load_graphics()  # under pytest stdout is no terminal: textual-image finds no kitty or sixel
    assert graphics_widget() is None
    async with open_console(the_lab) as (app, pilot, table):
        await select(pilot, table, roles["rejected"])
        await pilot.press("enter", "i")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.compare is not None)
        assert app.screen.check_action("graphics", ()) is None
        await pilot.press("g")
        assert isinstance(app.screen, CompareScreen) and not app.screen.graphics


def test_a_graphics_crop_follows_the_view() -> None:
    frame, _ = road_scene()
    crop = view_crop(frame, View(zoom=4, x=0.0, y=1.0))  # clamped into the bottom-left corner
    assert crop.size == (128, 96)
    assert np.array_equal(np.asarray(crop), frame[-96:, :128])
