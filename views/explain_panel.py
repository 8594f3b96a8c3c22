"""Try it's "why" panel, its drawing-readiness notice, and Evaluate's accuracy on drawings.

Page code only: the computations live in fmnist.explain and fmnist.drawings. Results that cost
time (the neighbour index, the drawing-set reports) are kept with the run in ``record.derived``.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from fmnist import models
from fmnist.data import CLASS_NAMES
from fmnist.preprocess import PreparedImage
from fmnist.training import TrainingConfig
from views import common, labels, runs, server, status
from views.language import _, class_name, format_percent

NEIGHBOUR_WIDTH = 84
MODEL_PICKER_KEY = "try_run"
"""Try it's model picker (``runs.require_trained_model("try")``)."""
PENDING_RUN_KEY = "drawing_ready_run_id"


def is_drawing_ready(record: runs.RunRecord) -> bool:
    """Whether the run's model also learned from drawings (outlines, silhouettes, mirror images)."""
    return record.config.uses_drawings


def predict(record: runs.RunRecord, prepared: PreparedImage) -> np.ndarray:
    """The probabilities Try it shows: mirror-averaged for drawing-ready models."""
    from fmnist import drawings

    return drawings.predict_drawings(record.job.result.model, prepared.array[None])[0]


def render_drawing_readiness(record: runs.RunRecord) -> None:
    """Say plainly when the model has not learned from drawings, and offer one click to fix it."""
    if is_drawing_ready(record):
        return
    preset = models.get_preset(models.RECOMMENDED_PRESET)
    if record.config.preset == "seed":
        warning = _("This model has not learned from drawings (the seed preset never does). It knows shaded product "
                    "photos, so it often misreads outlines and flat shapes drawn here.")
    elif record.config.preset == models.BASELINE_PRESET:
        warning = _("This model has not learned from drawings (the textbook baseline never does). It knows shaded "
                    "product photos, so it often misreads outlines and flat shapes drawn here.")
    else:
        warning = _("This model has not learned from drawings (drawings were off for this run). It knows shaded "
                    "product photos, so it often misreads outlines and flat shapes drawn here.")
    st.warning(warning, icon=":material/draw:")
    if runs.active_run() is not None:
        st.caption(_("A training run is under way: this page switches to its model when it is done."))
        st.fragment(run_every=runs.LIVE_REFRESH_SECONDS)(_training_progress)()
        return
    if st.button(_("Train the {preset} with drawings").format(preset=labels.preset_title(preset.name)),
                 type="primary", key="train_drawing_ready",
                 icon=":material/model_training:"):
        server.wait_for_tensorflow()
        record = runs.start_run(runs.within_quick_budget(TrainingConfig(preset=preset.name, drawings=True), _estimated_seconds,
                                                         len(server.load_dataset_or_stop().x_train)),
                                server.load_dataset_or_stop())
        st.session_state[PENDING_RUN_KEY] = record.run_id
        st.rerun()


def _estimated_seconds(config: TrainingConfig) -> float:
    return server.run_timing().estimate(config, len(server.load_dataset_or_stop().x_train)).total_seconds


def _training_progress() -> None:
    """Polled while a run trains: its progress, then a rerun of the page when it is done.

    A fragment's reruns skip app.py, which tells the jobs that their visitor is still here:
    without this heartbeat the run would be abandoned after a few seconds.
    """
    runs.heartbeat_active_jobs()
    record = runs.active_run()
    if record is None:
        finished = st.session_state.pop(PENDING_RUN_KEY, None)
        if finished is not None:  # show the new model: forget the picker's old choice, so it starts at the new run
            st.session_state["selected_run_id"] = finished
            st.session_state.pop(MODEL_PICKER_KEY, None)
        st.rerun(scope="app")
        return
    snapshot = record.job.snapshot()
    st.progress(status.progress_fraction(snapshot), text=status.status_text(snapshot))


