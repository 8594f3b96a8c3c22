"""Helpers for the page tests: a tiny dataset on disk, polling a session, reading what it shows.

The page tests drive ``app.py`` through Streamlit's ``AppTest``, in this process. Training runs
in worker threads, and ``AppTest`` does not run fragments on a timer, so waiting means calling
``at.run()`` again and again (which also sends the sidebar's heartbeat) until the page shows
what the test expects.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from fmnist import data

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_PATH = REPO_ROOT / "app.py"
TRAIN_COUNT = 500
TEST_COUNT = 100
SCRIPT_TIMEOUT_SECONDS = 60
WAIT_SECONDS = 90
POLL_SECONDS = 0.1


@dataclasses.dataclass(frozen=True)
class TinyIdxDataset:
    """Where the four IDX files are, and the labels written to them (to check what pages show)."""

    directory: Path
    y_train: np.ndarray
    y_test: np.ndarray


def write_tiny_idx_dataset(directory: Path, train_count: int = TRAIN_COUNT, test_count: int = TEST_COUNT,
                           seed: int = 7) -> TinyIdxDataset:
    """Write four gzipped IDX files of learnable images: each class a fixed pattern, blended with noise."""
    generator = np.random.default_rng(seed)
    patterns = generator.uniform(0, 255, size=(data.NUM_CLASSES, data.IMAGE_SIZE, data.IMAGE_SIZE))

    def draw(count: int) -> tuple[np.ndarray, np.ndarray]:
        labels = generator.permutation(np.arange(count) % data.NUM_CLASSES).astype(np.uint8)
        noise = generator.uniform(0, 255, size=(count, data.IMAGE_SIZE, data.IMAGE_SIZE))
        return (0.6 * patterns[labels] + 0.4 * noise).round().astype(np.uint8), labels

    x_train, y_train = draw(train_count)
    x_test, y_test = draw(test_count)
    directory.mkdir(parents=True, exist_ok=True)
    for key, array in (("x_train", x_train), ("y_train", y_train), ("x_test", x_test), ("y_test", y_test)):
        data.write_idx(directory / f"{data.IDX_FILE_NAMES[key]}.gz", array)
    return TinyIdxDataset(directory, y_train, y_test)


def open_app(page: str | None = None) -> AppTest:
    """A new visitor (its own session state) on ``app.py``, optionally moved to ``page``."""
    at = AppTest.from_file(APP_PATH, default_timeout=SCRIPT_TIMEOUT_SECONDS)
    at.run()
    if page is not None:
        at.switch_page(page).run()
    return at


def session_runs(at: AppTest) -> list:
    """The visitor's ``RunRecord`` list (``views.runs.session_runs``), empty if there is none."""
    return list(at.session_state["runs"]) if "runs" in at.session_state else []


def progress_texts(at: AppTest) -> list[str]:
    return [bar.text for bar in at.get("progress")]


def shown_texts(at: AppTest) -> list[str]:
    """Every progress text, markdown, caption, info and error on the page and in the sidebar."""
    texts = progress_texts(at)
    for kind in ("markdown", "caption", "info", "error", "warning"):
        texts.extend(element.value for element in at.get(kind))
    return texts


def plotly_figure(at: AppTest, key: str) -> dict:
    """The figure (``{"data": [...], "layout": {...}}``) of the plotly chart with ``key``."""
    for chart in at.get("plotly_chart"):
        if chart.key == key:
            return json.loads(chart.proto.spec)
    raise AssertionError(f"no plotly chart with key {key!r}; charts: {[c.key for c in at.get('plotly_chart')]}")


def plotly_array(value) -> np.ndarray:
    """A trace's values: a plain list, or plotly's typed-array form ``{"dtype", "bdata", "shape"}``."""
    if isinstance(value, dict) and "bdata" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = value.get("shape")
        return array.reshape([int(side) for side in str(shape).split(",")]) if shape else array
    return np.asarray(value)


def wait_until(at: AppTest, condition: Callable[[AppTest], bool], what: str,
               timeout: float = WAIT_SECONDS) -> AppTest:
    """Rerun the script until ``condition(at)`` holds; fail with what the page showed instead."""
    deadline = time.monotonic() + timeout
    while True:
        at.run()
        if at.exception or condition(at):
            return at
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout:.0f} s, still waiting for {what}; "
                                 f"the page shows {shown_texts(at)}")
        time.sleep(POLL_SECONDS)


def wait_for_text(at: AppTest, fragment: str, timeout: float = WAIT_SECONDS) -> AppTest:
    return wait_until(at, lambda app: any(fragment in text for text in shown_texts(app)), repr(fragment), timeout)


def wait_for_runs_to_end(at: AppTest, timeout: float = WAIT_SECONDS) -> AppTest:
    """Poll until every run of the visitor has ended, then draw the page once more."""
    wait_until(at, lambda app: bool(session_runs(app)) and all(r.job.done for r in session_runs(app)),
               "the training runs to end", timeout)
    return at.run()


def quick_train(at: AppTest, purpose: str) -> AppTest:
    """Press the quick-train button of the Evaluate ("evaluate") or Try it ("try") page and wait for the model."""
    key = f"{purpose}_quick_train"
    assert any(button.key == key for button in at.button), (
        f"no quick-train button: exceptions {[exception.value for exception in at.exception]}, "
        f"page texts {shown_texts(at)}")
    at.button(key=key).click().run()
    assert not at.exception
    wait_for_runs_to_end(at)
    record = session_runs(at)[-1]
    assert record.job.result is not None, record.job.snapshot().error
    return at


def stop_all_runs(at: AppTest) -> None:
    """Ask every run of the visitor to stop and wait for its thread (test teardown)."""
    for record in session_runs(at):
        record.job.request_stop()
    for record in session_runs(at):
        record.job.wait(60)


def trouser_png() -> bytes:
    """A dark trouser shape on white paper, 120 × 200 pixels, as PNG bytes."""
    picture = Image.new("L", (120, 200), 255)
    ImageDraw.Draw(picture).polygon([(35, 10), (85, 10), (95, 190), (68, 190), (60, 60), (52, 190), (25, 190)],
                                    fill=0)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()
