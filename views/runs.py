"""This visitor's training runs: starting them, picking one, keeping the worker informed.

A run is a :class:`RunRecord` in ``st.session_state["runs"]``; its job trains in a worker
thread of the process-wide job manager (``views.server.job_manager``).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable

import streamlit as st

from fmnist import data as fmnist_data
from fmnist import models, timing
from fmnist.jobs import JobSnapshot, TrainingJob
from fmnist.training import TrainingConfig
from views import labels, server, status
from views.language import N_, _, format_number

LIVE_REFRESH_SECONDS = 1.0
"""How often a view of a run in progress redraws: each redraw costs the server a script run, and a
classroom of pages polling twice a second slowed everyone's first page down."""
TRAIN_PAGE = "views/train.py"


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
        return _("Run {number}").format(number=self.run_id)

    @property
    def file_stem(self) -> str:
        """The start of this run's download file names: ``fmnist-run-2``."""
        return f"fmnist-run-{self.run_id}"

    @property
    def label(self) -> str:
        return f"{self.name}: {labels.describe_config(self.config)}"

    @property
    def has_model(self) -> bool:
        return self.job.result is not None and bool(self.job.result.history)


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


def owner_connection() -> Callable[[], bool] | None:
    """A callable that says whether this visitor's browser is still connected (its websocket is open).

    Unlike a heartbeat from a page timer, it does not depend on the browser: Chrome runs the timers
    of a hidden tab only once a minute. None outside a Streamlit server (AppTest): the sidebar's
    heartbeat keeps the job alive there.
    """
    from streamlit.runtime import Runtime
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    context = get_script_run_ctx()
    if context is None or not Runtime.exists():
        return None
    runtime, session_id = Runtime.instance(), context.session_id
    return lambda: runtime.is_active_session(session_id)


def start_run(config: TrainingConfig, dataset: fmnist_data.FashionMnist) -> RunRecord:
    """Queue a training job for this session and remember it as a run (numbered per visitor)."""
    job = server.job_manager().submit(config, dataset, owner_connected=owner_connection())
    number = st.session_state.get("last_run_number", 0) + 1
    st.session_state["last_run_number"] = number
    record = RunRecord(run_id=number, config=config, job=job, started_at=time.time())
    session_runs().append(record)
    st.session_state["selected_run_id"] = record.run_id
    return record


def heartbeat_active_jobs() -> JobSnapshot | None:
    """Tell this session's unfinished jobs that the visitor is still here; return the latest run's state
    (also once it has ended, so the sidebar can say "finished" on any page)."""
    for record in session_runs():
        if not record.job.done:
            record.job.heartbeat()
    return session_runs()[-1].job.snapshot() if session_runs() else None


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
    shown = {run_id: record.label for run_id, record in by_id.items()}  # in the visitor's language, now
    chosen = by_id[st.selectbox(label, ids, index=index, format_func=shown.__getitem__, key=key)]
    if default is None:
        st.session_state["selected_run_id"] = chosen.run_id
    return chosen


QUICK_TRAIN_SECONDS = 90.0
"""A quick train must stay quick (``FMNIST_QUICK_TRAIN_SECONDS`` sets another budget). On a server too slow to train the recommended preset on every
image in about this time (a CPU without bfloat16 units takes several minutes for the Minute CNN),
it trains on as many of the training images as fit."""

QUICK_TRAIN_MIN_IMAGES = 6000
"""... but never on fewer than this: below it the Minute CNN falls well under 0.9 test accuracy."""


def quick_train_budget() -> float:
    """Seconds a quick train may take on this server: QUICK_TRAIN_SECONDS, or the operator's
    ``FMNIST_QUICK_TRAIN_SECONDS`` when it is a positive number."""
    try:
        chosen = float(os.environ.get("FMNIST_QUICK_TRAIN_SECONDS", ""))
    except ValueError:
        return QUICK_TRAIN_SECONDS
    return chosen if chosen > 0 else QUICK_TRAIN_SECONDS


