"""What the browser tests share: the app server they start, and how a person uses the pages.

`StreamlitServer` runs ``streamlit run app.py`` on a free loopback port and can list the
server's training worker threads (``/proc/<pid>/task/*/comm``: ``fmnist-train-<job id>``).
The functions below drive the pages through what a visitor sees: headings, labels, buttons,
charts. After every step they check that no Streamlit exception element is on the page.
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable

from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from fmnist.data import CLASS_NAMES

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
SCREENSHOT_DIRECTORY = REPO_ROOT / "docs" / "screenshots"
CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 1000}
TRAINING_THREAD_PREFIX = "fmnist-train-"

PREDICTION_HEADING = re.compile("^(" + "|".join(re.escape(name).replace("/", r"\/") for name in CLASS_NAMES) + r") \(")
"""The answer on the Try-it page: a heading such as "Ankle boot (앵클 부츠)"."""

PROBABILITY_TEXT = re.compile(r": \d{1,3}\.\d%")
"""A probability bar's text, such as "Ankle boot (앵클 부츠): 97.3%"."""

EPOCHS_DONE = re.compile(r"Epochs done: (\d+)/(\d+)")


# ----------------------------------------------------------------------------- the server

def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class StreamlitServer:
    """``streamlit run app.py`` from the repository root, its output in ``log_path``."""

    def __init__(self, log_path: pathlib.Path, environment: dict[str, str]) -> None:
        self.port = free_loopback_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.first_page_seconds: float | None = None
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.launched_at = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(self.port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false"],
            cwd=REPO_ROOT, env=environment, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, characters: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-characters:]

    def health(self) -> str:
        """The body of ``/_stcore/health`` ("ok" when the server is up), or why it did not answer."""
        try:
            with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=5) as response:
                return response.read().decode(errors="replace")
        except OSError as error:
            return f"no answer: {error}"

    def wait_until_healthy(self, timeout: float) -> None:
        """Wait until the port accepts connections and the health endpoint says ok."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                if self.health() == "ok":
                    return
            time.sleep(0.25)
        raise RuntimeError(f"streamlit did not become healthy in {timeout:.0f} s:\n{self.log_tail()}")

    def training_threads(self) -> dict[int, str]:
        """The server's threads whose OS name starts with ``fmnist-train-``: thread id -> name.

        Besides the job's worker, TensorFlow thread pools that the worker creates carry the name
        too (a new thread inherits its creator's name).
        """
        threads = {}
        for task in pathlib.Path(f"/proc/{self.pid}/task").iterdir():
            with contextlib.suppress(OSError):  # a thread may end while we read
                name = (task / "comm").read_text().strip()
                if name.startswith(TRAINING_THREAD_PREFIX):
                    threads[int(task.name)] = name
        return threads

    def training_workers(self) -> dict[int, str]:
        """Of the threads named after a job, the job's worker: the first one started."""
        first: dict[str, tuple[int, int]] = {}
        for thread_id, name in self.training_threads().items():
            with contextlib.suppress(OSError):
                stat = pathlib.Path(f"/proc/{self.pid}/task/{thread_id}/stat").read_text()
                started = int(stat.rsplit(")", 1)[1].split()[19])  # field 22: start time in clock ticks
                if name not in first or started < first[name][0]:
                    first[name] = (started, thread_id)
        return {thread_id: name for name, (_, thread_id) in first.items()}

    def wait_for_threads_to_end(self, thread_ids: Iterable[int], timeout: float) -> float:
        """Seconds until none of these threads is alive; AssertionError after ``timeout``."""
        started = time.monotonic()
        while alive := [thread_id for thread_id in thread_ids if self._thread_alive(thread_id)]:
            if time.monotonic() - started > timeout:
                raise AssertionError(f"threads still alive after {timeout:.0f} s: {alive}")
            time.sleep(0.2)
        return time.monotonic() - started

    def _thread_alive(self, thread_id: int) -> bool:
        return pathlib.Path(f"/proc/{self.pid}/task/{thread_id}").exists()

    def wait_for_no_training_threads(self, timeout: float, ignore: set[str] = frozenset()) -> float:
        """Seconds until no thread named ``fmnist-train-*`` (but those in ``ignore``) is left.

        AssertionError after ``timeout``.
        """
        started = time.monotonic()
        while threads := {thread: name for thread, name in self.training_threads().items() if name not in ignore}:
            if time.monotonic() - started > timeout:
                raise AssertionError(f"threads named {TRAINING_THREAD_PREFIX}* still alive after {timeout:.0f} s: "
                                     f"{threads}")
            time.sleep(0.2)
        return time.monotonic() - started

    def training_thread_names(self) -> set[str]:
        return set(self.training_threads().values())

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=20)
        self._log.close()


