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

For both backends (``--ray``: the server trains on Ray, see ``Settings.ray_address``):

- ``load_job_start_p50_s`` / ``_max_s``: Start pressed → the page first shows the run training
  (not queued, not waiting for a worker; or finished, if it trained between two reads), the mean
  and the longest of the first two visitors (each has a free CPU on two cores, on both backends);
  ``load_first_job_start_s`` the first visitor's. Pages are read in turn, every 0.4 s or slower;
- ``server_rss_anon_mb`` / ``server_rss_file_mb``: the server process's own memory (heap) and
  its file-backed pages (mostly TensorFlow's shared library), read when the runs have ended;
  ``ray_workers_rss_anon_mb``: with Ray, the same for the server's Ray processes together;
- stalls: a page whose run is in progress should change its status line every poll (the epoch's
  share, the ETA). ``load_longest_silence_s`` is the longest time any such page kept the same
  text, ``load_stalled_pages`` how many kept it over ``STALL_SECONDS``, and ``load_stall_details``
  what those pages said then (their connection and script state, their status line).

``python -m bench.load --backends threads,ray --repeat 5`` runs the group repeatedly for each
backend and prints them side by side (see :func:`main`).

Everything runs on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from bench import app_driver, measure
from bench.measure import Settings, median, progress, rounded

KEYS = ("load_sessions_completed", "load_sessions_total", "load_wall_s", "eleventh_visitor_first_page_s",
        "load_job_start_p50_s", "server_rss_anon_mb", "server_rss_file_mb", "load_stalled_pages")
SESSIONS = 10
SAMPLE_LIMIT = 5000
EPOCHS = 2
POLL_SECONDS = 0.4
ELEVENTH_AFTER_SECONDS = 2.0
STEP_SECONDS = 30.0
"""Longest wait for one step of one visitor (a page load, a click) before it counts as failed."""
FIRST_STEP_SECONDS = 60.0
"""The first visitor's first page also waits for the server's start-up work."""
STALL_SECONDS = 20.0
"""A page showing a run part-way through an epoch with the same status line this long has stopped
updating: it redraws every second, and the line holds the epoch's share (and, on threads, the
ETA). Phases with a fixed line (preparing the model, finishing) do not count."""
MOVING_PHASE = re.compile(r"Training epoch \d+/\d+ \(\d+% of it\)[^.]*\. Epochs done: \d+/\d+")
"""The status line of a run part-way through an epoch: it changes as the epoch goes on."""
PAGE_STATE_SCRIPT = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    const sidebar = document.querySelector('[data-testid="stSidebar"]');
    const state = app ? `${app.getAttribute('data-test-connection-state')}/${app.getAttribute('data-test-script-state')}`
                      : 'no app element';
    return `${state}; sidebar says: ${sidebar ? sidebar.textContent : ''}`;
}"""
"""At a stall: the page's connection and script state, and the sidebar's status, which has a
fragment (and a poll) of its own: a sidebar ahead of the panel means the panel's fragment stopped
rerunning; both alike mean the run's state on the server did not move."""


@dataclasses.dataclass
class Visitor:
    """One browser session and what was seen on its page."""

    page: object
    problem: str = ""
    """Why it could not take part, or how its run ended badly; empty while all is well."""
    pressed_at: float | None = None
    finished_at: float | None = None
    queued_positions: set[int] = dataclasses.field(default_factory=set)
    started_at: float | None = None
    """When the page first showed the run training (not queued, not waiting for a worker)."""
    last_text: str = ""
    last_change: float = 0.0
    longest_silence: float = 0.0
    """The longest time the page showed a run in progress without changing its status line."""
    stall: str = ""
    """What the page said when it first stayed silent over ``STALL_SECONDS``."""

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
        if visitor.started_at is None:  # it trained between two reads
            visitor.started_at = now
        return False
    failure = app_driver.ENDED_BADLY.search(text)
    if failure:
        visitor.problem = failure.group(0)
        return False
    queued = [int(position) for position in app_driver.QUEUED.findall(text)]
    visitor.queued_positions.update(queued)
    running = not queued and "Waiting for a worker" not in text and app_driver.EPOCHS_DONE.search(text) is not None
    if running and visitor.started_at is None:
        visitor.started_at = now
    moving = MOVING_PHASE.search(text)
    line = moving.group(0) if moving else ""
    if not running or line != visitor.last_text or not line:
        visitor.last_text, visitor.last_change = line, now
    else:
        visitor.longest_silence = max(visitor.longest_silence, now - visitor.last_change)
        if visitor.longest_silence > STALL_SECONDS and not visitor.stall:
            state = "unknown"
            with contextlib.suppress(Exception):
                state = visitor.page.evaluate(PAGE_STATE_SCRIPT)
            sidebar_said = state.partition("; sidebar says: ")[2]
            sidebar = MOVING_PHASE.search(sidebar_said) or re.search(r"Training finished[^.]*\.", sidebar_said)
            visitor.stall = (f"{state.partition(';')[0]}: {line} | sidebar: "
                             f"{sidebar.group(0) if sidebar else sidebar_said.strip()[-120:]}")
            progress(f"load: a page stopped updating for {now - visitor.last_change:.0f} s ({visitor.stall})")
    return running


