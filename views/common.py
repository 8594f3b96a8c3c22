"""What several pages share: the process-wide dataset and job manager, the session's runs, charts.

Pages only draw and wire; every computation goes through ``fmnist``. Process-wide objects
(the read-only dataset, the job manager, the TensorFlow warm-up) live in
``st.cache_resource``; everything that belongs to one visitor (runs, models) lives in
``st.session_state``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import itertools
import re
import sys
import threading
import time

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from fmnist import data as fmnist_data
from fmnist.jobs import JobManager, JobSnapshot, JobStatus, TrainingJob
from fmnist.training import TrainingConfig
from views import language

REFERENCE_LINES = (
    (0.835, "human performance 0.835", "#7b1fa2"),
    (0.842, "logistic regression 0.842", "#00897b"),
    (0.851, "reference run 0.851", "#ef6c00"),
)
LOW_CONFIDENCE = 0.5
LIVE_REFRESH_SECONDS = 1.0
"""How often a view of a run in progress redraws: each redraw costs the server a script run, and a
classroom of pages polling twice a second slowed everyone's first page down."""
TRAIN_PAGE = "views/train.py"


# ----------------------------------------------------------------------------- process-wide

def keep_keras_state_between_reruns() -> None:
    """Stop Streamlit from calling ``keras.backend.clear_session()`` after every script run.

    Streamlit (``script_runner._clean_problem_modules``) clears Keras' global state after each
    rerun, for apps that build throw-away models in the script thread. Ours train in worker
    threads while the page reruns every half second; clearing Keras under a running ``fit``
    stalls it. Models here are owned by sessions and freed with them, so nothing leaks.
    """
    from streamlit.runtime.scriptrunner import script_runner

    def clean_problem_modules_except_keras() -> None:
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None:
            with contextlib.suppress(Exception):
                pyplot.close("all")

    script_runner._clean_problem_modules = clean_problem_modules_except_keras


class SharedDataset:
    """Loads Fashion-MNIST once per process; every session shares the same read-only arrays."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dataset: fmnist_data.FashionMnist | None = None

    def get(self, progress: fmnist_data.ProgressCallback | None = None) -> fmnist_data.FashionMnist:
        with self._lock:
            if self._dataset is None:
                dataset = fmnist_data.load_dataset(progress=progress)
                for array in (dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test):
                    array.setflags(write=False)
                self._dataset = dataset
            return self._dataset

    @property
    def loaded(self) -> bool:
        return self._dataset is not None


@st.cache_resource(show_spinner=False)
def shared_dataset() -> SharedDataset:
    return SharedDataset()


@st.cache_resource(show_spinner=False)
def job_manager() -> JobManager:
    """The server-wide training queue (cap: FMNIST_MAX_CONCURRENT_TRAINING or the CPU count)."""
    return JobManager()


class TensorFlowWarmup:
    """Imports TensorFlow in a background thread when the server starts, so Start is instant."""

    def __init__(self) -> None:
        # Keras imports pandas and Pillow. Plotly, in the script threads, looks them up in
        # sys.modules without waiting for an import to finish, and a half-imported pandas breaks
        # every chart drawn meanwhile: import them here, before the background import starts.
        import pandas  # noqa: F401
        import PIL.Image  # noqa: F401

        self.ready = threading.Event()
        self.error = ""
        threading.Thread(target=self._run, name="fmnist-tensorflow-warmup", daemon=True).start()

    def _run(self) -> None:
        try:
            import keras
            import tensorflow as tf

            from fmnist import evaluation, training  # noqa: F401 - the import is the point

            # TensorFlow starts process-lifetime helper threads on its first eager op and first
            # tf.data iterator; a new thread inherits its creator's OS name, so start them here,
            # not in a worker named "fmnist-train-<id>" (they would look like a leaked job forever).
            keras.ops.convert_to_tensor(0.0)
            list(tf.data.Dataset.range(1))
            training.warm_up()  # one tiny run: the first real Start skips TensorFlow's one-time set-up
            # TensorFlow leaves a million long-lived Python objects; move them out of the
            # collector's reach, so each collection costs milliseconds instead of half a second.
            gc.collect()
            gc.freeze()
        except Exception as error:  # noqa: BLE001 - reported on the pages that need TensorFlow
            self.error = f"TensorFlow could not be loaded: {error}"
        finally:
            self.ready.set()


@st.cache_resource(show_spinner=False)
def tensorflow_warmup() -> TensorFlowWarmup:
    return TensorFlowWarmup()


def wait_for_tensorflow() -> None:
    """Block (with a visible status) until TensorFlow is imported; stop the page if it failed."""
    warmup = tensorflow_warmup()
    if not warmup.ready.is_set():
        with st.spinner("Loading TensorFlow (a few seconds, once per server start)..."):
            warmup.ready.wait(120)
    if warmup.error:
        st.error(warmup.error)
        st.stop()


def load_dataset_or_stop() -> fmnist_data.FashionMnist:
    """The shared dataset; the first visitor sees a progress bar while it is fetched or converted."""
    holder = shared_dataset()
    if holder.loaded:
        dataset = holder.get()
    else:
        bar = st.progress(0.0, text="Loading Fashion-MNIST...")
        try:
            dataset = holder.get(progress=lambda fraction, message: bar.progress(min(max(fraction, 0.0), 1.0),
                                                                                 text=message))
        except fmnist_data.DataError as error:
            bar.empty()
            st.error(str(error))
            st.button("Try again", key="retry_dataset_load")
            st.stop()
        bar.empty()
    for note in dataset.notes:
        st.warning(note, icon=":material/warning:")
    return dataset


# ----------------------------------------------------------------------------- per session

@dataclasses.dataclass
class RunRecord:
    """One of this visitor's training runs: its configuration, its job, and what was derived from
    it once and kept with it (evaluation reports, the saved ``.keras`` file)."""

    run_id: int
    config: TrainingConfig
    job: TrainingJob
    started_at: float
    derived: dict = dataclasses.field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"Run {self.run_id}"

    @property
    def label(self) -> str:
        return f"{self.name}: {self.config.describe()}"

    @property
    def has_model(self) -> bool:
        return self.job.result is not None and bool(self.job.result.history)


_run_ids = itertools.count(1)


def session_runs() -> list[RunRecord]:
    """This visitor's runs, oldest first."""
    return st.session_state.setdefault("runs", [])