def server_environment(base: dict[str, str], **overrides: str) -> dict[str, str]:
    environment = dict(base, FMNIST_ABANDON_AFTER_SECONDS="5", TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    environment.pop("FMNIST_MAX_CONCURRENT_TRAINING", None)
    environment.update(overrides)
    return environment


def write_timings(path: pathlib.Path, timings: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(timings, indent=2, sort_keys=True) + "\n")


# ----------------------------------------------------------------------------- pages

def expect_no_exception(page: Page) -> None:
    expect(page.get_by_test_id("stException")).to_have_count(0)


def wait_for_app_run(page: Page, timeout: float = 60_000) -> None:
    """Wait until the app is connected and its script is not running (fragments may still poll)."""
    page.wait_for_selector("[data-testid='stApp'][data-test-connection-state='CONNECTED']"
                           "[data-test-script-state='notRunning']", timeout=timeout)


SCRIPT_RUNS_SEEN = """() => {
    const app = document.querySelector("[data-testid='stApp']");
    if (window.fmnistScriptRuns === undefined) {
        window.fmnistScriptRuns = 0;
        new MutationObserver((records) => {
            records.forEach((record, index) => {
                const now = index + 1 < records.length ? records[index + 1].oldValue
                                                       : app.getAttribute("data-test-script-state");
                if (now === "running") window.fmnistScriptRuns += 1;
            });
        }).observe(app, {attributes: true, attributeFilter: ["data-test-script-state"], attributeOldValue: true});
    }
    return window.fmnistScriptRuns;
}"""
"""Counts the script runs the page has shown start (installs the counter on the first call)."""


def script_runs_seen(page: Page) -> int:
    return page.evaluate(SCRIPT_RUNS_SEEN)


def wait_for_rerun_since(page: Page, runs_seen_before: int, timeout: float = 10_000) -> None:
    """Wait for a script run that started after ``runs_seen_before``, then for the app to be idle.

    A widget change sends its rerun without changing the page's script state, so on a busy server
    `wait_for_app_run` alone can return before the server has begun the run: a field typed into
    next could then be overwritten by what that run sends back. A run too quick to be seen only
    costs the ``timeout``.
    """
    with contextlib.suppress(PlaywrightTimeoutError):
        page.wait_for_function(f"() => window.fmnistScriptRuns > {int(runs_seen_before)}", timeout=timeout)
    wait_for_app_run(page)


def open_app(page: Page, url: str, heading: str = "Explore Fashion-MNIST", timeout: float = 120_000) -> None:
    page.goto(url)
    expect(page.get_by_role("heading", name=heading)).to_be_visible(timeout=timeout)
    wait_for_app_run(page, timeout)
    expect_no_exception(page)


def go_to(page: Page, link: str, heading: str) -> None:
    """Follow a sidebar navigation link and wait for the page's title."""
    page.get_by_test_id("stSidebarNavLink").filter(has_text=link).click()
    try:
        expect(page.get_by_role("heading", name=heading)).to_be_visible(timeout=60_000)
    except AssertionError as error:  # say where the page was: a click not taken, or a server that did not answer
        app = page.get_by_test_id("stApp")
        raise AssertionError(f"{link!r} did not open {heading!r} in 60 s: the page is at {page.url}, its script "
                             f"state {app.get_attribute('data-test-script-state')!r}, its connection "
                             f"{app.get_attribute('data-test-connection-state')!r}") from error
    wait_for_app_run(page)
    expect_no_exception(page)


def set_number(page: Page, label: str | re.Pattern, value: int) -> None:
    field = page.get_by_role("spinbutton", name=label)
    field.fill(str(value))
    field.press("Enter")
    expect(field).to_have_value(str(value))
    wait_for_app_run(page)
    expect_no_exception(page)


def choose(page: Page, label: str, option: str | re.Pattern) -> None:
    """Pick an option of the selectbox with this label."""
    combobox = page.get_by_role("combobox", name=label, exact=True)
    if isinstance(option, str) and combobox.input_value() == option:
        return  # already chosen: no rerun would come
    runs_seen = script_runs_seen(page)
    page.get_by_test_id("stSelectbox").filter(has_text=label).click()
    page.get_by_role("option", name=option, exact=isinstance(option, str)).click()  # "CNN", not "Minute CNN"
    expect(combobox).to_have_value(option)
    wait_for_rerun_since(page, runs_seen)  # the choice's callbacks may rewrite fields typed into next
    expect_no_exception(page)


def training_status(page: Page) -> Locator:
    """The run's status line on the Train page ("Training epoch 2/5 ...", "Training finished ...")."""
    return page.get_by_test_id("stMain").get_by_test_id("stProgress").first


def stop_button(page: Page) -> Locator:
    """The run's Stop button (Streamlit's header has a Stop of its own while a script runs)."""
    return page.get_by_test_id("stMain").get_by_role("button", name="Stop", exact=True)


def epochs_done(page: Page) -> tuple[int, int]:
    match = EPOCHS_DONE.search(training_status(page).inner_text())
    assert match, f"no epoch count in {training_status(page).inner_text()!r}"
    return int(match.group(1)), int(match.group(2))


def press_start(page: Page) -> str:
    """Press Start and wait for the new run's panel; returns the run's name ("Run 7")."""
    run_heading = page.get_by_role("heading", name=re.compile(r"^Run \d+: ")).first
    previous = run_heading.inner_text() if run_heading.count() else None
    start = page.get_by_role("button", name="Start training")
    expect(start).to_be_enabled()
    start.click()
    if previous is None:
        expect(run_heading).to_be_visible(timeout=60_000)
    else:
        expect(run_heading).not_to_have_text(previous, timeout=60_000)
    expect(training_status(page)).to_contain_text(re.compile("Queued|Training"))
    return run_heading.inner_text().split(":")[0]


def start_training(page: Page, epochs: int, sample_limit: int) -> str:
    """On the Train page: set the epochs and the sample limit (0: all items), press Start."""
    set_number(page, "Epochs", epochs)
    set_number(page, "Training-sample limit", sample_limit)
    return press_start(page)


def train_small_model(page: Page, epochs: int = 1, sample_limit: int = 2000) -> str:
    """Train a quick model in this page's session; returns the run's name ("Run 7")."""
    go_to(page, "Train", "Train a network")
    run_name = start_training(page, epochs, sample_limit)
    expect(training_status(page)).to_contain_text("Training finished", timeout=180_000)
    wait_for_app_run(page)
    expect_no_exception(page)
    return run_name


def record_training_timeline(page: Page) -> None:
    """From now on, note every change of the live accuracy chart's point count or of the status line.

    The browser checks on every animation frame, so no state the page shows is missed; read the
    notes with `training_timeline`. A count of -1 means no accuracy chart was on the page.
    """
    page.evaluate("""() => {
        const started = performance.now();
        const notes = window.fmnistTimeline = [];
        let last = '';
        const check = () => {
            let points = -1;
            for (const plot of document.querySelectorAll('.js-plotly-plot')) {
                const trace = (plot.data || []).find(trace => trace.name === 'training accuracy');
                if (trace) points = (trace.x || []).length;
            }
            const line = document.querySelector('[data-testid="stMain"] [data-testid="stProgress"]');
            const status = line ? line.innerText.trim() : '';
            if (points + status !== last) {
                notes.push({seconds: (performance.now() - started) / 1000, points: points, status: status});
                last = points + status;
            }
            requestAnimationFrame(check);
        };
        check();
    }""")


def training_timeline(page: Page) -> list[dict]:
    """The notes of `record_training_timeline`: ``seconds`` since it started, ``points``, ``status``."""
    return page.evaluate("window.fmnistTimeline")


def tab_panel(page: Page, tab: str) -> Locator:
    """Open a tab (click its label) and return its panel."""
    page.get_by_role("tab", name=tab).click()
    panel = page.get_by_role("tabpanel", name=tab)
    expect(panel).to_be_visible()
    return panel


def prediction(panel: Locator) -> Locator:
    return panel.get_by_role("heading", name=PREDICTION_HEADING)


def expect_prediction(panel: Locator, timeout: float = 30_000) -> str:
    """A class heading and its probability bars; returns the predicted class heading."""
    expect(prediction(panel)).to_be_visible(timeout=timeout)
    expect(panel.get_by_text(PROBABILITY_TEXT).first).to_be_visible()
    return prediction(panel).inner_text()


def settled_prediction(page: Page, panel: Locator, timeout: float = 20.0) -> str:
    """The prediction once it stops changing: every stroke on the canvas reruns the page."""
    answer = expect_prediction(panel)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page.wait_for_timeout(1000)
        wait_for_app_run(page)
        latest = expect_prediction(panel)
        if latest == answer:
            return answer
        answer = latest
    raise AssertionError(f"the prediction kept changing for {timeout:.0f} s")


def drawing_canvas(page: Page) -> Locator:
    """The drawable canvas, rendered inline (components v2) or inside a component iframe."""
    inline = page.get_by_test_id("stMain").locator("canvas")
    framed = page.get_by_test_id("stMain").locator("iframe")
    expect(inline.or_(framed).first).to_be_visible(timeout=30_000)
    if inline.count():
        return inline.last  # fabric.js stacks its canvases; the last one takes the pointer
    return page.frame_locator("[data-testid='stMain'] iframe").first.locator("canvas").last


def draw(page: Page, canvas: Locator, strokes: list[list[tuple[float, float]]]) -> None:
    """Draw strokes with the mouse; points are fractions of the canvas' width and height."""
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box, "the canvas has no size"
    for stroke in strokes:
        x, y = stroke[0]
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=10)
        page.mouse.up()


