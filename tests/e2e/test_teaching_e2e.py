"""Teaching in headless chromium: a classroom link, the code for a run, and the textbook baseline beside a seed run."""

import pathlib
import re
import time
import urllib.parse

import pytest
from playwright.sync_api import Page, expect

from fmnist import links, models
from fmnist.training import TrainingConfig
from tests.e2e.browser_support import (
    SCREENSHOT_DIRECTORY,
    choose,
    expect_no_exception,
    go_to,
    open_app,
    set_number,
    train_small_model,
    training_status,
    wait_for_app_run,
)

pytestmark = pytest.mark.browser

LINK_NOTE = "These settings came from a shared link."


def open_train_link(page: Page, base_url: str, query: dict[str, str]) -> None:
    """What a student does: open the teacher's link straight to the Train page."""
    page.goto(f"{base_url}/train?{urllib.parse.urlencode(query)}")
    expect(page.get_by_role("heading", name="Train a network")).to_be_visible(timeout=120_000)
    wait_for_app_run(page)
    expect_no_exception(page)


def field(page: Page, role: str, label: str):
    """A settings widget by its label (a slider's accessible name repeats its label)."""
    name = re.compile(f"^{re.escape(label)}") if role == "slider" else label
    return page.get_by_test_id("stMain").get_by_role(role, name=name, exact=role != "slider")


def test_a_classroom_link_fills_the_train_page_and_a_hostile_one_falls_back_with_notes(app_server, new_page):
    page = new_page()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    shared = TrainingConfig(preset="mlp", loss="categorical_crossentropy", optimizer="adam", learning_rate=0.002,
                            epochs=3, batch_size=64, validation_fraction=0.3, sample_limit=2000, seed=9)
    open_train_link(page, app_server.url, links.query_from_config(shared))

    expect(page.get_by_text(LINK_NOTE)).to_be_visible()
    expect(field(page, "combobox", "Model preset")).to_have_value(models.PRESETS["mlp"].title)
    expect(field(page, "combobox", "Loss")).to_have_value("Categorical cross-entropy")
    expect(field(page, "combobox", "Optimizer")).to_have_value("adam")
    expect(field(page, "spinbutton", "Learning rate")).to_have_value("0.00200")
    expect(field(page, "spinbutton", "Epochs")).to_have_value("3")
    expect(field(page, "spinbutton", "Training-sample limit")).to_have_value("2000")
    expect(field(page, "spinbutton", "Random seed")).to_have_value("9")
    expect(field(page, "slider", "Validation split (%)")).to_have_attribute("aria-valuetext", "30")
    expect(field(page, "slider", "Batch size")).to_have_attribute("aria-valuetext", "64")
    expect(page.get_by_test_id("stAlertContentWarning")).to_have_count(0)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.screenshot(path=SCREENSHOT_DIRECTORY / "classroom-link.png")

    hostile = {"preset": "<script>alert('link')</script>", "epochs": "999", "lr": "abc", "seed": "7" * 3000,
               "batch": "64"}
    open_train_link(page, app_server.url, hostile)
    expect(page.get_by_text(LINK_NOTE)).to_be_visible()
    warnings = page.get_by_test_id("stAlertContentWarning")
    expect(warnings).to_have_count(4)
    texts = warnings.all_inner_texts()
    assert any("preset" in text and "<script>alert('link')</script>" in text and "unknown choice" in text
               for text in texts), texts  # shown as text, not run
    assert any("epochs" in text and "999" in text and "outside 1–50" in text for text in texts), texts
    assert all(len(text) < 300 for text in texts), texts  # the 3,000 digits are cut short
    expect(field(page, "combobox", "Model preset")).to_have_value(models.PRESETS["seed"].title)
    expect(field(page, "spinbutton", "Epochs")).to_have_value("5")
    expect(field(page, "spinbutton", "Random seed")).to_have_value("42")
    expect(field(page, "slider", "Batch size")).to_have_attribute("aria-valuetext", "64")  # the good value stays
    expect_no_exception(page)
    assert dialogs == []


