"""Human vs model in headless chromium with the real data: quick train, ten rounds, the final score."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.browser_support import expect_no_exception, go_to, open_app, save_screenshot, wait_for_app_run

pytestmark = pytest.mark.browser

CLASS_BUTTON = re.compile(r"^(T-shirt\/top|Trouser|Pullover|Dress|Coat|Sandal|Shirt|Sneaker|Bag|Ankle boot) \(")


def test_a_visitor_plays_ten_rounds_against_a_freshly_trained_model(app_server, new_page):
    page = new_page()
    open_app(page, app_server.url)
    go_to(page, "Human vs model", "Human vs model")
    page.get_by_role("button", name=re.compile("^Quick train")).click()
    expect(page.get_by_text("Round 1 of 10: what is this?")).to_be_visible(timeout=300_000)
    main = page.get_by_test_id("stMain")

    for round_number in range(1, 11):
        expect(main.get_by_text(f"Round {round_number} of 10: what is this?")).to_be_visible()
        expect(main.get_by_role("button", name=CLASS_BUTTON)).to_have_count(10)
        main.get_by_role("button", name=CLASS_BUTTON).nth(round_number % 10).click()
        expect(main.get_by_text(re.compile(r"^It is "))).to_be_visible()
        expect(main.get_by_text(re.compile(r"^The model said .*: (right|wrong)\.$"))).to_be_visible()
        you = main.get_by_test_id("stMetric").filter(has_text="You")
        expect(you).to_contain_text(f"/ {round_number}")
        if round_number == 3:
            save_screenshot(page, "game.png")
        main.get_by_role("button", name="See the result" if round_number == 10 else "Next item").click()
        wait_for_app_run(page)

    expect(main.get_by_role("heading", name=re.compile(r"You \d+ – model \d+$"))).to_be_visible()
    expect(main.get_by_text(re.compile(r"^This server's humans so far: .* over 10 guesses"))).to_be_visible()
    expect(main.get_by_role("button", name="Play again")).to_be_visible()
    expect_no_exception(page)
