"""Evaluate: accuracy and loss, the confusion matrix with its mistakes, per-class scores, a lucky bag."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from fmnist import evaluation
from fmnist.data import NUM_CLASSES
from views import common, explain_panel, labels, runs, server, time_machine
from views.language import _, class_name, format_number, format_percent, ngettext


def evaluations(record: runs.RunRecord, dataset) -> dict:
    """Validation and test reports for a run, computed once and kept with the run (per session)."""
    if "test" not in record.derived:
        result = record.job.result
        validation_indices = result.split.validation_indices
        record.derived["validation"] = evaluation.evaluate_model(
            result.model, dataset.x_train[validation_indices], dataset.y_train[validation_indices],
            record.config.loss)
        record.derived["test"] = evaluation.evaluate_model(
            result.model, dataset.x_test, dataset.y_test, record.config.loss)
    return record.derived


def class_names() -> list[str]:
    """The class names in the visitor's language, as the confusion matrix's axes show them."""
    return [class_name(label) for label in range(NUM_CLASSES)]


def confusion_figure(confusion: np.ndarray) -> go.Figure:
    """The heatmap, with an invisible scatter marker on every cell to make the cells clickable.

    Streamlit 1.67 returns no selected points for a heatmap trace; it does for a scatter trace,
    so each cell carries a transparent marker whose ``customdata`` is its (true, predicted) pair.
    """
    names = class_names()
    true_labels, predicted_labels = np.meshgrid(range(NUM_CLASSES), range(NUM_CLASSES), indexing="ij")
    figure = go.Figure(go.Heatmap(z=confusion, x=names, y=names, colorscale="Blues", texttemplate="%{z}",
                                  showscale=False, hoverinfo="skip"))
    figure.add_trace(go.Scatter(
        x=[names[i] for i in predicted_labels.ravel()], y=[names[i] for i in true_labels.ravel()],
        customdata=confusion.ravel(),
        mode="markers", marker={"symbol": "square", "size": 40, "color": "rgba(0,0,0,0)"},
        showlegend=False, name="cells",
        hovertemplate=_("true %{y}<br>predicted %{x}<br>%{customdata} items") + "<extra></extra>"))
    figure.update_layout(height=560, margin={"l": 10, "r": 10, "t": 30, "b": 10}, clickmode="event+select",
                         xaxis={"title": _("predicted class"), "side": "top"},
                         yaxis={"title": _("true class"), "autorange": "reversed"})
    return figure


def selected_pair(selection, report) -> tuple[int, int]:
    """The (true, predicted) cell the user clicked, else the most confused pair."""
    points = (selection or {}).get("selection", {}).get("points", []) if selection else []
    names = class_names()
    for point in points:
        if point.get("x") in names and point.get("y") in names:  # a cell's marker
            return names.index(point["y"]), names.index(point["x"])
    pairs = evaluation.most_confused_pairs(report.confusion, top=1)
    return (pairs[0].true_label, pairs[0].predicted_label) if pairs else (0, 0)


def render_mistakes(report, images, selection) -> None:
    true_default, predicted_default = selected_pair(selection, report)
    left, right = st.columns(2)
    shown_names = [common.class_label(label) for label in range(NUM_CLASSES)]  # drawn now, in the visitor's language
    true_label = left.selectbox(_("True class"), range(NUM_CLASSES), index=true_default, format_func=shown_names.__getitem__,
                                key=f"mistake_true_{true_default}_{predicted_default}")
    predicted_label = right.selectbox(_("Predicted as"), range(NUM_CLASSES), index=predicted_default,
                                      format_func=shown_names.__getitem__,
                                      key=f"mistake_predicted_{true_default}_{predicted_default}")
    if true_label == predicted_label:
        correct = int(report.confusion[true_label, true_label])
        st.caption(ngettext("The diagonal: {count} item of {name} recognised correctly. Pick two different classes "
                            "to see mistakes.",
                            "The diagonal: {count} items of {name} recognised correctly. Pick two different classes "
                            "to see mistakes.", correct).format(count=format_number(correct),
                                                                name=class_name(true_label)))
        return
    indices = evaluation.misclassified_indices(report.probabilities, report.labels, true_label,
                                                      predicted_label)
    st.caption(ngettext("{count} test item of class {true} was predicted as {predicted}; the most confident "
                        "mistakes first.",
                        "{count} test items of class {true} were predicted as {predicted}; the most confident "
                        "mistakes first.", len(indices)).format(
        count=format_number(len(indices)), true=class_name(true_label), predicted=class_name(predicted_label)))
    shown = indices[:24]
    if len(shown):
        st.image([common.upscale(images[index], 3) for index in shown],
                 caption=[f"#{index}: {format_percent(report.probabilities[index, predicted_label], 0)} "
                          f"{class_name(predicted_label)}" for index in shown], width=96)


def render_class_scores(report) -> None:
    order = np.argsort(report.recall)
    names = [class_name(i) for i in order]
    figure = go.Figure([
        go.Bar(name=_("recall (share of the class recognised)"), y=names, x=report.recall[order], orientation="h"),
        go.Bar(name=_("precision (share of its predictions that are right)"), y=names, x=report.precision[order],
               orientation="h"),
    ])
    figure.update_layout(barmode="group", height=560, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                         xaxis={"range": [0, 1], "tickformat": ".0%"}, legend={"orientation": "h", "y": -0.1},
                         title=_("Per class, worst recognised at the bottom"))
    st.plotly_chart(figure, key="class_scores")


def render_lucky_bag(dataset, report) -> None:
    left, right = st.columns([1, 3])
    count = left.number_input(_("How many items"), min_value=1, max_value=30, value=10, step=1, key="lucky_count")
    if left.button(_("Draw a lucky bag"), icon=":material/shopping_bag:", key="lucky_draw", type="primary"):
        st.session_state["lucky_indices"] = np.random.default_rng().choice(
            len(dataset.x_test), size=int(count), replace=False).tolist()
    indices = st.session_state.get("lucky_indices")
    if not indices:
        right.caption(_("Draw random test items and see what the model says about each."))
        return
    correct = sum(int(report.predictions[i] == dataset.y_test[i]) for i in indices)
    right.markdown(_("**{correct} of {count}** right.").format(correct=correct, count=len(indices)))
    columns = st.columns(5)
    for position, index in enumerate(indices):
        with columns[position % 5].container(border=True):
            true_label = int(dataset.y_test[index])
            right_answer = int(report.predictions[index]) == true_label
            colour = "green" if right_answer else "red"
            st.image(common.upscale(dataset.x_test[index], 3), width=84)
            verdict = _("Right") if right_answer else _("Wrong")
            st.markdown(f":{colour}[**{verdict}**] — " + _("truly {name}").format(name=class_name(true_label)))
            common.render_top_predictions(evaluation.top_k(report.probabilities[index], 3), true_label)


def render_confusion_animation(record: runs.RunRecord, dataset) -> None:
    if len(time_machine.kept_epochs(record)) < 2:
        return
    st.subheader(_("Watch it learn"))
    st.caption(_("The confusion matrix after each epoch: press Play to see the mistakes shrink as the model learns."))
    if st.toggle(_("Show the confusion matrix across epochs"), key="evaluate_show_animation"):
        with st.spinner(_("Evaluating every epoch...")):
            figure = time_machine.confusion_animation(record, dataset)
        st.plotly_chart(figure, key="confusion_animation")


def render() -> None:
    st.title(_("Evaluate a model"))
    dataset = server.load_dataset_or_stop()
    record = runs.require_trained_model("evaluate")
    if record is None:
        return
    server.wait_for_tensorflow()
    epoch = time_machine.choose_epoch(record)
    with st.spinner(_("Evaluating on the validation and test sets...")):
        if epoch is None or epoch == time_machine.kept_epochs(record)[-1]:
            reports = evaluations(record, dataset)
        else:
            reports = time_machine.reports_at_epoch(record, dataset, epoch)
    validation, test = reports["validation"], reports["test"]
    if record.job.result.stopped_early:
        st.info(_("This run was stopped early: these are the numbers of the model trained so far."))
    columns = st.columns(4)
    columns[0].metric(_("Validation accuracy"), format_percent(validation.accuracy, 2))
    columns[1].metric(_("Validation loss"), format_number(validation.loss, 4))
    columns[2].metric(_("Test accuracy"), format_percent(test.accuracy, 2))
    columns[3].metric(_("Test loss"), format_number(test.loss, 4))

    matrix, scores, drawn, bag = st.tabs([_("Confusion matrix"), _("Per-class scores"), _("Drawings"), _("Lucky bag")])
    with matrix:
        st.caption(_("Rows are the true class, columns what the model said (test set). Click a cell to see "
                     "those items below."))
        selection = st.plotly_chart(confusion_figure(test.confusion), key="confusion_matrix", on_select="rerun",
                                    selection_mode="points")
        pairs = evaluation.most_confused_pairs(test.confusion, top=3)
        if pairs:
            st.markdown(_("Most confused: {pairs}.").format(pairs="; ".join(labels.confused_pair(pair) for pair in pairs)))
        render_mistakes(test, dataset.x_test, selection)
        render_confusion_animation(record, dataset)
    with scores:
        render_class_scores(test)
    with drawn:
        explain_panel.render_drawing_accuracy(record, dataset, test.accuracy)
    with bag:
        render_lucky_bag(dataset, test)


render()
