"""Drawings in the real chromium: a person draws four items stroke by stroke, and each comes back right.

The visitor trains the quick model, sees that it has not learned from drawings, presses the one
button that trains the recommended preset with drawings on (the whole training set, the preset's
defaults), then draws on Try it's canvas with the mouse, with the default brush:

- trousers in 3 strokes (a waistband and two legs);
- a T-shirt outline in one stroke;
- a bag: a rectangle and a handle;
- a sneaker pointing right (Fashion-MNIST's point left).

Each must be the top-1 class. Screenshots: docs/screenshots/drawing-*.png. Then, on a projector
(1280 × 720), the drawing and its answer must share one screen (drawing-projector.png).
"""

import re

import pytest
from playwright.sync_api import Page, expect

from fmnist import models
from tests.e2e.browser_support import (
    SCREENSHOT_DIRECTORY,
    draw,
    drawing_canvas,
    expect_no_exception,
    go_to,
    open_app,
    prediction,
    save_screenshot,
    settled_prediction,
    tab_panel,
    wait_for_app_run,
)

pytestmark = pytest.mark.browser

PROJECTOR = {"width": 1280, "height": 720}

TRAINING_TIMEOUT_MS = 900_000
"""The recommended preset on 48,000 images, on a machine other test runs may share."""

DRAWINGS = {
    "Trouser": [
        [(0.30, 0.08), (0.70, 0.08)],  # waistband
        [(0.32, 0.09), (0.30, 0.50), (0.27, 0.93)],  # left leg
        [(0.68, 0.09), (0.70, 0.50), (0.73, 0.93)],  # right leg
    ],
    "T-shirt/top": [
        [(0.40, 0.12), (0.18, 0.18), (0.04, 0.38), (0.18, 0.46), (0.24, 0.38), (0.25, 0.90), (0.75, 0.90),
         (0.76, 0.38), (0.82, 0.46), (0.96, 0.38), (0.82, 0.18), (0.60, 0.12), (0.50, 0.20), (0.40, 0.12)],
    ],
    "Bag": [
        [(0.10, 0.38), (0.90, 0.38), (0.90, 0.90), (0.10, 0.90), (0.10, 0.38)],  # the bag
        [(0.30, 0.38), (0.33, 0.14), (0.67, 0.14), (0.70, 0.38)],  # its handle
    ],
    "Sneaker": [
        [(0.06, 0.40), (0.06, 0.72), (0.94, 0.72), (0.95, 0.62), (0.70, 0.52), (0.50, 0.38), (0.35, 0.42),
         (0.06, 0.40)],  # heel on the left, toe on the right
        [(0.06, 0.66), (0.94, 0.66)],  # the sole
    ],
}


def expect_no_exception_shown(page: Page) -> None:
    """As ``expect_no_exception``, but a failure says what the exception was."""
    exceptions = page.get_by_test_id("stException")
    if exceptions.count():
        raise AssertionError(f"the page shows an exception: {exceptions.first.inner_text()[:2000]}")
    expect_no_exception(page)


def slug(name: str) -> str:
    return re.sub(r"[^a-z]+", "-", name.lower()).strip("-")


def train_drawing_ready_model(page: Page) -> None:
    """Quick train; if that model is not drawing-ready, the one-click training the Draw tab offers."""
    go_to(page, "Try it", "Try it with your own pictures")
    page.get_by_role("button", name=re.compile("^Quick train")).click()
    expect(page.get_by_role("tab", name="Draw")).to_be_visible(timeout=TRAINING_TIMEOUT_MS)
    panel = tab_panel(page, "Draw")
    expect(panel.get_by_text("Draw on the canvas to get a prediction.")).to_be_visible(timeout=TRAINING_TIMEOUT_MS)
    wait_for_app_run(page)
    notice = panel.get_by_text("This model has not learned from drawings")
    if notice.count():  # the quick-train model is not drawing-ready (a server whose quick train is the seed)
        title = models.get_preset(models.RECOMMENDED_PRESET).title
        panel.get_by_role("button", name=f"Train the {title} with drawings").click()
        expect(panel.get_by_text("A training run is under way")).to_be_visible()
        expect(page.get_by_text("This model has not learned from drawings")).to_have_count(
            0, timeout=TRAINING_TIMEOUT_MS)
        panel = tab_panel(page, "Draw")
        expect(panel.get_by_text("Draw on the canvas to get a prediction.")).to_be_visible(timeout=60_000)
    wait_for_app_run(page)
    expect(page.get_by_role("combobox", name="Model")).to_have_value(
        re.compile(rf"Run \d+: {re.escape(models.RECOMMENDED_PRESET)},.*with drawings"))
    expect_no_exception_shown(page)


@pytest.fixture(scope="module")
def full_training_server(launch_server):
    """A server whose quick train always uses every training image, however slow this CPU: the
    drawings must be read by the recommended preset as it really is."""
    server = launch_server("drawings", FMNIST_QUICK_TRAIN_SECONDS="100000")
    yield server
    server.stop()


def test_drawn_items_come_back_as_their_class(full_training_server, new_page):
    page = new_page()
    open_app(page, full_training_server.url)
    train_drawing_ready_model(page)
    answers = {}
    for name, strokes in DRAWINGS.items():
        panel = tab_panel(page, "Draw")
        panel.get_by_role("button", name="Reset canvas & history").click()
        expect(panel.get_by_text("Draw on the canvas to get a prediction.")).to_be_visible()
        draw(page, drawing_canvas(page), strokes)
        expect_no_exception_shown(page)
        answers[name] = settled_prediction(page, panel)
        expect_no_exception_shown(page)
        expect(panel.get_by_text(re.compile("^Red and yellow"))).to_be_visible()  # the why panel
        save_screenshot(page, f"drawing-{slug(name)}.png", height=1300)
    wrong = {name: answer for name, answer in answers.items() if not answer.startswith(f"{name} (")}
    assert not wrong, f"drawn as one thing, read as another: {wrong}"

    # A teacher's projector: the answer sits beside the drawing, both on one 1280 × 720 screen.
    page.set_viewport_size(PROJECTOR)
    panel = tab_panel(page, "Draw")
    panel.get_by_role("button", name="Reset canvas & history").click()
    expect(panel.get_by_text("Draw on the canvas to get a prediction.")).to_be_visible()
    canvas = drawing_canvas(page)
    canvas.scroll_into_view_if_needed()
    draw(page, canvas, DRAWINGS["Bag"])
    settled_prediction(page, panel)
    page.screenshot(path=SCREENSHOT_DIRECTORY / "drawing-projector.png")
    for name, element in (("the canvas", canvas), ("the answer", prediction(panel))):
        box = element.bounding_box()
        assert box is not None, f"{name} is not on the page"
        assert box["y"] >= 0 and box["y"] + box["height"] <= PROJECTOR["height"], \
            f"{name} is off the 1280 × 720 screen: {box}"