def run(settings: Settings) -> dict[str, object]:
    environment = {"FMNIST_RAY_ADDRESS": settings.ray_address} if settings.ray_address else {"FMNIST_RAY_ADDRESS": ""}
    backend = f"ray ({settings.ray_address})" if settings.ray_address else "threads"
    with app_driver.browser_and_fresh_server(
            settings.app_path, settings.streamlit_options,
            lambda port: progress(f"load: fresh server on port {port} ({backend}); opening {SESSIONS} visitors"),
            environment) as (browser, server):
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
        metrics["load_backend"] = backend
        metrics.update(server_memory(server))
    return metrics


def server_memory(server: app_driver.StreamlitServer) -> dict[str, object]:
    """The server's own and file-backed memory now, and (with Ray) its Ray processes' own memory."""
    breakdown = server.memory_breakdown_mb()
    workers = [pid for pid in measure_descendants(server.process.pid)]
    workers_anon = 0.0
    for pid in workers:
        with contextlib.suppress(OSError, ValueError, IndexError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("RssAnon:"):
                    workers_anon += int(line.split()[1]) / 1024
    return {"server_rss_anon_mb": rounded(breakdown["RssAnon"], 1), "server_rss_file_mb": rounded(breakdown["RssFile"], 1),
            "server_child_processes": len(workers), "ray_workers_rss_anon_mb": rounded(workers_anon, 1)}


def measure_descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (with Ray: the local instance and its worker processes)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
    found, pending = [], [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


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
    # Time to start a job: the first two visitors' (both backends have a free CPU for each of them on
    # two cores; the later ones wait for a turn, which is the queue's time, not the start's).
    pressed_visitors = [visitor for visitor in visitors if visitor.pressed_at is not None]
    start_delays = [visitor.started_at - visitor.pressed_at for visitor in pressed_visitors[:2]
                    if visitor.started_at is not None]
    first = pressed_visitors[0] if pressed_visitors else None
    stalled = [visitor for visitor in visitors if visitor.stall]
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
        "load_job_start_p50_s": rounded(sum(start_delays) / len(start_delays) if start_delays else None, 2),
        "load_job_start_max_s": rounded(max(start_delays) if start_delays else None, 2),
        "load_first_job_start_s": rounded(first.started_at - first.pressed_at, 2)
        if first is not None and first.started_at is not None else None,
        "load_longest_silence_s": rounded(max((visitor.longest_silence for visitor in visitors), default=0.0), 1),
        "load_stalled_pages": len(stalled),
        "load_stall_details": [visitor.stall for visitor in stalled],
        "eleventh_visitor_first_page_s": rounded(eleventh["shown"], 3) if eleventh else None,
        "eleventh_visitor_html_s": rounded(eleventh["html"], 3) if eleventh else None,
        "eleventh_visitor_nav_s": rounded(eleventh["nav"], 3) if eleventh else None,
        "eleventh_visitor_heading_s": rounded(eleventh["heading"], 3) if eleventh else None,
    }


# ----------------------------------------------------------------------------- both backends, repeated

TABLE_ROWS = (
    ("load_sessions_completed", "runs finished (of 10)"),
    ("eleventh_visitor_first_page_s", "11th visitor's first page (s)"),
    ("load_wall_s", "first Start → last finished (s)"),
    ("load_first_job_start_s", "first run: Start → training shown (s)"),
    ("load_job_start_p50_s", "first two runs: Start → training shown, mean (s)"),
    ("load_max_queue_position", "highest queue / waiting place seen"),
    ("load_longest_silence_s", "longest a running page kept its text (s)"),
    ("load_stalled_pages", f"pages that stopped updating (> {STALL_SECONDS:.0f} s)"),
    ("load_exceptions", "pages with an exception"),
    ("server_rss_anon_mb", "server RSS, anonymous (MB)"),
    ("server_rss_file_mb", "server RSS, file-backed (MB)"),
    ("ray_workers_rss_anon_mb", "Ray processes' RSS, anonymous (MB)"),
    ("load_server_cpu_share", "server's share of all CPUs"),
    ("load_average_start", "load average (1 min) at the start"),
)


def _cell(values: list[object]) -> str:
    shown = ["-" if value is None else f"{value:g}" if isinstance(value, float) else str(value) for value in values]
    numbers = [value for value in values if isinstance(value, (int, float)) and not isinstance(value, bool)]
    middle = f"  (median {median(numbers):g})" if len(numbers) > 1 else ""
    return " / ".join(shown) + middle


def format_comparison(runs: dict[str, list[dict[str, object]]]) -> str:
    """One row per measurement, one column per backend: every repetition's value, then the median."""
    backends = list(runs)
    rows = [["", *[f"{backend} ({len(runs[backend])} runs)" for backend in backends]]]
    rows += [[label, *[_cell([run.get(key) for run in runs[backend]]) for backend in backends]]
             for key, label in TABLE_ROWS]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = [" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    for backend in backends:
        for number, run in enumerate(runs[backend], 1):
            for detail in run.get("load_stall_details") or []:
                lines.append(f"{backend} run {number}: stalled page: {detail}")
            if run.get("error"):
                lines.append(f"{backend} run {number}: {run['error']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.load [--backends threads,ray] [--repeat 5] [--ray-address local]``: the load group
    on each backend, repeated, alternating backends so that other work on the machine hits both alike.
    Prints a table and ends with one JSON line (every run's metrics)."""
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=main.__doc__.splitlines()[0])
    parser.add_argument("--backends", default="threads,ray", help="comma-separated: threads, ray")
    parser.add_argument("--repeat", type=int, default=5, help="runs per backend (default 5)")
    parser.add_argument("--ray-address", default="local", help="the Ray backend's address (default: local)")
    parser.add_argument("--app", type=Path, default=measure.REPOSITORY / "app.py")
    parser.add_argument("--json-out", type=Path, help="also write the JSON line to this file")
    arguments = parser.parse_args(argv)
    backends = [name.strip() for name in arguments.backends.split(",") if name.strip()]
    if not backends or set(backends) - {"threads", "ray"} or arguments.repeat < 1:
        parser.error("--backends takes threads and/or ray; --repeat at least 1")
    runs: dict[str, list[dict[str, object]]] = {backend: [] for backend in backends}
    for repetition in range(1, arguments.repeat + 1):
        for backend in backends:
            progress(f"load: {backend}, run {repetition} of {arguments.repeat}")
            settings = Settings(app_path=arguments.app.resolve(),
                                ray_address=arguments.ray_address if backend == "ray" else "")
            load_average = round(os.getloadavg()[0], 2)
            try:
                with contextlib.redirect_stdout(sys.stderr):
                    metrics = run(settings)
            except Exception as error:  # noqa: BLE001 - one failed run is reported; the others go on
                metrics = {"error": f"{type(error).__name__}: {str(error).strip()[:300]}"}
            metrics["load_average_start"] = load_average
            runs[backend].append(metrics)
    print(format_comparison(runs))
    line = json.dumps({"cpu_count": os.cpu_count(), "runs": runs}, sort_keys=True, default=str)
    if arguments.json_out:
        arguments.json_out.parent.mkdir(parents=True, exist_ok=True)
        arguments.json_out.write_text(line + "\n")
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
