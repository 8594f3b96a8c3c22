"""This visitor's training runs: starting them, picking one, keeping the worker informed.

A run is a :class:`RunRecord` in ``st.session_state["runs"]``; its job trains in a worker
thread of the process-wide job manager (``views.server.job_manager``).
"""

from __future__ import annotations

import dataclasses
import itertools
import time

import streamlit as st

from fmnist import data as fmnist_data
from fmnist.jobs import JobSnapshot, TrainingJob
from fmnist.training import TrainingConfig
from views import server, status

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
    job = server.job_manager().submit(config, dataset)
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
            server.wait_for_tensorflow()
            start_run(TrainingConfig(), server.load_dataset_or_stop())
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
    st.progress(status.progress_fraction(snapshot), text=status.status_text(snapshot))
