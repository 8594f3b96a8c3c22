"""Two Streamlit replicas share one Ray cluster (the README's "Scale out" set-up, without the proxy).

The test starts a Ray head node with 2 CPUs on the loopback address (``ray start --head``, token
authentication, its own temporary folder), then two app servers on two ports with
``FMNIST_RAY_ADDRESS`` pointing at it. A visitor on each server trains at the same time; both
runs train in the cluster's workers at once, both finish, and each visitor sees only their own run.
At the end the cluster's processes are ended by their process ids (never ``ray stop``, which
would end every Ray instance of this user on the machine).
"""

import contextlib
import os
import pathlib
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest
from playwright.sync_api import expect

from bench.load import measure_descendants
from tests.e2e.browser_support import (
    expect_no_exception,
    free_loopback_port,
    go_to,
    open_app,
    set_number,
    training_status,
    wait_for_app_run,
)
from tests.e2e.test_ray_e2e import ray_training_workers

pytestmark = [pytest.mark.browser, pytest.mark.ray]

EPOCHS = 8


@pytest.fixture(scope="module")
def ray_cluster():
    """A 2-CPU Ray head node on 127.0.0.1: (address, the environment its clients need, its folder)."""
    folder = tempfile.mkdtemp(prefix="fmnist-ray-", dir="/tmp")  # short: Ray's socket paths must fit
    port = free_loopback_port()
    environment = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16),
                   "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # a single-machine cluster: loopback
                   "RAY_USAGE_STATS_ENABLED": "0"}
    ray_command = pathlib.Path(sys.executable).with_name("ray")
    started = subprocess.run([str(ray_command), "start", "--head", "--num-cpus", "2", "--port", str(port),
                              "--include-dashboard", "false", "--disable-usage-stats", "--temp-dir", folder],
                             env={**os.environ, **environment}, capture_output=True, text=True, timeout=180)
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        yield f"127.0.0.1:{port}", environment, folder
    finally:
        end_cluster(folder)
        shutil.rmtree(folder, ignore_errors=True)


def cluster_processes(folder: str) -> list[int]:
    """The cluster's own processes: those whose command line names its folder."""
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if folder.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


def end_cluster(folder: str) -> None:
    processes = cluster_processes(folder)
    processes += [child for pid in processes for child in measure_descendants(pid)]
    for pid in processes:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(pathlib.Path(f"/proc/{pid}").exists() for pid in processes):
        time.sleep(0.2)
    for pid in processes:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def cluster_training_workers(folder: str) -> set[int]:
    """The cluster's worker processes that are running a training job right now."""
    below = {child for pid in cluster_processes(folder) for child in measure_descendants(pid)}
    return set(ray_training_workers(sorted(below)))


def test_two_replicas_on_one_cluster_train_at_once_and_keep_their_runs_apart(ray_cluster, launch_server, new_page):
    address, environment, folder = ray_cluster
    servers = [launch_server(f"replica-{name}", FMNIST_RAY_ADDRESS=address, **environment) for name in "ab"]
    try:
        pages = [new_page() for _ in servers]
        for page, server in zip(pages, servers, strict=True):
            open_app(page, server.url)
            go_to(page, "Train", "Train a network")
            set_number(page, "Epochs", EPOCHS)
            set_number(page, "Training-sample limit", 0)
        for page in pages:
            page.get_by_role("button", name="Start training").click()

        most_at_once = 0
        deadline = time.monotonic() + 300
        finished = [False, False]
        while not all(finished) and time.monotonic() < deadline:
            most_at_once = max(most_at_once, len(cluster_training_workers(folder)))
            for index, page in enumerate(pages):
                text = training_status(page).inner_text() if training_status(page).count() else ""
                assert "Training failed" not in text, text
                finished[index] = finished[index] or f"Training finished. Epochs done: {EPOCHS}/{EPOCHS}." in text
            time.sleep(0.3)
        assert all(finished), f"finished: {finished}"
        assert most_at_once == 2, f"at most {most_at_once} training worker(s) of the cluster ran at once"
        for server in servers:
            assert not server.training_threads(), "a replica trained in its own process"

        for page in pages:
            wait_for_app_run(page)
            expect_no_exception(page)
            go_to(page, "Evaluate", "Evaluate a model")
            expect(page.get_by_test_id("stMetric").filter(has_text="Test accuracy").first).to_contain_text(
                re.compile(r"\d{1,3}\.\d\d%"), timeout=120_000)
            expect(page.get_by_role("combobox", name="Model", exact=True)).to_have_value(re.compile(r"^Run 1: "))
            page.get_by_test_id("stSelectbox").filter(has_text="Model").first.click()
            expect(page.get_by_role("option").first).to_be_visible()
            options = page.get_by_role("option").all_inner_texts()
            page.keyboard.press("Escape")
            assert len(options) == 1 and options[0].startswith("Run 1: "), options
            expect_no_exception(page)
    finally:
        for server in servers:
            server.stop()
