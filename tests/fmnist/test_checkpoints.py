"""Tests for fmnist.checkpoints: weights per epoch within a budget, evenly thinned, and models at an epoch."""

import keras
import numpy as np
import pytest

from fmnist import checkpoints


def weights_of(value: float, size: int = 100) -> list[np.ndarray]:
    return [np.full(size, value, dtype=np.float32)]  # 400 bytes an epoch


def test_every_epoch_is_kept_while_the_budget_allows_and_copies_are_independent():
    store = checkpoints.EpochCheckpoints(budget_bytes=10_000)
    original = weights_of(1.0)
    store.add(1, original)
    original[0][:] = 5.0  # the model keeps training: the checkpoint must not change
    store.add(2, weights_of(2.0), complete=False)

    assert store.epochs == [1, 2]
    assert store.weights(1)[0][0] == 1.0
    assert store.is_complete(1) and not store.is_complete(2)
    assert store.nbytes == 800 and store.evicted == []


def test_beyond_the_budget_the_kept_epochs_stay_evenly_spaced_with_first_and_last():
    store = checkpoints.EpochCheckpoints(budget_bytes=5 * 400)
    for epoch in range(1, 51):
        store.add(epoch, weights_of(epoch))
        assert store.nbytes <= store.budget_bytes

    kept = store.epochs
    assert len(kept) == 5 and kept[0] == 1 and kept[-1] == 50
    gaps = np.diff(kept)
    assert gaps.max() <= 2 * gaps.min(), kept
    assert sorted(store.evicted) == sorted(set(range(1, 51)) - set(kept))
    for epoch in kept:
        assert store.weights(epoch)[0][0] == epoch


def test_an_epoch_that_was_dropped_or_never_trained_is_refused_with_the_kept_ones_named():
    store = checkpoints.EpochCheckpoints(budget_bytes=2 * 400)
    for epoch in (1, 2, 3):
        store.add(epoch, weights_of(epoch))
    with pytest.raises(ValueError, match=r"Epoch 2 is not kept \(kept: 1, 3\)"):
        store.weights(2)


def test_weights_larger_than_the_budget_keep_only_the_latest_epoch_and_say_so():
    store = checkpoints.EpochCheckpoints(budget_bytes=100)
    store.add(1, weights_of(1.0))
    store.add(2, weights_of(2.0))
    assert store.epochs == [2] and store.too_large


def test_the_callback_records_each_epoch_and_a_model_at_an_epoch_predicts_as_the_model_did_then():
    keras.utils.set_random_seed(0)
    generator = np.random.default_rng(0)
    images = generator.uniform(size=(64, 4)).astype(np.float32)
    labels = (images[:, 0] > 0.5).astype(np.int32)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    store = checkpoints.EpochCheckpoints()
    seen_after_epoch = {}

    class Probe(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen_after_epoch[epoch + 1] = np.asarray(self.model(images))

    model.fit(images, labels, epochs=3, batch_size=16, verbose=0,
              callbacks=[checkpoints.make_checkpoint_callback(store), Probe()])

    assert store.epochs == [1, 2, 3]
    scratch = None
    for epoch in (1, 2, 3):
        scratch = checkpoints.model_at_epoch(model, store, epoch, scratch)
        np.testing.assert_allclose(np.asarray(scratch(images)), seen_after_epoch[epoch], atol=1e-6)
    assert not np.allclose(seen_after_epoch[1], seen_after_epoch[3])
    np.testing.assert_allclose(np.asarray(model(images)), seen_after_epoch[3], atol=1e-6)  # model untouched


def test_a_training_run_keeps_its_weights_after_every_epoch_and_marks_a_stopped_epoch_partial(tiny_dataset):
    from fmnist import training

    result = training.train(training.TrainingConfig(epochs=3, batch_size=16), tiny_dataset)
    store = result.checkpoints
    assert store.epochs == [1, 2, 3] and all(store.is_complete(epoch) for epoch in (1, 2, 3))
    for kept, final in zip(store.weights(3), result.model.get_weights(), strict=True):
        np.testing.assert_array_equal(kept, final)
    assert not np.array_equal(store.weights(1)[0], store.weights(3)[0])

    checks = []
    # plain fit asks should_stop after every batch: 60 batches of 8 per epoch, so the 65th is in epoch 2
    stopped = training.train(training.TrainingConfig(epochs=3, batch_size=8, fast=False), tiny_dataset,
                             should_stop=lambda: checks.append(1) or len(checks) >= 65)
    assert not stopped.history[-1].complete
    assert stopped.checkpoints.epochs == [1, 2] and not stopped.checkpoints.is_complete(2)