def active_run() -> RunRecord | None:
    """The run that is queued or training right now, if any."""
    for record in reversed(session_runs()):
        if not record.job.done:
            return record
    return None


def runs_with_model() -> list[RunRecord]:
    return [record for record in session_runs() if record.has_model]


def start_run(config: TrainingConfig, dataset: fmnist_data.FashionMnist) -> RunRecord:
    """Queue a training job for this session and remember it as a run."""
    job = job_manager().submit(config, dataset)
    record = RunRecord(run_id=next(_run_ids), config=config, job=job, started_at=time.time())
    session_runs().append(record)
    st.session_state["selected_run_id"] = record.run_id
    return record


def heartbeat_active_jobs() -> JobSnapshot | None:
    """Tell this session's unfinished jobs that the visitor is still here; return the active one's state."""
    snapshot = None
    for record in session_runs():
        if not record.job.done:
            record.job.heartbeat()
            snapshot = record.job.snapshot()
    return snapshot


def choose_run(label: str, key: str, candidates: list[RunRecord] | None = None,
               default: int | None = None) -> RunRecord | None:
    """A run picker (over runs with a model by default, newest first); remembers the choice across pages."""
    candidates = list(reversed(runs_with_model())) if candidates is None else candidates
    if not candidates:
        return None
    by_id = {record.run_id: record for record in candidates}
    ids = list(by_id)
    preferred = st.session_state.get("selected_run_id") if default is None else default
    index = ids.index(preferred) if preferred in ids else 0
    chosen = by_id[st.selectbox(label, ids, index=index, format_func=lambda run_id: by_id[run_id].label, key=key)]
    if default is None:
        st.session_state["selected_run_id"] = chosen.run_id
    return chosen


def require_trained_model(purpose: str) -> RunRecord | None:
    """The chosen run with a model, or a friendly way to get one: quick train, or a link to Train."""
    record = choose_run("Model", key=f"{purpose}_run")
    if record is not None:
        return record
    st.info(f"There is no trained model yet to {purpose}. Train one first: the quick train uses the "
            "textbook settings (seed preset, 5 epochs) and takes a few seconds.", icon=":material/school:")
    running = active_run()
    if running is None:
        left, right = st.columns(2)
        if left.button("Quick train (seed preset, 5 epochs)", type="primary", key=f"{purpose}_quick_train"):
            wait_for_tensorflow()
            start_run(TrainingConfig(), load_dataset_or_stop())
            st.rerun()
        right.page_link(TRAIN_PAGE, label="Go to Train for all the settings", icon=":material/model_training:")
    else:
        st.fragment(run_every=LIVE_REFRESH_SECONDS)(_quick_train_progress)()
    return None