def clear_uploads(page: Page) -> None:
    """Remove every file from the uploader, and wait until its result is gone from the page."""
    delete_buttons = page.get_by_test_id("stFileChipDeleteBtn")
    while delete_buttons.count():
        before = delete_buttons.count()
        delete_buttons.first.click()
        expect(delete_buttons).to_have_count(before - 1)
    wait_for_app_run(page)


def save_screenshot(page: Page, file_name: str, height: int | None = None) -> None:
    """Save docs/screenshots/<file_name> once every chart is drawn; a taller viewport shows more."""
    SCREENSHOT_DIRECTORY.mkdir(parents=True, exist_ok=True)
    if height:
        page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
    page.mouse.move(VIEWPORT["width"] - 10, 10)  # no hover highlight on the last control used
    wait_for_app_run(page)
    page.wait_for_function("""() => Array.from(document.querySelectorAll('.js-plotly-plot')).every(
        plot => plot.offsetParent === null || plot.querySelector('.main-svg'))""")
    page.evaluate("document.fonts.ready.then(() => true)")
    page.wait_for_timeout(800)  # plotly and image fade-ins
    expect_no_exception(page)
    page.screenshot(path=SCREENSHOT_DIRECTORY / file_name)
    if height:
        page.set_viewport_size(VIEWPORT)
