"""One visitor's whole journey through the dashboard in headless chromium, with the real data.

Explore the gallery, train a small model and watch both epochs arrive on the live chart,
stop a long run, read the confusion matrix, draw a trouser and upload a boot picture. The
steps share one page (one Streamlit session), so the later pages use the models trained in
the earlier ones. Screenshots for the README go to docs/screenshots/; the time to the first
page and from Start to the first epoch point go to the junit properties and
artifacts/e2e-timings.json.
"""

import pathlib
import re

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Page, expect

from tests.e2e.browser_support import (
    choose,
    draw,
    drawing_canvas,
    epochs_done,
    expect_no_exception,
    expect_prediction,
    go_to,
    open_app,
    press_start,
    record_training_timeline,
    save_screenshot,
    set_number,
    settled_prediction,
    start_training,
    stop_button,
    tab_panel,
    training_status,
    training_timeline,
    wait_for_app_run,
)

pytestmark = pytest.mark.browser

ONE_OF_TWO_DONE = re.compile(r"^Training epoch .*Epochs done: 1/2\.")
RUNNING_WITH_EPOCHS_DONE = re.compile(r"^Training epoch .*Epochs done: [1-9]\d*/50\.")
TROUSER_STROKES = [
    *[[(0.31, y), (0.69, y)] for y in (0.05, 0.10)],  # the waistband
    *[[(x, 0.05), (x - 0.04, 0.95)] for x in (0.33, 0.38, 0.43)],  # the left leg, three strokes wide
    *[[(x, 0.05), (x + 0.04, 0.95)] for x in (0.57, 0.62, 0.67)],  # the right leg
]


def ankle_boot_picture(path: pathlib.Path) -> None:
    """A dark ankle-boot silhouette on white, toe to the left, like a product photo."""
    picture = Image.new("RGB", (300, 300), "white")
    outline = [(150, 20), (270, 20), (275, 250), (285, 285), (15, 285), (15, 250), (40, 215), (110, 190), (150, 160)]
    ImageDraw.Draw(picture).polygon(outline, fill=(35, 30, 30))
    picture.save(path)


def explore(page: Page) -> None:
    """The Explore page: title, where the data came from, the gallery's pages, a class, 10 at random."""
    expect(page.get_by_text(re.compile(r"^Source: "))).to_be_visible()
    expect(page.get_by_test_id("stMetric").filter(has_text="Training images")).to_contain_text("60,000")
    gallery = page.get_by_role("tabpanel", name="Gallery")
    expect(gallery.get_by_text("Items 1-30 of 60,000.")).to_be_visible()
    expect(gallery.locator("img")).to_have_count(30)

    page.get_by_test_id("stNumberInput").filter(has_text="Page").get_by_test_id("stNumberInputStepUp").click()
    expect(page.get_by_role("spinbutton", name=re.compile("^Page"))).to_have_value("2")
    expect(gallery.get_by_text("Items 31-60 of 60,000.")).to_be_visible()
    wait_for_app_run(page)
    expect_no_exception(page)
    save_screenshot(page, "explore.png")

    choose(page, "Class", "Sneaker")
    expect(gallery.get_by_text(re.compile(r"of 6,000\.$"))).to_be_visible()

    page.get_by_role("button", name="Draw 10 at random").click()
    expect(gallery.get_by_text(re.compile("^10 items drawn at random from the Sneaker items"))).to_be_visible()
    expect(gallery.locator("img")).to_have_count(10)
    for caption in gallery.get_by_test_id("stImageCaption").all_inner_texts():
        assert caption.endswith(" Sneaker"), caption
    expect_no_exception(page)


