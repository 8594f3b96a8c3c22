"""Group ``browser``: cold start of the app in headless chromium, then Start to the first epoch.

Chromium is launched first (its own start is not the app's). Then, on a fresh server:

- ``port_open_s``: from launching ``streamlit run`` until its port accepts connections;
- ``first_page_s``: from the launch until the first page shows the sidebar navigation and a
  heading; ``first_page_data_s``: until it also shows the dataset (metrics or images);
- ``server_settled_s``: until the server's RSS stops growing (the app imports TensorFlow in
  the background at start; this is when that is over). If the ``memory`` group runs too, its
  measurements are taken here, on this server, and its extra pages closed again;
- ``start_to_first_epoch_s``: on the Train page (reached by the sidebar link), with the seed
  preset, a 5,000-image limit and 2 epochs: from the click on "Start training" until the
  page reads "Epochs done: 1/2" (or more); ``start_to_finished_s``: until "Training finished".
  This is the server's first training: it pays for what is loaded on first use (XLA's
  service, scikit-learn, the first tracing), not for TensorFlow's import;
- ``start_to_first_epoch_warm_s`` (full mode only): a second run on the same page, with 1
  epoch (so that its "Epochs done: 1/1" cannot be confused with the first run's lines): only
  this model's own compilation is left.
"""

from __future__ import annotations

import time

from bench import app_driver, memory
from bench.measure import Settings, progress, rounded

KEYS = ("first_page_s", "start_to_first_epoch_s")
SAMPLE_LIMIT = 5000
EPOCHS = 2
WARM_EPOCHS = 1
TRAINING_KEYS = ("start_to_first_epoch_s", "start_to_finished_s", "start_to_first_epoch_warm_s",
                 "start_to_finished_warm_s")


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"[:300]


def run(settings: Settings) -> dict[str, object]:
    from playwright.sync_api import sync_playwright

    metrics: dict[str, object] = {}
    errors: dict[str, str] = {}
    with sync_playwright() as playwright:
        browser = app_driver.launch_chromium(playwright)
        try:
            context = browser.new_context()
            page = context.new_page()
            with app_driver.StreamlitServer(settings.app_path, settings.streamlit_options) as server:
                progress(f"browser: cold start of {settings.app_path.name} on port {server.port}")
                metrics["port_open_s"] = rounded(server.wait_for_port(), 3)
                app_driver.goto(page, server.url)
                app_driver.wait_for_first_page(page)
                metrics["first_page_s"] = rounded(time.monotonic() - server.started_at, 3)
                memory.wait_for_dataset(page)
                metrics["first_page_data_s"] = rounded(time.monotonic() - server.started_at, 3)
                rss = memory.wait_until_settled(server)
                metrics["server_settled_s"] = rounded(time.monotonic() - server.started_at, 2)
                if settings.memory_with_browser:
                    try:
                        metrics.update(memory.measure_sessions(server, context, rss))
                    except Exception as error:  # noqa: BLE001 - the cold-start numbers stand on their own
                        errors.update(dict.fromkeys(memory.KEYS, _first_line(error)))
                try:
                    metrics.update(measure_training(page, second_run=not settings.quick))
                except Exception as error:  # noqa: BLE001 - keep the cold-start numbers
                    errors.update(dict.fromkeys(TRAINING_KEYS, _first_line(error)))
                metrics["browser_exceptions"] = app_driver.exception_count(page)
        finally:
            browser.close()
    if errors:
        metrics["errors"] = errors
    return metrics


def timed_run(page, epochs: int) -> tuple[float, float]:
    """Seconds from pressing Start to "Epochs done: 1/<epochs>" (or more), and to "Training finished"."""
    app_driver.configure_training(page, SAMPLE_LIMIT, epochs)
    progress(f"browser: Start training (seed, {SAMPLE_LIMIT:,} images, {epochs} epoch(s))")
    pressed = time.monotonic()
    app_driver.press_start(page)
    app_driver.wait_for_text(page, rf"Epochs done: [1-9]\d*/{epochs}\b", timeout=120)
    first_epoch = time.monotonic() - pressed
    app_driver.wait_for_text(page, rf"{app_driver.FINISHED_TEXT}[^\n]*{epochs}/{epochs}\b", timeout=120)
    return first_epoch, time.monotonic() - pressed


def measure_training(page, second_run: bool) -> dict[str, object]:
    app_driver.open_train_page(page)
    first_epoch, finished = timed_run(page, EPOCHS)
    metrics: dict[str, object] = {"start_to_first_epoch_s": rounded(first_epoch, 3),
                                  "start_to_finished_s": rounded(finished, 3)}
    if second_run:
        warm_first_epoch, warm_finished = timed_run(page, WARM_EPOCHS)
        metrics.update({"start_to_first_epoch_warm_s": rounded(warm_first_epoch, 3),
                        "start_to_finished_warm_s": rounded(warm_finished, 3)})
    return metrics
