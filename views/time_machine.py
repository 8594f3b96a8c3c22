"""The epoch time machine on Evaluate: any kept epoch's model, evaluated once and kept with the run."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from fmnist import checkpoints, evaluation
from fmnist.data import CLASS_NAMES
from views.language import _, class_name


def kept_epochs(record) -> list[int]:
    """The epochs the run kept weights for (the last one always); empty for a run without checkpoints."""
    store = getattr(record.job.result, "checkpoints", None)
    return store.epochs if store is not None else []


def epoch_label(record, epoch: int) -> str:
    store = record.job.result.checkpoints
    return f"{epoch}" if store.is_complete(epoch) else _("{epoch} (partial)").format(epoch=epoch)


def reports_at_epoch(record, dataset, epoch: int) -> dict:
    """Validation and test reports of the model as it was after ``epoch``, computed once per (run, epoch)."""
    cache = record.derived.setdefault("epochs", {})
    if epoch not in cache:
        result = record.job.result
        scratch = checkpoints.model_at_epoch(result.model, result.checkpoints, epoch,
                                             record.derived.get("epoch_model"))
        record.derived["epoch_model"] = scratch  # reused: setting weights is far cheaper than cloning
        validation_indices = result.split.validation_indices
        cache[epoch] = {
            "validation": evaluation.evaluate_model(scratch, dataset.x_train[validation_indices],
                                                    dataset.y_train[validation_indices], record.config.loss),
            "test": evaluation.evaluate_model(scratch, dataset.x_test, dataset.y_test, record.config.loss),
        }
    return cache[epoch]


def choose_epoch(record) -> int | None:
    """An epoch slider (1 … N over the kept epochs), remembered per run; None when there is nothing to choose."""
    epochs = kept_epochs(record)
    if len(epochs) < 2:
        return None
    remembered = st.session_state.setdefault("evaluate_epoch_by_run", {})
    chosen = remembered.get(record.run_id, epochs[-1])
    chosen = chosen if chosen in epochs else epochs[-1]
    store = record.job.result.checkpoints
    epoch = st.select_slider(_("Epoch: the model as it was after this epoch"), options=epochs, value=chosen,
                             format_func={e: epoch_label(record, e) for e in epochs}.__getitem__,
                             key=f"evaluate_epoch_{record.run_id}",
                             help=_("Every run keeps its weights after each epoch, so you can go back in time."))
    remembered[record.run_id] = epoch
    if store.evicted:
        st.caption(_("To stay within {megabytes} MB, this run kept {kept} evenly spaced epochs of {total}.").format(
            megabytes=f"{store.budget_bytes / 2**20:.0f}", kept=len(epochs), total=len(epochs) + len(store.evicted)))
    return epoch


def confusion_animation(record, dataset) -> go.Figure:
    """The test confusion matrix after every kept epoch, as plotly frames with a play button."""
    epochs = kept_epochs(record)
    matrices = [reports_at_epoch(record, dataset, epoch)["test"].confusion for epoch in epochs]
    names = [class_name(label) for label in range(len(CLASS_NAMES))]
    peak = int(max(int(np.max(matrix)) for matrix in matrices))

    def heatmap(matrix):
        return go.Heatmap(z=matrix, x=names, y=names, colorscale="Blues", zmin=0, zmax=peak, texttemplate="%{z}",
                          showscale=False, hovertemplate=_("true %{y}<br>predicted %{x}<br>%{z} items") + "<extra></extra>")

    labels = [epoch_label(record, epoch) for epoch in epochs]
    figure = go.Figure(data=[heatmap(matrices[0])],
                       frames=[go.Frame(data=[heatmap(matrix)], name=label)
                               for matrix, label in zip(matrices, labels, strict=True)])
    figure.update_layout(
        height=600, margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis={"title": _("predicted class"), "side": "top"},
        yaxis={"title": _("true class"), "autorange": "reversed"},
        updatemenus=[{"type": "buttons", "showactive": False, "x": 0, "y": -0.08, "xanchor": "left",
                      "buttons": [{"label": "▶ " + _("Play"), "method": "animate",
                                   "args": [None, {"frame": {"duration": 700, "redraw": True},
                                                   "fromcurrent": True, "transition": {"duration": 0}}]}]}],
        sliders=[{"active": 0, "x": 0.12, "len": 0.88, "y": -0.04, "currentvalue": {"prefix": _("epoch") + " "},
                  "steps": [{"label": label, "method": "animate",
                             "args": [[label], {"mode": "immediate", "frame": {"duration": 0, "redraw": True}}]}
                            for label in labels]}])
    return figure
