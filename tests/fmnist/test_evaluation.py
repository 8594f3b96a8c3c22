"""Tests for fmnist.evaluation: losses as Keras computes them, the per-class report, and confusions."""

import keras
import numpy as np
import pytest

from fmnist import evaluation, training


@pytest.fixture(scope="module")
def trained_model(tiny_dataset) -> keras.Model:
    """A seed model trained one epoch on ``tiny_dataset``; tests must not change it."""
    return training.train(training.TrainingConfig(epochs=1), tiny_dataset).model


def random_probabilities(count: int, seed: int = 0) -> np.ndarray:
    generator = np.random.default_rng(seed)
    probabilities = generator.dirichlet(np.full(10, 0.5), size=count)
    probabilities[0] = 0.0
    probabilities[0, 3] = 1.0  # a certain row: exercises the clipping at 0 and 1
    probabilities[1] *= 0.7  # a row that does not sum to 1: Keras normalises it first
    return probabilities.astype(np.float32)


def one_hot(labels: np.ndarray) -> np.ndarray:
    return np.eye(10, dtype=np.float32)[labels]


KERAS_LOSSES = {
    "sparse_categorical_crossentropy": lambda labels, probabilities: keras.losses.sparse_categorical_crossentropy(
        labels, probabilities),
    "categorical_crossentropy": lambda labels, probabilities: keras.losses.categorical_crossentropy(
        one_hot(labels), probabilities),
    "mean_squared_error": lambda labels, probabilities: keras.losses.mean_squared_error(
        one_hot(labels), probabilities),
}


@pytest.mark.parametrize("loss", sorted(KERAS_LOSSES))
def test_compute_loss_matches_keras(loss):
    probabilities = random_probabilities(200)
    labels = np.random.default_rng(1).integers(0, 10, size=200)
    labels[0] = 5  # the certain row is certainly wrong: the clipped log of 1e-7
    expected = float(np.mean(np.asarray(KERAS_LOSSES[loss](labels, probabilities))))
    assert evaluation.compute_loss(probabilities, labels, loss) == pytest.approx(expected, abs=1e-5)


def test_compute_loss_rejects_an_unknown_loss():
    with pytest.raises(ValueError, match=r"Unknown loss 'hinge'; choose one of"):
        evaluation.compute_loss(random_probabilities(3), np.array([0, 1, 2]), "hinge")


def probabilities_predicting(predictions: list[int], confidence: float = 0.9) -> np.ndarray:
    rows = np.full((len(predictions), 10), (1 - confidence) / 9, dtype=np.float32)
    rows[np.arange(len(predictions)), predictions] = confidence
    return rows


def test_report_on_a_small_hand_computed_example():
    labels = np.array([0, 0, 1, 1, 2, 2])
    predictions = [0, 1, 1, 1, 2, 0]
    report = evaluation.evaluate_probabilities(probabilities_predicting(predictions), labels)
    expected_confusion = np.zeros((10, 10), dtype=int)
    for true, predicted in [(0, 0), (0, 1), (1, 1), (1, 1), (2, 2), (2, 0)]:
        expected_confusion[true, predicted] += 1
    np.testing.assert_array_equal(report.confusion, expected_confusion)
    assert report.accuracy == pytest.approx(4 / 6)
    np.testing.assert_allclose(report.precision[:3], [1 / 2, 2 / 3, 1])
    np.testing.assert_allclose(report.recall[:3], [1 / 2, 1, 1 / 2])
    np.testing.assert_array_equal(report.precision[3:], 0)
    np.testing.assert_array_equal(report.recall[3:], 0)
    # one-vs-rest: class 0 has 1 false positive and 1 false negative among 6 items
    np.testing.assert_allclose(report.class_accuracy[:3], [4 / 6, 5 / 6, 5 / 6])
    np.testing.assert_array_equal(report.class_accuracy[3:], 1)
    np.testing.assert_array_equal(report.predictions, predictions)
    assert report.loss == pytest.approx(-np.mean(np.log([0.9, 0.1 / 9, 0.9, 0.9, 0.9, 0.1 / 9])), rel=1e-5)


def test_report_uses_the_chosen_loss():
    labels = np.array([3, 4])
    probabilities = probabilities_predicting([3, 4], confidence=0.5)
    report = evaluation.evaluate_probabilities(probabilities, labels, "mean_squared_error")
    assert report.loss == pytest.approx(evaluation.compute_loss(probabilities, labels, "mean_squared_error"))
    assert report.loss == pytest.approx((0.25 + 9 * (0.5 / 9) ** 2) / 10, rel=1e-5)


@pytest.mark.parametrize(("probabilities", "labels", "message"), [
    (np.zeros((3, 9)), np.zeros(3), r"Expected probabilities of shape \(N, 10\) for N labels, got \(3, 9\) for 3"),
    (np.zeros((3, 10)), np.zeros(4), r"got \(3, 10\) for 4 labels"),
    (np.zeros(10), np.zeros(1), r"Expected probabilities of shape"),
    (np.zeros((0, 10)), np.zeros(0), r"There are no items to evaluate\."),
])
def test_report_rejects_mismatched_input(probabilities, labels, message):
    with pytest.raises(ValueError, match=message):
        evaluation.evaluate_probabilities(probabilities, labels)