def within_quick_budget(config: TrainingConfig, estimated_seconds: Callable[[TrainingConfig], float],
                        training_images: int) -> TrainingConfig:
    """``config``, with a training-sample limit when its estimate on this server exceeds QUICK_TRAIN_SECONDS."""
    budget = quick_train_budget()
    if config.sample_limit is not None or estimated_seconds(config) <= budget:
        return config
    available = timing.split_sizes(config, training_images)[0]
    limit = available
    for _attempt in range(4):  # the estimate is not quite proportional to the images (set-up, validation)
        seconds = estimated_seconds(dataclasses.replace(config, sample_limit=limit))
        if seconds <= budget or limit <= QUICK_TRAIN_MIN_IMAGES:
            break  # within budget, or as few images as a quick train may have (a busy server: the set-up alone)
        limit = max(QUICK_TRAIN_MIN_IMAGES, int(limit * budget / seconds))
    limit = max(QUICK_TRAIN_MIN_IMAGES, limit // 1000 * 1000)
    return config if limit >= available else dataclasses.replace(config, sample_limit=limit)


def quick_train_config(estimated_seconds: Callable[[TrainingConfig], float] | None = None,
                       training_images: int = 60_000, drawings: bool | None = None) -> TrainingConfig:
    """What the quick train trains: the recommended preset at its defaults, or the preset named by
    ``FMNIST_QUICK_TRAIN_PRESET`` (a slow classroom server may prefer "seed": seconds, not a minute).
    Given the server's ``estimated_seconds``, a run too long for a quick train gets a sample limit."""
    preset = os.environ.get("FMNIST_QUICK_TRAIN_PRESET") or models.RECOMMENDED_PRESET
    config = TrainingConfig(preset=preset if preset in models.PRESETS else models.RECOMMENDED_PRESET, drawings=drawings)
    if estimated_seconds is None:
        return config
    return within_quick_budget(config, estimated_seconds, training_images)


def server_quick_train_config(drawings: bool | None = None) -> TrainingConfig:
    """The quick train on this server, sized by what the server has measured."""
    dataset = server.load_dataset_or_stop()
    timings = server.run_timing()
    return quick_train_config(lambda config: timings.estimate(config, len(dataset.x_train)).total_seconds,
                              len(dataset.x_train), drawings)


NO_MODEL_YET = {"evaluate": N_("There is no trained model yet to evaluate."),
                "try": N_("There is no trained model yet to try."),
                "look inside": N_("There is no trained model yet to look inside."),
                "play": N_("There is no trained model yet to play.")}
"""What a page without a model says first, by the ``purpose`` it passes to ``require_trained_model``."""


def require_trained_model(purpose: str) -> RunRecord | None:
    """The chosen run with a model, or a friendly way to get one: quick train, or a link to Train."""
    record = choose_run(_("Model"), key=f"{purpose}_run")
    if record is not None:
        return record
    quick_config = server_quick_train_config()
    title = labels.preset_title(quick_config.preset)
    estimate = server.run_timing().estimate(quick_config, len(server.load_dataset_or_stop().x_train))
    missing = _(NO_MODEL_YET[purpose]) if purpose in NO_MODEL_YET else _("There is no trained model yet.")
    st.info(missing + " " + _("Train one first: the quick train uses the recommended settings ({title}, {epochs} "
                              "epochs) and takes {duration} on this server.").format(
        title=title, epochs=quick_config.epochs, duration=status.about(estimate.total_seconds))
        + (" " + _("To stay quick on this server it learns from {count} of the training images; Train has "
                   "every setting.").format(count=format_number(quick_config.sample_limit))
           if quick_config.sample_limit else ""),
        icon=":material/school:")
    running = active_run()
    if running is None:
        left, right = st.columns(2)
        if left.button(_("Quick train ({title}, {epochs} epochs)").format(title=title, epochs=quick_config.epochs),
                       type="primary",
                       key=f"{purpose}_quick_train"):
            server.wait_for_tensorflow()  # the warm-up also times this machine's steps: size the run after it
            start_run(server_quick_train_config(), server.load_dataset_or_stop())
            st.rerun()
        right.page_link(TRAIN_PAGE, label=_("Go to Train for all the settings"), icon=":material/model_training:")
    else:
        st.fragment(run_every=LIVE_REFRESH_SECONDS)(_quick_train_progress)()
    return None


def _quick_train_progress() -> None:
    record = active_run()
    if record is None:
        st.rerun(scope="app")
        return
    snapshot = record.job.snapshot()
    st.progress(status.progress_fraction(snapshot), text=status.status_text(snapshot))


def warn_before_leaving() -> None:
    """While this visitor has runs, the browser asks before a reload or closing the tab: the runs
    and models live in this browser session only, and a reload starts a new one."""
    if not session_runs():
        return
    st.html("""<script>
        window.fmnistHasRuns = true;
        if (!window.fmnistLeaveGuard) {
            window.fmnistLeaveGuard = true;
            window.addEventListener("beforeunload", event => {
                if (window.fmnistHasRuns) { event.preventDefault(); event.returnValue = ""; }
            });
        }
    </script>""", unsafe_allow_javascript=True)
