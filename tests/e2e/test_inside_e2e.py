"""Look inside a convolutional model in headless chromium: its filters, then one item's feature maps."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.browser_support import (
    choose,
    expect_no_exception,
    go_to,
    open_app,
    save_screenshot,
    set_number,
    train_small_model,
    wait_for_app_run,
)

pytestmark = pytest.mark.browser


def test_the_look_inside_view_of_a_cnn_shows_its_filters_and_the_feature_maps_of_a_chosen_item(app_server, new_page):
    page = new_page()
    open_app(page, app_server.url)
    go_to(page, "Train", "Train a network")
    choose(page, "Model preset", "CNN")
    train_small_model(page, epochs=1, sample_limit=2000)

    go_to(page, "Look inside", "Look inside the model")
    main = page.get_by_test_id("stMain")
    expect(main.get_by_role("heading", name=re.compile(r"^The first layer's 32 filters$"))).to_be_visible()
    expect(main.get_by_text(re.compile(r"^conv2d\w*: 32 channels of 28 × 28, the first 16 shown$"))).to_be_visible()
    expect(main.get_by_text(re.compile(r"^conv2d\w*: 64 channels of 14 × 14, the first 16 shown$"))).to_be_visible()
    plots = main.locator(".js-plotly-plot")
    expect(plots).to_have_count(3)  # the filters and one grid per convolution layer
    caption_before = main.get_by_test_id("stImageCaption").first.inner_text()

    set_number(page, "Test item number", 1)
    wait_for_app_run(page)
    expect(main.get_by_test_id("stImageCaption").first).not_to_have_text(caption_before)
    expect_no_exception(page)
    save_screenshot(page, "inside.png", height=1700)
