"""Process-wide objects every session shares: the read-only dataset, the job manager, TensorFlow.

They live in ``st.cache_resource``; everything that belongs to one visitor lives in
``st.session_state`` (see ``views.runs``).

The job manager is chosen once per server from ``FMNIST_RAY_ADDRESS`` (see
:func:`fmnist.ray_backend.make_job_manager`): unset, jobs train in this process's threads; set
(``local``, ``auto``, ``host:port``), every job goes to that Ray cluster. The pages use the same
interface either way. A cluster that cannot be reached is refused, not replaced by threads: the
pages say so when someone starts a run, and everything else keeps working.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import sys
import threading

import streamlit as st

from fmnist import data as fmnist_data
from fmnist import ray_backend, timing
from fmnist.jobs import JobManager
from views import language
from views.language import _


def log_fmnist_notes() -> None:
    """Send the core's notes (a run stopped because its visitor left, a worker lost, where the data
    came from) to the server's log: without a handler, Python keeps only warnings. Once per process."""
    fmnist_logger = logging.getLogger("fmnist")
    if not fmnist_logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        fmnist_logger.addHandler(handler)
        fmnist_logger.setLevel(logging.INFO)


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


def _prepare_training_drawings(dataset: fmnist_data.FashionMnist) -> None:
    from fmnist import drawings  # scipy.ndimage: 0.1 s that the first page need not wait for

    drawings.training_drawings(dataset)


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
                # Runs that learn from drawings need the canvas drawings of the training images:
                # read from disk in a moment, or drawn once per machine (minutes), so start now.
                threading.Thread(target=_prepare_training_drawings, args=(dataset,),
                                 name="fmnist-training-drawings", daemon=True).start()
            return self._dataset

    @property
    def loaded(self) -> bool:
        return self._dataset is not None


@st.cache_resource(show_spinner=False)
def shared_dataset() -> SharedDataset:
    return SharedDataset()


class TrainingBackend:
    """The server's job manager, made in a background thread when the server starts: connecting to
    a Ray cluster (or starting a local instance) takes seconds, and no page should wait for it."""

    def __init__(self) -> None:
        self.address = ray_backend.configured_address()
        self.manager: JobManager | ray_backend.RayJobManager | None = None
        self.error = ""
        self.fallback_timings = timing.RunTimings()
        """The estimates' source until the manager exists (or when it never will)."""
        self.ready = threading.Event()
        if self.address:
            threading.Thread(target=self._connect, name="fmnist-ray-backend", daemon=True).start()
        else:
            self.manager = JobManager()  # cap: FMNIST_MAX_CONCURRENT_TRAINING or the CPU count
            self.ready.set()

    def _connect(self) -> None:
        try:
            self.manager = ray_backend.make_job_manager(self.address)
            self.manager.warm_up_workers()  # TensorFlow starts in the workers, not at the first Start
        except (ray_backend.RayUnavailableError, ValueError) as error:
            self.error = str(error)
        except Exception as error:  # noqa: BLE001 - shown on the page instead of a traceback
            self.error = f"{type(error).__name__}: {error}"
        finally:
            self.ready.set()

    @property
    def timings(self) -> timing.RunTimings:
        return self.manager.timings if self.manager is not None else self.fallback_timings


@st.cache_resource(show_spinner=False)
def training_backend() -> TrainingBackend:
    return TrainingBackend()


def job_manager() -> JobManager | ray_backend.RayJobManager:
    """The server-wide job manager: threads in this process, or a Ray cluster (``FMNIST_RAY_ADDRESS``).

    When the configured cluster cannot be reached, the page says so and stops here.
    """
    backend = training_backend()
    if not backend.ready.is_set():
        with st.spinner(_("Connecting to the Ray cluster that trains the models...")):
            backend.ready.wait(120)
    if backend.manager is None:
        st.error(_("Training is not available on this server: {reason}").format(
            reason=backend.error or _("the Ray cluster did not answer within two minutes.")),
            icon=":material/cloud_off:")
        st.stop()
    return backend.manager


class TensorFlowWarmup:
    """Imports TensorFlow in a background thread when the server starts, so Start is instant."""

    def __init__(self, train_here: bool = True) -> None:
        self.train_here = train_here
        """False with a Ray backend: the server only loads and evaluates models, so it skips the
        training warm-up (and the memory of a compiled training engine)."""
        # Keras imports pandas and Pillow. Plotly, in the script threads, looks them up in
        # sys.modules without waiting for an import to finish, and a half-imported pandas breaks
        # every chart drawn meanwhile: import them here, before the background import starts.
        import pandas  # noqa: F401
        import PIL.Image  # noqa: F401

        self.ready = threading.Event()
        self.error = ""
        """Why TensorFlow could not be loaded (empty while it loads or once it has)."""
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
            if self.train_here:
                training.warm_up()  # one tiny run: the first real Start skips TensorFlow's one-time set-up
            # TensorFlow leaves a million long-lived Python objects; move them out of the
            # collector's reach, so each collection costs milliseconds instead of half a second.
            gc.collect()
            gc.freeze()
        except Exception as error:  # noqa: BLE001 - reported on the pages that need TensorFlow
            self.error = str(error) or type(error).__name__
        finally:
            self.ready.set()


@st.cache_resource(show_spinner=False)
def tensorflow_warmup() -> TensorFlowWarmup:
    backend = training_backend()  # connects to the Ray cluster, if one is configured, meanwhile
    return TensorFlowWarmup(train_here=not backend.address)


def wait_for_tensorflow() -> None:
    """Block (with a visible status) until TensorFlow is imported; stop the page if it failed."""
    warmup = tensorflow_warmup()
    if not warmup.ready.is_set():
        with st.spinner(_("Loading TensorFlow (a few seconds, once per server start)...")):
            warmup.ready.wait(120)
    if warmup.error:
        st.error(_("TensorFlow could not be loaded: {error}").format(error=warmup.error))
        st.stop()


def in_english_only(message: str, otherwise: str) -> str:
    """The core's ``message`` for an English visitor; ``otherwise`` (already translated) for the others."""
    return message if language.current_language() == language.DEFAULT_LANGUAGE else otherwise


def with_english_detail(summary: str, detail: str) -> str:
    """A problem of the server's set-up: the core's English message, after a translated ``summary`` for a
    visitor in another language (the details are for the server's operator, who reads the logs in English)."""
    return in_english_only(detail, f"{summary}\n\n{detail}")


def load_dataset_or_stop() -> fmnist_data.FashionMnist:
    """The shared dataset; the first visitor sees a progress bar while it is fetched or converted."""
    holder = shared_dataset()
    if holder.loaded:
        dataset = holder.get()
    else:
        bar = st.progress(0.0, text=_("Loading Fashion-MNIST..."))
        try:
            dataset = holder.get(progress=lambda fraction, message: bar.progress(
                min(max(fraction, 0.0), 1.0), text=in_english_only(message, _("Loading Fashion-MNIST..."))))
        except fmnist_data.DataError as error:
            bar.empty()
            st.error(with_english_detail(_("Fashion-MNIST could not be loaded. The details, for the server's "
                                           "operator:"), str(error)))
            st.button(_("Try again"), key="retry_dataset_load")
            st.stop()
        bar.empty()
    for note in dataset.notes:
        st.warning(with_english_detail(_("A note for the server's operator:"), note), icon=":material/warning:")
    return dataset


def run_timing() -> timing.RunTimings:
    """What this server has measured per preset (kept by the job manager, which records every run)."""
    return training_backend().timings
