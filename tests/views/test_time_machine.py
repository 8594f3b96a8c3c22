"""The epoch time machine on Evaluate: the slider redraws the page for the model as it was after an epoch."""

import keras
import numpy as np
from apptest_support import plotly_array, plotly_figure, quick_train, session_runs

EVALUATE = "views/evaluate.py"


def shown_confusion(at) -> np.ndarray:
    return plotly_array(plotly_figure(at, "confusion_matrix")["data"][0]["z"]).reshape(10, 10)


def test_the_epoch_slider_redraws_metrics_and_confusion_for_that_epochs_weights(new_session, tiny_idx_dataset):
    at = new_session(EVALUATE)
    quick_train(at, "evaluate")
    record = session_runs(at)[-1]
    epochs = record.job.result.checkpoints.epochs
    assert epochs == list(range(1, record.config.epochs + 1))
    slider = at.select_slider(key=f"evaluate_epoch_{record.run_id}")
    assert slider.value == epochs[-1]
    final_confusion = shown_confusion(at)

    slider.set_value(1).run()
    assert not at.exception

    # what the page shows for epoch 1 is what a model with epoch 1's weights predicts
    model = keras.models.clone_model(record.job.result.model)
    model.set_weights(record.job.result.checkpoints.weights(1))
    from fmnist import data, evaluation
    dataset = data.load_dataset()
    expected = evaluation.evaluate_model(model, dataset.x_test, dataset.y_test).confusion
    np.testing.assert_array_equal(shown_confusion(at), expected)
    assert not np.array_equal(shown_confusion(at), final_confusion)
    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics["Test accuracy"] == f"{np.trace(expected) / expected.sum():.2%}"

    at.switch_page("views/train.py").run()
    at.switch_page(EVALUATE).run()
    assert at.select_slider(key=f"evaluate_epoch_{record.run_id}").value == 1  # kept across pages


def test_the_animation_has_one_frame_per_kept_epoch(new_session):
    at = new_session(EVALUATE)
    quick_train(at, "evaluate")
    at.toggle(key="evaluate_show_animation").set_value(True).run()
    assert not at.exception
    figure = plotly_figure(at, "confusion_animation")
    record = session_runs(at)[-1]
    assert [frame["name"] for frame in figure["frames"]] == [str(e) for e in record.job.result.checkpoints.epochs]
    last = plotly_array(figure["frames"][-1]["data"][0]["z"]).reshape(10, 10)
    np.testing.assert_array_equal(last, shown_confusion(at))