def test_most_confused_pairs_largest_first_ties_by_class_order():
    confusion = np.zeros((10, 10), dtype=int)
    np.fill_diagonal(confusion, 50)
    confusion[6, 0] = 7
    confusion[0, 6] = 3
    confusion[4, 2] = 7
    confusion[2, 4] = 5
    confusion[9, 7] = 1
    pairs = evaluation.most_confused_pairs(confusion, top=4)
    assert [(pair.true_label, pair.predicted_label, pair.count) for pair in pairs] == [
        (4, 2, 7), (6, 0, 7), (2, 4, 5), (0, 6, 3)]
    assert len(evaluation.most_confused_pairs(confusion, top=10)) == 5, "the diagonal and empty cells are left out"
    assert pairs[1].describe() == "Shirt taken for T-shirt/top: 7 times"


def test_misclassified_indices_filter_and_sort_by_confidence():
    labels = np.array([0, 0, 1, 1, 2, 0, 0])
    probabilities = np.vstack([
        probabilities_predicting([0], 0.9),  # right
        probabilities_predicting([1], 0.6),  # 0 taken for 1
        probabilities_predicting([0], 0.8),  # 1 taken for 0
        probabilities_predicting([1], 0.9),  # right
        probabilities_predicting([0], 0.7),  # 2 taken for 0
        probabilities_predicting([1], 0.95),  # 0 taken for 1, most confident
        probabilities_predicting([2], 0.6),  # 0 taken for 2, same confidence as item 1
    ])
    np.testing.assert_array_equal(evaluation.misclassified_indices(probabilities, labels), [5, 2, 4, 1, 6])
    np.testing.assert_array_equal(evaluation.misclassified_indices(probabilities, labels, true_label=0), [5, 1, 6])
    np.testing.assert_array_equal(
        evaluation.misclassified_indices(probabilities, labels, true_label=0, predicted_label=1), [5, 1])
    np.testing.assert_array_equal(evaluation.misclassified_indices(probabilities, labels, predicted_label=0), [2, 4])
    assert evaluation.misclassified_indices(probabilities, labels, true_label=3).size == 0


def test_top_k_best_first():
    probabilities = np.array([0.05, 0.4, 0.0, 0.3, 0.05, 0.0, 0.2, 0.0, 0.0, 0.0])
    top = evaluation.top_k(probabilities, 3)
    assert [label for label, _ in top] == [1, 3, 6]
    assert [probability for _, probability in top] == pytest.approx([0.4, 0.3, 0.2])
    assert [label for label, _ in evaluation.top_k(probabilities, 5)] == [1, 3, 6, 0, 4], "ties keep class order"
    assert all(isinstance(label, int) and isinstance(value, float) for label, value in top)
    assert len(evaluation.top_k(probabilities[None], 10)) == 10


def test_predict_probabilities_accepts_uint8_and_scaled_images_in_any_batch_size(trained_model, tiny_dataset):
    images = tiny_dataset.x_test
    direct = evaluation.predict_probabilities(trained_model, images)
    assert direct.shape == (100, 10) and direct.dtype == np.float32
    np.testing.assert_allclose(direct.sum(axis=1), 1, atol=1e-5)
    batched = evaluation.predict_probabilities(trained_model, images, batch_size=16)
    np.testing.assert_allclose(batched, direct, atol=1e-6)
    scaled = evaluation.predict_probabilities(trained_model, images.astype(np.float32) / 255)
    np.testing.assert_allclose(scaled, direct, atol=1e-6)


def test_evaluate_model_agrees_with_keras_evaluate(trained_model, tiny_dataset):
    report = evaluation.evaluate_model(trained_model, tiny_dataset.x_test, tiny_dataset.y_test)
    keras_loss, keras_accuracy = trained_model.evaluate(
        training.scale_images(tiny_dataset.x_test, trained_model.input_shape),
        tiny_dataset.y_test.astype(np.int32), verbose=0)
    assert report.accuracy == pytest.approx(keras_accuracy, abs=1e-6)
    assert report.loss == pytest.approx(keras_loss, abs=1e-4)
    assert report.accuracy > 0.5
    assert report.confusion.sum() == 100
    np.testing.assert_array_equal(report.confusion.sum(axis=1), np.bincount(tiny_dataset.y_test, minlength=10))