def train_two_epochs(page: Page) -> float:
    """Train the CNN on 5,000 items for 2 epochs: the chart gets its points one by one during the run.

    The CNN, because the other presets finish such an epoch in about half a second, as fast as
    the page polls, so their first point can arrive together with the second.
    Returns the seconds from pressing Start to the first epoch point on the chart.
    """
    go_to(page, "Train", "Train a network")
    choose(page, "Model preset", "CNN")
    set_number(page, "Epochs", 2)
    set_number(page, "Training-sample limit", 5000)
    record_training_timeline(page)
    press_start(page)
    expect(training_status(page)).to_contain_text("Training finished. Epochs done: 2/2.", timeout=180_000)
    accuracy_chart = page.locator(".js-plotly-plot").filter(has_text="training accuracy")
    expect(accuracy_chart.locator(".scatterlayer .trace").first.locator("path.point")).to_have_count(2)
    wait_for_app_run(page)
    expect(page.get_by_role("button", name="Start training")).to_be_enabled()
    expect_no_exception(page)

    timeline = training_timeline(page)
    shown = "\n".join(f"{note['seconds']:6.2f} s  {note['points']:2d} points  {note['status']}" for note in timeline)
    first_point = next(note for note in timeline if note["points"] >= 1)
    finished = next(note for note in timeline if note["status"].startswith("Training finished"))
    assert first_point["seconds"] < finished["seconds"], f"the first point came with the end of the run:\n{shown}"
    assert any(note["points"] == 1 for note in timeline), f"the chart never showed the first epoch alone:\n{shown}"
    assert any(ONE_OF_TWO_DONE.search(note["status"]) for note in timeline), f"no live status after epoch 1:\n{shown}"
    save_screenshot(page, "train.png", height=1400)
    return first_point["seconds"]


def stop_a_long_run(page: Page) -> None:
    """A 50-epoch run of the seed preset on all the data, stopped once an epoch is done."""
    choose(page, "Model preset", "Seed (textbook)")
    start_training(page, epochs=50, sample_limit=0)
    expect(training_status(page)).to_contain_text(RUNNING_WITH_EPOCHS_DONE, timeout=120_000)
    expect(page.get_by_role("button", name="Start training")).to_be_hidden()  # settings folded while it runs
    stop_button(page).click()
    expect(training_status(page)).to_contain_text("Training stopped", timeout=60_000)
    done, asked = epochs_done(page)
    assert 1 <= done < asked == 50
    wait_for_app_run(page)
    expect(page.get_by_role("button", name="Start training")).to_be_enabled()
    expect_no_exception(page)


def evaluate(page: Page) -> None:
    """Evaluate: the accuracy metrics and the confusion-matrix heatmap with the class names."""
    go_to(page, "Evaluate", "Evaluate a model")
    for metric in ("Validation accuracy", "Test accuracy"):
        expect(page.get_by_test_id("stMetric").filter(has_text=metric).first).to_contain_text(
            re.compile(r"\d{1,3}\.\d\d%"), timeout=120_000)
    confusion = page.locator(".js-plotly-plot").filter(has=page.locator(".heatmaplayer"))
    expect(confusion).to_be_visible()
    expect(confusion).to_contain_text("Ankle boot")
    expect(confusion).to_contain_text("T-shirt/top")
    wait_for_app_run(page)
    expect_no_exception(page)
    save_screenshot(page, "evaluate.png", height=1150)


def try_drawing(page: Page) -> str:
    """Try it with the CNN, Draw tab: a pair of trousers drawn on the canvas gives a prediction."""
    go_to(page, "Try it", "Try it with your own pictures")
    choose(page, "Model", re.compile(r"Run \d+: cnn"))  # the better model of the two
    panel = tab_panel(page, "Draw")
    expect(panel.get_by_text("Draw on the canvas to get a prediction.")).to_be_visible()
    draw(page, drawing_canvas(page), TROUSER_STROKES)
    answer = settled_prediction(page, panel)
    expect_no_exception(page)
    save_screenshot(page, "try_it.png", height=1100)
    return answer


def try_uploading(page: Page, picture_path: pathlib.Path) -> str:
    """Try it, Upload tab: a PNG of an ankle boot gives a prediction."""
    panel = tab_panel(page, "Upload")
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(picture_path)
    answer = expect_prediction(panel)
    expect(panel.get_by_text("Your picture")).to_be_visible()
    expect_no_exception(page)
    return answer


def test_a_visitor_explores_trains_evaluates_and_tries_the_model(app_server, new_page, tmp_path, timings,
                                                                    record_property):
    page = new_page()
    open_app(page, app_server.url)
    record_property("first_page_s", round(app_server.first_page_seconds, 2))

    explore(page)
    start_to_first_epoch = train_two_epochs(page)
    timings["start_to_first_epoch_s"] = round(start_to_first_epoch, 2)
    record_property("start_to_first_epoch_s", round(start_to_first_epoch, 2))
    stop_a_long_run(page)
    evaluate(page)
    record_property("drawing_prediction", try_drawing(page))

    boot_path = tmp_path / "ankle-boot.png"
    ankle_boot_picture(boot_path)
    record_property("upload_prediction", try_uploading(page, boot_path))
    assert app_server.health() == "ok"
