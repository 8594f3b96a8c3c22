"""The app on the Ray backend, in headless chromium, with the real data.

The server runs with ``FMNIST_RAY_ADDRESS=local``: it starts a local Ray instance with the
machine's cores, and every run trains in a Ray worker process, not in the server. A visitor
trains a seed run and watches it live, then evaluates the model that came back from the worker;
a worker killed with ``kill -9`` mid-run fails only that run, with a message, and Start works again.
"""

import contextlib
import os
import pathlib
import re
import signal
import subprocess
import time

import pytest
from playwright.sync_api import Page, expect

from bench.load import measure_descendants
from tests.e2e.browser_support import (
    expect_no_exception,
    go_to,
    open_app,
    record_training_timeline,
    set_number,
    training_status,
    training_timeline,
    wait_for_app_run,
)

pytestmark = [pytest.mark.browser, pytest.mark.ray]

RAY_TASK_TITLE = "ray::fmnist-training"
"""The process title of a Ray worker while it runs a training job (the task's name)."""
STARTED = re.compile("Waiting for a worker|Preparing the model|Training epoch|Epochs done")


@pytest.fixture(scope="module")
def ray_server(launch_server):
    server = launch_server("streamlit-ray", FMNIST_RAY_ADDRESS="local", RAY_USAGE_STATS_ENABLED="0")
    yield server
    server.stop()


def ray_training_workers(pids: list[int]) -> list[int]:
    """Those of ``pids`` that are Ray workers running a training job right now.

    A worker's short-lived children count as nothing: importing TensorFlow runs ``uname -p``
    (``platform.processor()``), and until that child execs, its command line is still the worker's
    title (seen in CI: a third "training worker" on a 2-CPU cluster)."""
    titled = []
    for pid in pids:
        with contextlib.suppress(OSError):
            if pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().startswith(RAY_TASK_TITLE.encode()):
                titled.append(pid)
    children = {child for pid in titled for child in measure_descendants(pid)}
    return [pid for pid in titled if pid not in children]


def training_workers(server) -> list[int]:
    """The server's Ray worker processes that are running a training job right now."""
    return ray_training_workers(measure_descendants(server.pid))


def test_a_training_workers_short_lived_child_is_not_counted_as_a_worker():
    """A worker that runs ``uname -p`` has, for a moment, a child with its own title: one worker."""
    script = f"(exec -a {RAY_TASK_TITLE} sleep 30) & wait"
    worker = subprocess.Popen(["bash", "-c", f"exec -a {RAY_TASK_TITLE} bash -c '{script}'"])
    try:
        deadline = time.monotonic() + 10
        while len(measure_descendants(worker.pid)) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        child = measure_descendants(worker.pid)
        assert len(child) == 1, child
        assert ray_training_workers([worker.pid, *child]) == [worker.pid]
        assert ray_training_workers(child) == child  # a worker whose parent is not one still counts
    finally:
        for pid in measure_descendants(worker.pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        worker.kill()
        worker.wait()


def start_run(page: Page, epochs: int, sample_limit: int) -> None:
    """Set epochs and limit on the Train page and press Start (the seed preset, the textbook defaults)."""
    set_number(page, "Epochs", epochs)
    set_number(page, "Training-sample limit", sample_limit)
    start = page.get_by_role("button", name="Start training")
    expect(start).to_be_enabled()
    start.click()
    expect(training_status(page)).to_contain_text(STARTED, timeout=60_000)


def test_a_visitor_trains_on_ray_watches_it_live_and_evaluates_the_returned_model(ray_server, new_page):
    page = new_page()
    open_app(page, ray_server.url)
    go_to(page, "Train", "Train a network")
    record_training_timeline(page)
    start_run(page, epochs=10, sample_limit=0)
    expect(training_status(page)).to_contain_text("Training finished. Epochs done: 10/10.", timeout=240_000)
    wait_for_app_run(page)
    expect_no_exception(page)

    timeline = training_timeline(page)
    shown = "\n".join(f"{note['seconds']:6.2f} s  {note['points']:3d} points  {note['status']}" for note in timeline)
    finished = next(note for note in timeline if note["status"].startswith("Training finished"))
    live = [note for note in timeline if note["seconds"] < finished["seconds"]]
    assert any(re.search(r"Epochs done: [1-9]/10\.", note["status"]) for note in live), f"no live epochs:\n{shown}"
    assert any(note["points"] >= 1 for note in live), f"the chart got no point before the end:\n{shown}"
    # The run trained in a Ray worker: no training thread ever ran in the server process.
    assert not ray_server.training_threads()

    go_to(page, "Evaluate", "Evaluate a model")
    test_accuracy = page.get_by_test_id("stMetric").filter(has_text="Test accuracy").first
    expect(test_accuracy).to_contain_text(re.compile(r"\d{1,3}\.\d\d%"), timeout=120_000)
    accuracy = float(re.search(r"(\d{1,3}\.\d\d)%", test_accuracy.inner_text()).group(1))
    assert accuracy > 80, f"the model from the worker scores {accuracy}% on the test images"
    expect(page.locator(".js-plotly-plot").filter(has=page.locator(".heatmaplayer"))).to_contain_text("Ankle boot")
    wait_for_app_run(page)
    expect_no_exception(page)


def test_a_killed_worker_fails_only_that_run_with_a_message_and_start_works_again(ray_server, new_page):
    page = new_page()
    open_app(page, ray_server.url)
    go_to(page, "Train", "Train a network")
    start_run(page, epochs=50, sample_limit=0)
    expect(training_status(page)).to_contain_text(re.compile(r"Epochs done: [1-9]\d*/50"), timeout=120_000)
    workers = training_workers(ray_server)
    assert len(workers) == 1, f"expected one training worker, found {workers}"
    os.kill(workers[0], signal.SIGKILL)
    expect(page.get_by_test_id("stMain")).to_contain_text(
        "Training failed: The training worker stopped unexpectedly", timeout=60_000)
    expect(page.get_by_test_id("stMain")).to_contain_text("start the run again to retry")
    wait_for_app_run(page)
    expect_no_exception(page)

    start_run(page, epochs=1, sample_limit=2000)  # the retry
    expect(training_status(page)).to_contain_text("Training finished. Epochs done: 1/1.", timeout=180_000)
    wait_for_app_run(page)
    expect_no_exception(page)
