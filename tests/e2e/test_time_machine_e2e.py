"""Scrub a run's epochs on Evaluate in headless chromium and play the confusion matrix across them."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.browser_support import (
    expect_no_exception,
    go_to,
    open_app,
    save_screenshot,
    train_small_model,
    wait_for_app_run,
)

pytestmark = pytest.mark.browser


def test_scrubbing_back_to_epoch_one_redraws_the_evaluation_and_the_animation_plays(app_server, new_page):
    page = new_page()
    open_app(page, app_server.url)
    train_small_model(page, epochs=4, sample_limit=1000)
    go_to(page, "Evaluate", "Evaluate a model")
    main = page.get_by_test_id("stMain")
    test_accuracy = main.get_by_test_id("stMetric").filter(has_text="Test accuracy").first
    expect(test_accuracy).to_be_visible()
    final_accuracy = test_accuracy.inner_text()
    slider = main.get_by_role("slider", name=re.compile("^Epoch"))
    expect(slider).to_have_attribute("aria-valuetext", "4")

    slider.focus()
    for _ in range(3):
        page.keyboard.press("ArrowLeft")
    wait_for_app_run(page)
    expect(slider).to_have_attribute("aria-valuetext", "1")
    expect(test_accuracy).not_to_have_text(final_accuracy)
    expect_no_exception(page)

    main.get_by_text("Show the confusion matrix across epochs").click()
    wait_for_app_run(page)
    play = main.locator(".updatemenu-button").filter(has_text=re.compile("Play"))
    expect(play).to_be_visible()
    page.wait_for_function("""() => Array.from(document.querySelectorAll('.js-plotly-plot')).some(
        plot => plot._transitionData && plot._transitionData._frames && plot._transitionData._frames.length === 4)""")
    play.click()
    # the animation walks through the four epochs; its slider ends on the last one
    page.wait_for_function("""() => Array.from(document.querySelectorAll('.js-plotly-plot')).some(
        plot => plot._fullLayout.sliders && plot._fullLayout.sliders.length
                && plot._fullLayout.sliders[0].active === 3)""", timeout=15_000)
    expect_no_exception(page)
    save_screenshot(page, "time_machine.png", height=1600)
