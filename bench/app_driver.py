"""Start the Streamlit app on a free local port, and drive it in headless chromium.

What the browser groups share: :class:`StreamlitServer` (launch, wait for the port, read the
server's memory, stop), :func:`launch_chromium`, and the steps a visitor takes on the pages,
written against what the app shows a person (the Train page is reached by the sidebar link
"Train"; it has the number inputs "Training-sample limit" and "Epochs", the button "Start
training", and status lines "Queued, position N", "Epochs done: N/M", "Training finished").
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.measure import ORIGINAL_ENVIRONMENT, REPOSITORY

CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGUMENTS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-component-update", "--disable-sync", "--no-first-run"]
HOST = "127.0.0.1"

NAV_LINK = '[data-testid="stSidebarNavLink"]'
MAIN_HEADING = '[data-testid="stMain"] :is(h1, h2, h3)'
EXCEPTION = '[data-testid="stException"]'
EPOCHS_DONE = re.compile(r"Epochs done: (\d+)/(\d+)")
QUEUED = re.compile(r"(?:Queued, position|Waiting for a worker, place) (\d+)")
"""A run waiting for its turn: in the server's own queue (threads) or in the Ray cluster's."""
FINISHED_TEXT = "Training finished"
ENDED_BADLY = re.compile(r"Training (failed|stopped)")

FIRST_PAGE_SCRIPT = f"""() => {{
    const visible = (element) => element !== null && element.getClientRects().length > 0;
    return visible(document.querySelector('{NAV_LINK}')) && visible(document.querySelector('{MAIN_HEADING}'));
}}"""


FIRST_PAGE_TIMER_SCRIPT = f"""(() => {{
    const visible = (selector) => {{
        const element = document.querySelector(selector);
        return element !== null && element.getClientRects().length > 0;
    }};
    const now = () => performance.timeOrigin + performance.now();
    const timer = setInterval(() => {{
        if (window.__benchNavAt === undefined && visible('{NAV_LINK}')) window.__benchNavAt = now();
        if (window.__benchHeadingAt === undefined && visible('{MAIN_HEADING}')) window.__benchHeadingAt = now();
        if (window.__benchNavAt !== undefined && window.__benchHeadingAt !== undefined) {{
            window.__benchFirstPageAt = Math.max(window.__benchNavAt, window.__benchHeadingAt);
            clearInterval(timer);
        }}
    }}, 50);
}})();"""
"""Injected into a page before it loads: records (wall-clock ms) when the navigation, a heading,
and so the first page, were first shown."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class StreamlitServer:
    """``streamlit run <app> --server.headless true --server.port <free port> ...`` in its own process group.

    ``started_at`` is the ``time.monotonic()`` of the launch; the server's output goes to a log
    file whose tail is quoted when the server dies or never opens its port.
    """

    def __init__(self, app_path: Path, options: tuple[tuple[str, str], ...] = (),
                 environment: dict[str, str] | None = None) -> None:
        if not app_path.is_file():
            raise FileNotFoundError(f"no Streamlit app at {app_path}")
        self.app_path = app_path
        self.options = options
        self.environment = dict(environment or {})
        """Variables set for the server on top of the harness's original environment (e.g. the Ray address)."""
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}/"
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0
        self.log = tempfile.NamedTemporaryFile(prefix="bench-streamlit-", suffix=".log", delete=False)  # noqa: SIM115

    def start(self) -> StreamlitServer:
        environment = {**ORIGINAL_ENVIRONMENT, **self.environment}
        if REPOSITORY not in self.app_path.resolve().parents:  # an app outside the checkout still imports fmnist
            environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPOSITORY),
                                                                      environment.get("PYTHONPATH")]))
        command = [sys.executable, "-m", "streamlit", "run", self.app_path.name,
                   "--server.headless", "true", "--server.port", str(self.port),
                   "--server.address", HOST, "--browser.gatherUsageStats", "false"]
        for name, value in self.options:
            command += [f"--{name}", value]
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(command, cwd=self.app_path.parent, env=environment, stdin=subprocess.DEVNULL,
                                        stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def wait_for_port(self, timeout: float = 60) -> float:
        """Seconds from launch until the port accepts connections."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the Streamlit server exited with code {self.process.returncode}: {self.log_tail()}")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.2):
                    return time.monotonic() - self.started_at
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"the Streamlit server did not open port {self.port} in {timeout:.0f} s: {self.log_tail()}")

    def _status_mb(self) -> dict[str, float]:
        """The kB fields of ``/proc/<pid>/status`` of the server process, in MB."""
        if self.process is None:
            raise RuntimeError("the server is not running")
        values = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if rest.strip().endswith("kB"):
                values[name] = int(rest.split()[0]) / 1024
        return values

    def memory_mb(self) -> tuple[float, float]:
        """(VmRSS, VmHWM) of the server process in MB."""
        values = self._status_mb()
        return values["VmRSS"], values["VmHWM"]

    def memory_breakdown_mb(self) -> dict[str, float]:
        """RssAnon (the process's own heap) and RssFile (mapped files, mostly TensorFlow's 1.1 GB
        shared library: clean pages the kernel can share and drop) in MB."""
        values = self._status_mb()
        return {name: values[name] for name in ("RssAnon", "RssFile")}

    def log_tail(self, lines: int = 5) -> str:
        with contextlib.suppress(OSError):
            text = Path(self.log.name).read_text(errors="replace").strip().splitlines()
            return " | ".join(text[-lines:]) or "(no output)"
        return "(no log)"

    def stop(self) -> None:
        """SIGTERM to the server's own process group, SIGKILL if it lingers 5 s; the log file is removed."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.close()
        with contextlib.suppress(OSError):
            Path(self.log.name).unlink()

    def __enter__(self) -> StreamlitServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def launch_chromium(playwright):
    """Debian's chromium, headless, through Playwright (never a downloaded browser)."""
    return playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGUMENTS)


