"""Tests for fmnist.baseline: the textbook's SGDClassifier loop, a run like the Keras ones everywhere a run goes."""

import io
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest
from scipy.special import expit
from sklearn.linear_model import SGDClassifier

from fmnist import baseline, checkpoints, codegen, data, evaluation, explain, inside, jobs, links, models, training
from tests.conftest import make_tiny_dataset

BASELINE = models.BASELINE_PRESET


def book_loop(dataset, config, epochs):
    """Chapter 4's own loop on the run's split: (training accuracy, validation accuracy) after each epoch."""
    split = training.split_training_data(config, dataset.y_train)
    train_x = dataset.x_train[split.train_indices].astype("float32").reshape(-1, 784) / 255.0
    val_x = dataset.x_train[split.validation_indices].astype("float32").reshape(-1, 784) / 255.0
    train_y, val_y = dataset.y_train[split.train_indices], dataset.y_train[split.validation_indices]
    sc = SGDClassifier(loss="log_loss", random_state=config.seed)
    scores = []
    for _ in range(epochs):
        sc.partial_fit(train_x, train_y, classes=np.arange(10))
        scores.append((sc.score(train_x, train_y), sc.score(val_x, val_y)))
    return sc, scores


def test_each_epoch_is_one_partial_fit_of_the_textbook_classifier_on_the_runs_split(tiny_dataset):
    config = training.TrainingConfig(preset=BASELINE, epochs=3, seed=7)
    reports, progress = [], []

    result = training.train(config, tiny_dataset, on_epoch=reports.append,
                            on_batch=lambda epoch, fraction: progress.append((epoch, fraction)))

    book, expected = book_loop(tiny_dataset, config, 3)
    assert baseline.is_baseline(result.model)
    assert [r.epoch for r in reports] == [1, 2, 3] and result.history == reports
    np.testing.assert_allclose([(r.accuracy, r.val_accuracy) for r in reports], expected, atol=1e-6)
    validation = tiny_dataset.x_train[result.split.validation_indices].astype("float32").reshape(-1, 784) / 255.0
    book_loss = baseline.log_loss(book.predict_proba(validation), tiny_dataset.y_train[result.split.validation_indices])
    assert reports[-1].val_loss == pytest.approx(book_loss, rel=1e-5)
    assert all(r.loss > 0 and r.val_loss > 0 and r.complete for r in reports)
    assert reports[-1].val_accuracy > 0.5  # the tiny classes are learnable: chance is 0.1
    assert progress == [(1, 0.0), (1, 1.0), (2, 0.0), (2, 1.0), (3, 0.0), (3, 1.0)]
    assert not result.stopped_early


@pytest.mark.integration
def test_on_fashion_mnist_every_epoch_equals_the_book_loop_and_evaluate_agrees():
    dataset = data.load_dataset()
    config = training.TrainingConfig(preset=BASELINE, epochs=3, sample_limit=10_000)
    result = training.train(config, dataset)

    _, expected = book_loop(dataset, config, 3)
    np.testing.assert_allclose([(r.accuracy, r.val_accuracy) for r in result.history], expected, atol=1e-6)
    assert result.history[-1].val_accuracy > 0.78
    validation = evaluation.evaluate_model(result.model, dataset.x_train[result.split.validation_indices],
                                           dataset.y_train[result.split.validation_indices], config.loss)
    assert validation.accuracy == pytest.approx(result.history[-1].val_accuracy, abs=1e-9)
    assert validation.loss == pytest.approx(result.history[-1].val_loss, rel=1e-6)
    for epoch in result.checkpoints.epochs:  # the time machine's model of each epoch gives that epoch's numbers
        then = checkpoints.model_at_epoch(result.model, result.checkpoints, epoch)
        report = evaluation.evaluate_model(then, dataset.x_train[result.split.validation_indices],
                                           dataset.y_train[result.split.validation_indices], config.loss)
        assert report.accuracy == pytest.approx(result.history[epoch - 1].val_accuracy, abs=1e-9)


