"""Display models, card layout and rendering, and composing the HUD over a view."""

import sys

import numpy as np
import pytest

from glasses.device.display import (
    Card,
    DisplayModel,
    compose,
    hud_rect,
    layout_card,
    render,
    screen_available,
)
from glasses.device.errors import BadInput

CARD = Card(
    title="Street sign",
    body="That sign says the museum is two blocks ahead on the left.",
    status="answering",
)
SIXTY_WORDS = " ".join(f"word{i}" for i in range(60))


def _rows_lit(image: np.ndarray) -> np.ndarray:
    return np.flatnonzero(image.max(axis=(1, 2)) > 0)


@pytest.mark.parametrize("name", DisplayModel.names())
def test_render_exact_resolution(name: str) -> None:
    display = DisplayModel.by_name(name)
    image = render(display, CARD)
    assert image.shape == (display.height, display.width, 3)
    assert image.dtype == np.uint8
    assert render(display, Card()).max() == 0  # an empty card is all black (transparent)


def test_named_displays() -> None:
    names = DisplayModel.names()
    assert len(names) >= 3
    assert DisplayModel.by_name("MONOCULAR_640x400") == DisplayModel.monocular_640x400()
    assert DisplayModel.binocular_1920x1080().binocular
    assert DisplayModel.green_microled_640x480(1).colour_depth == 1
    with pytest.raises(BadInput, match="monocular-640x400"):
        DisplayModel.by_name("holodeck")


def test_status_and_body_regions() -> None:
    display = DisplayModel.monocular_640x400()
    status_rows = _rows_lit(render(display, Card(status="listening")))
    body_rows = _rows_lit(render(display, Card(body="good morning")))
    assert status_rows.size and body_rows.size
    assert status_rows.max() < 0.15 * display.height  # small, at the top
    assert body_rows.min() > status_rows.max()  # the body sits below the status line
    assert np.ptp(body_rows) > 1.5 * np.ptp(status_rows)  # and is larger
    both = render(display, CARD)
    assert both[: int(0.15 * display.height)].any()
    assert both[body_rows.min() : body_rows.max() + 1].any()


@pytest.mark.parametrize("name", DisplayModel.names())
def test_long_body_cut_to_max_words(name: str) -> None:
    display = DisplayModel.by_name(name)
    lines = layout_card(display, Card(body=SIXTY_WORDS, status="answering"))
    words = " ".join(lines).split()
    assert 0 < len(words) <= display.max_card_words
    assert lines[-1].endswith("...")
    assert words[0] == "word0"


def test_body_cut_to_the_lines_that_fit() -> None:
    display = DisplayModel("tiny", 320, 120, 8, False, 20.0, False, max_card_words=500)
    lines = layout_card(display, Card(body=SIXTY_WORDS))
    assert 1 <= len(lines) < 10 and lines[-1].endswith("...")
    image = render(display, Card(body=SIXTY_WORDS))
    assert not image[-2:].any() and not image[:, -2:].any()  # nothing drawn off the edges


def test_short_body_not_cut() -> None:
    lines = layout_card(DisplayModel.monocular_640x400(), Card(body="Turn left here."))
    assert lines == ["Turn left here."]


def test_monochrome_is_green_only() -> None:
    for display in (DisplayModel.green_microled_640x480(), DisplayModel.green_microled_640x480(1)):
        image = render(display, CARD)
        assert image[..., 1].any()
        assert not image[..., 0].any() and not image[..., 2].any()


def test_colour_depth_quantised() -> None:
    one_bit = render(DisplayModel.green_microled_640x480(1), CARD)
    assert set(np.unique(one_bit)) == {0, 255}
    four_bit = render(DisplayModel.green_microled_640x480(4), CARD)
    assert np.all(np.unique(four_bit) % 17 == 0)


def test_compose_adds_hud_only_where_it_has_content() -> None:
    display = DisplayModel.monocular_640x400()
    rng = np.random.default_rng(1)
    view = rng.integers(0, 200, (480, 640, 3), dtype=np.uint8)
    assert np.array_equal(compose(view, render(display, Card()), display), view)

    out = compose(view, render(display, CARD), display)
    assert out.shape == view.shape and out.dtype == np.uint8 and out is not view
    changed = np.any(out != view, axis=2)
    assert changed.any()
    x, y, w, h = hud_rect((640, 480), display)
    inside = np.zeros_like(changed)
    inside[max(0, y) : y + h, max(0, x) : x + w] = True
    assert not (changed & ~inside).any()
    assert changed.sum() < 0.3 * inside.sum()  # text is sparse: most of the HUD is clear
    assert np.all(out.astype(int) >= view)  # additive: light is only added


def test_hud_rect_scales_with_fov() -> None:
    small = hud_rect((1280, 720), DisplayModel.monocular_640x400())
    wide = hud_rect((1280, 720), DisplayModel.binocular_1920x1080())
    assert 0 < small[2] < wide[2] < 1280
    assert small[0] + small[2] / 2 == pytest.approx(640, abs=1)
    assert small[1] + small[3] / 2 < 360  # a monocular HUD sits above centre


def test_screen_available(monkeypatch: pytest.MonkeyPatch) -> None:
    ok, note = screen_available()
    assert isinstance(ok, bool) and note and "\n" not in note
    if sys.platform.startswith("linux"):
        monkeypatch.delenv("DISPLAY", raising=False)
        monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
        assert screen_available()[0] is False
        monkeypatch.setenv("DISPLAY", ":0")
        assert screen_available()[0] is True