@contextlib.contextmanager
def browser_and_fresh_server(app_path: Path, streamlit_options, announce, environment: dict[str, str] | None = None):
    """Chromium plus a fresh Streamlit server with its port open; both are closed afterwards.

    ``announce(port)`` is called once the server is launched, before waiting for its port.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            with StreamlitServer(app_path, streamlit_options, environment) as server:
                announce(server.port)
                server.wait_for_port()
                yield browser, server
        finally:
            browser.close()


def body_text(page) -> str:
    """What a person can read on the page right now."""
    return page.evaluate("() => document.body.innerText")


def status_text(page) -> str:
    """The page's text without laying it out (``textContent``): cheap enough to read often."""
    return page.evaluate("() => document.body.textContent")


def goto(page, url: str, timeout: float = 30, wait_until: str = "commit") -> None:
    """Open ``url``, retrying while the server is not yet answering."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            page.goto(url, wait_until=wait_until, timeout=max(1000, (deadline - time.monotonic()) * 1000))
            return
        except Exception:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.1)


def new_timed_page(browser):
    """A page in a new browser context that times its own first page (see :func:`first_page_timings`)."""
    context = browser.new_context()
    context.add_init_script(FIRST_PAGE_TIMER_SCRIPT)
    return context.new_page()


def first_page_timings(page) -> dict[str, float] | None:
    """For a timed page that has shown its first page: wall-clock seconds (``time.time()`` scale)
    when the HTML had arrived (``html``), the navigation (``nav``) and a heading (``heading``) were
    first shown, and the first page (``shown``, the later of the two); None before that."""
    try:
        timings = page.evaluate("""() => window.__benchFirstPageAt === undefined ? null : {
            html: performance.timeOrigin + performance.getEntriesByType('navigation')[0].responseEnd,
            nav: window.__benchNavAt, heading: window.__benchHeadingAt, shown: window.__benchFirstPageAt}""")
    except Exception as error:  # the page is between two documents: not shown yet
        if "context was destroyed" in str(error) or "navigat" in str(error):
            return None
        raise
    return None if timings is None else {name: value / 1000 for name, value in timings.items()}


def wait_for_first_page(page, timeout: float = 60) -> None:
    page.wait_for_function(FIRST_PAGE_SCRIPT, polling=50, timeout=timeout * 1000)


def exception_count(page) -> int:
    return page.locator(EXCEPTION).count()


def open_train_page(page, timeout: float = 60) -> None:
    """Click the sidebar link "Train" and wait for the Start button."""
    page.locator(NAV_LINK, has_text="Train").first.click(timeout=timeout * 1000)
    page.get_by_role("button", name="Start training").wait_for(state="visible", timeout=timeout * 1000)


def configure_training(page, sample_limit: int, epochs: int, timeout: float = 30) -> None:
    """Type the sample limit and the epochs (committed with Tab, as a person would).

    A value the page does not keep (the input was redrawn while typing) is typed again.
    """
    deadline = time.monotonic() + timeout
    for label, value in (("Training-sample limit", sample_limit), ("Epochs", epochs)):
        field = page.get_by_role("spinbutton", name=label, exact=True)
        while True:
            field.fill(str(value), timeout=max(1.0, deadline - time.monotonic()) * 1000)
            field.press("Tab")
            try:
                page.wait_for_function(
                    "([label, value]) => { const f = document.querySelector(`input[aria-label=\"${label}\"]`);"
                    " return f !== null && f.value === value; }", arg=[label, str(value)], polling=50,
                    timeout=max(1.0, min(3.0, deadline - time.monotonic())) * 1000)
                break
            except Exception:
                if time.monotonic() >= deadline:
                    raise


def press_start(page, timeout: float = 30) -> None:
    page.get_by_role("button", name="Start training").click(timeout=timeout * 1000)


def epochs_done(text: str) -> int:
    """The highest "Epochs done: N/M" on the page (the sidebar and the main panel both show it)."""
    return max((int(match.group(1)) for match in EPOCHS_DONE.finditer(text)), default=0)


def wait_for_text(page, pattern: str, timeout: float) -> None:
    """Wait until the page's text matches the JavaScript regular expression ``pattern``."""
    page.wait_for_function("(pattern) => new RegExp(pattern).test(document.body.innerText)", arg=pattern,
                           polling=50, timeout=timeout * 1000)