def test_its_probabilities_are_scikit_learns_and_the_most_probable_class_is_predicts(tiny_dataset):
    result = training.train(training.TrainingConfig(preset=BASELINE, epochs=1), tiny_dataset)
    from_uint8 = result.model.predict_proba(tiny_dataset.x_test)
    from_scaled = result.model.predict_proba(tiny_dataset.x_test.astype(np.float32) / 255)
    flat = tiny_dataset.x_test.reshape(-1, 784) / np.float32(255)

    assert from_uint8.shape == (len(tiny_dataset.x_test), 10) and from_uint8.dtype == np.float32
    np.testing.assert_allclose(from_uint8.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(from_uint8, from_scaled, atol=1e-6)
    np.testing.assert_allclose(from_uint8, result.model.classifier.predict_proba(flat), atol=1e-6)
    np.testing.assert_array_equal(from_uint8.argmax(axis=1), result.model.classifier.predict(flat))
    np.testing.assert_array_equal(result.model(flat, training=False), from_uint8)  # a forward pass, as Keras'


def test_two_classes_both_near_certain_still_rank_as_predict_ranks_them():
    """Two decision values of 30 and 40 both give a probability of 1.0 in float32: ``score`` counts the
    larger one, so the page's argmax must too."""
    classifier = SGDClassifier(loss="log_loss")
    classifier.partial_fit(np.zeros((10, 784), dtype=np.float32), np.arange(10), classes=np.arange(10))
    classifier.coef_ = np.zeros((10, 784), dtype=np.float32)
    classifier.intercept_ = np.full(10, -50.0, dtype=np.float32)
    classifier.intercept_[[2, 7]] = [30.0, 40.0]
    probabilities = baseline.BaselineModel(classifier).predict_proba(np.zeros((3, 28, 28), dtype=np.uint8))

    assert float(expit(np.float32(30))) == float(expit(np.float32(40))) == 1.0  # the tie the model must break
    assert classifier.predict(np.zeros((1, 784), dtype=np.float32))[0] == 7
    assert list(probabilities.argmax(axis=1)) == [7, 7, 7]
    np.testing.assert_allclose(probabilities[:, [2, 7]], 0.5, atol=1e-6)


def test_stop_ends_it_between_epochs_and_keeps_what_was_trained(tiny_dataset):
    reports = []
    result = training.train(training.TrainingConfig(preset=BASELINE, epochs=10), tiny_dataset,
                            on_epoch=reports.append, should_stop=lambda: len(reports) >= 2)
    assert result.stopped_early and len(result.history) == 2
    assert result.checkpoints.epochs == [1, 2]
    assert result.model.predict_proba(tiny_dataset.x_test[:3]).shape == (3, 10)


def test_the_job_manager_queues_stops_and_finishes_it_like_a_keras_run():
    dataset = make_tiny_dataset(train_count=3000, test_count=50)
    manager = jobs.JobManager(max_concurrent=1, abandon_after_seconds=600)
    long_run = manager.submit(training.TrainingConfig(preset=BASELINE, epochs=300), dataset)
    deadline = time.monotonic() + 60
    while len(long_run.snapshot().epochs) < 2:
        assert time.monotonic() < deadline, "the baseline job reported no epochs"
        time.sleep(0.01)
    queued = manager.submit(training.TrainingConfig(preset=BASELINE, epochs=2, seed=3), dataset)
    time.sleep(0.2)
    assert queued.snapshot().status is jobs.JobStatus.QUEUED and queued.snapshot().queue_position == 1
    long_run.request_stop()
    assert long_run.wait(60) and queued.wait(60)

    stopped, finished = long_run.snapshot(), queued.snapshot()
    assert stopped.status is jobs.JobStatus.STOPPED and 2 <= len(stopped.epochs) < 300
    assert list(stopped.epochs) == long_run.result.history and long_run.result.stopped_early
    assert finished.status is jobs.JobStatus.FINISHED and len(finished.epochs) == 2
    assert manager.timings.estimate(queued.config, len(dataset.x_train)).measured_runs == 2


def test_keras_settings_do_not_apply_and_are_refused_by_name():
    config = training.TrainingConfig(preset=BASELINE, epochs=3, validation_fraction=0.25, sample_limit=500, seed=5)
    assert config.describe() == "sgd-classifier, log loss, scikit-learn SGD, 3 ep, val 25%, 500 samples"
    assert not config.uses_drawings
    assert training.TrainingConfig(**{name: getattr(config, name) for name in (
        "preset", "loss", "optimizer", "learning_rate", "batch_size", "schedule", "epochs")}) is not None
    for setting, name in ((dict(optimizer="adam"), "optimizer"), (dict(learning_rate=0.1), "learning rate"),
                          (dict(batch_size=64), "batch size"), (dict(loss="mean_squared_error"), "loss"),
                          (dict(schedule="one-cycle"), "learning-rate schedule"), (dict(drawings=True), "drawings"),
                          (dict(fast=False), "plain fit")):
        with pytest.raises(ValueError, match=f"does not use these settings: {re.escape(name)}"):
            training.TrainingConfig(preset=BASELINE, **setting)
    assert models.count_parameters(BASELINE) == 7850 == models.count_parameters("seed")
    assert BASELINE not in models.KERAS_PRESETS and set(models.KERAS_PRESETS) == set(models.PRESETS) - {BASELINE}


def test_evaluate_explain_and_look_inside_work_on_it(tiny_dataset):
    result = training.train(training.TrainingConfig(preset=BASELINE, epochs=2), tiny_dataset)
    model = result.model

    report = evaluation.evaluate_model(model, tiny_dataset.x_test, tiny_dataset.y_test)
    probabilities = model.predict_proba(tiny_dataset.x_test)
    assert report.accuracy == pytest.approx(float(np.mean(probabilities.argmax(axis=1) == tiny_dataset.y_test)))
    assert report.loss == pytest.approx(baseline.log_loss(probabilities, tiny_dataset.y_test))
    np.testing.assert_array_equal(evaluation.predict_probabilities(model, tiny_dataset.x_test), probabilities)

    first, second = (int(np.flatnonzero(tiny_dataset.y_test == label)[0]) for label in (0, 1))
    image = (tiny_dataset.x_test[first] / 255.0 + tiny_dataset.x_test[second] / 255.0) / 2  # an unsure answer
    saliency = explain.occlusion_saliency(model, image)
    assert saliency.shape == (28, 28) and saliency.max() == pytest.approx(1.0)
    index = explain.build_neighbour_index(model, tiny_dataset.x_train, result.split.train_indices)
    neighbours = explain.nearest_training_images(model, index, image, tiny_dataset.y_train)
    distances = np.linalg.norm(tiny_dataset.x_train[result.split.train_indices].reshape(-1, 784) / np.float32(255)
                               - image.reshape(1, 784), axis=1)
    assert neighbours[0].training_index == result.split.train_indices[int(distances.argmin())]  # the pixels' nearest

    assert inside.model_family(model) == "linear"
    np.testing.assert_array_equal(inside.class_templates(model), model.classifier.coef_.reshape(10, 28, 28))
    with pytest.raises(ValueError):
        inside.first_layer_filters(model)


def test_its_weights_download_as_plain_arrays_and_it_is_never_saved_as_a_keras_file(tiny_dataset, tmp_path):
    result = training.train(training.TrainingConfig(preset=BASELINE, epochs=1), tiny_dataset)
    with np.load(io.BytesIO(result.model.weights_file_bytes()), allow_pickle=False) as arrays:
        coef, intercept = arrays["coef"], arrays["intercept"]
        assert list(arrays["classes"]) == list(range(10))
    ovr = expit(tiny_dataset.x_test.reshape(-1, 784) / np.float32(255) @ coef.T + intercept)
    np.testing.assert_allclose(ovr / ovr.sum(axis=1, keepdims=True), result.model.predict_proba(tiny_dataset.x_test),
                               atol=1e-5)
    with pytest.raises(ValueError, match="scikit-learn model, not a Keras one"):
        result.model.save(str(tmp_path / "model.keras"))


def test_a_classroom_link_names_only_the_settings_it_has():
    config = training.TrainingConfig(preset=BASELINE, epochs=4, sample_limit=3000, seed=11)
    query = links.query_from_config(config)
    assert query == {"preset": BASELINE, "epochs": "4", "val": "20", "limit": "3000", "seed": "11"}
    settings, rejected = links.settings_from_query(query)
    assert training.TrainingConfig(**settings) == config and rejected == []

    settings, rejected = links.settings_from_query({**query, "optimizer": "adam", "batch": "<script>"})
    assert training.TrainingConfig(**settings) == config
    assert {(value.parameter, value.reason) for value in rejected} == {
        ("optimizer", "does not apply to the baseline"), ("batch", "not a whole number")}


def test_its_script_is_chapter_4s_loop_with_the_runs_settings():
    config = training.TrainingConfig(preset=BASELINE, epochs=4, validation_fraction=0.3, sample_limit=1234, seed=9,
                                     stratify=True)
    script = codegen.training_script(config, title="Run 5")

    compile(script, "run5.py", "exec")
    assert script.startswith(f'"""Run 5: {config.describe()}.')
    assert 'SGDClassifier(loss="log_loss", random_state=9)' in script
    assert "sc.partial_fit(train_scaled, train_target, classes=classes)" in script
    assert "for epoch in range(1, 5):" in script
    assert "test_size=0.3, random_state=9, stratify=train_target" in script
    assert "train_scaled[:1234], train_target[:1234]" in script
    assert "import keras\n\n    return" in script  # only for the download, when the app's cache is missing
    assert "import fmnist" not in script and "from fmnist" not in script


@pytest.mark.integration
def test_the_script_of_a_baseline_run_reproduces_every_epoch(tmp_path):
    config = training.TrainingConfig(preset=BASELINE, epochs=2, sample_limit=5000, seed=3)
    app_run = training.train(config, data.load_dataset())
    path = tmp_path / "run.py"
    path.write_text(codegen.training_script(config))

    completed = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=300,
                               env=dict(os.environ), check=False)

    assert completed.returncode == 0, completed.stderr[-2000:]
    epochs = re.findall(r"Epoch (\d)/2 - accuracy: (\d\.\d+) - val_accuracy: (\d\.\d+)", completed.stdout)
    assert [int(epoch) for epoch, _, _ in epochs] == [1, 2]
    for (_, accuracy, val_accuracy), report in zip(epochs, app_run.history, strict=True):
        assert abs(float(accuracy) - report.accuracy) <= 5e-5 and abs(float(val_accuracy) - report.val_accuracy) <= 5e-5
    final = float(re.search(r"validation accuracy: (\d\.\d+)", completed.stdout).group(1))
    assert abs(final - app_run.history[-1].val_accuracy) <= 1e-6, json.dumps(
        {"script": final, "app": app_run.history[-1].val_accuracy})


def test_the_matching_baseline_keeps_a_runs_split_limit_and_epochs():
    keras_run = training.TrainingConfig(preset="minute-cnn", epochs=6, validation_fraction=0.3, stratify=True,
                                        sample_limit=4000, seed=8, fast=False)
    matching = baseline.baseline_config(keras_run)
    assert matching.preset == BASELINE and matching.epochs == 6
    assert (matching.validation_fraction, matching.stratify, matching.sample_limit, matching.seed) == (0.3, True, 4000, 8)
    labels = np.arange(20_000) % 10
    for run in (keras_run, matching):
        np.testing.assert_array_equal(training.split_training_data(run, labels).validation_indices,
                                      training.split_training_data(keras_run, labels).validation_indices)
