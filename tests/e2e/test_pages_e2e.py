"""What a teacher, a marketer and a casual visitor do on each page, in headless chromium (issue 13).

Each test drives one defect that only shows in a real browser: a click on a plotly chart, a
value typed into a number field, choices kept while moving between pages, a run on a
projector-sized screen, a hidden tab.
"""

import re

import pytest
from playwright.sync_api import Page, expect

from fmnist.data import CLASS_NAMES
from tests.e2e.browser_support import (
    expect_no_exception,
    go_to,
    open_app,
    train_small_model,
    wait_for_app_run,
)

pytestmark = pytest.mark.browser

MISTAKES_CAPTION = re.compile(r"test items? of class .* (was|were) predicted as")


def confusion_cell_position(page: Page, true_label: int, predicted_label: int) -> tuple[float, float]:
    """The centre of a confusion-matrix cell on the screen, from plotly's own axes."""
    plot = page.locator(".js-plotly-plot").filter(has=page.locator(".heatmaplayer"))
    plot.scroll_into_view_if_needed()
    offset = plot.evaluate("""(plot, cell) => {
        const layout = plot._fullLayout, box = plot.getBoundingClientRect();
        return [box.left + layout.xaxis._offset + layout.xaxis.l2p(cell[1]),
                box.top + layout.yaxis._offset + layout.yaxis.l2p(cell[0])];
    }""", [true_label, predicted_label])
    return offset[0], offset[1]


def confusion_counts(page: Page) -> list[list[int]]:
    plot = page.locator(".js-plotly-plot").filter(has=page.locator(".heatmaplayer"))
    return plot.evaluate("""plot => {
        const z = plot.calcdata[0][0].z;  // the heatmap's counts as plotly decoded them
        return Array.from(z, row => Array.from(row));
    }""")


def test_clicking_a_confusion_matrix_cell_shows_that_pairs_mistakes(app_server, new_page):
    page = new_page()
    open_app(page, app_server.url)
    train_small_model(page)
    go_to(page, "Evaluate", "Evaluate a model")
    expect(page.get_by_text(re.compile(MISTAKES_CAPTION))).to_be_visible(timeout=60_000)
    default = page.get_by_text(re.compile(MISTAKES_CAPTION)).inner_text()

    counts = confusion_counts(page)
    cells = sorted(((counts[t][p], t, p) for t in range(10) for p in range(10) if t != p and counts[t][p]),
                   reverse=True)
    # The least confused pair with any mistakes: never the default (most confused) pair.
    count, true_label, predicted_label = cells[-1]
    x, y = confusion_cell_position(page, true_label, predicted_label)
    page.mouse.move(x, y)
    page.mouse.click(x, y)

    expected = re.compile(rf"^{count} test items? of class {re.escape(CLASS_NAMES[true_label])} (was|were) "
                          rf"predicted as {re.escape(CLASS_NAMES[predicted_label])};")
    expect(page.get_by_text(expected)).to_be_visible(timeout=30_000)
    assert not expected.search(default)
    expect(page.get_by_role("combobox", name="True class")).to_have_value(re.compile(
        "^" + re.escape(CLASS_NAMES[true_label])))
    wait_for_app_run(page)
    expect_no_exception(page)
