"""Group ``load``: ten visitors train at once; an eleventh arrives in the middle of it.

On a fresh server (default settings: the training cap is the CPU count), ten visitors, ten
pages of one chromium context (ten Streamlit sessions sharing chromium's cache), open the Train
page and set the seed preset, a 5,000-image limit and 2 epochs. Then all ten press Start, one
right after the other, and every page is read about twice a second until each shows
"Training finished" or the time budget runs out (120 s, 180 s in full mode, and never past
the run's own deadline: ``load_budget_s`` says how long it could watch). A visitor whose page does not load (or whose
Start cannot be pressed) within 30 s still counts in the total, as not completed, and the
reason is kept in ``load_problems``. The page texts give:

- ``load_sessions_completed`` of ``load_sessions_total``: pages that showed "Training finished";
- ``load_queued_seen`` / ``load_max_queue_position``: pages that showed "Queued, position N";
- ``load_max_running_seen``: most pages showing a run in progress (an "Epochs done" line, not
  queued, not finished) in one sweep; pages lag the server by up to one of their polls, so a
  page may still show a run the server has just finished;
- ``load_wall_s``: first Start to the last "Training finished" (or to the give-up time);
- ``eleventh_visitor_first_page_s``: once the queue is seen (or 2 s after the last Start), a
  new visitor opens the app; seconds until its sidebar navigation and heading are shown, as
  timed inside that page (a 50 ms check), so the polling of the other ten does not blur it;
  ``eleventh_visitor_html_s`` / ``_nav_s`` / ``_heading_s`` say which part was slow: the
  HTML's arrival, the sidebar navigation (the session is connected) or the page's heading
  (its script has run).

``load_*_cpu_share``: where the machine's CPU time went from the first Start to the end, as
shares of all CPUs: the server, chromium (the eleven pages and Playwright's driver), this
harness, and anything else running on the machine meanwhile.

Everything runs on 127.0.0.1 only.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter

from bench import app_driver, measure
from bench.measure import Settings, median, progress, rounded

KEYS = ("load_sessions_completed", "load_sessions_total", "load_wall_s", "eleventh_visitor_first_page_s")
SESSIONS = 10
SAMPLE_LIMIT = 5000
EPOCHS = 2
POLL_SECONDS = 0.4
ELEVENTH_AFTER_SECONDS = 2.0
STEP_SECONDS = 30.0
"""Longest wait for one step of one visitor (a page load, a click) before it counts as failed."""
FIRST_STEP_SECONDS = 60.0
"""The first visitor's first page also waits for the server's start-up work."""


@dataclasses.dataclass
class Visitor:
    """One browser session and what was seen on its page."""

    page: object
    problem: str = ""
    """Why it could not take part, or how its run ended badly; empty while all is well."""
    pressed_at: float | None = None
    finished_at: float | None = None
    queued_positions: set[int] = dataclasses.field(default_factory=set)

    @property
    def done(self) -> bool:
        return self.finished_at is not None or bool(self.problem)


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"[:160]


def open_visitors(context, url: str, count: int, deadline: float) -> list[Visitor]:
    """``count`` visitors on the Train page with the run configured, Start not yet pressed.

    The first one lands on the first page and clicks "Train" in the sidebar; the others open
    the address that link leads to, which spares the server and chromium a page per visitor.
    A visitor not ready by ``deadline`` (or within its step time) is kept, with the reason.
    """
    visitors: list[Visitor] = []
    train_url = ""
    for _ in range(count):
        visitor = Visitor(page=context.new_page())
        visitors.append(visitor)
        left = deadline - time.monotonic()
        if left < 1:
            visitor.problem = "not opened: the time for opening visitors was used up"
            continue
        page = visitor.page
        step = "loading the page"
        try:
            if not train_url:
                app_driver.goto(page, url, timeout=min(FIRST_STEP_SECONDS, left))
                app_driver.wait_for_first_page(page, timeout=max(1.0, min(FIRST_STEP_SECONDS, deadline - time.monotonic())))
                step = "opening Train from the sidebar"
                app_driver.open_train_page(page, timeout=max(1.0, min(STEP_SECONDS, deadline - time.monotonic())))
                train_url = page.url
            else:
                app_driver.goto(page, train_url, timeout=min(STEP_SECONDS, left))
                page.get_by_role("button", name="Start training").wait_for(
                    state="visible", timeout=max(1.0, min(STEP_SECONDS, deadline - time.monotonic())) * 1000)
            step = "setting limit and epochs"
            app_driver.configure_training(page, SAMPLE_LIMIT, EPOCHS,
                                          timeout=max(1.0, min(STEP_SECONDS, deadline - time.monotonic())))
        except Exception as error:  # noqa: BLE001 - the visitor counts as failed; the others go on
            visitor.problem = f"Train page not ready ({step}): {_first_line(error)}"
            progress(f"load: visitor {len(visitors)}: {visitor.problem}")
    return visitors


def read_state(visitor: Visitor, now: float) -> bool:
    """Update the visitor from its page text; True if it is training right now."""
    text = app_driver.status_text(visitor.page)
    if app_driver.FINISHED_TEXT in text:
        visitor.finished_at = now
        return False
    failure = app_driver.ENDED_BADLY.search(text)
    if failure:
        visitor.problem = failure.group(0)
        return False
    queued = [int(position) for position in app_driver.QUEUED.findall(text)]
    visitor.queued_positions.update(queued)
    return not queued and app_driver.EPOCHS_DONE.search(text) is not None


def run(settings: Settings) -> dict[str, object]:
    with app_driver.browser_and_fresh_server(
            settings.app_path, settings.streamlit_options,
            lambda port: progress(f"load: fresh server on port {port}; opening {SESSIONS} visitors")) as (browser,
                                                                                                       server):
        setup_started = time.monotonic()
        setup_deadline = min(setup_started + (90.0 if settings.quick else 150.0),
                             max(setup_started + 15.0, settings.deadline - 45.0))
        visitors = open_visitors(browser.new_context(), server.url, SESSIONS, setup_deadline)
        setup_seconds = time.monotonic() - setup_started
        progress(f"load: visitors opened in {setup_seconds:.1f} s; pressing Start on each")
        cpu_before = measure.cpu_sample(server.process.pid)
        for visitor in visitors:
            if visitor.problem:
                continue
            try:
                app_driver.press_start(visitor.page, timeout=STEP_SECONDS)
                visitor.pressed_at = time.monotonic()
            except Exception as error:  # noqa: BLE001 - counts as not completed
                visitor.problem = f"Start not pressed: {_first_line(error)}"
        budget = min(120.0 if settings.quick else 180.0, max(10.0, settings.seconds_left() - 4))
        metrics = watch(browser, server, visitors, budget)
        metrics["load_budget_s"] = rounded(budget, 1)
        metrics.update(measure.cpu_shares(cpu_before, measure.cpu_sample(server.process.pid), "load"))
        metrics["load_setup_s"] = rounded(setup_seconds, 2)
        metrics["load_exceptions"] = sum(1 for visitor in visitors if app_driver.exception_count(visitor.page))
        problems = Counter(visitor.problem for visitor in visitors if visitor.problem)
        metrics["load_problems"] = dict(problems)
    return metrics


def watch(browser, server: app_driver.StreamlitServer, visitors: list[Visitor], budget: float) -> dict[str, object]:
    """Poll every page until all are done (and the eleventh visitor is in) or ``budget`` seconds pass."""
    pressed = [visitor.pressed_at for visitor in visitors if visitor.pressed_at is not None]
    first_press = min(pressed, default=time.monotonic())
    last_press = max(pressed, default=first_press)
    deadline = first_press + budget
    eleventh_page = None
    eleventh_opened_at = 0.0  # wall-clock seconds, comparable with the page's own clock
    eleventh: dict[str, float] | None = None
    max_running = 0
    while time.monotonic() < deadline:
        now = time.monotonic()
        running = 0
        for visitor in visitors:
            if not visitor.done:
                try:
                    running += read_state(visitor, now)
                except Exception as error:  # a page between two documents: read it next time
                    if "context was destroyed" not in str(error):
                        raise
        max_running = max(max_running, running)
        queue_seen = any(visitor.queued_positions for visitor in visitors)
        if eleventh_page is None and (queue_seen or now - last_press >= ELEVENTH_AFTER_SECONDS):
            progress("load: an eleventh visitor arrives")
            eleventh_page = app_driver.new_timed_page(browser)
            eleventh_opened_at = time.time()
            eleventh_page.evaluate("(url) => { setTimeout(() => { window.location.href = url; }, 0); }",
                                   server.url)  # returns at once; the page times itself
        if eleventh_page is not None and eleventh is None:
            timings = app_driver.first_page_timings(eleventh_page)
            if timings is not None:
                eleventh = {name: moment - eleventh_opened_at for name, moment in timings.items()}
        if all(visitor.done for visitor in visitors) and eleventh is not None:
            break
        time.sleep(POLL_SECONDS)

    completed = [visitor for visitor in visitors if visitor.finished_at is not None]
    durations = [visitor.finished_at - visitor.pressed_at for visitor in completed]
    all_done = len(completed) == len(visitors)
    wall = (max(visitor.finished_at for visitor in completed) - first_press) if all_done else time.monotonic() - first_press
    progress(f"load: {len(completed)}/{len(visitors)} finished; {wall:.1f} s after the first Start")
    return {
        "load_sessions_total": len(visitors),
        "load_sessions_completed": len(completed),
        "load_sessions_started": len(pressed),
        "load_sessions_failed": sum(1 for visitor in visitors if visitor.problem),
        "load_queued_seen": sum(1 for visitor in visitors if visitor.queued_positions),
        "load_max_queue_position": max((max(visitor.queued_positions) for visitor in visitors
                                        if visitor.queued_positions), default=0),
        "load_max_running_seen": max_running,
        "load_wall_s": rounded(wall, 2),
        "load_timed_out": not all_done,
        "load_session_p50_s": rounded(median(durations), 2),
        "load_session_max_s": rounded(max(durations) if durations else None, 2),
        "eleventh_visitor_first_page_s": rounded(eleventh["shown"], 3) if eleventh else None,
        "eleventh_visitor_html_s": rounded(eleventh["html"], 3) if eleventh else None,
        "eleventh_visitor_nav_s": rounded(eleventh["nav"], 3) if eleventh else None,
        "eleventh_visitor_heading_s": rounded(eleventh["heading"], 3) if eleventh else None,
    }
