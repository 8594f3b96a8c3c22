"""Group ``memory``: the server's resident memory with the first page up, and per idle session.

On a fresh server, one visitor opens the first page (Explore) and waits until the dataset is
shown (its metrics or images appear). Once the server's RSS has settled (the app also imports
TensorFlow in the background when it starts), ``rss_mb`` is read from ``/proc/<pid>/status``
(VmRSS). Five more visitors then open the first page the same way (pages of one browser
context: separate Streamlit sessions that share chromium's cache); after the RSS settles
again, ``rss_per_session_mb`` = (after - before) / 5. The five pages are closed afterwards.

When the ``browser`` group runs too, it measures this on its own fresh server right after its
first page (:func:`measure_sessions`), so the run needs one server start less.
"""

from __future__ import annotations

import time

from bench import app_driver
from bench.measure import Settings, progress, rounded

KEYS = ("rss_mb", "rss_per_session_mb")
EXTRA_SESSIONS = 5
DATASET_SHOWN = '[data-testid="stMetric"], [data-testid="stImage"]'


def owns(key: str) -> bool:
    """Whether a metric key belongs to this group (the browser group may report it)."""
    return key.startswith(("rss_", "memory_"))


def wait_until_settled(server: app_driver.StreamlitServer, timeout: float = 30, window: int = 4,
                       tolerance_mb: float = 2.0) -> float:
    """RSS once ``window`` samples half a second apart stay within ``tolerance_mb`` (or at the timeout)."""
    samples: list[float] = []
    deadline = time.monotonic() + timeout
    while True:
        samples.append(server.memory_mb()[0])
        recent = samples[-window:]
        if (len(recent) == window and max(recent) - min(recent) <= tolerance_mb) or time.monotonic() > deadline:
            return recent[-1]
        time.sleep(0.5)


def wait_for_dataset(page, timeout: float = 60) -> None:
    """The first page shows the dataset (its metrics or its gallery)."""
    page.locator(DATASET_SHOWN).first.wait_for(state="visible", timeout=timeout * 1000)


def open_first_page(context, url: str):
    """A new visitor (a new page: its own Streamlit session) on the first page, with the dataset shown."""
    page = context.new_page()
    app_driver.goto(page, url)
    app_driver.wait_for_first_page(page)
    wait_for_dataset(page)
    return page


def measure_sessions(server: app_driver.StreamlitServer, context, rss_before: float) -> dict[str, object]:
    """Open :data:`EXTRA_SESSIONS` idle visitors on the first page, read the growth, close them again."""
    progress(f"memory: {rss_before:.0f} MB with one session; opening {EXTRA_SESSIONS} more")
    pages = [open_first_page(context, server.url) for _ in range(EXTRA_SESSIONS)]
    after = wait_until_settled(server)
    exceptions = sum(app_driver.exception_count(page) for page in pages)
    for page in pages:
        page.close()
    breakdown = server.memory_breakdown_mb()
    return {"rss_mb": rounded(rss_before, 1), "rss_after_sessions_mb": rounded(after, 1),
            "rss_anon_mb": rounded(breakdown.get("RssAnon"), 1), "rss_file_mb": rounded(breakdown.get("RssFile"), 1),
            "rss_per_session_mb": rounded((after - rss_before) / EXTRA_SESSIONS, 2),
            "rss_peak_mb": rounded(server.memory_mb()[1], 1), "memory_exceptions": exceptions}


def run(settings: Settings) -> dict[str, object]:
    with app_driver.browser_and_fresh_server(
            settings.app_path, settings.streamlit_options,
            lambda port: progress(f"memory: fresh server on port {port}; first visitor")) as (browser, server):
        context = browser.new_context()
        first_page = open_first_page(context, server.url)
        metrics = measure_sessions(server, context, wait_until_settled(server))
        metrics["memory_exceptions"] += app_driver.exception_count(first_page)
    return metrics