def _quick_train_progress() -> None:
    record = active_run()
    if record is None:
        st.rerun(scope="app")
        return
    snapshot = record.job.snapshot()
    st.progress(progress_fraction(snapshot), text=status_text(snapshot))


# ----------------------------------------------------------------------------- drawing helpers

def progress_fraction(snapshot: JobSnapshot) -> float:
    done = sum(1 for report in snapshot.epochs if report.complete)
    if snapshot.status is JobStatus.RUNNING and snapshot.current_epoch > done:
        return min(1.0, (done + snapshot.epoch_fraction) / snapshot.total_epochs)
    return min(1.0, done / snapshot.total_epochs)


def status_text(snapshot: JobSnapshot) -> str:
    """One line for people: queued, running with an ETA, or how it ended."""
    done = len(snapshot.epochs)
    if snapshot.status is JobStatus.QUEUED:
        return (f"Queued, position {snapshot.queue_position}: the server trains a limited number of models "
                "at once; yours starts as soon as a slot is free.")
    if snapshot.status is JobStatus.RUNNING:
        eta = snapshot.eta_seconds()
        eta_text = f", about {format_seconds(eta)} left" if eta is not None else ""
        stopping = " Stopping after the current step group..." if snapshot.stop_requested else ""
        return (f"Training epoch {max(snapshot.current_epoch, 1)}/{snapshot.total_epochs} "
                f"({snapshot.epoch_fraction:.0%} of it){eta_text}. Epochs done: {done}/{snapshot.total_epochs}."
                f"{stopping}")
    if snapshot.status is JobStatus.FINISHED:
        return f"Training finished. Epochs done: {done}/{snapshot.total_epochs}."
    if snapshot.status is JobStatus.STOPPED:
        return f"Training stopped. Epochs done: {done}/{snapshot.total_epochs}; the model trained so far is kept."
    return f"Training failed: {snapshot.error}"


def format_seconds(seconds: float) -> str:
    if seconds < 0.1:
        return "under 0.1 s"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{seconds // 60:.0f} min {seconds % 60:02.0f} s"


def history_figure(curves: list[tuple[str, list[int], list[float], str]], title: str, y_title: str,
                   reference_lines: bool = False) -> go.Figure:
    """A line chart of per-epoch values; ``curves`` are (name, epochs, values, dash)."""
    figure = go.Figure()
    for name, epochs, values, dash in curves:
        figure.add_trace(go.Scatter(x=epochs, y=values, name=name, mode="lines+markers",
                                    line={"dash": dash},
                                    hovertemplate="epoch %{x}<br>%{y:.4f}<extra>" + name + "</extra>"))
    if reference_lines:
        last_epoch = max([max(epochs) for _, epochs, _, _ in curves if epochs] or [1])
        for value, label, colour in REFERENCE_LINES:
            figure.add_trace(go.Scatter(x=[0.5, last_epoch + 0.5], y=[value, value], name=label, mode="lines",
                                        line={"dash": "dot", "color": colour, "width": 1.5}, hoverinfo="name"))
    figure.update_layout(title=title, xaxis_title="epoch", yaxis_title=y_title, height=340,
                         margin={"l": 10, "r": 10, "t": 40, "b": 10}, hovermode="x unified",
                         legend={"orientation": "h", "y": -0.25})
    figure.update_xaxes(dtick=1, rangemode="tozero")
    return figure


def safe_file_name(name: str) -> str:
    """An upload's name for display only: letters, digits, dots, dashes and spaces, so no markdown
    or link can be smuggled in through it."""
    kept = re.sub(r"[^\w. -]", "_", name)[:80]
    return kept or "Your file"


def upscale(image: np.ndarray, factor: int = 4) -> np.ndarray:
    """Nearest-neighbour enlargement, so 28-pixel items stay crisp on screen."""
    return np.kron(np.asarray(image, dtype=np.uint8), np.ones((factor, factor), dtype=np.uint8))


class_label = language.class_label


def render_top_predictions(top: list[tuple[int, float]], true_label: int | None = None) -> None:
    """Top classes with probability bars; the true class, when known, is marked."""
    for rank, (label, probability) in enumerate(top):
        marker = ""
        if true_label is not None and rank == 0:
            marker = " ✓" if label == true_label else " ✗"
        st.progress(float(probability), text=f"{class_label(label)}: {probability:.1%}{marker}")