def _wait_for_drawings(record: runs.RunRecord, dataset, test_accuracy: float) -> None:
    from fmnist import drawings

    if drawings.standard_drawing_set_if_ready(dataset) is not None:
        st.rerun(scope="app")


def _neighbour_index(record: runs.RunRecord, dataset):
    from fmnist import explain

    if "neighbour_index" not in record.derived:
        result = record.job.result
        record.derived["neighbour_index"] = explain.build_neighbour_index(
            result.model, dataset.x_train, result.split.train_indices)
    return record.derived["neighbour_index"]


def render_why(record: runs.RunRecord, prepared: PreparedImage) -> None:
    """Which pixels decided, and the five training images the model finds most alike."""
    from fmnist import explain

    model = record.job.result.model
    saliency = explain.occlusion_saliency(model, prepared.array)
    with st.expander(_("Why? Which pixels decided, and what it looks like to the model"), expanded=True,
                     icon=":material/psychology:"):
        left, right = st.columns([1, 3])
        left.image(explain.saliency_overlay(prepared.array, saliency), width=160,
                   caption=_("Red and yellow: covering these pixels lowers the answer's probability most"))
        dataset = server.load_dataset_or_stop()
        with right, st.spinner(_("Indexing the training images in the model's own features (once per model)...")):
            neighbours = explain.nearest_training_images(model, _neighbour_index(record, dataset), prepared.array,
                                                         dataset.y_train)
        right.markdown(_("**Nearest training images** in the model's own feature space (its last hidden layer):"))
        right.image([common.upscale(dataset.x_train[neighbour.training_index], 3) for neighbour in neighbours],
                    caption=[class_name(neighbour.label) for neighbour in neighbours], width=NEIGHBOUR_WIDTH)


def drawing_reports(record: runs.RunRecord, dataset) -> dict | None:
    """The run's reports on the project's drawing set, computed once; None while the set is being drawn."""
    from fmnist import drawings

    if "drawings" not in record.derived:
        drawing_set = drawings.standard_drawing_set_if_ready(dataset)
        if drawing_set is None:
            return None
        record.derived["drawings"] = drawings.evaluate_drawings(record.job.result.model, drawing_set)
    return record.derived["drawings"]


def render_drawing_accuracy(record: runs.RunRecord, dataset, test_accuracy: float) -> None:
    """Accuracy on drawings beside test accuracy, overall and per class (drawn once, in the background)."""
    reports = drawing_reports(record, dataset)
    if reports is None:
        st.info(_("Drawing 1,000 test items as outlines and silhouettes: this takes about a minute, once per "
                  "server. The numbers appear here when they are ready."), icon=":material/draw:")
        st.fragment(run_every=2.0)(_wait_for_drawings)(record, dataset, test_accuracy)
        return
    st.caption(_("Test items redrawn as a person would on Try it's canvas (outlines and coloured-in shapes, "
                 "with brush widths, wobble and mirrored items), prepared exactly like canvas drawings."))
    columns = st.columns(3)
    columns[0].metric(_("Test accuracy (photos)"), format_percent(test_accuracy, 2))
    columns[1].metric(_("Accuracy on outline drawings"), format_percent(reports["outline"].accuracy, 2))
    columns[2].metric(_("Accuracy on coloured-in drawings"), format_percent(reports["silhouette"].accuracy, 2))
    if not is_drawing_ready(record):
        st.info(_("This model has not learned from drawings: train the recommended preset with drawings on "
                  "to see these numbers rise."), icon=":material/draw:")
    names = [class_name(label) for label in range(len(CLASS_NAMES))]
    figure = go.Figure([
        go.Bar(name=_("outlines"), y=names, x=reports["outline"].recall, orientation="h"),
        go.Bar(name=_("coloured in"), y=names, x=reports["silhouette"].recall, orientation="h"),
    ])
    figure.update_layout(barmode="group", height=480, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                         xaxis={"range": [0, 1], "tickformat": ".0%"}, legend={"orientation": "h", "y": -0.1},
                         title=_("Drawings recognised, per class"))
    st.plotly_chart(figure, key="drawing_scores")