def confident_often_wrong_model(loss: str) -> keras.Model:
    """Dense(10, softmax) on 784 pixels with large known weights: sure of itself, mostly wrong.

    Its logits differ by hundreds, so many true classes get probabilities far below 1e-7,
    where a loss recomputed from clipped probabilities stops growing but Keras' does not.
    """
    model = keras.Sequential([keras.Input(shape=(28, 28)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    generator = np.random.default_rng(3)
    weights = generator.normal(0.0, 1.0, size=(784, 10)).astype(np.float32)
    model.layers[-1].set_weights([weights, np.linspace(-2, 2, 10, dtype=np.float32)])
    model.compile(loss=loss, metrics=["accuracy"])
    return model


@pytest.mark.parametrize("loss", sorted(KERAS_LOSSES))
def test_evaluate_model_loss_equals_keras_evaluate_on_a_confident_often_wrong_model(loss, tiny_dataset):
    model = confident_often_wrong_model(loss)
    images, labels = tiny_dataset.x_test, tiny_dataset.y_test
    keras_loss, keras_accuracy = model.evaluate(training.scale_images(images, model.input_shape),
                                                training.encode_targets(labels, loss), verbose=0)
    report = evaluation.evaluate_model(model, images, labels, loss)
    assert report.accuracy == pytest.approx(keras_accuracy, abs=1e-6)
    assert report.accuracy < 0.3, "often wrong"
    true_class_probability = report.probabilities[np.arange(len(labels)), labels]
    assert np.mean(true_class_probability < 1e-7) > 0.5, "confident: most true classes are below the clip"
    assert report.loss == pytest.approx(keras_loss, abs=1e-4)
    probabilities, batched_loss = evaluation.predict_with_loss(model, images, labels, loss, batch_size=7)
    assert batched_loss == pytest.approx(keras_loss, abs=1e-4), "uneven batches weigh each item once"
    # oneDNN (on by default, see fmnist/__init__.py) picks its matmul kernel by batch size: the same
    # items come out a few float32 units apart (2e-6 seen on an AMX machine), not the same bits.
    np.testing.assert_allclose(probabilities, report.probabilities, rtol=1e-4, atol=1e-5)


def test_predict_with_loss_rejects_bad_input(trained_model, tiny_dataset):
    images, labels = tiny_dataset.x_test, tiny_dataset.y_test
    with pytest.raises(ValueError, match=r"Unknown loss 'hinge'"):
        evaluation.predict_with_loss(trained_model, images, labels, "hinge")
    with pytest.raises(ValueError, match=r"Got 100 images but 99 labels"):
        evaluation.predict_with_loss(trained_model, images, labels[:99])
    with pytest.raises(ValueError, match=r"There are no items to evaluate"):
        evaluation.predict_with_loss(trained_model, images[:0], labels[:0])


def lopsided_model(mirror_layer: bool) -> keras.Model:
    """A softmax over the left half's and the right half's brightness, so an image and its mirror
    image get different answers; with a RandomFlip at its input (training only) when asked."""
    weights = np.zeros((28 * 28, 10), dtype=np.float32)
    columns = np.tile(np.arange(28), 28)
    weights[columns < 14, 0], weights[columns >= 14, 1] = 0.05, 0.05
    layers = [keras.Input((28, 28, 1))]
    if mirror_layer:
        layers.append(keras.layers.RandomFlip("horizontal", seed=1))
    layers += [keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")]
    model = keras.Sequential(layers)
    model.layers[-1].set_weights([weights, np.zeros(10, dtype=np.float32)])
    return model


def test_a_model_that_learned_mirror_images_predicts_the_mean_over_both_ways_everywhere(tiny_dataset):
    """One prediction for one model: Evaluate's report and loss, Try it and the bench all see the
    mean over an item and its mirror image for a model trained on mirror images (the Minute CNN),
    and the item as it is for one that was not."""
    images, labels = tiny_dataset.x_test[:64], tiny_dataset.y_test[:64]
    images = images.copy()
    images[:, :, 14:] //= 4  # brighter on the left
    plain, mirrored = lopsided_model(False), lopsided_model(True)
    assert not evaluation.learned_mirror_images(plain) and evaluation.learned_mirror_images(mirrored)
    as_is = np.asarray(plain(training.scale_images(images, plain.input_shape)))
    flipped = np.asarray(plain(training.scale_images(images[:, :, ::-1].copy(), plain.input_shape)))
    assert np.abs(as_is - flipped).max() > 0.01  # the two ways really differ
    np.testing.assert_allclose(evaluation.predict_probabilities(plain, images), as_is, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(evaluation.predict_probabilities(mirrored, images), (as_is + flipped) / 2,
                               rtol=1e-5, atol=1e-6)
    report = evaluation.evaluate_model(mirrored, images, labels)
    np.testing.assert_allclose(report.probabilities, (as_is + flipped) / 2, rtol=1e-5, atol=1e-6)
    expected_loss = float(np.mean(keras.losses.sparse_categorical_crossentropy(labels, (as_is + flipped) / 2)))
    assert report.loss == pytest.approx(expected_loss, rel=1e-4)
    assert evaluation.evaluate_model(plain, images, labels).loss == pytest.approx(
        float(np.mean(keras.losses.sparse_categorical_crossentropy(labels, as_is))), rel=1e-4)