def test_the_code_of_a_finished_run_downloads_as_a_python_file_with_its_settings(app_server, new_page):
    page = new_page()
    open_app(page, app_server.url)
    go_to(page, "Train", "Train a network")
    set_number(page, "Random seed", 7)
    run_name = train_small_model(page, epochs=1, sample_limit=2000)

    main = page.get_by_test_id("stMain")
    main.get_by_text("The code for a run").click()
    button = main.get_by_role("button", name="Download the script (.py)")
    expect(button).to_be_visible()
    with page.expect_download() as download_info:
        button.click()
    download = download_info.value
    script = pathlib.Path(download.path()).read_text(encoding="utf-8")

    assert download.suggested_filename == f"fmnist-{run_name.lower().replace(' ', '-')}.py"
    compile(script, download.suggested_filename, "exec")
    assert script.startswith(f'"""fmnist-studio {run_name}: seed, sparse categorical crossentropy, rmsprop')
    for setting in ("keras.utils.set_random_seed(7)", "test_size=0.2, random_state=7",
                    "train_scaled[:2000], train_target[:2000]", "epochs=1, batch_size=32",
                    "keras.optimizers.RMSprop(learning_rate=learning_rate)", "learning_rate = 0.001\n"):
        assert setting in script, setting
    expect_no_exception(page)


def chart_traces(page: Page) -> dict[str, dict[str, int]]:
    """Every plotly chart on the page, by title (without the theme's <b>): trace name -> number of points."""
    return page.evaluate("""() => Object.fromEntries(Array.from(document.querySelectorAll('.js-plotly-plot')).map(
        plot => [(plot._fullLayout?.title?.text || '').replace(/<[^>]+>/g, ''), Object.fromEntries((plot.data || []).map(
            trace => [trace.name, trace.x ? trace.x.length : 0]))]))""")


def test_a_baseline_run_is_overlaid_on_a_seed_run_with_why_they_compare(app_server, new_page):
    page = new_page()
    open_app(page, app_server.url)
    seed_run = train_small_model(page, epochs=3, sample_limit=5000)

    main = page.get_by_test_id("stMain")
    baseline_button = main.get_by_role("button", name="Train the textbook baseline")
    expect(baseline_button).to_be_enabled()
    baseline_button.click()
    baseline_heading = main.get_by_role("heading", name=re.compile(r"^Run \d+: Textbook baseline"))
    expect(baseline_heading).to_be_visible(timeout=60_000)
    expect(baseline_heading).to_contain_text("3 epochs")
    baseline_run = baseline_heading.inner_text().split(":")[0]
    expect(training_status(page)).to_contain_text("Training finished", timeout=120_000)
    wait_for_app_run(page)

    comparison = main.get_by_role("heading", name="Compare two runs")
    expect(comparison).to_be_visible()
    note = main.get_by_text(re.compile("^Same model family: a softmax Dense\\(10\\) and a log-loss SGDClassifier"))
    expect(note).to_be_visible()
    overlaid = {f"{seed_run} validation accuracy": 3, f"{baseline_run} validation accuracy": 3}
    deadline = time.monotonic() + 30
    while not overlaid.items() <= chart_traces(page).get("Validation accuracy", {}).items():
        assert time.monotonic() < deadline, chart_traces(page)
        page.wait_for_timeout(250)
    expect_no_exception(page)

    for (width, height), name in (((1440, 900), "baseline-compare.png"), ((1280, 720), "baseline-compare-720.png")):
        page.set_viewport_size({"width": width, "height": height})
        comparison.evaluate("heading => heading.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(800)  # plotly redraws for the new width
        expect_no_exception(page)
        page.screenshot(path=SCREENSHOT_DIRECTORY / name)

    # Picked as a preset, its Keras settings are greyed out and explained.
    page.set_viewport_size({"width": 1440, "height": 900})
    main.get_by_role("heading", name="Train a network").evaluate("heading => heading.scrollIntoView()")
    wait_for_app_run(page)
    choose(page, "Model preset", models.PRESETS[models.BASELINE_PRESET].title)
    for label in ("Loss", "Optimizer"):
        expect(field(page, "combobox", label)).to_be_disabled()
    expect(field(page, "spinbutton", "Learning rate")).to_be_disabled()
    expect(field(page, "spinbutton", "Epochs")).to_be_enabled()
    expect(main.get_by_text(re.compile("The greyed-out settings do not apply to it"))).to_be_visible()
    main.get_by_role("heading", name="Train a network").evaluate("heading => heading.scrollIntoView()")
    page.wait_for_timeout(500)
    page.screenshot(path=SCREENSHOT_DIRECTORY / "baseline-settings.png")
